//! `pytune audit --cluster` against a stand-in API server over TLS that serves recorded objects:
//! all six classes, owner resolution (ReplicaSet → Deployment, Job → CronJob), pagination, and a
//! namespace whose Pods RBAC forbids listing.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use pytune::cli::cluster::{self, Class, ScanOptions, Scope};
use pytune::core::engine::{Context, KubeVersion};
use pytune::core::policy::Policy;
use pytune::webhook::selfsigned::Authority;

const SELECTOR: &str = "pytune.io/runtime=python";

#[derive(Clone, Default)]
struct Recorded {
    pods: Arc<Vec<Value>>,
    /// Every list request's query, to check pagination and the selector.
    lists: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

fn pod(namespace: &str, name: &str, owner: Option<(&str, &str)>, annotations: Value) -> Value {
    let mut metadata = json!({
        "name": name, "namespace": namespace,
        "labels": {"pytune.io/runtime": "python"},
        "annotations": annotations,
    });
    if let Some((kind, owner_name)) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": owner_name,
            "uid": "00000000-0000-4000-8000-000000000000", "controller": true
        }]);
    }
    json!({
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "image": "python:3.13",
                 "command": ["gunicorn", "app:app", "-b", "0.0.0.0:8000"],
                 "ports": [{"containerPort": 8000}]}]}
    })
}

fn recorded_pods(revision: &str) -> Vec<Value> {
    vec![
        pod(
            "shop",
            "web-7d9f-a",
            Some(("ReplicaSet", "web-7d9f")),
            json!({"pytune.io/policy-revision": revision}),
        ),
        pod(
            "shop",
            "web-7d9f-b",
            Some(("ReplicaSet", "web-7d9f")),
            json!({}),
        ),
        pod(
            "shop",
            "worker-5c4b-a",
            Some(("ReplicaSet", "worker-5c4b")),
            json!({"pytune.io/policy-revision": "0123456789"}),
        ),
        pod("shop", "tuned", None, json!({"pytune.io/mode": "off"})),
        pod("shop", "complete", None, json!({"pytune.io/skip": "all"})),
        pod(
            "shop",
            "nightly-29123-x",
            Some(("Job", "nightly-29123")),
            json!({}),
        ),
        pod("legacy", "old-app", None, json!({})),
        pod("trial", "trial-app", None, json!({})),
    ]
}

fn forbidden(what: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{what} is forbidden: User \"auditor\" cannot list it"),
            "reason": "Forbidden", "code": 403}),
        ),
    )
        .into_response()
}

fn list(state: &Recorded, namespace: Option<&str>, query: HashMap<String, String>) -> Response {
    state.lists.lock().expect("lock").push(query.clone());
    if query.get("labelSelector").map(String::as_str) != Some(SELECTOR) {
        return (StatusCode::BAD_REQUEST, "missing label selector").into_response();
    }
    let matching: Vec<&Value> = state
        .pods
        .iter()
        .filter(|p| namespace.is_none_or(|ns| p["metadata"]["namespace"] == ns))
        .collect();
    let start: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(matching.len());
    let next = if end < matching.len() {
        end.to_string()
    } else {
        String::new()
    };
    Json(json!({
        "apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": "42", "continue": next},
        "items": matching[start.min(end)..end],
    }))
    .into_response()
}

async fn start(
    state: Recorded,
) -> (
    kube::Client,
    String,
    axum_server::Handle<std::net::SocketAddr>,
    String,
) {
    let authority = Authority::new("stand-in cluster CA").expect("CA");
    let namespaces: HashMap<&str, Value> = HashMap::from([
        ("shop", json!({"pytune.io/enabled": "true"})),
        ("legacy", json!({})),
        (
            "trial",
            json!({"pytune.io/enabled": "true", "pytune.io/mode": "audit"}),
        ),
        ("locked", json!({"pytune.io/enabled": "true"})),
    ]);
    let app = axum::Router::new()
        .route("/version", get(|| async {
            Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.2", "gitCommit": "",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64"}))
        }))
        .route("/api/v1/pods", get(|State(s): State<Recorded>, Query(q): Query<HashMap<String, String>>| async move { list(&s, None, q) }))
        .route("/api/v1/namespaces/{ns}/pods", get(|State(s): State<Recorded>, Path(ns): Path<String>, Query(q): Query<HashMap<String, String>>| async move {
            if ns == "locked" { forbidden("pods") } else { list(&s, Some(&ns), q) }
        }))
        .route("/api/v1/namespaces/{ns}", get(move |Path(ns): Path<String>| {
            let labels = namespaces.get(ns.as_str()).cloned();
            async move {
                match labels {
                    Some(labels) => Json(json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns, "labels": labels}})).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }))
        .route("/apis/apps/v1/namespaces/{ns}/replicasets/{name}", get(|Path((ns, name)): Path<(String, String)>| async move {
            let deployment = name.rsplit_once('-').map_or(name.clone(), |(d, _)| d.to_string());
            Json(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [{"apiVersion": "apps/v1",
                    "kind": "Deployment", "name": deployment, "uid": "1", "controller": true}]},
                "spec": {"selector": {}}}))
        }))
        .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", get(|Path((ns, name)): Path<(String, String)>| async move {
            let cron = name.rsplit_once('-').map_or(name.clone(), |(c, _)| c.to_string());
            Json(json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [{"apiVersion": "batch/v1",
                    "kind": "CronJob", "name": cron, "uid": "2", "controller": true}]},
                "spec": {"template": {"spec": {"containers": []}}}}))
        }))
        .with_state(state);
    let (addr, handle) = common::fake_api_server(&authority, app).await;
    let client = common::kube_client(addr, &authority);
    let url = format!("https://{addr}");
    (client, url, handle, authority.cert_pem)
}

