//! Command-line interface: subcommands and flags, each flag with an environment twin.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pytune",
    version,
    about = "Production defaults for Python services on Kubernetes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print manifests with pytune's defaults applied, and on stderr what changed and why.
    Mutate(MutateArgs),
    /// Report what pytune would change in manifests, and why, without changing them.
    Audit(AuditArgs),
    /// Explain each value pytune adds to a Pod, or added to it earlier (read from its record),
    /// with its reason. Takes manifests or Pods as `kubectl get pod -o yaml` prints them.
    Explain(ExplainArgs),
    /// List the application catalog: the policy's own entries, then the embedded ones, with what
    /// each states and its sources.
    Catalog(CatalogArgs),
    /// Print the effective policy (the embedded default merged with --policy) and its revision.
    Policy(PolicyArgs),
    /// Recommend requests, a memory limit, worker counts and thread caps for the Python-labeled
    /// workloads of a cluster from their usage in Prometheus (read-only).
    Recommend(RecommendArgs),
    /// Run the admission webhook over HTTPS (POST /mutate enforces, POST /audit reports), with
    /// /livez, /readyz and /metrics on a plain-HTTP admin port.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MutateArgs {
    /// Files, directories (every .yaml/.yml/.json below them) or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubernetes version of the target cluster (e.g. 1.31); picks the preStop form. Unknown: the
    /// exec form, which works on every version.
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<crate::core::engine::KubeVersion>,
    /// Do not print the summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// A readable table grouped by workload.
    Text,
    /// The stable JSON report (docs/audit.md).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CatalogFormat {
    /// One row per entry.
    Table,
    /// Every field of every entry, sources included.
    Yaml,
    Json,
    /// A Markdown table (as in docs/apps.md).
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    /// Show only this entry.
    #[arg(value_name = "ENTRY")]
    pub name: Option<String>,
    /// Policy file merged over the embedded default (its `catalog` entries are listed first).
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    #[arg(long, short, value_enum, default_value_t = CatalogFormat::Table)]
    pub output: CatalogFormat,
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Files, directories (every .yaml/.yml/.json below them) or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubernetes version of the target cluster (e.g. 1.31); picks the preStop form.
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<crate::core::engine::KubeVersion>,
    /// Text for people, or JSON (one object per Pod or pod template).
    #[arg(long, short, value_enum, default_value_t = AuditFormat::Text)]
    pub output: AuditFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterScope {
    /// Only namespaces labeled pytune.io/enabled=true.
    Namespaces,
    /// Every namespace except the system ones, pytune's own and those labeled pytune.io/enabled=false.
    Cluster,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Files, directories (every .yaml/.yml/.json below them) or - for stdin.
    #[arg(required_unless_present = "cluster", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Audit the Pods running in a cluster instead of manifests (read-only: list and get).
    #[arg(long, conflicts_with_all = ["paths", "diff"])]
    pub cluster: bool,
    /// Namespace to audit (repeatable); default: the kubeconfig context's namespace.
    #[arg(long, short = 'n', requires = "cluster")]
    pub namespace: Vec<String>,
    /// Audit every namespace.
    #[arg(long, short = 'A', requires = "cluster", conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Path to a kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, requires = "cluster")]
    pub context: Option<String>,
    /// Which namespaces pytune serves, as the chart's `scope` value.
    #[arg(long, value_enum, default_value_t = ClusterScope::Namespaces)]
    pub scope: ClusterScope,
    /// The namespace pytune runs in (never served in cluster scope).
    #[arg(long, default_value = "pytune-system")]
    pub pytune_namespace: String,
    /// Pods per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub page_size: u32,
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubernetes version of the target cluster (e.g. 1.31); picks the preStop form.
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<crate::core::engine::KubeVersion>,
    #[arg(long, short, value_enum, default_value_t = AuditFormat::Text)]
    pub output: AuditFormat,
    /// Print a unified diff of each manifest before and after instead of the report.
    #[arg(long, conflicts_with = "output")]
    pub diff: bool,
    /// Exit 3 when something would change (0 when nothing would, 1 on errors).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecommendFormat {
    /// A readable table grouped by workload.
    Text,
    /// The stable JSON report (docs/recommend.md).
    Json,
    /// Per-workload values (YAML) to review and commit.
    Policy,
    /// Kustomize patches (strategic merge, multi-document YAML) of each workload's resources.
    Patch,
}

