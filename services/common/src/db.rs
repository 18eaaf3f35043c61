//! PostgreSQL: one pool per service, confined to the schema the service owns.

use std::borrow::Cow;
use std::str::FromStr;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

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

/// Connects with `search_path` set to `schema`, creating the schema and applying the
/// service's migrations first. Migrations take an advisory lock, so replicas may race here.
pub async fn connect(url: &str, schema: &str, steps: &[Step]) -> Result<PgPool, sqlx::Error> {
    if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(sqlx::Error::Configuration(
            format!("schema name {schema:?} must be letters, digits and underscores").into(),
        ));
    }
    let options = PgConnectOptions::from_str(url)?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&admin)
        .await?;
    admin.close().await;

    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.options([("search_path", schema)]))
        .await?;
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
    let migrator = Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    };
    migrator.run(&pool).await?;
    Ok(pool)
}
