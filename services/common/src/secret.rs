//! Credentials (passwords for Kafka, PostgreSQL and Redis), read from files that Kubernetes
//! mounts from Secrets. A [`Secret`] prints as `[redacted]` under `Debug` and `Display`, so no
//! log line, error or settings dump can carry one.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::env::{ConfigError, Env};

/// Where a service's credential files are mounted unless a `*_FILE` setting says otherwise.
pub const DEFAULT_SECRETS_DIR: &str = "/var/run/secrets/recobro";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one call that hands it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The file named by `setting`, else `file_name` in `RECOBRO_SECRETS_DIR`. A trailing newline
    /// is dropped; an empty file is an error, as is a missing one (naming the setting and path,
    /// never the content).
    pub fn from_file(env: &impl Env, setting: &str, file_name: &str) -> Result<Secret, ConfigError> {
        let path = secret_path(env, setting, file_name);
        Secret::read(&path).map_err(|reason| ConfigError::Invalid {
            name: setting.to_string(),
            value: path.display().to_string(),
            reason,
        })
    }

    /// The content of the file at `path` without its trailing newline, or why not (missing or
    /// empty; the reason never holds the content).
    pub fn read(path: &Path) -> Result<Secret, String> {
        let content = std::fs::read_to_string(path).map_err(|err| format!("cannot read the file: {err}"))?;
        let value = content.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err("the file is empty".into());
        }
        Ok(Secret(value.to_string()))
    }
}

/// The path a credential is read from (see [`Secret::from_file`]).
pub fn secret_path(env: &impl Env, setting: &str, file_name: &str) -> PathBuf {
    match env.get(setting).filter(|v| !v.trim().is_empty()) {
        Some(path) => PathBuf::from(path.trim()),
        None => Path::new(&env.or("RECOBRO_SECRETS_DIR", DEFAULT_SECRETS_DIR)).join(file_name),
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn read_from_the_named_file_or_the_secrets_dir() {
        let dir = std::env::temp_dir().join(format!("recobro-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("kafka-password"), "s3cret\n").expect("write");
        std::fs::write(dir.join("other"), "elsewhere").expect("write");
        let in_dir = HashMap::from([("RECOBRO_SECRETS_DIR".to_string(), dir.display().to_string())]);
        let secret =
            Secret::from_file(&in_dir, "RECOBRO_KAFKA_PASSWORD_FILE", "kafka-password").expect("read");
        assert_eq!(secret.expose(), "s3cret");
        let named = HashMap::from([(
            "RECOBRO_KAFKA_PASSWORD_FILE".to_string(),
            dir.join("other").display().to_string(),
        )]);
        let secret =
            Secret::from_file(&named, "RECOBRO_KAFKA_PASSWORD_FILE", "kafka-password").expect("read");
        assert_eq!(secret.expose(), "elsewhere");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_missing_or_empty_file_names_the_setting_not_the_content() {
        let dir = std::env::temp_dir().join(format!("recobro-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let env = HashMap::from([("RECOBRO_SECRETS_DIR".to_string(), dir.display().to_string())]);
        let err =
            Secret::from_file(&env, "RECOBRO_REDIS_PASSWORD_FILE", "redis-password").expect_err("missing");
        assert!(err.to_string().contains("RECOBRO_REDIS_PASSWORD_FILE"), "{err}");
        std::fs::write(dir.join("redis-password"), "\n").expect("write");
        let err =
            Secret::from_file(&env, "RECOBRO_REDIS_PASSWORD_FILE", "redis-password").expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
