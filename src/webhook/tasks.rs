//! Background tasks that must run as long as the server serves. One that ends or panics would
//! fail silently (certificate rotation and policy changes no longer picked up while `/readyz`
//! says ok), so a watcher marks the server not ready, counts the failure and logs why.

use std::sync::Arc;

use tokio::task::{AbortHandle, JoinHandle};

use crate::webhook::http::AppState;

/// A watched task: abort it (and its watcher) on shutdown.
pub struct Watched {
    task: AbortHandle,
    watcher: JoinHandle<()>,
}

impl Watched {
    pub fn abort(&self) {
        self.task.abort();
        self.watcher.abort();
    }
}

/// Watches `task` (named `name` in logs and metrics); aborting it through [`Watched::abort`] is
/// not a failure.
pub fn watch(name: &'static str, task: JoinHandle<()>, state: Arc<AppState>) -> Watched {
    let abort = task.abort_handle();
    let watcher = tokio::spawn(async move {
        let why = match task.await {
            Ok(()) => format!("the {name} task ended"),
            Err(err) if err.is_cancelled() => return,
            Err(err) => format!("the {name} task panicked: {}", panic_text(err.into_panic())),
        };
        tracing::error!(task = name, error = %why, "a background task stopped; reporting not ready");
        state.metrics.task_failed(name);
        state.task_stopped(why);
    });
    Watched {
        task: abort,
        watcher,
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        return (*text).to_string();
    }
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| "no message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::engine::Context;
    use crate::webhook::metrics::Metrics;
    use crate::webhook::reload::PolicyStore;

    fn state() -> Arc<AppState> {
        let policy = Arc::new(PolicyStore::embedded());
        let state = AppState::new(policy, Context::default(), Arc::new(Metrics::new()));
        state.set_ready(true);
        Arc::new(state)
    }

    async fn settled(watched: &Watched) {
        for _ in 0..100 {
            if watched.watcher.is_finished() {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_makes_the_server_not_ready_and_is_counted() {
        let state = state();
        let task = tokio::spawn(async { panic!("period must be non-zero") });
        let watched = watch("reload", task, state.clone());
        settled(&watched).await;
        assert!(!state.is_ready());
        let why = state.stopped_task().expect("recorded");
        assert!(
            why.contains("reload task panicked: period must be non-zero"),
            "{why}"
        );
        let metrics = state.metrics.render();
        assert!(
            metrics.contains("pytune_task_failures_total{task=\"reload\"} 1"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn a_task_that_ends_is_a_failure_too_but_an_aborted_one_is_not() {
        let state = state();
        let watched = watch("reload", tokio::spawn(async {}), state.clone());
        settled(&watched).await;
        assert_eq!(
            state.stopped_task().as_deref(),
            Some("the reload task ended")
        );

        let state = self::state();
        let forever = tokio::spawn(std::future::pending::<()>());
        let watched = watch("reload", forever, state.clone());
        watched.abort();
        settled(&watched).await;
        assert!(state.is_ready());
        assert!(state.stopped_task().is_none());
    }
}
