//! Usage from a Prometheus-compatible HTTP API: instant queries over the window, each grouped by
//! namespace, Pod and container (`/api/v1/query`, the Prometheus HTTP API).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::core::recommend::PodUsage;

#[derive(Debug, Error)]
pub enum PrometheusError {
    #[error("cannot read {what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate in the CA file {0} (give a PEM file)")]
    NoCertificate(PathBuf),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot reach Prometheus at {url} (check --prometheus and that it is up): {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("Prometheus answered HTTP {status} to `{query}`: {body}")]
    Status {
        status: u16,
        query: String,
        body: String,
    },
    #[error(
        "the answer to `{query}` is not Prometheus query API JSON (is --prometheus the server's base URL?): {source}"
    )]
    Answer {
        query: String,
        source: serde_json::Error,
    },
}

/// How to reach Prometheus.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub url: String,
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

pub struct Prometheus {
    client: reqwest::Client,
    query_url: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[timestamp, "value"]`.
    value: (f64, String),
}

/// `(namespace, pod, container)`.
pub type Key = (String, String, String);

impl Prometheus {
    pub fn new(connection: &Connection) -> Result<Prometheus, PrometheusError> {
        let mut builder = reqwest::Client::builder().timeout(connection.timeout);
        if let Some(path) = &connection.ca_file {
            builder = builder.tls_backend_preconfigured(tls_with_ca(path)?);
        }
        let client = builder
            .build()
            .map_err(|err| PrometheusError::Client(err.to_string()))?;
        Ok(Prometheus {
            client,
            query_url: format!("{}/api/v1/query", connection.url.trim_end_matches('/')),
            token: connection.token.clone(),
        })
    }

    /// One instant query at `time` (Prometheus's now when `None`): each series' labels and value.
    pub async fn query(
        &self,
        query: &str,
        time: Option<&str>,
    ) -> Result<Vec<(BTreeMap<String, String>, f64)>, PrometheusError> {
        let mut form = vec![("query", query)];
        if let Some(time) = time {
            form.push(("time", time));
        }
        let mut request = self.client.post(&self.query_url).form(&form);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let unreachable = |source| PrometheusError::Unreachable {
            url: self.query_url.clone(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        let answer: Result<Answer, _> = serde_json::from_str(&body);
        match answer {
            Ok(answer) if answer.status == "success" && status.is_success() => Ok(answer
                .data
                .map(|d| d.result)
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.metric, s.value.1.parse().unwrap_or(f64::NAN)))
                .collect()),
            Ok(answer) => Err(PrometheusError::Status {
                status: status.as_u16(),
                query: query.to_string(),
                body: answer.error.unwrap_or(body),
            }),
            Err(_) if !status.is_success() => Err(PrometheusError::Status {
                status: status.as_u16(),
                query: query.to_string(),
                body: crate::core::engine::truncate(body.trim(), 300),
            }),
            Err(source) => Err(PrometheusError::Answer {
                query: query.to_string(),
                source,
            }),
        }
    }
}

fn tls_with_ca(path: &PathBuf) -> Result<rustls::ClientConfig, PrometheusError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|source| PrometheusError::File {
        what: "the Prometheus CA file",
        path: path.clone(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        roots
            .add(cert)
            .map_err(|err| PrometheusError::Client(err.to_string()))?;
    }
    if roots.is_empty() {
        return Err(PrometheusError::NoCertificate(path.clone()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| PrometheusError::Client(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What to ask: the window, the CPU percentile, the namespaces (all when empty), the time.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub window: String,
    pub step: String,
    pub cpu_percentile: u32,
    pub namespaces: Vec<String>,
    pub time: Option<String>,
}

impl UsageQuery {
    fn selector(&self, extra: &str) -> String {
        let mut matchers = vec![
            r#"container!="""#.to_string(),
            r#"container!="POD""#.to_string(),
        ];
        if !self.namespaces.is_empty() {
            let names: Vec<String> = self.namespaces.iter().map(|n| regex_escape(n)).collect();
            matchers.push(format!(r#"namespace=~"{}""#, names.join("|")));
        }
        if !extra.is_empty() {
            matchers.push(extra.to_string());
        }
        format!("{{{}}}", matchers.join(","))
    }

    /// The queries, by what they measure. Each is grouped by namespace, Pod and container, so
    /// duplicate cAdvisor series (one per container restart) count once.
    pub fn queries(&self) -> Vec<(Measure, String)> {
        let by = "by (namespace, pod, container)";
        let (w, step) = (&self.window, &self.step);
        let cpu_rate = format!(
            "sum {by} (rate(container_cpu_usage_seconds_total{}[5m]))",
            self.selector("")
        );
        let quantile = f64::from(self.cpu_percentile) / 100.0;
        vec![
            (
                Measure::Cpu,
                format!("quantile_over_time({quantile}, {cpu_rate}[{w}:{step}])"),
            ),
            (
                Measure::Samples,
                format!("count_over_time({cpu_rate}[{w}:{step}])"),
            ),
            (
                Measure::MemoryPeak,
                format!(
                    "max {by} (max_over_time(container_memory_working_set_bytes{}[{w}]))",
                    self.selector("")
                ),
            ),
            (
                Measure::Periods,
                format!(
                    "sum {by} (increase(container_cpu_cfs_periods_total{}[{w}]))",
                    self.selector("")
                ),
            ),
            (
                Measure::Throttled,
                format!(
                    "sum {by} (increase(container_cpu_cfs_throttled_periods_total{}[{w}]))",
                    self.selector("")
                ),
            ),
            (
                Measure::OomKilled,
                format!(
                    "max {by} (max_over_time(kube_pod_container_status_last_terminated_reason{}[{w}]))",
                    self.selector(r#"reason="OOMKilled""#)
                ),
            ),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Cpu,
    Samples,
    MemoryPeak,
    Periods,
    Throttled,
    OomKilled,
}

/// Escapes a name for a quoted RE2 matcher in PromQL.
fn regex_escape(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push_str(r"\\");
        }
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every measure for the containers in scope, by `(namespace, pod, container)`.
pub async fn usage(
    prometheus: &Prometheus,
    query: &UsageQuery,
) -> Result<BTreeMap<Key, PodUsage>, PrometheusError> {
    let mut usage: BTreeMap<Key, PodUsage> = BTreeMap::new();
    for (measure, promql) in query.queries() {
        for (labels, value) in prometheus.query(&promql, query.time.as_deref()).await? {
            let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
            let key = (label("namespace"), label("pod"), label("container"));
            let entry = usage.entry(key.clone()).or_insert_with(|| PodUsage {
                pod: key.1.clone(),
                ..PodUsage::default()
            });
            match measure {
                Measure::Cpu => entry.cpu_cores = Some(value),
                Measure::Samples => entry.samples = to_count(value),
                Measure::MemoryPeak => entry.memory_peak_bytes = Some(value),
                Measure::Periods => entry.periods = value,
                Measure::Throttled => entry.throttled_periods = value,
                Measure::OomKilled => entry.oom_killed = value >= 1.0,
            }
        }
    }
    Ok(usage)
}

fn to_count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_namespaces_and_skip_pause_containers() {
        let query = UsageQuery {
            window: "7d".into(),
            step: "5m".into(),
            cpu_percentile: 95,
            namespaces: vec!["shop".into(), "a.b".into()],
            time: None,
        };
        let queries = query.queries();
        let (_, cpu) = &queries[0];
        assert_eq!(
            cpu,
            r#"quantile_over_time(0.95, sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{container!="",container!="POD",namespace=~"shop|a\\.b"}[5m]))[7d:5m])"#
        );
        assert!(queries[5].1.contains(r#"reason="OOMKilled""#));
    }
}
