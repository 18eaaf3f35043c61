use std::time::Duration;

use recobro_accounts::{Application, Settings};
use recobro_common::cli::{self, Command};
use recobro_common::{config::ProcessEnv, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("recobro-accounts")?;
    match cli::command(std::env::args())? {
        Command::Migrate => {
            return Ok(cli::migrate(&ProcessEnv, "accounts", recobro_accounts::MIGRATIONS).await?);
        }
        Command::AwaitSchema => {
            return Ok(cli::await_schema(&ProcessEnv, "accounts", recobro_accounts::MIGRATIONS).await?);
        }
        Command::Serve => {}
    }
    let settings = Settings::from_env(&ProcessEnv)?;
    let drain = Duration::from_secs(settings.common.drain_seconds);
    let app = Application::build(settings).await?;
    let shutdown = shutdown::on_signal();
    let run = app.run(shutdown.clone());
    let mut outcome = Ok(());
    shutdown::drain_within(async { outcome = run.await }, shutdown, drain).await?;
    outcome
}
