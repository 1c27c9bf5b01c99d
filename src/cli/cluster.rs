//! `pytune audit --cluster`: what pytune did — and missed — in a live cluster. Read-only: it lists
//! Python-labeled Pods page by page, reads namespaces and owners, and classifies each Pod with the
//! same engine the webhook runs. Memory stays bounded by one page plus one summary per workload.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use serde::Serialize;
use serde_json::Value;

use super::owners::{pod_workload, resolver};
use crate::cluster::pods::{ListedPod, PodPages};
use crate::cluster::short;
use crate::core::engine::{self, Context, Decision, annotations};
use crate::core::policy::Policy;

/// Which namespaces pytune serves, as the chart's `scope` value says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Only namespaces labeled `pytune.io/enabled=true`.
    Namespaces,
    /// Every namespace but the system ones, pytune's own and those labeled `pytune.io/enabled=false`.
    Cluster,
}

/// Namespaces the chart never serves in cluster scope.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
pub const ENABLED_LABEL: &str = "pytune.io/enabled";
pub const MODE_LABEL: &str = "pytune.io/mode";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Mutated under the current policy revision.
    Mutated,
    /// Mutated under an older revision.
    Stale,
    /// In scope and labeled, never mutated, and pytune would change it now.
    Missed,
    /// In scope, never mutated, and already complete: nothing to add.
    Complete,
    OptedOut,
    OutOfScope,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Mutated,
        Class::Stale,
        Class::Missed,
        Class::Complete,
        Class::OptedOut,
        Class::OutOfScope,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Mutated => "mutated",
            Class::Stale => "stale",
            Class::Missed => "missed",
            Class::Complete => "complete",
            Class::OptedOut => "opted-out",
            Class::OutOfScope => "out-of-scope",
        }
    }
}

/// What pytune knows of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    Served,
    /// Served in audit mode: warnings only, so its Pods are never mutated.
    Audit,
    NotServed(String),
}

/// Whether pytune serves a namespace with these labels (`None`: labels unreadable).
pub fn namespace_scope(
    scope: Scope,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
    own_namespace: &str,
) -> NamespaceScope {
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    let served = match scope {
        Scope::Namespaces => {
            if label(ENABLED_LABEL) == Some("true") {
                Ok(())
            } else {
                Err(format!("namespace not labeled {ENABLED_LABEL}=true"))
            }
        }
        Scope::Cluster => {
            if SYSTEM_NAMESPACES.contains(&name) || name == own_namespace {
                Err("system or pytune's own namespace".to_string())
            } else if label(ENABLED_LABEL) == Some("false") {
                Err(format!("namespace labeled {ENABLED_LABEL}=false"))
            } else {
                Ok(())
            }
        }
    };
    match served {
        Err(why) => NamespaceScope::NotServed(why),
        Ok(()) if label(MODE_LABEL) == Some("audit") => NamespaceScope::Audit,
        Ok(()) => NamespaceScope::Served,
    }
}

/// The class of one Pod, and how many values pytune would add to it now.
pub fn classify(
    pod: &Value,
    scope: &NamespaceScope,
    policy: &Policy,
    ctx: &Context,
) -> Result<(Class, usize, Option<String>), engine::EngineError> {
    let plan = engine::plan(pod, policy, ctx)?;
    let changes = plan
        .changes
        .iter()
        .filter(|c| c.feature != engine::Feature::Record)
        .count();
    if let Decision::OptedOut(reason) = &plan.decision {
        return Ok((Class::OptedOut, 0, Some(reason.clone())));
    }
    match scope {
        NamespaceScope::NotServed(why) => {
            return Ok((Class::OutOfScope, changes, Some(why.clone())));
        }
        NamespaceScope::Audit => {
            return Ok((
                Class::OutOfScope,
                changes,
                Some(format!("namespace labeled {MODE_LABEL}=audit")),
            ));
        }
        NamespaceScope::Served => {}
    }
    let revision = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::POLICY_REVISION))
        .and_then(Value::as_str);
    Ok(match revision {
        Some(revision) if revision == policy.revision => (Class::Mutated, changes, None),
        Some(revision) => (
            Class::Stale,
            changes,
            Some(format!("revision {revision}, current {}", policy.revision)),
        ),
        None if changes > 0 => (Class::Missed, changes, None),
        None => (Class::Complete, 0, None),
    })
}

/// One owning workload and its Pods, by class.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadFinding {
    pub namespace: String,
    /// `Deployment/web`, `CronJob/nightly`, or `Pod/name` for a bare Pod.
    pub workload: String,
    pub pods: BTreeMap<&'static str, usize>,
    /// Values pytune would add, summed over the workload's Pods.
    pub would_change: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The command that makes pytune see the workload's Pods again, when some are missed or stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub workloads: Vec<WorkloadFinding>,
    pub errors: Vec<String>,
    pub pods_scanned: usize,
    pub policy_revision: String,
}

