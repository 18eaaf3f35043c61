//! The stack behind the services is closed too: the broker binds an ERP connector to its
//! tenant's topic, every client of Kafka, PostgreSQL and Redis needs TLS and its own password,
//! and each service's PostgreSQL role and Redis user reach only what is its own.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use recobro_common::kafka::{self, KafkaSettings};
use recobro_common::secret::Secret;
use recobro_proto::v1 as pb;

use crate::helpers::{Stack, TEST_CONNECTOR, encode, kafka_admin, secrets_of};
use crate::{HOP, invoice_event};

fn password_of(principal: &str, file: &str) -> Secret {
    Secret::read(&secrets_of(principal).join(file)).expect("password file (deploy/local/up.sh)")
}

/// The broker as the tests' ERP connector, which may write only the stack tenant's topic.
fn connector() -> KafkaSettings {
    KafkaSettings {
        username: TEST_CONNECTOR.into(),
        password: password_of(TEST_CONNECTOR, "kafka-password"),
        ..kafka_admin()
    }
}

/// Whether a client with `config` gets the broker's metadata within a few seconds.
async fn kafka_answers(config: ClientConfig) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
        consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .expect("join")
}

async fn publish_as(
    settings: &KafkaSettings,
    topic: &str,
    event: &pb::InvoiceEvent,
) -> Result<(), RDKafkaErrorCode> {
    let producer = kafka::producer(settings).expect("producer");
    kafka::publish(&producer, topic, "D-1", &encode(event), Default::default())
        .await
        .map_err(|err| err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_writes_only_its_tenants_topic_and_only_its_tenants_events() {
    let stack = Stack::start().await;
    let dead_letters = stack.follow(&stack.topics.dead_letter);
    let account_events = stack.follow(&stack.topics.account_events);
    // Another tenant, fully onboarded, with a topic of its own.
    let other = format!("other-{}", stack.id);
    let other_topic = stack.topics.erp_invoices_of(&other);
    recobro_testkit::create_topics(&kafka_admin(), &[(&other_topic, 1)])
        .await
        .expect("topic");

    // 1. The broker refuses the connector the other tenant's topic.
    let mut event = invoice_event(&stack, "evt-other", pb::InvoiceEventKind::Issued, 1, 5);
    event.tenant_id = other.clone();
    assert_eq!(
        publish_as(&connector(), &other_topic, &event).await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    // ... and every topic that is not its tenant's ERP topic.
    assert_eq!(
        publish_as(&connector(), &stack.topics.reminders_due, &event).await,
        Err(RDKafkaErrorCode::TopicAuthorizationFailed)
    );

    // 2. On its own topic, an event naming another tenant is parked with the reason.
    publish_as(&connector(), &stack.erp_topic, &event)
        .await
        .expect("its own topic");
    let parked = dead_letters.find(HOP, |_| true).await;
    let reason = parked.header("recobro-dlq-reason").expect("reason");
    assert!(
        reason.contains(&other) && reason.contains("not the tenant of its topic"),
        "{reason}"
    );

    // 3. Its own tenant's event on its own topic goes through.
    let good = invoice_event(&stack, "evt-good", pb::InvoiceEventKind::Issued, 1, 5);
    publish_as(&connector(), &stack.erp_topic, &good)
        .await
        .expect("its own topic");
    account_events.find(HOP, crate::is_invoice_change).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_a_tenant_that_was_never_created_are_parked_not_created() {
    let stack = Stack::start().await;
    let dead_letters = stack.follow(&stack.topics.dead_letter);
    // A topic and a connector grant, but no UpsertTenant: the ledger does not know it.
    let ghost = format!("ghost-{}", stack.id);
    let ghost_topic = stack.topics.erp_invoices_of(&ghost);
    recobro_testkit::create_topics(&kafka_admin(), &[(&ghost_topic, 1)])
        .await
        .expect("topic");
    recobro_testkit::grant(
        &kafka_admin(),
        &recobro_testkit::acl::connector(&stack.topics, TEST_CONNECTOR, &ghost),
    )
    .await
    .expect("grant");
    let mut event = invoice_event(&stack, "evt-ghost", pb::InvoiceEventKind::Issued, 1, 5);
    event.tenant_id = ghost.clone();
    publish_as(&connector(), &ghost_topic, &event)
        .await
        .expect("granted topic");

    // Found by pattern within kafka::PATTERN_REFRESH, then parked.
    let parked = dead_letters.find(HOP, |_| true).await;
    let reason = parked.header("recobro-dlq-reason").expect("reason");
    assert!(
        reason.contains(&ghost) && reason.contains("does not exist"),
        "{reason}"
    );
    assert_eq!(parked.header("recobro-dlq-topic"), Some(ghost_topic.as_str()));
    let pool = stack.database_as(None).await.expect("database");
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts.tenants WHERE tenant_id = $1")
        .bind(&ghost)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(created, 0, "an event never creates a tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_refuses_plaintext_and_wrong_passwords() {
    let admin = kafka_admin();
    kafka_answers(admin.client_config())
        .await
        .expect("the right credentials work");

    let mut plaintext = ClientConfig::new();
    plaintext
        .set("bootstrap.servers", &admin.brokers)
        .set("security.protocol", "plaintext");
    assert!(
        kafka_answers(plaintext).await.is_err(),
        "plaintext must not connect"
    );

    let wrong = KafkaSettings {
        password: Secret::new("not-the-password"),
        ..admin.clone()
    };
    let err = kafka_answers(wrong.client_config())
        .await
        .expect_err("a wrong password must not connect");
    assert!(!err.contains("not-the-password"), "{err}");

    // TLS without the broker's CA: the certificate is not trusted.
    let untrusted = KafkaSettings { ca: None, ..admin };
    assert!(kafka_answers(untrusted.client_config()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channels_role_reads_and_writes_rows_of_its_schema_and_nothing_else() {
    let stack = Stack::start().await;
    let channels = stack
        .database_as(Some(("channels", "channels")))
        .await
        .expect("channels logs in");
    sqlx::query("SELECT count(*) FROM channels.deliveries")
        .execute(&channels)
        .await
        .expect("its own rows");
    for (statement, what) in [
        ("CREATE TABLE channels.mine (id int)", "CREATE in its schema"),
        ("CREATE TABLE public.mine (id int)", "CREATE in public"),
        ("CREATE TEMP TABLE mine (id int)", "a temporary table"),
        ("ALTER TABLE channels.deliveries ADD COLUMN x int", "ALTER"),
        ("DROP TABLE channels.deliveries", "DROP"),
        ("TRUNCATE channels.deliveries", "TRUNCATE"),
        (
            "SELECT count(*) FROM accounts.debtors",
            "reading accounts' schema",
        ),
        (
            "SELECT count(*) FROM scheduling.reminders",
            "reading scheduling's schema",
        ),
        ("CREATE SCHEMA mine", "CREATE SCHEMA"),
    ] {
        let err = sqlx::query(statement).execute(&channels).await.expect_err(what);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.to_string());
        // 42501 insufficient_privilege; 42501 is also "must be owner of table".
        assert_eq!(code.as_deref(), Some("42501"), "{what}: {err}");
    }

    // Plaintext and a wrong password are refused.
    let settings = recobro_common::db::DatabaseSettings::from_env(
        &recobro_testkit::env_with(&[("DATABASE_URL", stack.database_url.clone())]),
        "recobro",
    )
    .expect("settings");
    let plaintext = settings
        .connect_options()
        .expect("options")
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    assert!(sqlx::PgPool::connect_with(plaintext).await.is_err(), "plaintext");
    let wrong = settings
        .connect_options()
        .expect("options")
        .password("not-the-password");
    let err = sqlx::PgPool::connect_with(wrong)
        .await
        .expect_err("wrong password");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channels_redis_user_touches_only_channels_keys_and_plaintext_is_refused() {
    let admin = recobro_testkit::redis_settings().expect("Redis settings");
    let channels = recobro_common::redis_client::RedisSettings {
        username: "channels".into(),
        password: password_of("channels", "redis-password"),
        ..admin.clone()
    };
    let mut redis = channels
        .client()
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("channels logs in over TLS");
    let own = format!("channels:trust-{}", uuid::Uuid::new_v4().simple());
    let _: () = redis::cmd("SET")
        .arg(&own)
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut redis)
        .await
        .expect("its own key");
    for command in [
        redis::cmd("GET").arg("payments:anything").clone(),
        redis::cmd("SET").arg("accounts:x").arg("1").clone(),
        redis::cmd("DEL").arg("recobro:x").clone(),
        redis::cmd("FLUSHALL").clone(),
        redis::cmd("CONFIG").arg("GET").arg("*").clone(),
        redis::cmd("KEYS").arg("*").clone(),
    ] {
        let err = command
            .query_async::<redis::Value>(&mut redis)
            .await
            .expect_err("refused");
        assert!(err.to_string().to_uppercase().contains("NOPERM"), "{err}");
    }

    let plaintext = redis::Client::open(admin.url.replace("rediss://", "redis://")).expect("client");
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        let mut connection = plaintext.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut connection).await
    })
    .await;
    assert!(!matches!(refused, Ok(Ok(_))), "plaintext must not work");

    let wrong = recobro_common::redis_client::RedisSettings {
        password: Secret::new("not-the-password"),
        ..channels
    };
    let err = wrong
        .client()
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect_err("wrong password");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}
