//! `pytune serve`: load the certificate and the policy, start the webhook and admin listeners and
//! the reload loop, and drain on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::core::catalog::Catalog;
use crate::core::engine::{Context, KubeVersion};
use crate::webhook::discovery;
use crate::webhook::env_from::EnvFromResolver;
use crate::webhook::http::{self, AppState, ConnectionLimits, RunningServer};
use crate::webhook::learned::{LearnedDefaults, LearnedSource};
use crate::webhook::metrics::Metrics;
use crate::webhook::reload::{self, PolicyStore};
use crate::webhook::selfsigned;
use crate::webhook::tasks;
use crate::webhook::tls::{self, CertStore};

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// A directory with (or for) `ca.crt`, `tls.crt` and `tls.key` for localhost.
    SelfSigned(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: TlsSource,
    /// A policy file; the embedded default when absent.
    pub policy: Option<PathBuf>,
    pub kubernetes_version: Option<KubeVersion>,
    /// Ask the API server for its version when in a cluster and `kubernetes_version` is unset.
    pub discover_kubernetes_version: bool,
    /// Look up the keys of `envFrom` ConfigMaps with the default Kubernetes client (in-cluster or
    /// kubeconfig); see [`crate::webhook::env_from`].
    pub resolve_config_maps: bool,
    /// Look up the key names of `envFrom` Secrets likewise.
    pub resolve_secrets: bool,
    /// The resolver to use; built from the default client by [`run`] when either lookup is on.
    pub env_from: Option<EnvFromResolver>,
    /// Serve learned defaults from this ConfigMap (`NAMESPACE/NAME`), read with the default
    /// Kubernetes client; see [`crate::webhook::learned`].
    pub learned_defaults: Option<LearnedSource>,
    /// The learned defaults to use; built from the default client by [`run`] when
    /// `learned_defaults` is set. Its watch starts with the server.
    pub learned: Option<Arc<LearnedDefaults>>,
    pub max_body_bytes: usize,
    /// How often the certificate and policy files are checked for changes.
    pub reload_interval: Duration,
    pub limits: ConnectionLimits,
    /// How long in-flight requests may take to finish once shutdown starts.
    pub shutdown_grace: Duration,
    /// How long to keep accepting (while reporting not ready) before draining.
    pub shutdown_delay: Duration,
}

impl ServeOptions {
    /// Defaults for everything but the certificate source.
    pub fn new(tls: TlsSource) -> ServeOptions {
        ServeOptions {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls,
            policy: None,
            kubernetes_version: None,
            discover_kubernetes_version: true,
            resolve_config_maps: false,
            resolve_secrets: false,
            env_from: None,
            learned_defaults: None,
            learned: None,
            max_body_bytes: http::DEFAULT_MAX_BODY_BYTES,
            reload_interval: Duration::from_secs(10),
            limits: ConnectionLimits::default(),
            shutdown_grace: Duration::from_secs(20),
            shutdown_delay: Duration::ZERO,
        }
    }
}

/// A started webhook: its addresses, and the means to stop it.
pub struct Serving {
    state: Arc<AppState>,
    webhook: RunningServer,
    admin_addr: SocketAddr,
    admin: JoinHandle<Result<()>>,
    stop_admin: watch::Sender<bool>,
    reloader: tasks::Watched,
    learned_watch: Option<tasks::Watched>,
    shutdown_grace: Duration,
    shutdown_delay: Duration,
    /// Set with `--self-signed`: the CA clients should trust.
    pub local_tls: Option<selfsigned::LocalTls>,
}