fn finding<'r>(report: &'r cluster::ClusterReport, workload: &str) -> &'r cluster::WorkloadFinding {
    report
        .workloads
        .iter()
        .find(|w| w.workload == workload)
        .unwrap_or_else(|| panic!("{workload} missing from {:?}", report.workloads))
}

#[tokio::test]
async fn classifies_groups_and_paginates() {
    let policy = Policy::embedded();
    let state = Recorded {
        pods: Arc::new(recorded_pods(&policy.revision)),
        ..Recorded::default()
    };
    let (client, _, handle, _) = start(state.clone()).await;
    let options = ScanOptions {
        namespaces: vec![
            "shop".into(),
            "legacy".into(),
            "trial".into(),
            "locked".into(),
        ],
        scope: Scope::Namespaces,
        own_namespace: "pytune".into(),
        page_size: 2,
    };
    let ctx = Context {
        kubernetes_version: Some(KubeVersion::new(1, 33)),
        ..Context::default()
    };
    let mut progress = Vec::new();
    let report = cluster::scan(client, &options, &policy, &ctx, |line| {
        progress.push(line.to_string())
    })
    .await;

    assert_eq!(report.pods_scanned, 8);
    let web = finding(&report, "Deployment/web");
    assert_eq!(web.pods.get(Class::Mutated.name()), Some(&1));
    assert_eq!(web.pods.get(Class::Missed.name()), Some(&1));
    assert_eq!(
        web.fix.as_deref(),
        Some("kubectl rollout restart deployment/web -n shop")
    );
    assert!(web.would_change > 0);
    let worker = finding(&report, "Deployment/worker");
    assert_eq!(worker.pods.get(Class::Stale.name()), Some(&1));
    assert!(
        worker
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("0123456789"))
    );
    assert_eq!(
        finding(&report, "Pod/tuned")
            .pods
            .get(Class::OptedOut.name()),
        Some(&1)
    );
    assert_eq!(
        finding(&report, "Pod/complete")
            .pods
            .get(Class::Complete.name()),
        Some(&1)
    );
    assert_eq!(
        finding(&report, "CronJob/nightly")
            .pods
            .get(Class::Missed.name()),
        Some(&1)
    );
    let legacy = finding(&report, "Pod/old-app");
    assert_eq!(legacy.pods.get(Class::OutOfScope.name()), Some(&1));
    assert!(legacy.fix.is_none());
    assert!(
        finding(&report, "Pod/trial-app")
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("audit"))
    );

    // The forbidden namespace is an error; everything else is still reported.
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("namespace locked") && report.errors[0].contains("403"));
    assert!(report.needs_action());

    // shop has 6 Pods: three pages of 2, with the continue token passed along.
    let lists = state.lists.lock().expect("lock").clone();
    let shop_pages: Vec<_> = lists
        .iter()
        .filter(|q| q.get("limit").map(String::as_str) == Some("2"))
        .collect();
    assert!(
        shop_pages
            .iter()
            .any(|q| q.get("continue").map(String::as_str) == Some("2"))
    );
    assert!(
        shop_pages
            .iter()
            .any(|q| q.get("continue").map(String::as_str) == Some("4"))
    );
    assert!(
        progress
            .iter()
            .any(|line| line.contains("scanned 4 Pod(s) in 2 page(s)")),
        "{progress:?}"
    );

    let text = cluster::render_text(&report);
    assert!(
        text.contains("Deployment/web -n shop: 1 missed, 1 mutated"),
        "{text}"
    );
    assert!(
        text.contains("fix: kubectl rollout restart deployment/web -n shop"),
        "{text}"
    );
    handle.shutdown();
}

#[tokio::test]
async fn all_namespaces_in_cluster_scope_through_the_cli() {
    let policy = Policy::embedded();
    let mut pods = recorded_pods(&policy.revision);
    pods.push(pod("kube-system", "system-python", None, json!({})));
    let state = Recorded {
        pods: Arc::new(pods),
        ..Recorded::default()
    };
    let (_, url, handle, ca_pem) = start(state).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca_pem).expect("write CA");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: auditor\n  user:\n    token: not-a-secret\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: auditor\n    namespace: shop\ncurrent-context: stand-in\n",
            ca_path.display()
        ),
    )
    .expect("write kubeconfig");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pytune"))
            .args([
                "audit",
                "--cluster",
                "-A",
                "--scope",
                "cluster",
                "--exit-code",
                "--output",
                "json",
                "--page-size",
                "3",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env_remove("KUBECONFIG")
            .output()
    })
    .await
    .expect("join")
    .expect("pytune runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["podsScanned"], 9);
    // In cluster scope the unlabeled namespace is served, kube-system never is.
    assert_eq!(report["summary"]["missed"], 3, "{report:#}");
    let system = report["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .find(|w| w["namespace"] == "kube-system")
        .expect("kube-system workload");
    assert_eq!(system["pods"]["out-of-scope"], 1);
    assert!(stderr.contains("scanned 3 Pod(s) in 1 page(s)"), "{stderr}");
    handle.shutdown();
}
