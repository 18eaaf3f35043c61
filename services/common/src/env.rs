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

    /// How many of something a worker runs or takes at once (consumers, loops, a batch): a
    /// whole number of at least one. Zero is refused rather than read as one: whoever set it
    /// meant something, and a batch of none would claim nothing forever.
    fn count_or(&self, name: &str, default: usize) -> Result<usize, ConfigError> {
        let count: usize = self.parse_or(name, default)?;
        if count == 0 {
            return Err(ConfigError::Invalid {
                name: name.to_string(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(count)
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

/// Settings as a map, for tests that read them through [`Env`].
#[cfg(test)]
pub(crate) fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::map as env;

    #[test]
    fn a_count_is_a_whole_number_of_at_least_one() {
        assert_eq!(env(&[]).count_or("RECOBRO_TIMER_LOOPS", 2).expect("default"), 2);
        assert_eq!(
            env(&[("RECOBRO_TIMER_LOOPS", " ")])
                .count_or("RECOBRO_TIMER_LOOPS", 2)
                .expect("blank"),
            2
        );
        assert_eq!(
            env(&[("RECOBRO_TIMER_LOOPS", "3")])
                .count_or("RECOBRO_TIMER_LOOPS", 2)
                .expect("three"),
            3
        );
        for refused in ["0", "-1", "two"] {
            let err = env(&[("RECOBRO_TIMER_LOOPS", refused)])
                .count_or("RECOBRO_TIMER_LOOPS", 2)
                .expect_err(refused);
            assert!(err.to_string().starts_with("RECOBRO_TIMER_LOOPS="), "{err}");
        }
        let zero = env(&[("RECOBRO_TIMER_LOOPS", "0")])
            .count_or("RECOBRO_TIMER_LOOPS", 2)
            .expect_err("zero");
        assert!(zero.to_string().contains("at least 1"), "{zero}");
    }
}