#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// Base URL of a Prometheus-compatible query API (e.g. http://prometheus:9090).
    #[arg(long, env = "PYTUNE_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus: String,
    /// File holding a bearer token for Prometheus (default: $PYTUNE_PROMETHEUS_TOKEN, if set).
    #[arg(long, env = "PYTUNE_PROMETHEUS_TOKEN_FILE", value_name = "FILE")]
    pub prometheus_token_file: Option<PathBuf>,
    /// PEM file of the CA that signed Prometheus's certificate (default: the system's roots).
    #[arg(long, env = "PYTUNE_PROMETHEUS_CA", value_name = "FILE")]
    pub prometheus_ca: Option<PathBuf>,
    /// How long each Prometheus query may take.
    #[arg(long, default_value = "60s", value_parser = parse_interval)]
    pub prometheus_timeout: std::time::Duration,
    /// The usage window, as a Prometheus duration (7d, 2w, 36h).
    #[arg(long, default_value = "7d", value_parser = parse_window)]
    pub window: String,
    /// The end of the window: RFC 3339 or Unix seconds (default: Prometheus's now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Fewer CPU samples (5-minute points, all Pods of a workload together) than this: no
    /// recommendation, only the count. 288 is one day.
    #[arg(long, default_value_t = 288)]
    pub min_samples: u64,
    /// Margin over the memory peak, in percent.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(0..=400))]
    pub memory_margin: u64,
    /// The CPU percentile of usage the request covers.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u32).range(50..=100))]
    pub cpu_percentile: u32,
    /// Namespace to read (repeatable); default: the kubeconfig context's namespace.
    #[arg(long, short = 'n')]
    pub namespace: Vec<String>,
    /// Read every namespace.
    #[arg(long, short = 'A', conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Path to a kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Pods per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub page_size: u32,
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubernetes version of the cluster (e.g. 1.31).
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<crate::core::engine::KubeVersion>,
    #[arg(long, short, value_enum, default_value_t = RecommendFormat::Text)]
    pub output: RecommendFormat,
    /// Also store the recommended requests and memory limits as learned defaults in this
    /// ConfigMap (key learned.json), by server-side apply (docs/recommend.md).
    #[arg(long, value_name = "NAME")]
    pub write_configmap: Option<String>,
    /// The namespace of --write-configmap's ConfigMap.
    #[arg(long, default_value = "pytune-system", requires = "write_configmap")]
    pub configmap_namespace: String,
}

/// The units of a Prometheus range: seconds to years.
const WINDOW_UNITS: &[(char, u64)] = &[
    ('s', 1),
    ('m', 60),
    ('h', 3600),
    ('d', 86_400),
    ('w', 604_800),
    ('y', 31_536_000),
];

/// A Prometheus duration of at least an hour: `7d`, `2w`, `36h`, `1d12h`.
fn parse_window(text: &str) -> Result<String, String> {
    let seconds = crate::core::learned::duration_seconds(text, WINDOW_UNITS)
        .ok_or_else(|| format!("{text:?} is not a window like 7d, 2w or 36h"))?;
    if seconds < 3600 {
        return Err(format!(
            "{text:?} is shorter than an hour: too little to size from"
        ));
    }
    Ok(text.to_string())
}

