//! The background tasks a service cannot do without: its consumers, its outbox relay, its timer
//! loops, its webhook server. One that ends before shutdown (an error, a panic) takes the service
//! down with it: the shutdown token is cancelled, so health turns NOT_SERVING while in-flight
//! calls drain, and `join` returns an error naming the task, so the process exits and Kubernetes
//! restarts it. A process that kept answering SERVING without its consumer would stop collecting
//! for every tenant, and nobody would know.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a supervised task's output says about how it ended: `()` is a clean end, an `Err` is a
/// failure with its reason.
pub trait Outcome {
    fn failure(self) -> Option<String>;
}

impl Outcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Display> Outcome for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|err| err.to_string())
    }
}

/// The service's essential tasks, watched.
pub struct Supervisor {
    shutdown: CancellationToken,
    stopped: Arc<Mutex<Vec<&'static str>>>,
    watchers: Vec<JoinHandle<()>>,
}

/// A task ended before the service was asked to stop, or failed while it stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("background task {0} stopped unexpectedly; the service exits so that it is restarted")]
pub struct TaskStopped(pub &'static str);

impl Supervisor {
    pub fn new(shutdown: &CancellationToken) -> Supervisor {
        Supervisor {
            shutdown: shutdown.clone(),
            stopped: Arc::default(),
            watchers: Vec::new(),
        }
    }

    /// Runs `task` (which should stop by itself once shutdown is cancelled) and watches it.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Outcome + Send + 'static,
    {
        let running = tokio::spawn(task);
        let shutdown = self.shutdown.clone();
        let stopped = self.stopped.clone();
        self.watchers.push(tokio::spawn(async move {
            let failure = match running.await {
                Ok(outcome) => outcome.failure(),
                // The panic's message may quote data; the log names the task only.
                Err(err) if err.is_panic() => Some("panicked".to_string()),
                Err(err) => Some(err.to_string()),
            };
            if shutdown.is_cancelled() && failure.is_none() {
                return;
            }
            tracing::error!(
                task = name,
                reason = failure.as_deref().unwrap_or("ended"),
                "an essential background task stopped: the service stops so that it is restarted"
            );
            stopped
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(name);
            shutdown.cancel();
        }));
    }

    /// Waits for every task; the first one that stopped unexpectedly, if any, is the error.
    pub async fn join(self) -> Result<(), TaskStopped> {
        for watcher in self.watchers {
            // The watcher itself only logs and cancels: it cannot fail.
            let _ = watcher.await;
        }
        let stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match stopped.first() {
            Some(name) => Err(TaskStopped(name)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A task that runs until shutdown, as consumers do.
    async fn until(shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }

    #[tokio::test]
    async fn tasks_that_stop_with_the_service_are_a_clean_end() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new(&shutdown);
        tasks.spawn("consumer", until(shutdown.clone()));
        tasks.spawn("relay", {
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                Ok::<(), String>(())
            }
        });
        shutdown.cancel();
        assert_eq!(tasks.join().await, Ok(()));
    }

    #[tokio::test]
    async fn a_task_that_panics_stops_the_service_and_is_named() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new(&shutdown);
        tasks.spawn("consumer", until(shutdown.clone()));
        tasks.spawn("planner", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            // What a due date in year 262142 did to the ladder: chrono panics on overflow.
            let _ = chrono::NaiveDate::MAX + chrono::Duration::days(1);
        });
        tokio::time::timeout(Duration::from_secs(5), shutdown.cancelled())
            .await
            .expect("the service is told to stop (health turns NOT_SERVING)");
        assert_eq!(tasks.join().await, Err(TaskStopped("planner")));
    }

    #[tokio::test]
    async fn a_task_that_ends_or_fails_before_shutdown_stops_the_service() {
        for failing in [false, true] {
            let shutdown = CancellationToken::new();
            let mut tasks = Supervisor::new(&shutdown);
            tasks.spawn("consumer", until(shutdown.clone()));
            tasks.spawn("relay", async move {
                if failing {
                    Err("the producer is gone".to_string())
                } else {
                    Ok(())
                }
            });
            assert_eq!(tasks.join().await, Err(TaskStopped("relay")));
            assert!(shutdown.is_cancelled());
        }
    }
}
