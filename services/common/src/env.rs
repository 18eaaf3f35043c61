//! Where settings are read from: the process environment, or a map in tests, and the one
//! error type every setting reports. Each module that owns a setting reads it through [`Env`],
//! so tests hand in a map instead of calling `set_var`.

use std::collections::HashMap;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required")]
    Missing { name: String },
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// Where settings come from: the process environment, or a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;

    /// Every variable name set, so a service can refuse names it does not know (a typo must
    /// not silently leave a setting at its default).
    fn names(&self) -> Vec<String>;

    fn required(&self, name: &str) -> Result<String, ConfigError> {
        match self.get(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(ConfigError::Missing {
                name: name.to_string(),
            }),
        }
    }

    fn or(&self, name: &str, default: &str) -> String {
        match self.get(name) {
            Some(value) if !value.trim().is_empty() => value,
            _ => default.to_string(),
        }
    }

    /// A file path, trimmed; unset or blank is `None`.
    fn path(&self, name: &str) -> Option<std::path::PathBuf> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| std::path::PathBuf::from(v.trim()))
    }

    fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.get(name).filter(|v| !v.trim().is_empty()) else {
            return Ok(default);
        };
        value.trim().parse().map_err(|err: T::Err| ConfigError::Invalid {
            name: name.to_string(),
            value: value.clone(),
            reason: err.to_string(),
        })
    }
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}
