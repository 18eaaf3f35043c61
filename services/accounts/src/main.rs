use std::time::Duration;

use recobro_accounts::Application;
use recobro_common::{Config, config::ProcessEnv, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("recobro-accounts")?;
    let config = Config::from_env(&ProcessEnv, "accounts", 50051)?;
    let drain = Duration::from_secs(config.drain_seconds);
    let app = Application::build(config).await?;
    let shutdown = shutdown::on_signal();
    let run = app.run(shutdown.clone());
    let mut outcome = Ok(());
    shutdown::drain_within(async { outcome = run.await }, shutdown, drain).await?;
    outcome
}
