//! How a service reaches Redis: as its own ACL user, over TLS (`rediss://` only), with the
//! password read from a file. Only services that keep state in Redis enable this (feature
//! `redis`); the ACL confines each user to keys under its own name (`deploy/local/up.sh`).

use std::path::PathBuf;

use redis::{IntoConnectionInfo, TlsCertificates};

use crate::env::{ConfigError, Env};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `rediss://host:port[/db]`, without credentials.
    pub url: String,
    pub username: String,
    pub password: Secret,
    /// PEM file of the CA that signed the server's certificate; the system's roots if unset.
    pub ca: Option<PathBuf>,
}

impl RedisSettings {
    /// `REDIS_URL` (must be `rediss://`, without a password), `RECOBRO_REDIS_USERNAME` (default
    /// `default_username`), the password in `RECOBRO_REDIS_PASSWORD_FILE` (default
    /// `redis-password` in `RECOBRO_SECRETS_DIR`) and `RECOBRO_REDIS_CA`.
    pub fn from_env(env: &impl Env, default_username: &str) -> Result<RedisSettings, ConfigError> {
        let url = env.or("REDIS_URL", "rediss://127.0.0.1:16379");
        let invalid = |reason: &str| ConfigError::Invalid {
            name: "REDIS_URL".into(),
            value: "(not shown)".into(),
            reason: reason.to_string(),
        };
        if !url.starts_with("rediss://") {
            return Err(invalid("only rediss:// (Redis over TLS) is allowed"));
        }
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|err| invalid(&err.to_string()))?;
        if info.redis_settings().password().is_some() {
            return Err(invalid(
                "it holds a password; put the password in RECOBRO_REDIS_PASSWORD_FILE",
            ));
        }
        Ok(RedisSettings {
            url,
            username: env.or("RECOBRO_REDIS_USERNAME", default_username),
            password: Secret::from_file(env, "RECOBRO_REDIS_PASSWORD_FILE", "redis-password")?,
            ca: env.path("RECOBRO_REDIS_CA"),
        })
    }

    /// A client that authenticates as this user over TLS checked against the CA.
    pub fn client(&self) -> Result<redis::Client, RedisClientError> {
        let info = self.url.as_str().into_connection_info()?;
        let settings = info
            .redis_settings()
            .clone()
            .set_username(&self.username)
            .set_password(self.password.expose());
        let info = info.set_redis_settings(settings);
        let root_cert = match &self.ca {
            Some(path) => Some(std::fs::read(path).map_err(|source| RedisClientError::Ca {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        Ok(redis::Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert,
            },
        )?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisClientError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("RECOBRO_REDIS_CA {path}: {source}")]
    Ca { path: PathBuf, source: std::io::Error },
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(url: &str) -> HashMap<String, String> {
        let dir = std::env::temp_dir().join(format!("recobro-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("redis-password"), "pw").expect("write");
        HashMap::from([
            ("REDIS_URL".to_string(), url.to_string()),
            ("RECOBRO_SECRETS_DIR".to_string(), dir.display().to_string()),
        ])
    }

    #[test]
    fn plaintext_redis_is_refused() {
        let err = RedisSettings::from_env(&env("redis://127.0.0.1:6379"), "channels").expect_err("plaintext");
        assert!(err.to_string().contains("rediss://"), "{err}");
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        let err = RedisSettings::from_env(&env("rediss://channels:hunter2@127.0.0.1:6379"), "channels")
            .expect_err("password in URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("RECOBRO_REDIS_PASSWORD_FILE"), "{err}");
    }

    #[test]
    fn the_user_defaults_to_the_service() {
        let settings = RedisSettings::from_env(&env("rediss://127.0.0.1:6379"), "channels").expect("valid");
        assert_eq!(settings.username, "channels");
        assert!(!format!("{settings:?}").contains("\"pw\""));
    }
}
