//! Typed configuration read from the environment once, at start.

use std::net::SocketAddr;

use crate::db::DatabaseSettings;
use crate::kafka::KafkaSettings;

pub use crate::env::{ConfigError, Env, ProcessEnv};

/// Names of the Kafka topics, with an optional prefix so tests and tenants of a shared
/// cluster can isolate themselves.
#[derive(Debug, Clone)]
pub struct Topics {
    /// What every name below starts with; it doubles as the consumer groups' prefix, so
    /// isolated environments never share a group.
    pub prefix: String,
    /// What every tenant's ERP topic starts with: `erp.invoices.v1.<tenant id>`. One topic per
    /// tenant lets the broker bind a connector to its tenant (a literal ACL per topic).
    pub erp_invoices_prefix: String,
    pub account_events: String,
    pub reminders_due: String,
    pub deliveries: String,
    pub responses: String,
    pub escalations: String,
    pub payments: String,
    pub dead_letter: String,
}

impl Topics {
    pub fn with_prefix(prefix: &str) -> Topics {
        Topics {
            prefix: prefix.to_string(),
            erp_invoices_prefix: format!("{prefix}erp.invoices.v1."),
            account_events: format!("{prefix}accounts.events.v1"),
            reminders_due: format!("{prefix}reminders.due.v1"),
            deliveries: format!("{prefix}channel.deliveries.v1"),
            responses: format!("{prefix}channel.responses.v1"),
            escalations: format!("{prefix}collections.escalations.v1"),
            payments: format!("{prefix}payments.events.v1"),
            dead_letter: format!("{prefix}recobro.deadletter.v1"),
        }
    }

    /// The consumer group of a service ("accounts", "scheduling", "channels").
    pub fn consumer_group(&self, service: &str) -> String {
        format!("{}recobro-{service}", self.prefix)
    }

    /// The ERP topic of `tenant_id`.
    pub fn erp_invoices_of(&self, tenant_id: &str) -> String {
        format!("{}{tenant_id}", self.erp_invoices_prefix)
    }

    /// The tenant whose ERP topic `topic` is, if it is one.
    pub fn tenant_of_erp_topic<'t>(&self, topic: &'t str) -> Option<&'t str> {
        topic
            .strip_prefix(&self.erp_invoices_prefix)
            .filter(|tenant| !tenant.is_empty())
    }

    /// Every tenant's ERP topic, as a librdkafka subscription pattern.
    pub fn erp_invoices_pattern(&self) -> String {
        let mut pattern = String::from("^");
        for c in self.erp_invoices_prefix.chars() {
            if r".^$*+?()[]{}|\".contains(c) {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(".+$");
        pattern
    }

    /// The topics that exist once per environment (tenants' ERP topics are made per tenant).
    pub fn all(&self) -> [&str; 7] {
        [
            &self.account_events,
            &self.reminders_due,
            &self.deliveries,
            &self.responses,
            &self.escalations,
            &self.payments,
            &self.dead_letter,
        ]
    }
}

/// Settings every service has.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: &'static str,
    pub grpc_addr: SocketAddr,
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub database: DatabaseSettings,
    /// PostgreSQL schema this service owns; lets tests and services share one database.
    pub database_schema: String,
    /// How long shutdown may take to finish in-flight work before the process exits anyway.
    pub drain_seconds: u64,
    /// A folder of tenant rule packs (`*.toml`), each only ever stricter than the law's.
    pub tenant_rules_dir: Option<std::path::PathBuf>,
    /// How long a gRPC call may take and how many one connection may have at once.
    pub grpc_limits: crate::grpc::Limits,
}

impl Config {
    pub fn from_env(
        env: &impl Env,
        service: &'static str,
        default_grpc_port: u16,
    ) -> Result<Config, ConfigError> {
        let grpc_addr = env.parse_or(
            "RECOBRO_GRPC_ADDR",
            SocketAddr::from(([0, 0, 0, 0], default_grpc_port)),
        )?;
        Ok(Config {
            service,
            grpc_addr,
            kafka: KafkaSettings::from_env(env, service)?,
            topics: Topics::with_prefix(&env.or("RECOBRO_TOPIC_PREFIX", "")),
            database: DatabaseSettings::from_env(env, service)?,
            database_schema: env.or("RECOBRO_DB_SCHEMA", service),
            drain_seconds: env.parse_or("RECOBRO_DRAIN_SECONDS", 20)?,
            tenant_rules_dir: env
                .get("RECOBRO_TENANT_RULES_DIR")
                .filter(|d| !d.trim().is_empty())
                .map(Into::into),
            grpc_limits: crate::grpc::Limits {
                deadline: std::time::Duration::from_secs(env.parse_or("RECOBRO_GRPC_DEADLINE_SECONDS", 60)?),
                calls_per_connection: env.parse_or("RECOBRO_GRPC_CALLS_PER_CONNECTION", 64)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// `pairs`, with credential files in a fresh secrets directory.
    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let dir = std::env::temp_dir().join(format!("recobro-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        for file in ["kafka-password", "postgres-password"] {
            std::fs::write(dir.join(file), "pw").expect("write");
        }
        let mut env = crate::env::map(pairs);
        env.insert("RECOBRO_SECRETS_DIR".into(), dir.display().to_string());
        env
    }

    #[test]
    fn defaults_point_at_the_local_stack() {
        let config = Config::from_env(&env(&[]), "accounts", 50051).expect("defaults are valid");
        assert_eq!(config.grpc_addr.port(), 50051);
        assert_eq!(config.database_schema, "accounts");
        assert_eq!(config.topics.erp_invoices_of("acme"), "erp.invoices.v1.acme");
        // Each service is its own principal and role by default.
        assert_eq!(config.kafka.username, "accounts");
        assert_eq!(config.database.user, "accounts");
    }

    #[test]
    fn a_missing_credential_file_stops_the_service() {
        let mut env = env(&[]);
        env.insert("RECOBRO_SECRETS_DIR".into(), "/nonexistent/recobro".into());
        let err = Config::from_env(&env, "channels", 1).expect_err("no credentials");
        assert!(err.to_string().contains("RECOBRO_KAFKA_PASSWORD_FILE"), "{err}");
    }

    #[test]
    fn a_bad_address_names_the_variable() {
        let err = Config::from_env(&env(&[("RECOBRO_GRPC_ADDR", "nowhere")]), "accounts", 1)
            .expect_err("an address without a port is invalid");
        assert!(err.to_string().contains("RECOBRO_GRPC_ADDR"), "{err}");
    }

    #[test]
    fn the_prefix_isolates_every_topic() {
        let topics = Topics::with_prefix("t1.");
        assert!(topics.all().iter().all(|t| t.starts_with("t1.")));
        assert_eq!(topics.erp_invoices_of("acme"), "t1.erp.invoices.v1.acme");
        assert_eq!(topics.consumer_group("channels"), "t1.recobro-channels");
        assert_eq!(
            Topics::with_prefix("").consumer_group("accounts"),
            "recobro-accounts"
        );
    }

    #[test]
    fn the_tenant_comes_from_its_erp_topic() {
        let topics = Topics::with_prefix("e2e-1.");
        assert_eq!(
            topics.tenant_of_erp_topic("e2e-1.erp.invoices.v1.acme"),
            Some("acme")
        );
        assert_eq!(topics.tenant_of_erp_topic("e2e-1.erp.invoices.v1."), None);
        assert_eq!(topics.tenant_of_erp_topic("erp.invoices.v1.acme"), None);
        assert_eq!(topics.erp_invoices_pattern(), r"^e2e-1\.erp\.invoices\.v1\..+$");
    }
}
