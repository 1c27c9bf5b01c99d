//! The HTTPS webhook: `POST /mutate` (enforce) and `POST /audit` on one port, HTTP/1.1 and HTTP/2
//! by ALPN, with a body limit, connection timeouts, a per-request deadline and graceful shutdown.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsConfig;

use crate::core::engine::{Context, Mode};
use crate::webhook::body;
use crate::webhook::env_from::EnvFromResolver;
use crate::webhook::learned::LearnedDefaults;
use crate::webhook::lookups;
use crate::webhook::metrics::{Metrics, mode_name};
use crate::webhook::reload::PolicyStore;
use crate::webhook::review::{self, Answer, Outcome, Verdict};
use crate::webhook::tls::{self, CertStore};

/// The API server's own limit on a request body; a Pod cannot be bigger than this.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// The API server's default webhook timeout, used when a request does not say.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest webhook timeout the API server allows.
pub const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers share.
pub struct AppState {
    pub policy: Arc<PolicyStore>,
    /// Cluster facts for the engine; the mode is set per request.
    pub context: Context,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// Looks up `envFrom` ConfigMaps and Secrets before planning, when enabled.
    pub env_from: Option<EnvFromResolver>,
    /// Learned defaults of workloads (`--learned-defaults`), when enabled.
    pub learned: Option<Arc<LearnedDefaults>>,
    /// False until the server serves, and again once it drains.
    pub ready: AtomicBool,
    /// A background task that stopped while serving, and why: the server is then not ready.
    stopped_task: std::sync::Mutex<Option<String>>,
}

impl AppState {
    pub fn new(policy: Arc<PolicyStore>, context: Context, metrics: Arc<Metrics>) -> AppState {
        AppState {
            policy,
            context,
            metrics,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            env_from: None,
            learned: None,
            ready: AtomicBool::new(false),
            stopped_task: std::sync::Mutex::new(None),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.stopped_task().is_none()
    }

    /// Why a background task stopped, if one did.
    pub fn stopped_task(&self) -> Option<String> {
        self.stopped_task.lock().ok()?.clone()
    }

    pub fn task_stopped(&self, why: String) {
        if let Ok(mut stopped) = self.stopped_task.lock() {
            stopped.get_or_insert(why);
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// The webhook routes, usable in-process (e.g. with `tower::ServiceExt::oneshot`).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/audit", post(audit))
        .with_state(state)
}

async fn mutate(State(state): State<Arc<AppState>>, request: Request) -> Response {
    handle(&state, Mode::Enforce, request).await
}

async fn audit(State(state): State<Arc<AppState>>, request: Request) -> Response {
    handle(&state, Mode::Audit, request).await
}

async fn handle(state: &AppState, mode: Mode, request: Request) -> Response {
    let started = Instant::now();
    let deadline = deadline(request.uri().query());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    let mut incoming = request.into_body();
    if declared.is_some_and(|length| length > state.max_body_bytes as u64) {
        body::drain_refused(incoming, declared);
        return too_large(state, mode);
    }
    let body = match tokio::time::timeout(deadline, body::read(&mut incoming, state.max_body_bytes))
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(body::ReadError::TooLarge)) => {
            body::drain_refused(incoming, declared);
            return too_large(state, mode);
        }
        Ok(Err(body::ReadError::Failed(err))) => {
            return rejected(
                state,
                mode,
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("cannot read the request body: {err}"),
            );
        }
        Err(_) => {
            return rejected(
                state,
                mode,
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the request body did not arrive within {deadline:?}"),
            );
        }
    };

    let policy = state.policy.current();
    let parsed = match catch_unwind(|| review::parse(&body, &policy)) {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(bad)) => {
            return rejected(
                state,
                mode,
                StatusCode::BAD_REQUEST,
                "bad_request",
                bad.to_string(),
            );
        }
        Err(_) => return panicked(state, mode, &body),
    };
    let context = lookups::context(state, &parsed, &policy, lookups::budget(deadline)).await;
    let context = context.as_ref().unwrap_or(&state.context);
    match catch_unwind(AssertUnwindSafe(|| {
        review::answer(parsed, &policy, context, mode)
    })) {
        Ok(outcome) => answered(state, outcome, started, deadline),
        Err(_) => panicked(state, mode, &body),
    }
}

fn answered(state: &AppState, outcome: Outcome, started: Instant, deadline: Duration) -> Response {
    let body = outcome.to_json();
    let elapsed = started.elapsed();
    let record = &outcome.record;
    state.metrics.review(record, elapsed);
    // Microsecond precision is plenty for a log line.
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    let detail = record.detail.as_deref();
    if record.verdict == Verdict::Error {
        tracing::error!(
            uid = %record.uid,
            namespace = record.namespace.as_deref().unwrap_or(""),
            pod = record.pod.as_deref().unwrap_or(""),
            mode = mode_name(record.mode),
            dry_run = record.dry_run,
            result = record.verdict.as_str(),
            error = detail.unwrap_or("unknown"),
            latency_ms,
            "review failed; Pod allowed unchanged"
        );
    } else {
        tracing::info!(
            uid = %record.uid,
            namespace = record.namespace.as_deref().unwrap_or(""),
            pod = record.pod.as_deref().unwrap_or(""),
            mode = mode_name(record.mode),
            dry_run = record.dry_run,
            result = record.verdict.as_str(),
            changes = record.change_count(),
            added = record.added.as_str(),
            warnings = record.warnings,
            detail,
            latency_ms,
            "review"
        );
    }
    if elapsed > deadline {
        tracing::warn!(uid = %record.uid, latency_ms, "review took longer than its deadline");
    }
    review_response(&record.uid, body)
}

