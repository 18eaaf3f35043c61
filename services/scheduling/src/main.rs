use std::time::Duration;

use recobro_common::cli::{self, Command};
use recobro_common::{config::ProcessEnv, shutdown, telemetry};
use recobro_scheduling::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("recobro-scheduling")?;
    match cli::command(std::env::args())? {
        Command::Migrate => {
            return Ok(cli::migrate(&ProcessEnv, "scheduling", recobro_scheduling::MIGRATIONS).await?);
        }
        Command::AwaitSchema => {
            return Ok(cli::await_schema(&ProcessEnv, "scheduling", recobro_scheduling::MIGRATIONS).await?);
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