impl Serving {
    pub fn webhook_addr(&self) -> SocketAddr {
        self.webhook.local_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Reports not ready, waits the shutdown delay, stops accepting, lets in-flight requests
    /// finish, then stops the admin port.
    pub async fn shutdown(self) -> Result<()> {
        self.state.set_ready(false);
        tracing::info!(
            delay_s = self.shutdown_delay.as_secs_f64(),
            grace_s = self.shutdown_grace.as_secs_f64(),
            "shutting down"
        );
        tokio::time::sleep(self.shutdown_delay).await;
        let drained = self.webhook.shutdown(self.shutdown_grace).await;
        self.reloader.abort();
        if let Some(watch) = &self.learned_watch {
            watch.abort();
        }
        let _ = self.stop_admin.send(true);
        let admin = self.admin.await.context("the admin task failed");
        drained?;
        admin??;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Loads everything and starts serving; fails before listening when the certificate or the
/// policy cannot be loaded.
pub fn start(options: ServeOptions) -> Result<Serving> {
    tls::install_provider();
    let (cert_path, key_path, local_tls) = match &options.tls {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone(), None),
        TlsSource::SelfSigned(dir) => {
            let local = selfsigned::ensure(dir)?;
            (local.cert_path.clone(), local.key_path.clone(), Some(local))
        }
    };
    let certs = Arc::new(CertStore::load(&cert_path, &key_path)?);
    // Parsed here, not on the first review that needs it.
    Catalog::load_embedded().context("the embedded application catalog does not load")?;
    let policy = Arc::new(match &options.policy {
        Some(path) => PolicyStore::load(path)?,
        None => PolicyStore::embedded(),
    });
    let metrics = Arc::new(Metrics::new());
    if let Some(expiry) = certs.expiry() {
        metrics.set_certificate_expiry(expiry);
    }
    let context = Context {
        kubernetes_version: options.kubernetes_version,
        ..Context::default()
    };
    let mut state = AppState::new(policy.clone(), context, metrics.clone());
    state.max_body_bytes = options.max_body_bytes;
    state.env_from = options.env_from.clone();
    state.learned = options.learned.clone();
    let state = Arc::new(state);
    let learned_watch = options.learned.as_ref().map(|learned| {
        tracing::info!(configmap = %learned.source(), "learned defaults are watched");
        tasks::watch(
            "learned-defaults",
            learned.spawn_watch(metrics.clone()),
            state.clone(),
        )
    });

    let webhook_listener = http::bind(options.listen)?;
    let admin_listener = http::bind(options.admin_listen)?;
    let admin_addr = admin_listener
        .local_addr()
        .context("the admin listener has no address")?;
    let (stop_admin, mut admin_stopped) = watch::channel(false);
    let admin = tokio::spawn(crate::webhook::admin::serve(
        admin_listener,
        state.clone(),
        async move {
            let _ = admin_stopped.wait_for(|stopped| *stopped).await;
        },
    ));
    let reloader = tasks::watch(
        "reload",
        reload::spawn(
            certs.clone(),
            policy.clone(),
            metrics.clone(),
            options.reload_interval,
        ),
        state.clone(),
    );
    let webhook = http::start(webhook_listener, certs, state.clone(), &options.limits)?;
    state.set_ready(true);
    tracing::info!(
        listen = %webhook.local_addr(),
        admin = %admin_addr,
        policy_revision = %policy.current().revision,
        kubernetes_version = options.kubernetes_version.map(|v| v.to_string()),
        "serving"
    );
    Ok(Serving {
        state,
        webhook,
        admin_addr,
        admin,
        stop_admin,
        reloader,
        learned_watch,
        shutdown_grace: options.shutdown_grace,
        shutdown_delay: options.shutdown_delay,
        local_tls,
    })
}

/// Serves until SIGTERM or SIGINT, then drains.
pub async fn run(mut options: ServeOptions) -> Result<()> {
    tls::install_provider();
    if options.kubernetes_version.is_none()
        && options.discover_kubernetes_version
        && discovery::in_cluster()
    {
        match discovery::in_cluster_version().await {
            Ok(version) => {
                tracing::info!(kubernetes_version = %version, "discovered the cluster's version");
                options.kubernetes_version = Some(version);
            }
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                "cannot discover the cluster's version; preStop uses the exec form"
            ),
        }
    }
    let (config_maps, secrets) = (options.resolve_config_maps, options.resolve_secrets);
    let wants_env_from = (config_maps || secrets) && options.env_from.is_none();
    let learned_source = match (&options.learned_defaults, &options.learned) {
        (Some(source), None) => Some(source.clone()),
        _ => None,
    };
    if wants_env_from || learned_source.is_some() {
        // One client for every lookup. Without cluster access the webhook still serves: envFrom
        // sources stay unknown (the engine's no-knowledge rules apply) and profile defaults apply.
        match kube::Client::try_default().await {
            Ok(client) => {
                if wants_env_from {
                    options.env_from =
                        Some(EnvFromResolver::new(client.clone(), config_maps, secrets));
                    tracing::info!(
                        config_maps,
                        secrets,
                        "envFrom sources are looked up before planning"
                    );
                }
                if let Some(source) = learned_source {
                    options.learned = Some(LearnedDefaults::new(client, source));
                }
            }
            Err(err) => tracing::warn!(
                error = %err,
                env_from = wants_env_from,
                learned_defaults = learned_source.map(|source| source.to_string()),
                "no Kubernetes client: envFrom sources count as unknown, and no learned defaults are served"
            ),
        }
    }
    let serving = start(options)?;
    if let Some(local) = &serving.local_tls {
        println!(
            "CA certificate: {}\ncaBundle: {}",
            local.ca_path.display(),
            local.ca_bundle()
        );
    }
    shutdown_signal().await?;
    serving.shutdown().await
}

async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
        _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "signal received"),
    }
    Ok(())
}
