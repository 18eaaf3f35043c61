//! SIGTERM/SIGINT become one cancellation token that every task watches.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or SIGINT. The handlers are installed before
/// it returns (not in the spawned task), so a signal that arrives at once still drains instead
/// of killing the process with the default action.
pub fn on_signal() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutdown signal received, draining");
        cancel.cancel();
    });
    token
}

/// Runs `work` until it ends by itself after `shutdown`; if draining takes longer than
/// `deadline`, gives up so that Kubernetes' grace period is never exceeded silently.
pub async fn drain_within<F>(
    work: F,
    shutdown: CancellationToken,
    deadline: std::time::Duration,
) -> Result<(), DrainTimeout>
where
    F: std::future::Future<Output = ()>,
{
    tokio::pin!(work);
    tokio::select! {
        _ = &mut work => return Ok(()),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(deadline, work).await {
        Ok(()) => Ok(()),
        Err(_) => Err(DrainTimeout(deadline)),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("in-flight work did not finish within {0:?} of the shutdown signal")]
pub struct DrainTimeout(pub std::time::Duration);