/// A panic outside the engine (the engine's own are caught in `review`): still allow, with the
/// uid when it can be read.
fn panicked(state: &AppState, mode: Mode, body: &Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Envelope {
        request: Option<Uid>,
    }
    #[derive(serde::Deserialize)]
    struct Uid {
        uid: String,
    }
    let uid = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|envelope| envelope.request)
        .map(|request| request.uid);
    state.metrics.rejected(mode, "error");
    tracing::error!(
        uid = uid.as_deref().unwrap_or(""),
        mode = mode_name(mode),
        "review panicked"
    );
    let Some(uid) = uid else {
        return internal_error();
    };
    let answer = Answer::failed(uid);
    review_response(&answer.uid, answer.to_review_json())
}

/// The answer's body, or HTTP 500 in the unexpected case that it cannot be serialized.
fn review_response(uid: &str, body: serde_json::Result<Vec<u8>>) -> Response {
    match body {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(err) => {
            tracing::error!(uid, error = %err, "cannot serialize the answer");
            internal_error()
        }
    }
}

fn internal_error() -> Response {
    text_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error".to_string(),
    )
}

fn too_large(state: &AppState, mode: Mode) -> Response {
    rejected(
        state,
        mode,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the request body is larger than {} bytes",
            state.max_body_bytes
        ),
    )
}

fn rejected(
    state: &AppState,
    mode: Mode,
    status: StatusCode,
    result: &'static str,
    message: String,
) -> Response {
    state.metrics.rejected(mode, result);
    tracing::warn!(mode = mode_name(mode), status = status.as_u16(), error = %message, "request rejected");
    text_response(status, message)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(body),
    )
        .into_response()
}

fn text_response(status: StatusCode, mut message: String) -> Response {
    message.push('\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        message,
    )
        .into_response()
}

/// The time a request may take: three quarters of the webhook timeout the API server sent in
/// `?timeout=` (10 s when absent or unreadable, at most 30 s).
pub fn deadline(query: Option<&str>) -> Duration {
    let timeout = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(|text| parse_duration(text).ok())
        .filter(|timeout| !timeout.is_zero())
        .unwrap_or(DEFAULT_WEBHOOK_TIMEOUT)
        .min(MAX_WEBHOOK_TIMEOUT);
    timeout * 3 / 4
}

/// The longest duration text read. Real ones are a few characters; the bound keeps kube's parser,
/// which panics past `u64::MAX` seconds, clear of that: 16 characters say less than 10^15 hours.
const MAX_DURATION_CHARS: usize = 16;

/// A Go duration, as the API server writes `?timeout=` and the CLI's flags take them: `10s`,
/// `500ms`, `1m30s`, `1.5s`. Read by kube's `Duration`; `Err` says why not. Signs are refused:
/// no duration pytune reads is negative, and kube panics on a sign inside the text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_string());
    }
    if text.chars().count() > MAX_DURATION_CHARS {
        return Err(format!("it is longer than {MAX_DURATION_CHARS} characters"));
    }
    if text.contains(['+', '-']) {
        return Err("it has a sign".to_string());
    }
    text.parse::<kube::core::Duration>()
        .map(Duration::from)
        .map_err(|err| err.to_string())
}

/// Connection-level limits of the webhook listener.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Closes a connection that has not sent a complete request head for this long, including
    /// idle keep-alive connections. Keep it above the API server's 90 s idle timeout.
    pub idle_timeout: Duration,
    /// Limit on the TLS handshake.
    pub handshake_timeout: Duration,
    /// Limit on the first request of a new connection.
    pub first_request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            idle_timeout: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
        }
    }
}

/// A running webhook listener.
pub struct RunningServer {
    local_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish (for at most `grace`), then returns.
    pub async fn shutdown(self, grace: Duration) -> Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        self.task
            .await
            .context("the webhook server task failed")?
            .context("the webhook server failed")
    }
}

