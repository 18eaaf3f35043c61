//! PostgreSQL: one pool per service, as its own role, over verified TLS, confined to the schema
//! the service owns; migrations apart, as the schema's owner.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use crate::env::{ConfigError, Env};
use crate::secret::Secret;

/// A column value read back strictly: a value the code does not know is corrupt data, reported
/// as a decode error naming the column, never guessed.
pub fn decoded<T, E>(column: &str, parsed: Result<T, E>) -> Result<T, sqlx::Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    parsed.map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(err),
    })
}

/// One versioned migration, embedded in the binary with `include_str!`.
pub struct Step {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// How a service reaches PostgreSQL: as its own role, over TLS that checks the server's
/// certificate and host name (`sslmode=verify-full` unless the URL asks for `verify-ca`; weaker
/// modes are refused), with the password read from a file, never from the URL.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL` as given (it may not hold a password, so it is safe to print).
    pub url: String,
    pub user: String,
    pub password: Secret,
    /// PEM file of the CA that signed the server's certificate; the webpki roots if unset.
    pub ca: Option<PathBuf>,
    /// PostgreSQL cancels any statement that runs longer (`statement_timeout`): a stuck query
    /// releases its connection and its locks instead of holding a consumer forever.
    pub statement_timeout_ms: u64,
}

/// `RECOBRO_DB_STATEMENT_TIMEOUT_MS` unless set: far above any statement the services run.
pub const STATEMENT_TIMEOUT_MS: u64 = 30_000;

impl DatabaseSettings {
    /// `DATABASE_URL` (without a password), `RECOBRO_DATABASE_USER` (default: the URL's user,
    /// else `default_user`), the password in `RECOBRO_DATABASE_PASSWORD_FILE` (default
    /// `postgres-password` in `RECOBRO_SECRETS_DIR`) and `RECOBRO_DATABASE_CA`.
    pub fn from_env(env: &impl Env, default_user: &str) -> Result<DatabaseSettings, ConfigError> {
        let url = env.or(
            "DATABASE_URL",
            &format!("postgres://{default_user}@127.0.0.1:15432/recobro"),
        );
        let invalid = |reason: &str| ConfigError::Invalid {
            name: "DATABASE_URL".into(),
            // Never echo a URL that may hold a password.
            value: "(not shown)".into(),
            reason: reason.to_string(),
        };
        PgConnectOptions::from_str(&url).map_err(|err| invalid(&err.to_string()))?;
        if url_has_password(&url) {
            return Err(invalid(
                "it holds a password; put the password in RECOBRO_DATABASE_PASSWORD_FILE",
            ));
        }
        if let Some(mode) = query_value(&url, "sslmode")
            && !matches!(mode.as_str(), "verify-full" | "verify-ca")
        {
            return Err(invalid(&format!(
                "sslmode={mode} does not check the server's certificate; use verify-full"
            )));
        }
        let user = env
            .get("RECOBRO_DATABASE_USER")
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
            .or_else(|| url_user(&url))
            .unwrap_or_else(|| default_user.to_string());
        Ok(DatabaseSettings {
            url,
            user,
            password: Secret::from_file(env, "RECOBRO_DATABASE_PASSWORD_FILE", "postgres-password")?,
            ca: env.path("RECOBRO_DATABASE_CA"),
            statement_timeout_ms: env.parse_or("RECOBRO_DB_STATEMENT_TIMEOUT_MS", STATEMENT_TIMEOUT_MS)?,
        })
    }

    /// The connection options: the URL, then this role, its password and TLS.
    pub fn connect_options(&self) -> Result<PgConnectOptions, sqlx::Error> {
        let mut options = PgConnectOptions::from_str(&self.url)?
            .username(&self.user)
            .password(self.password.expose());
        let mode = query_value(&self.url, "sslmode");
        options = options.ssl_mode(match mode.as_deref() {
            Some("verify-ca") => PgSslMode::VerifyCa,
            _ => PgSslMode::VerifyFull,
        });
        if let Some(ca) = &self.ca {
            options = options.ssl_root_cert(ca);
        }
        let timeout = self.statement_timeout_ms.to_string();
        Ok(options.options([("statement_timeout", timeout.as_str())]))
    }
}

