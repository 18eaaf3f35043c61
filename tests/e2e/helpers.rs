//! Starts the real binaries against real Kafka, Redis and PostgreSQL, each test in its own
//! database, topic prefix, consumer groups and Redis key prefix.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use recobro_common::config::Topics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A gRPC channel over TLS with a bearer token: how every client reaches Recobro.
pub type Grpc = recobro_common::identity::client::Authorized;

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The broker as the local stack's `admin` principal (deploy/local/env.sh): it makes each
/// stack's topics and ACLs, and plays the tests' side of Kafka.
pub fn kafka_admin() -> recobro_common::kafka::KafkaSettings {
    recobro_testkit::kafka().expect("Kafka settings (source deploy/local/env.sh)")
}

pub fn redis_url() -> String {
    env_or("REDIS_URL", "rediss://127.0.0.1:16379")
}

/// Where the local stack keeps a principal's credential files (`deploy/local/up.sh`).
pub fn secrets_of(principal: &str) -> PathBuf {
    PathBuf::from(env_or("RECOBRO_STACK_SECRETS", ".stack/secrets")).join(principal)
}

/// The ERP connector principal the tests publish as (made by `deploy/local/up.sh`).
pub const TEST_CONNECTOR: &str = "erp-test";

/// A port nothing listens on, never handed out twice in this run: the OS may offer a port
/// again once its probe listener closes, before the service that was given it binds it.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The folder cargo put the binaries in: `target/debug`, next to this test's `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .to_path_buf()
}

/// A binary of the workspace, built next to the tests.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (`make test` does)",
        path.display()
    );
    path
}

/// Where one replica of a service listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub grpc: u16,
    pub health: u16,
    pub http: u16,
    pub metrics: u16,
}

pub struct Service {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
    /// Where this run of the service starts in its (appended) log.
    log_start: u64,
}

pub struct Stack {
    pub id: String,
    /// The JWKS file the services read, and the key that signs this stack's tokens.
    pub jwks: PathBuf,
    pub signing: crate::pki::SigningKey,
    pub tenant: String,
    /// The test debtor's time zone: midday there now.
    pub debtor_zone: String,
    pub topics: Topics,
    /// This stack's tenant's ERP topic, which only [`TEST_CONNECTOR`] may write.
    pub erp_topic: String,
    pub redis_prefix: String,
    pub database_url: String,
    pub accounts_port: u16,
    pub scheduling_port: u16,
    pub channels_port: u16,
    /// Plaintext health of accounts, scheduling and channels.
    pub health_ports: [u16; 3],
    /// Plaintext `GET /metrics` of accounts, scheduling and channels.
    pub metrics_ports: [u16; 3],
    pub http_port: u16,
    pub producer: FutureProducer,
    pub services: Vec<Service>,
    /// Settings every service of this stack gets (the OTLP test's collector).
    pub service_env: Vec<(&'static str, String)>,
}

/// Where the debtor is: a time zone whose local hour is `local_hour` right now, so tests do not
/// depend on the hour or weekday they run at. IANA's `Etc/GMT-N` is UTC+N.
pub fn zone_at_local_hour(local_hour: i64) -> String {
    recobro_common::time::zone_at_local_hour(chrono::Utc::now(), local_hour)
}

/// A TCP relay to Redis that a test can cut and restore, to play an outage (TLS passes through).
pub struct RedisRelay {
    pub port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl RedisRelay {
    pub async fn start() -> RedisRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let target = redis_url()
            .trim_start_matches("rediss://")
            .trim_end_matches('/')
            .to_string();
        let (up, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut watch = watch.clone();
                if !*watch.borrow() {
                    continue; // dropped: the client sees the connection close at once
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        RedisRelay { port, up }
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(None).await
    }

    /// Deletes every Redis key of this stack's channels: what a Redis restarted without
    /// persistence (or a failover to an empty replica) leaves behind, without disturbing the
    /// other tests sharing the local Redis. Returns how many keys were deleted.
    pub async fn forget_redis(&self) -> usize {
        let mut redis = recobro_testkit::redis().await.expect("Redis");
        let pattern = format!("{}:*", self.redis_prefix);
        let mut cursor = 0u64;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut redis)
                .await
                .expect("SCAN");
            for key in keys {
                let removed: usize = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .expect("DEL");
                deleted += removed;
            }
            if next == 0 {
                return deleted;
            }
            cursor = next;
        }
    }

