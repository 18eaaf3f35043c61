//! `await-schema`, the init step of a pod whose schema a migration Job migrates
//! (k8s/components/migration-job): it waits, as the service's runtime role, until the schema is
//! at the binary's last migration, and gives up after its patience saying what to run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{bin, create_database, migrate, secrets_of};

fn await_schema(database_url: &str, patience_seconds: u32) -> Command {
    let mut command = Command::new(bin("recobro-scheduling"));
    command
        .arg("await-schema")
        .env("RECOBRO_SECRETS_DIR", secrets_of("scheduling"))
        .env("RECOBRO_DATABASE_USER", "scheduling")
        .env("DATABASE_URL", database_url)
        .env("RECOBRO_AWAIT_SCHEMA_SECONDS", patience_seconds.to_string())
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_waits_for_the_migration_job_then_starts() {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let database_url = create_database(&format!("mig{id}")).await;

    // Nobody migrates: it gives up after its patience, and says what to run.
    let output = await_schema(&database_url, 3).output().expect("run await-schema");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("run its `migrate` command first"), "{said}");

    // The Job migrates while the pod waits: the pod goes on within a poll or two.
    let mut waiting = await_schema(&database_url, 120)
        .spawn()
        .expect("start await-schema");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        waiting.try_wait().expect("poll").is_none(),
        "await-schema must wait while the schema is empty"
    );
    let log = tempfile_log();
    migrate(&bin("recobro-scheduling"), "scheduling", &database_url, &log);
    let migrated = Instant::now();
    let status = loop {
        if let Some(status) = waiting.try_wait().expect("poll") {
            break status;
        }
        assert!(
            migrated.elapsed() < Duration::from_secs(15),
            "await-schema still waits after the migration"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "await-schema after the migration: {status}");
}

fn tempfile_log() -> std::fs::File {
    let path = std::env::temp_dir().join(format!("recobro-migrate-{}.log", uuid::Uuid::new_v4()));
    std::fs::File::create(path).expect("log file")
}