impl ClusterReport {
    fn count(&self, class: Class) -> usize {
        self.workloads
            .iter()
            .map(|w| w.pods.get(class.name()).copied().unwrap_or(0))
            .sum()
    }

    /// Whether anything would change: missed or stale Pods.
    pub fn needs_action(&self) -> bool {
        self.count(Class::Missed) + self.count(Class::Stale) > 0
    }
}

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Namespaces to scan; empty means every namespace.
    pub namespaces: Vec<String>,
    pub scope: Scope,
    /// The namespace pytune itself runs in (never served in cluster scope).
    pub own_namespace: String,
    pub page_size: u32,
}

fn fix_for(namespace: &str, workload: &str) -> Option<String> {
    let (kind, name) = workload.split_once('/')?;
    Some(match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => format!(
            "kubectl rollout restart {}/{name} -n {namespace}",
            kind.to_ascii_lowercase()
        ),
        "CronJob" | "Job" => format!("the next run of {workload} is mutated; nothing to restart"),
        _ => format!(
            "recreate {workload} in {namespace} (delete it and let its owner or you create it again)"
        ),
    })
}

/// Scans the cluster. `progress` receives a line after each page of a long scan.
pub async fn scan(
    client: kube::Client,
    options: &ScanOptions,
    policy: &Policy,
    ctx: &Context,
    mut progress: impl FnMut(&str),
) -> ClusterReport {
    let mut report = ClusterReport {
        policy_revision: policy.revision.clone(),
        ..ClusterReport::default()
    };
    let selector = format!("{}={}", policy.selector.label, policy.selector.value);
    let namespaces_api: Api<Namespace> = Api::all(client.clone());
    let mut scopes: HashMap<String, NamespaceScope> = HashMap::new();
    let owners = resolver(client.clone());
    let mut findings: BTreeMap<(String, String), WorkloadFinding> = BTreeMap::new();
    let mut listing = PodPages::new(
        client.clone(),
        &options.namespaces,
        selector,
        options.page_size,
    );
    let mut pages = 0;
    while let Some(page) = listing.next().await {
        let listed = match page {
            Ok(listed) => listed,
            Err(err) => {
                report.errors.push(err);
                continue;
            }
        };
        pages += 1;
        for ListedPod {
            namespace,
            object: pod,
        } in listed
        {
            report.pods_scanned += 1;
            if !scopes.contains_key(&namespace) {
                // In cluster scope, system namespaces and pytune's own are never served,
                // whatever their labels: no need to read them.
                let by_name =
                    namespace_scope(options.scope, &namespace, None, &options.own_namespace);
                let decided = options.scope == Scope::Cluster
                    && matches!(by_name, NamespaceScope::NotServed(_));
                let scope = if decided {
                    by_name
                } else {
                    match namespaces_api.get(&namespace).await {
                        Ok(ns) => namespace_scope(
                            options.scope,
                            &namespace,
                            ns.metadata.labels.as_ref(),
                            &options.own_namespace,
                        ),
                        Err(err) => {
                            report.errors.push(format!(
                                "cannot read namespace {namespace} (scope assumed served): {}",
                                short(&err)
                            ));
                            NamespaceScope::Served
                        }
                    }
                };
                scopes.insert(namespace.clone(), scope);
            }
            let scope = &scopes[&namespace];
            let (class, changes, reason) = match classify(&pod, scope, policy, ctx) {
                Ok(found) => found,
                Err(err) => {
                    report.errors.push(format!(
                        "Pod {namespace}/{}: {err}",
                        pod.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or("(unnamed)")
                    ));
                    continue;
                }
            };
            let workload = pod_workload(&owners, &namespace, &pod, &mut report.errors).await;
            let finding = findings
                .entry((namespace.clone(), workload.clone()))
                .or_insert_with(|| WorkloadFinding {
                    namespace: namespace.clone(),
                    workload: workload.clone(),
                    pods: BTreeMap::new(),
                    would_change: 0,
                    reason: None,
                    fix: None,
                });
            *finding.pods.entry(class.name()).or_insert(0) += 1;
            finding.would_change += changes;
            if finding.reason.is_none() {
                finding.reason = reason;
            }
            if matches!(class, Class::Missed | Class::Stale) && finding.fix.is_none() {
                finding.fix = fix_for(&namespace, &workload);
            }
        }
        progress(&format!(
            "pytune: scanned {} Pod(s) in {pages} page(s)…",
            report.pods_scanned
        ));
    }
    report.workloads = findings.into_values().collect();
    report
}