/// The `user:password@` part of a URL, if any.
fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.rsplit_once('@').map(|(userinfo, _)| userinfo)
}

fn url_has_password(url: &str) -> bool {
    userinfo(url).is_some_and(|u| u.contains(':')) || query_value(url, "password").is_some()
}

/// The user a URL names (its own part, not sqlx's fallback to `PGUSER` or the OS user).
fn url_user(url: &str) -> Option<String> {
    let user = userinfo(url)?.split(':').next().unwrap_or_default();
    (!user.is_empty()).then(|| user.to_string())
}

fn query_value(url: &str, key: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

fn checked_schema(schema: &str) -> Result<(), sqlx::Error> {
    if schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !schema.is_empty() {
        return Ok(());
    }
    Err(sqlx::Error::Configuration(
        format!("schema name {schema:?} must be letters, digits and underscores").into(),
    ))
}

fn migrator(steps: &[Step]) -> Migrator {
    let migrations = steps
        .iter()
        .map(|step| {
            Migration::new(
                step.version,
                Cow::Borrowed(step.description),
                MigrationType::Simple,
                Cow::Borrowed(step.sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Applies the service's migrations in `schema`, as the schema's owner role (the `migrate`
/// command: a Kubernetes Job or init step, never the running service). The schema is created
/// only when it is missing and this role may create it (the local stack's administrator);
/// otherwise it must have been provisioned (`deploy/postgres/schemas.sql`). Migrations take an
/// advisory lock, so concurrent runs are safe.
pub async fn migrate(database: &DatabaseSettings, schema: &str, steps: &[Step]) -> Result<(), sqlx::Error> {
    checked_schema(schema)?;
    let options = database.connect_options()?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema)]))
        .await?;
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname = $1")
            .bind(schema)
            .fetch_optional(&pool)
            .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await?;
    }
    migrator(steps).run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Whether PostgreSQL refused a statement for good, so that running it again cannot succeed:
/// a data exception (SQLSTATE class 22: a value out of range, an overflow, text PostgreSQL does
/// not store such as a NUL byte), an integrity constraint violation (class 23), or a value this
/// code cannot encode or a stored row it cannot decode. Everything else (a lost connection, a
/// timeout, a cancelled statement, a deadlock, a full pool) may pass and is retried.
pub fn is_permanent(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => true,
        _ => false,
    }
}

/// What a consumer does about a database error: a permanent one rejects what it was applying
/// (a batch is then split until the message behind it is isolated and parked), any other is
/// retried.
pub fn failure(err: &sqlx::Error) -> crate::kafka::Failure {
    if is_permanent(err) {
        crate::kafka::Failure::Reject(refusal_reason(err))
    } else {
        crate::kafka::Failure::Retry(format!("database: {}", described(err)))
    }
}

/// Why PostgreSQL refused something for good, by SQLSTATE and constraint only: its message may
/// quote the value it refused (`invalid input syntax for type uuid: "..."`), and this reason is
/// logged and goes to the dead-letter topic, where no personal data may be.
fn refusal_reason(err: &sqlx::Error) -> String {
    format!("the database refused it for good: {}", described(err))
}

/// A database error as it may be logged or given as a reason: PostgreSQL's own errors by SQLSTATE
/// and constraint only (its message and detail may quote a stored or refused value, such as an
/// address in a unique-key violation), a value that cannot be encoded or decoded without it, and
/// connection-level errors (refused, timed out, closed) as they are: they carry no row data.
pub fn described(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match db.constraint() {
                Some(constraint) => format!("SQLSTATE {code}, constraint {constraint}"),
                None => format!("SQLSTATE {code}"),
            }
        }
        sqlx::Error::Encode(_) | sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
            "a value this version cannot encode or decode".to_string()
        }
        other => other.to_string(),
    }
}