    /// `channels_redis`: a Redis URL for channels only (e.g. through a [`RedisRelay`]).
    pub async fn start_with(channels_redis: Option<String>) -> Stack {
        Stack::start_configured(channels_redis, Vec::new()).await
    }

    /// With extra settings for channels (provider credentials and stand-in addresses).
    pub async fn start_configured(
        channels_redis: Option<String>,
        channels_env: Vec<(&'static str, String)>,
    ) -> Stack {
        Stack::start_with_service_env(channels_redis, channels_env, Vec::new()).await
    }

    /// The same, with settings for every service.
    pub async fn start_with_service_env(
        channels_redis: Option<String>,
        channels_env: Vec<(&'static str, String)>,
        service_env: Vec<(&'static str, String)>,
    ) -> Stack {
        Stack::start_full(channels_redis, move |_| channels_env, service_env).await
    }

    /// With settings for channels that name the stack's tenant (given to `channels_env`).
    pub async fn start_configured_with(
        channels_env: impl FnOnce(&str) -> Vec<(&'static str, String)>,
    ) -> Stack {
        Stack::start_full(None, channels_env, Vec::new()).await
    }

    async fn start_full(
        channels_redis: Option<String>,
        channels_env: impl FnOnce(&str) -> Vec<(&'static str, String)>,
        service_env: Vec<(&'static str, String)>,
    ) -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let topics = Topics::with_prefix(&format!("e2e{id}."));
        let tenant = format!("tenant-{id}");
        let channels_env = channels_env(&tenant);
        let erp_topic = topics.erp_invoices_of(&tenant);
        create_topics(&topics, &erp_topic).await;
        // What production grants, for this stack's prefix: each service its own topics and
        // groups, the connector its tenant's topic.
        let mut acls = recobro_testkit::acl::services(&topics);
        acls.extend(recobro_testkit::acl::connector(&topics, TEST_CONNECTOR, &tenant));
        recobro_testkit::grant(&kafka_admin(), &acls)
            .await
            .expect("grant the stack's ACLs");
        let database_url = create_database(&id).await;
        let signing = crate::pki::SigningKey::generate();
        let jwks = crate::pki::pki().dir.join(format!("jwks-{id}.json"));
        crate::pki::write_jwks(&jwks, &[&signing]);
        let mut stack = Stack {
            jwks,
            signing,
            tenant,
            erp_topic,
            debtor_zone: zone_at_local_hour(12),
            redis_prefix: format!("channels:e2e{id}"),
            id,
            topics,
            database_url,
            accounts_port: free_port(),
            scheduling_port: free_port(),
            channels_port: free_port(),
            health_ports: [free_port(), free_port(), free_port()],
            metrics_ports: [free_port(), free_port(), free_port()],
            http_port: free_port(),
            producer: recobro_common::kafka::producer(&kafka_admin()).expect("producer"),
            services: Vec::new(),
            service_env,
        };
        for name in ["accounts", "scheduling", "channels"] {
            let (redis, extra) = if name == "channels" {
                (channels_redis.clone(), channels_env.clone())
            } else {
                (None, Vec::new())
            };
            let service = stack.spawn(name, redis.unwrap_or_else(redis_url), extra);
            stack.services.push(service);
        }
        for service in &mut stack.services {
            service.wait_until_serving().await;
        }
        // Events never create tenants: the stack's tenant exists before its ERP publishes.
        let mut accounts = recobro_proto::v1::accounts_service_client::AccountsServiceClient::new(
            stack.grpc(stack.accounts_port).await,
        );
        accounts
            .upsert_tenant(recobro_proto::v1::UpsertTenantRequest {
                tenant: Some(recobro_proto::v1::Tenant {
                    tenant_id: stack.tenant.clone(),
                    name: "Acme".into(),
                    role: recobro_proto::v1::TenantRole::Creditor as i32,
                }),
            })
            .await
            .expect("create the stack's tenant");
        stack
    }

    fn spawn(&self, name: &'static str, redis: String, extra: Vec<(&'static str, String)>) -> Service {
        let index = match name {
            "accounts" => 0,
            "scheduling" => 1,
            _ => 2,
        };
        let grpc_port = [self.accounts_port, self.scheduling_port, self.channels_port][index];
        let ports = Ports {
            grpc: grpc_port,
            health: self.health_ports[index],
            http: self.http_port,
            metrics: self.metrics_ports[index],
        };
        self.spawn_on(name, name, ports, redis, extra)
    }

    /// Another replica of `name` in the same consumer groups, on ports of its own, logging to
    /// `<stack id>-<label>.log`.
    #[allow(dead_code)] // the chaos test's (tests/chaos includes this file)
    pub fn spawn_replica(
        &self,
        name: &'static str,
        label: &str,
        extra: Vec<(&'static str, String)>,
    ) -> (Service, Ports) {
        let ports = Ports {
            grpc: free_port(),
            health: free_port(),
            http: free_port(),
            metrics: free_port(),
        };
        (self.spawn_on(name, label, ports, redis_url(), extra), ports)
    }

    fn spawn_on(
        &self,
        name: &'static str,
        label: &str,
        ports: Ports,
        redis: String,
        extra: Vec<(&'static str, String)>,
    ) -> Service {
        let binary = bin_dir().join(format!("recobro-{name}"));
        assert!(
            binary.exists(),
            "{} is missing: run `cargo build --workspace --bins` first (`make test` does)",
            binary.display()
        );
        let logs = bin_dir().join("e2e-logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        let log = logs.join(format!("{}-{label}.log", self.id));
        // Appended: a restarted service keeps its earlier log.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let log_start = out.metadata().expect("log file").len();
        let Ports {
            grpc: grpc_port,
            health: health_port,
            http: http_port,
            metrics: metrics_port,
        } = ports;
        let pki = crate::pki::pki();
        migrate(&binary, name, &self.database_url, &out);
        let child = Command::new(binary)
            // TLS with optional client certificates, and tokens from this stack's issuer.
            .env("RECOBRO_TLS_CERT", &pki.server_cert)
            .env("RECOBRO_TLS_KEY", &pki.server_key)
            .env("RECOBRO_TLS_CLIENT_CA", &pki.ca)
            .env("RECOBRO_JWKS", &self.jwks)
            .env("RECOBRO_TOKEN_ISSUER", crate::pki::ISSUER)
            .env("RECOBRO_TOKEN_AUDIENCE", crate::pki::AUDIENCE)
            .env("RECOBRO_HEALTH_ADDR", format!("127.0.0.1:{health_port}"))
            .env("RECOBRO_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            // Consumer lag reported every second, so a test sees it move.
            .env("RECOBRO_KAFKA_STATS_SECONDS", "1")
            // Each service as its own Kafka principal, PostgreSQL role and Redis user.
            .env("RECOBRO_SECRETS_DIR", secrets_of(name))
            .env("RECOBRO_KAFKA_USERNAME", name)
            .env("RECOBRO_DATABASE_USER", name)
            .env("RECOBRO_REDIS_USERNAME", name)
            .env("REDIS_URL", redis)
            .env("DATABASE_URL", &self.database_url)
            .env("RECOBRO_TOPIC_PREFIX", format!("e2e{}.", self.id))
            .env("RECOBRO_REDIS_PREFIX", &self.redis_prefix)
            .env("RECOBRO_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("RECOBRO_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            // Tests must not depend on the weekday or hour they run at.
            .env("RECOBRO_CONTACT_DAYS", "mon-sun")
            .env("RECOBRO_CONTACT_HOURS", "00:00-24:00")
            // Promises are judged every second, and fall due on their date (no grace), in tests.
            .env("RECOBRO_PROMISE_CHECK_SECONDS", "1")
            .env("RECOBRO_PROMISE_GRACE_DAYS", "0")
            // A statement waits two seconds, not thirty, for the rest of a debtor's invoices.
            .env("RECOBRO_STATEMENT_GATHER_SECONDS", "2")
            .env("RUST_LOG", "info")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env(
                "RECOBRO_PUBLIC_URL",
                format!("http://127.0.0.1:{}", self.http_port),
            )
            // Every channel on the sandbox unless a test chooses a provider (in `extra`).
            .env("RECOBRO_EMAIL_PROVIDER", "sandbox")
            .env("RECOBRO_SMS_PROVIDER", "sandbox")
            .env("RECOBRO_WHATSAPP_PROVIDER", "sandbox")
            .envs(self.service_env.clone())
            .envs(extra)
            .stdout(Stdio::from(out.try_clone().expect("log file")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start the service");
        Service {
            name,
            child,
            log,
            log_start,
        }
    }

    /// Starts `name` again (after it died), with the usual settings plus `extra`.
    pub async fn restart(&mut self, name: &'static str, extra: Vec<(&'static str, String)>) {
        let mut service = self.spawn(name, redis_url(), extra);
        service.wait_until_serving().await;
        self.services.retain(|s| s.name != name);
        self.services.push(service);
    }

    pub fn service(&mut self, name: &str) -> &mut Service {
        self.services
            .iter_mut()
            .find(|s| s.name == name)
            .expect("known service")
    }

    /// A TLS channel to `port` with a token for this stack's tenant and every scope, presenting
    /// the test client's certificate.
    pub async fn grpc(&self, port: u16) -> Grpc {
        let token = self.token(crate::pki::claims(Some(&self.tenant), crate::pki::ALL_SCOPES));
        crate::pki::channel(port, crate::pki::ClientCert::Client, Some(&token)).await
    }

    /// This stack's database as `role`, with the password in `principal`'s folder; `None` logs
    /// in as the stack's administrator.
    pub async fn database_as(&self, login: Option<(&str, &str)>) -> Result<sqlx::PgPool, sqlx::Error> {
        let env = recobro_testkit::env_with(&[("DATABASE_URL", self.database_url.clone())]);
        let mut settings =
            recobro_common::db::DatabaseSettings::from_env(&env, "recobro").expect("database settings");
        if let Some((role, principal)) = login {
            settings.user = role.to_string();
            settings.password =
                recobro_common::secret::Secret::read(&secrets_of(principal).join("postgres-password"))
                    .expect("password file");
        }
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(settings.connect_options()?)
            .await
    }

    /// A token signed with this stack's key.
    pub fn token(&self, claims: recobro_token::Claims) -> String {
        self.signing.signer().mint(&claims).expect("mint a token")
    }

    pub async fn publish(&self, topic: &str, key: &str, payload: &[u8], traceparent: Option<&str>) {
        let mut headers = OwnedHeaders::new();
        if let Some(traceparent) = traceparent {
            headers = headers.insert(Header {
                key: "traceparent",
                value: Some(traceparent),
            });
        }
        let record = FutureRecord::to(topic).key(key).payload(payload).headers(headers);
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("publish");
    }

    /// A consumer of `topic` from its beginning, in a group of its own.
    pub fn follow(&self, topic: &str) -> Follower {
        let consumer: StreamConsumer = kafka_admin()
            .client_config()
            .set("group.id", format!("e2e-follower-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        Follower { consumer }
    }

    /// Appends the services' logs to the test output, for reading a failure.
    pub fn dump_logs(&self) {
        for service in &self.services {
            let text = std::fs::read_to_string(&service.log).unwrap_or_default();
            eprintln!(
                "----- {} ({}) -----\n{}",
                service.name,
                service.log.display(),
                text
            );
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for service in &mut self.services {
            let _ = service.child.kill();
            let _ = service.child.wait();
        }
    }
}

pub struct Received {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trace id of the W3C `traceparent` header.
    pub fn trace_id(&self) -> Option<&str> {
        self.header("traceparent").and_then(|tp| tp.split('-').nth(1))
    }

    pub fn decode<M: prost::Message + Default>(&self) -> M {
        M::decode(self.payload.as_slice()).expect("a message of the expected type")
    }
}

pub struct Follower {
    consumer: StreamConsumer,
}

impl Follower {
    /// The next message, or `None` after `wait` with nothing.
    pub async fn next(&self, wait: Duration) -> Option<Received> {
        let message = tokio::time::timeout(wait, receive(&self.consumer)).await.ok()?;
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Received {
            key: String::from_utf8_lossy(message.key().unwrap_or_default()).to_string(),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        })
    }

    /// The first message for which `accept` is true, within `wait`.
    pub async fn find(&self, wait: Duration, accept: impl Fn(&Received) -> bool) -> Received {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(received) if accept(&received) => return received,
                Some(_) => continue,
                None => panic!("no matching message within {wait:?}"),
            }
        }
    }

    /// Every message that arrives until the topic has been quiet for `quiet`.
    pub async fn drain(&self, quiet: Duration) -> Vec<Received> {
        let mut all = Vec::new();
        while let Some(received) = self.next(quiet).await {
            all.push(received);
        }
        all
    }
}

async fn create_topics(topics: &Topics, erp_topic: &str) {
    let mut all: Vec<(&str, i32)> = topics.all().iter().map(|name| (*name, 3)).collect();
    all.push((erp_topic, 3));
    recobro_testkit::create_topics(&kafka_admin(), &all)
        .await
        .expect("create topics");
}

/// `recobro-<name> migrate`, as the schema's owner role: what a Kubernetes Job does before the
/// service starts (the service's own role may not change the schema).
pub(crate) fn migrate(binary: &std::path::Path, name: &str, database_url: &str, log: &std::fs::File) {
    let status = Command::new(binary)
        .arg("migrate")
        .env("RECOBRO_SECRETS_DIR", secrets_of(&format!("{name}-owner")))
        .env("RECOBRO_DATABASE_USER", format!("{name}_owner"))
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log.try_clone().expect("log file")))
        .status()
        .expect("run the migrate command");
    assert!(status.success(), "recobro-{name} migrate failed: {status}");
}

/// A database of this stack's own, provisioned like production's: a schema per service owned
/// by its `_owner` role, its runtime role limited to rows (deploy/postgres/schemas.sql).
pub(crate) async fn create_database(id: &str) -> String {
    let admin_settings =
        recobro_common::db::DatabaseSettings::from_env(&recobro_common::config::ProcessEnv, "recobro")
            .expect("PostgreSQL settings (source deploy/local/env.sh)");
    let connect = |settings: &recobro_common::db::DatabaseSettings| {
        let options = settings.connect_options().expect("PostgreSQL options");
        async move {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .expect("connect PostgreSQL as the administrator (is the local stack up?)")
        }
    };
    let admin = connect(&admin_settings).await;
    let name = format!("e2e_{id}");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let (base, query) = match admin_settings.url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_settings.url.as_str(), String::new()),
    };
    let (base, _) = base.rsplit_once('/').expect("database URL ends with /dbname");
    let url = format!("{base}/{name}{query}");
    let in_new = recobro_common::db::DatabaseSettings {
        url: url.clone(),
        ..admin_settings
    };
    let admin = connect(&in_new).await;
    sqlx::raw_sql(include_str!("../../deploy/postgres/schemas.sql"))
        .execute(&admin)
        .await
        .expect("provision the schemas");
    admin.close().await;
    url
}

impl Service {
    /// Waits for this process's own "serving" line. Probing the port is not enough: a connect
    /// to a free port in the ephemeral range can connect to itself, and a signal sent before the
    /// service installs its handlers kills it outright.
    pub async fn wait_until_serving(&mut self) {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("{} exited with {status} while starting", self.name);
            }
            let log = std::fs::read(&self.log).unwrap_or_default();
            let run = log.get(self.log_start as usize..).unwrap_or_default();
            if String::from_utf8_lossy(run).contains(" serving") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not say it serves within 30 s", self.name);
    }
}

/// A minimal HTTP/1.1 POST of a JSON body; returns (status, body).
pub async fn post_json(port: u16, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect HTTP");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn encode<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// The next message; errors the consumer reports while it settles (a topic created a moment
/// ago is not in its metadata yet) are passed over, not fatal.
pub async fn receive(consumer: &StreamConsumer) -> rdkafka::message::BorrowedMessage<'_> {
    loop {
        match consumer.recv().await {
            Ok(message) => return message,
            Err(err) => {
                eprintln!("kafka receive: {err}, waiting");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