/// Serves the webhook on `listener` with TLS from `certs`.
pub fn start(
    listener: std::net::TcpListener,
    certs: Arc<CertStore>,
    state: Arc<AppState>,
    limits: &ConnectionLimits,
) -> Result<RunningServer> {
    let local_addr = listener
        .local_addr()
        .context("the listener has no address")?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let config = RustlsConfig::from_config(tls::server_config(certs)?);
    let handle = axum_server::Handle::new();
    let mut server = axum_server::tls_rustls::from_tcp_rustls(listener, config)
        .context("cannot serve on the listener")?
        .map(|acceptor| {
            acceptor
                .handshake_timeout(limits.handshake_timeout)
                .acceptor(NoDelayAcceptor::new())
        })
        .first_request_timeout(limits.first_request_timeout)
        .accept_error_handler(|peer, err| {
            tracing::debug!(peer = ?peer, error = %err, "connection not accepted");
        })
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .keep_alive(true)
        .header_read_timeout(Some(limits.idle_timeout));
    server
        .http_builder()
        .http2()
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(Some(256));
    let app = router(state);
    let task = tokio::spawn(server.serve(app.into_make_service()));
    Ok(RunningServer {
        local_addr,
        handle,
        task,
    })
}

/// Binds a TCP listener with a message that names the address.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_webhook_timeout() {
        assert_eq!(deadline(None), Duration::from_millis(7500));
        assert_eq!(deadline(Some("timeout=4s")), Duration::from_secs(3));
        assert_eq!(
            deadline(Some("a=b&timeout=2s")),
            Duration::from_millis(1500)
        );
        assert_eq!(deadline(Some("timeout=5m")), Duration::from_millis(22500));
        assert_eq!(deadline(Some("timeout=junk")), Duration::from_millis(7500));
        assert_eq!(deadline(Some("timeout=0s")), Duration::from_millis(7500));
        assert_eq!(deadline(Some("timeout=-5s")), Duration::from_millis(7500));
    }

    #[test]
    fn durations_are_go_durations() {
        let parsed = |text: &str| parse_duration(text).ok();
        assert_eq!(parsed("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parsed("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parsed("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parsed(" 2h "), Some(Duration::from_secs(7200)));
        assert_eq!(parsed("5µs"), Some(Duration::from_micros(5)));
        assert_eq!(parsed("0s"), Some(Duration::ZERO));
        for bad in ["10", "", "  ", "s", "5x", "1.5.5s", "-5s", "1s-5s", "+5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_duration("10")
                .is_err_and(|reason| reason.contains("unit") && reason.contains("'ms'"))
        );
        assert!(parse_duration("99999999999999999h").is_err());
        // The longest text read, and the largest value it can say.
        assert!(parse_duration("999999999999999h").is_ok());
    }

    /// The log line of each review, in JSON: one object with the fields operators filter on.
    #[test]
    fn a_review_is_logged_as_one_json_object() {
        use crate::webhook::logging::tests::Captured;

        let fixture = include_str!("../../tests/fixtures/apiserver-v1.36/pod-create-review.json");
        let mut review: serde_json::Value = serde_json::from_str(fixture).expect("JSON");
        let labels = &mut review["request"]["object"]["metadata"]["labels"];
        labels["pytune.io/runtime"] = "python".into();
        let patched = serde_json::to_vec(&review).expect("JSON");
        review["request"]["object"]["spec"]["containers"] = "not a list".into();
        let broken = serde_json::to_vec(&review).expect("JSON");

        let state = AppState::new(
            Arc::new(PolicyStore::embedded()),
            Context::default(),
            Arc::new(Metrics::new()),
        );
        let answer = |body: &[u8]| {
            let policy = state.policy.current();
            let outcome =
                review::review(body, &policy, &state.context, Mode::Enforce).expect("a review");
            let response = answered(&state, outcome, Instant::now(), DEFAULT_WEBHOOK_TIMEOUT);
            assert_eq!(response.status(), StatusCode::OK);
        };
        let lines = Captured::json_lines(|| {
            answer(&patched);
            answer(&broken);
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");

        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "review");
        assert_eq!(line["uid"], "936b7fbd-aa7f-4c7b-9350-aaf4d8e29331");
        assert_eq!(line["namespace"], review["request"]["namespace"]);
        assert!(line["pod"].as_str().is_some_and(|pod| !pod.is_empty()));
        assert_eq!(line["mode"], "enforce");
        assert_eq!(line["dry_run"], false);
        assert_eq!(line["result"], "patched");
        assert!(line["changes"].as_u64().is_some_and(|changes| changes > 0));
        let added = line["added"].as_str().unwrap_or_default();
        assert!(added.contains("resources.requests(cpu,memory)"), "{added}");
        assert_eq!(line["warnings"], 0);
        assert!(line["latency_ms"].is_number());
        assert!(line["timestamp"].is_string());

        let line = &lines[1];
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["result"], "error");
        assert_eq!(line["uid"], "936b7fbd-aa7f-4c7b-9350-aaf4d8e29331");
        assert!(
            line["error"]
                .as_str()
                .is_some_and(|error| error.contains("Pod"))
        );
    }

    proptest::proptest! {
        /// Whatever the text, an answer and no panic (kube's parser panics on overflow and signs).
        #[test]
        fn any_duration_text_is_answered(
            text in "[-+ ]?([0-9.]{0,20}(h|m|s|ms|us|µs|ns|x)?){0,4}",
            other in proptest::prelude::any::<String>(),
        ) {
            let _ = parse_duration(&text);
            let _ = parse_duration(&other);
        }
    }
}