/// The JSON cluster report (schema in docs/audit.md).
pub fn render_json(report: &ClusterReport) -> Value {
    let mut summary = serde_json::Map::new();
    for class in Class::ALL {
        summary.insert(class.name().to_string(), Value::from(report.count(class)));
    }
    serde_json::json!({
        "schemaVersion": crate::cli::audit::JSON_SCHEMA_VERSION,
        "policyRevision": report.policy_revision,
        "podsScanned": report.pods_scanned,
        "workloads": report.workloads,
        "errors": report.errors,
        "summary": summary,
    })
}

/// The readable cluster report.
pub fn render_text(report: &ClusterReport) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for finding in &report.workloads {
        let pods: Vec<String> = finding
            .pods
            .iter()
            .map(|(class, count)| format!("{count} {class}"))
            .collect();
        let _ = write!(
            text,
            "{} -n {}: {}",
            finding.workload,
            finding.namespace,
            pods.join(", ")
        );
        if finding.would_change > 0 {
            let _ = write!(text, "; {} value(s) to add", finding.would_change);
        }
        if let Some(reason) = &finding.reason {
            let _ = write!(text, " ({reason})");
        }
        text.push('\n');
        if let Some(fix) = &finding.fix {
            let _ = writeln!(text, "  fix: {fix}");
        }
    }
    for error in &report.errors {
        let _ = writeln!(text, "error: {error}");
    }
    let totals: Vec<String> = Class::ALL
        .into_iter()
        .map(|class| format!("{} {}", report.count(class), class.name()))
        .collect();
    let _ = writeln!(
        text,
        "{} Pod(s) in {} workload(s) under policy {}: {}; {} error(s)",
        report.pods_scanned,
        report.workloads.len(),
        report.policy_revision,
        totals.join(", "),
        report.errors.len()
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn namespace_scopes_follow_the_chart() {
        let enabled = labels(&[(ENABLED_LABEL, "true")]);
        let disabled = labels(&[(ENABLED_LABEL, "false")]);
        let audit = labels(&[(ENABLED_LABEL, "true"), (MODE_LABEL, "audit")]);
        assert_eq!(
            namespace_scope(Scope::Namespaces, "a", Some(&enabled), "pytune"),
            NamespaceScope::Served
        );
        assert!(matches!(
            namespace_scope(Scope::Namespaces, "a", None, "pytune"),
            NamespaceScope::NotServed(_)
        ));
        assert_eq!(
            namespace_scope(Scope::Namespaces, "a", Some(&audit), "pytune"),
            NamespaceScope::Audit
        );
        assert_eq!(
            namespace_scope(Scope::Cluster, "a", None, "pytune"),
            NamespaceScope::Served
        );
        assert!(matches!(
            namespace_scope(Scope::Cluster, "kube-system", None, "pytune"),
            NamespaceScope::NotServed(_)
        ));
        assert!(matches!(
            namespace_scope(Scope::Cluster, "pytune", None, "pytune"),
            NamespaceScope::NotServed(_)
        ));
        assert!(matches!(
            namespace_scope(Scope::Cluster, "a", Some(&disabled), "pytune"),
            NamespaceScope::NotServed(_)
        ));
    }

    #[test]
    fn pods_are_classified() {
        let policy = Policy::embedded();
        let ctx = Context::default();
        let pod = |annotations: Value| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "labels": {"pytune.io/runtime": "python"}, "annotations": annotations},
                   "spec": {"containers": [{"name": "a", "image": "python"}]}})
        };
        let served = NamespaceScope::Served;
        let class = |p: &Value, s: &NamespaceScope| classify(p, s, &policy, &ctx).expect("valid").0;
        assert_eq!(class(&pod(json!({})), &served), Class::Missed);
        assert_eq!(
            class(&pod(json!({"pytune.io/mode": "off"})), &served),
            Class::OptedOut
        );
        assert_eq!(
            class(&pod(json!({"pytune.io/policy-revision": "old"})), &served),
            Class::Stale
        );
        assert_eq!(
            class(
                &pod(json!({"pytune.io/policy-revision": policy.revision.clone()})),
                &served
            ),
            Class::Mutated
        );
        assert_eq!(
            class(&pod(json!({})), &NamespaceScope::Audit),
            Class::OutOfScope
        );
        assert_eq!(
            class(&pod(json!({})), &NamespaceScope::NotServed("x".into())),
            Class::OutOfScope
        );
    }

    #[test]
    fn fixes_name_the_command() {
        assert_eq!(
            fix_for("shop", "Deployment/web").as_deref(),
            Some("kubectl rollout restart deployment/web -n shop")
        );
        assert!(
            fix_for("shop", "Pod/x")
                .expect("fix")
                .starts_with("recreate Pod/x")
        );
    }
}
