//! The admin port (plain HTTP): `/livez`, `/readyz` and `/metrics`.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::webhook::http::AppState;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Ready once the certificate and the policy are loaded and the webhook listens; not ready while
/// draining, nor once a background task (the reloads) has stopped.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if let Some(why) = state.stopped_task() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response()
    } else if state.is_ready() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        state.metrics.render(),
    )
        .into_response()
}

/// Serves the admin routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    listener
        .set_nonblocking(true)
        .context("cannot make the admin listener non-blocking")?;
    let listener =
        tokio::net::TcpListener::from_std(listener).context("cannot use the admin listener")?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the admin server failed")
}
