//! What a service binary is asked to do: serve (no argument), `migrate` its schema and exit, or
//! `await-schema`: wait until someone else has migrated it.
//!
//! `migrate` runs as the schema's owner role (a Kubernetes Job or init container, or the local
//! scripts) and needs only the database settings; the service itself runs as a role that cannot
//! change the schema. `await-schema` runs as that runtime role, in an init container, where a
//! migration Job migrates once for every pod (k8s/components/migration-job).

use crate::db::{self, DatabaseSettings, Step};
use crate::env::{ConfigError, Env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Serve,
    Migrate,
    AwaitSchema,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command {0:?}: run with no argument to serve, `migrate` or `await-schema`")]
    Unknown(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::Error),
}

/// The command in the process arguments.
pub fn command(mut args: impl Iterator<Item = String>) -> Result<Command, CommandError> {
    match args.nth(1).as_deref() {
        None => Ok(Command::Serve),
        Some("migrate") => Ok(Command::Migrate),
        Some("await-schema") => Ok(Command::AwaitSchema),
        Some(other) => Err(CommandError::Unknown(other.to_string())),
    }
}

/// Applies `steps` to the service's schema (`RECOBRO_DB_SCHEMA`, default the service's name) as
/// the owner role: `RECOBRO_DATABASE_USER`, else the user `DATABASE_URL` names, else
/// `<service>_owner`.
pub async fn migrate(env: &impl Env, service: &str, steps: &[Step]) -> Result<(), CommandError> {
    let database = DatabaseSettings::from_env(env, &format!("{service}_owner"))?;
    let schema = env.or("RECOBRO_DB_SCHEMA", service);
    db::migrate(&database, &schema, steps).await?;
    tracing::info!(%schema, role = %database.user, "schema migrated");
    Ok(())
}

/// Waits until the service's schema is at this binary's last migration, connecting as the
/// service's runtime role (the one it serves with): for a pod that starts while the migration
/// Job still runs, or before it ran. Gives up after `RECOBRO_AWAIT_SCHEMA_SECONDS` (default 600),
/// saying what it last saw.
pub async fn await_schema(env: &impl Env, service: &str, steps: &[Step]) -> Result<(), CommandError> {
    let database = DatabaseSettings::from_env(env, service)?;
    let schema = env.or("RECOBRO_DB_SCHEMA", service);
    let patience = std::time::Duration::from_secs(env.parse_or("RECOBRO_AWAIT_SCHEMA_SECONDS", 600)?);
    db::await_schema(&database, &schema, steps, patience).await?;
    tracing::info!(%schema, role = %database.user, "schema is current");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter().map(|s| s.to_string()).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn no_argument_serves_and_migrate_migrates() {
        assert_eq!(
            command(args(&["recobro-accounts"])).expect("serve"),
            Command::Serve
        );
        assert_eq!(
            command(args(&["recobro-accounts", "migrate"])).expect("migrate"),
            Command::Migrate
        );
        assert_eq!(
            command(args(&["recobro-accounts", "await-schema"])).expect("await-schema"),
            Command::AwaitSchema
        );
        let err = command(args(&["recobro-accounts", "migrat"])).expect_err("typo");
        assert!(err.to_string().contains("migrat"), "{err}");
    }
}
