//! `pytune recommend`: the Python-labeled workloads of a cluster (Pods listed read-only, grouped by
//! their owner chain), their usage from Prometheus, and core::recommend over both.

pub mod configmap;
pub mod prometheus;
pub mod render;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;

use super::owners::{pod_workload, resolver};
use super::{args, cluster_audit, load_policy, write_stdout};
use crate::cluster::pods::{ListedPod, PodPages};
use crate::core::engine::Context;
use crate::core::policy::Policy;
use crate::core::recommend::{self, Settings, WorkloadRecommendation, WorkloadUsage};
use prometheus::{Prometheus, PrometheusError, UsageQuery};

/// Version of the JSON report's layout; bumped on incompatible changes.
pub const JSON_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema_version: u32,
    pub settings: Settings,
    /// The end of the window as given (`--at`), or absent for Prometheus's now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub workloads: Vec<WorkloadRecommendation>,
    pub errors: Vec<String>,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
    pub page_size: u32,
}

/// One workload's Pods as listed, keyed by `(namespace, workload)`.
type Workloads = BTreeMap<(String, String), Vec<Value>>;

/// Lists the Python-labeled Pods in scope and groups them by the workload their owners name.
async fn workloads(
    client: &kube::Client,
    scope: &Scope,
    policy: &Policy,
    errors: &mut Vec<String>,
) -> Workloads {
    let selector = format!("{}={}", policy.selector.label, policy.selector.value);
    let owners = resolver(client.clone());
    let mut grouped = Workloads::new();
    let mut pages = PodPages::new(client.clone(), &scope.namespaces, selector, scope.page_size);
    while let Some(page) = pages.next().await {
        let pods = match page {
            Ok(pods) => pods,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        for ListedPod { namespace, object } in pods {
            let workload = pod_workload(&owners, &namespace, &object, errors).await;
            grouped
                .entry((namespace, workload))
                .or_default()
                .push(object);
        }
    }
    grouped
}

fn text_at(pod: &Value, pointer: &str) -> String {
    pod.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The newest Pod speaks for the workload: its spec is the current template.
fn newest(pods: &[Value]) -> Option<&Value> {
    pods.iter().max_by_key(|pod| {
        (
            text_at(pod, "/metadata/creationTimestamp"),
            text_at(pod, "/metadata/name"),
        )
    })
}

/// Recommends for every workload in scope.
pub async fn scan(
    client: kube::Client,
    prometheus: &Prometheus,
    scope: &Scope,
    query: &UsageQuery,
    policy: &Policy,
    ctx: &Context,
    settings: &Settings,
) -> Result<Report, PrometheusError> {
    let mut errors = Vec::new();
    let workloads = workloads(&client, scope, policy, &mut errors).await;
    let usage = prometheus::usage(prometheus, query).await?;
    let mut recommendations = Vec::new();
    for ((namespace, workload), pods) in &workloads {
        let Some(pod) = newest(pods) else { continue };
        let mut by_container: BTreeMap<String, Vec<recommend::PodUsage>> = BTreeMap::new();
        for listed in pods {
            let name = text_at(listed, "/metadata/name");
            let start = (namespace.clone(), name.clone(), String::new());
            for ((ns, pod_name, container), found) in usage.range(start..) {
                if *ns != *namespace || *pod_name != name {
                    break;
                }
                by_container
                    .entry(container.clone())
                    .or_default()
                    .push(found.clone());
            }
        }
        let input = WorkloadUsage {
            namespace: namespace.clone(),
            workload: workload.clone(),
            pod: pod.clone(),
            usage: by_container.into_iter().collect(),
        };
        let found = recommend::recommend(&input, policy, ctx, settings);
        if !found.containers.is_empty() {
            recommendations.push(found);
        }
    }
    Ok(Report {
        schema_version: JSON_SCHEMA_VERSION,
        settings: settings.clone(),
        at: query.time.clone(),
        workloads: recommendations,
        errors,
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

pub fn run(args: args::RecommendArgs) -> Result<ExitCode> {
    crate::webhook::tls::install_provider();
    let policy = load_policy(args.policy.as_deref())?;
    let token = match &args.prometheus_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("PYTUNE_PROMETHEUS_TOKEN").ok(),
    };
    let prometheus = Prometheus::new(&prometheus::Connection {
        url: args.prometheus.clone(),
        token,
        ca_file: args.prometheus_ca.clone(),
        timeout: args.prometheus_timeout,
    })?;
    let settings = Settings {
        window: args.window.clone(),
        cpu_percentile: args.cpu_percentile,
        min_samples: args.min_samples,
        memory_margin_percent: args.memory_margin,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let (client, default_namespace) =
            cluster_audit::kube_client(args.kubeconfig.as_deref(), args.context.clone()).await?;
        let namespaces =
            cluster_audit::namespaces(args.all_namespaces, &args.namespace, default_namespace);
        let ctx = Context {
            kubernetes_version: args.kubernetes_version,
            ..Context::default()
        };
        let query = UsageQuery {
            window: args.window.clone(),
            step: "5m".to_string(),
            cpu_percentile: args.cpu_percentile,
            namespaces: namespaces.clone(),
            time: args.at.clone(),
        };
        let scope = Scope {
            namespaces,
            page_size: args.page_size,
        };
        let report = scan(
            client.clone(),
            &prometheus,
            &scope,
            &query,
            &policy,
            &ctx,
            &settings,
        )
        .await?;
        if let Some(name) = &args.write_configmap {
            let generated_at = configmap::generated_at(args.at.as_deref(), unix_now())?;
            let namespace = &args.configmap_namespace;
            let written =
                configmap::write(client, namespace, name, &report, generated_at).await?;
            eprintln!(
                "wrote ConfigMap {namespace}/{name}: learned defaults of {} workload(s){}",
                written.workloads,
                match written.dropped {
                    0 => String::new(),
                    n => format!(
                        "; {n} more left out to stay within the ConfigMap size limit (narrow the scope with -n)"
                    ),
                }
            );
        }
        anyhow::Ok(report)
    })?;
    let text = match args.output {
        args::RecommendFormat::Text => render::text(&report),
        args::RecommendFormat::Json => format!("{:#}\n", render::json(&report)),
        args::RecommendFormat::Policy => render::policy(&report)?,
        args::RecommendFormat::Patch => render::patch(&report)?,
    };
    write_stdout(&text)?;
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