/// Connects as the service's runtime role with `search_path` set to `schema`. Runs no DDL: the
/// schema must already be migrated to this binary's last step, or this fails saying so.
pub async fn connect(
    database: &DatabaseSettings,
    schema: &str,
    steps: &[Step],
) -> Result<PgPool, sqlx::Error> {
    checked_schema(schema)?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        // Waiting longer for a connection than for a statement helps nobody.
        .acquire_timeout(std::time::Duration::from_millis(database.statement_timeout_ms))
        .connect_with(database.connect_options()?.options([("search_path", schema)]))
        .await?;
    let expected = steps.iter().map(|s| s.version).max().unwrap_or(0);
    let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap_or(None);
    if applied.unwrap_or(0) < expected {
        return Err(sqlx::Error::Configuration(
            format!(
                "schema {schema} is at migration {} but this binary needs {expected}: run its `migrate` command first",
                applied.unwrap_or(0)
            )
            .into(),
        ));
    }
    Ok(pool)
}

/// Waits until `schema` is migrated to the last of `steps`: tries [`connect`] every two seconds
/// (the database may not even answer yet) until it succeeds or `patience` runs out, then
/// answers the last refusal.
pub async fn await_schema(
    database: &DatabaseSettings,
    schema: &str,
    steps: &[Step],
    patience: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect(database, schema, steps).await {
            Ok(pool) => {
                pool.close().await;
                return Ok(());
            }
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::info!(%schema, reason = %described(&error), "schema not ready yet; waiting");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Migrates, then connects: for tools, tests and benchmarks that run with one role that may do
/// both (the local stack's administrator). Services never do this.
pub async fn migrate_and_connect(
    database: &DatabaseSettings,
    schema: &str,
    steps: &[Step],
) -> Result<PgPool, sqlx::Error> {
    migrate(database, schema, steps).await?;
    connect(database, schema, steps).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_described_error_never_carries_the_value_behind_it() {
        let decode = sqlx::Error::Decode("cannot read \"ana@example.com\"".into());
        assert!(
            !described(&decode).contains("ana@example.com"),
            "{}",
            described(&decode)
        );
        assert!(!refusal_reason(&decode).contains("ana@example.com"));
        // Connection-level errors carry no row data and stay as they are, for the operator.
        assert_eq!(
            described(&sqlx::Error::PoolTimedOut),
            sqlx::Error::PoolTimedOut.to_string()
        );
    }

    fn env(url: &str) -> (HashMap<String, String>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("recobro-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("postgres-password"), "pw-from-file").expect("write");
        let env = HashMap::from([
            ("DATABASE_URL".to_string(), url.to_string()),
            ("RECOBRO_SECRETS_DIR".to_string(), dir.display().to_string()),
        ]);
        (env, dir)
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        for url in [
            "postgres://accounts:hunter2@db:5432/recobro",
            "postgres://accounts@db:5432/recobro?password=hunter2",
        ] {
            let (env, dir) = env(url);
            let err = DatabaseSettings::from_env(&env, "accounts").expect_err("password in URL");
            assert!(
                err.to_string().contains("RECOBRO_DATABASE_PASSWORD_FILE"),
                "{err}"
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
            std::fs::remove_dir_all(dir).ok();
        }
    }

    #[test]
    fn tls_that_does_not_check_the_server_is_refused() {
        for mode in ["disable", "allow", "prefer", "require"] {
            let (env, dir) = env(&format!("postgres://accounts@db/recobro?sslmode={mode}"));
            let err = DatabaseSettings::from_env(&env, "accounts").expect_err("weak sslmode");
            assert!(err.to_string().contains("verify-full"), "{err}");
            std::fs::remove_dir_all(dir).ok();
        }
    }

    #[test]
    fn verify_full_by_default_with_the_password_from_the_file() {
        let (env, dir) = env("postgres://db.internal:5432/recobro");
        let settings = DatabaseSettings::from_env(&env, "channels").expect("valid");
        assert_eq!(settings.user, "channels");
        assert!(!format!("{settings:?}").contains("pw-from-file"));
        let options = settings.connect_options().expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(options.get_username(), "channels");
        std::fs::remove_dir_all(dir).ok();
    }
}