fn parse_version(text: &str) -> Result<crate::core::engine::KubeVersion, String> {
    crate::core::engine::KubeVersion::parse(text)
        .ok_or_else(|| format!("{text:?} is not a Kubernetes version like 1.31"))
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the HTTPS webhook listener.
    #[arg(long, env = "PYTUNE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// Serving certificate (PEM; leaf first, then intermediates). Re-read when it changes.
    #[arg(
        long,
        env = "PYTUNE_TLS_CERT",
        requires = "tls_key",
        required_unless_present = "self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "PYTUNE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve with a local CA and certificate for localhost/127.0.0.1 kept in DIR (ca.crt,
    /// tls.crt, tls.key; created when missing) and print the caBundle.
    #[arg(long, env = "PYTUNE_SELF_SIGNED", value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub self_signed: Option<PathBuf>,
    /// Policy file merged over the embedded default. Re-read when it changes; an invalid file
    /// never replaces the running policy.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Address of the plain-HTTP admin listener (/livez, /readyz, /metrics).
    #[arg(long, env = "PYTUNE_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: std::net::SocketAddr,
    /// Kubernetes version of the cluster (e.g. 1.31); picks the preStop form.
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<crate::core::engine::KubeVersion>,
    /// Without --kubernetes-version, ask the API server for its version when running in a
    /// cluster (GET /version with the Pod's service account).
    #[arg(long, env = "PYTUNE_DISCOVER_KUBERNETES_VERSION", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub discover_kubernetes_version: bool,
    /// Look up the keys of ConfigMaps named in envFrom before planning, so variables they do not
    /// define can still be added. Needs `get` on ConfigMaps; off by default.
    #[arg(long, env = "PYTUNE_RESOLVE_CONFIG_MAPS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub resolve_config_maps: bool,
    /// Look up the key names (never the values) of Secrets named in envFrom likewise. Needs `get`
    /// on Secrets; off by default.
    #[arg(long, env = "PYTUNE_RESOLVE_SECRETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub resolve_secrets: bool,
    /// Serve learned defaults (`pytune recommend --write-configmap`) from this ConfigMap,
    /// NAMESPACE/NAME, watched. Needs `get`, `list` and `watch` on it, and `get` on ReplicaSets and
    /// Jobs to find a Pod's workload; off by default.
    #[arg(long, env = "PYTUNE_LEARNED_DEFAULTS", value_name = "NAMESPACE/NAME")]
    pub learned_defaults: Option<crate::webhook::learned::LearnedSource>,
    /// Log format.
    #[arg(long, env = "PYTUNE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::webhook::logging::LogFormat,
    /// Largest request body accepted (larger: HTTP 413). The API server's own limit is 3 MiB.
    #[arg(long, env = "PYTUNE_MAX_BODY_BYTES", default_value_t = crate::webhook::http::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How often the certificate and policy files are checked for changes.
    #[arg(long, env = "PYTUNE_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_interval)]
    pub reload_interval: std::time::Duration,
    /// Closes connections that send no request head for this long (also the keep-alive idle
    /// timeout; keep it above the API server's 90s).
    #[arg(long, env = "PYTUNE_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// On SIGTERM, how long in-flight requests may take to finish.
    #[arg(long, env = "PYTUNE_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: std::time::Duration,
    /// On SIGTERM, how long to keep accepting (reporting not ready) before draining.
    #[arg(long, env = "PYTUNE_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: std::time::Duration,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::webhook::http::parse_duration(text)
        .map_err(|reason| format!("{text:?} is not a duration like 10s, 500ms or 1m30s: {reason}"))
}

/// A duration to repeat something at: zero would never wait.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        interval if interval.is_zero() => Err(format!(
            "{text:?} is not an interval: it must be longer than zero, like 10s"
        )),
        interval => Ok(interval),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn serve(flags: &[&str]) -> Result<ServeArgs, String> {
        let args = ["pytune", "serve", "--self-signed", "certs"]
            .iter()
            .chain(flags);
        match Cli::try_parse_from(args)
            .map_err(|err| err.to_string())?
            .command
        {
            Command::Serve(args) => Ok(args),
            other => Err(format!("not serve: {other:?}")),
        }
    }

    #[test]
    fn duration_flags_take_go_durations() {
        let args = serve(&["--reload-interval", "1m30s", "--shutdown-grace", "1.5s"])
            .expect("valid flags");
        assert_eq!(args.reload_interval, std::time::Duration::from_secs(90));
        assert_eq!(args.shutdown_grace, std::time::Duration::from_millis(1500));
        assert_eq!(args.shutdown_delay, std::time::Duration::ZERO);
    }

    #[test]
    fn bad_durations_say_what_a_duration_looks_like() {
        for (flag, value) in [
            ("--reload-interval", "10"),
            ("--idle-timeout", "2 minutes"),
            ("--shutdown-grace", "-5s"),
        ] {
            let err = serve(&[&format!("{flag}={value}")]).expect_err("invalid");
            assert!(err.contains("is not a duration like 10s"), "{err}");
            assert!(err.contains(flag), "{err}");
        }
        let err = serve(&["--reload-interval", "0s"]).expect_err("invalid");
        assert!(err.contains("longer than zero"), "{err}");
    }

    #[test]
    fn learned_defaults_name_a_config_map_by_namespace_and_name() {
        assert_eq!(serve(&[]).expect("valid").learned_defaults, None);
        let args = serve(&["--learned-defaults", "pytune-system/pytune-learned"]).expect("valid");
        let source = args.learned_defaults.expect("set");
        assert_eq!(
            (source.namespace.as_str(), source.name.as_str()),
            ("pytune-system", "pytune-learned")
        );
        let err = serve(&["--learned-defaults", "pytune-learned"]).expect_err("invalid");
        assert!(
            err.contains("--learned-defaults") && err.contains("NAMESPACE/NAME"),
            "{err}"
        );
    }
}
