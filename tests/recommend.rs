//! `pytune recommend` against a real Prometheus (backfilled with `promtool tsdb
//! create-blocks-from openmetrics` from usage series generated here) and a stand-in API server:
//! a gunicorn web with 3 workers, a celery worker that was OOM-killed once, a CronJob's runs, and
//! a new Deployment with too few samples. Every output format is compared with tests/recommend/;
//! `PYTUNE_BLESS=1` rewrites them for review.
//!
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package; `.ci/run` installs it): from
//! `PYTUNE_PROMETHEUS` and `PYTUNE_PROMTOOL`, else `PATH`. Without them the test fails when
//! `CI=true` and is skipped with a notice otherwise.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path as UrlPath, Query};
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use serde_json::{Value, json};

use pytune::core::learned::LearnedDocument;
use pytune::webhook::selfsigned::Authority;

/// The end of the window: 2026-01-08T00:00:00Z. Fixed, so the outputs are too.
const END: i64 = 1_767_830_400;
const DAY: i64 = 86_400;
const SCRAPE: i64 = 120;
const MI: f64 = 1024.0 * 1024.0;

fn find(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Both binaries, or `None` (skip) outside CI; in CI their absence fails the test.
fn tools() -> Option<(PathBuf, PathBuf)> {
    match (
        find("PYTUNE_PROMETHEUS", "prometheus"),
        find("PYTUNE_PROMTOOL", "promtool"),
    ) {
        (Some(prometheus), Some(promtool)) => Some((prometheus, promtool)),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "prometheus and promtool are needed (apt-get install prometheus, as .ci/run does), \
             or set PYTUNE_PROMETHEUS and PYTUNE_PROMTOOL to them"
        ),
        _ => {
            println!(
                "recommend: skipped — prometheus/promtool not found (apt-get install prometheus, \
                 or set PYTUNE_PROMETHEUS and PYTUNE_PROMTOOL)"
            );
            None
        }
    }
}

/// One container's usage series: CPU in cores and working set in MiB at each scrape, from `start`
/// to `end`.
struct Series {
    pod: &'static str,
    container: &'static str,
    start: i64,
    end: i64,
    cpu: fn(i64) -> f64,
    memory: fn(i64) -> f64,
    /// Share of CFS periods throttled, when the container has a CPU limit.
    throttled: Option<f64>,
}

/// A repeatable spread in [0, 1) over the scrapes (no randomness: the outputs are golden).
fn spread(i: i64) -> f64 {
    ((i * 7919) % 1000) as f64 / 1000.0
}

fn series() -> Vec<Series> {
    let week = END - 7 * DAY;
    let run = |day: i64| (END - day * DAY + 3600, END - day * DAY + 11 * 3600);
    let (r1, r2, r3) = (run(3), run(2), run(1));
    vec![
        Series {
            pod: "web-7d9f-a",
            container: "web",
            start: week,
            end: END,
            cpu: |i| 0.08 + 0.1 * spread(i),
            memory: |i| {
                if i == 3000 {
                    410.0
                } else {
                    300.0 + 60.0 * spread(i)
                }
            },
            throttled: None,
        },
        Series {
            pod: "web-7d9f-b",
            container: "web",
            start: week,
            end: END,
            cpu: |i| 0.07 + 0.09 * spread(i + 1),
            memory: |i| 290.0 + 90.0 * spread(i + 2),
            throttled: None,
        },
        Series {
            pod: "web-7d9f-a",
            container: "cloud-sql-proxy",
            start: week,
            end: END,
            cpu: |_| 0.01,
            memory: |_| 30.0,
            throttled: None,
        },
        Series {
            pod: "worker-5c4b-a",
            container: "worker",
            start: week,
            end: END,
            cpu: |i| 0.3 + 0.2 * spread(i),
            // Grows until the OOM kill at its 512Mi limit, half-way through the week.
            memory: |i| {
                if i < 2520 {
                    200.0 + 312.0 * i as f64 / 2520.0
                } else {
                    250.0
                }
            },
            throttled: Some(0.2),
        },
        Series {
            pod: "report-29001-x",
            container: "report",
            start: r1.0,
            end: r1.1,
            cpu: |i| 0.9 + 0.1 * spread(i),
            memory: |i| 700.0 + 100.0 * spread(i),
            throttled: None,
        },
        Series {
            pod: "report-29002-x",
            container: "report",
            start: r2.0,
            end: r2.1,
            cpu: |i| 0.85 + 0.1 * spread(i),
            memory: |i| 650.0 + 100.0 * spread(i),
            throttled: None,
        },
        Series {
            pod: "report-29003-x",
            container: "report",
            start: r3.0,
            end: r3.1,
            cpu: |i| 0.8 + 0.1 * spread(i),
            memory: |i| 600.0 + 100.0 * spread(i),
            throttled: None,
        },
        Series {
            pod: "canary-6f8d-a",
            container: "web",
            start: END - 2 * 3600,
            end: END,
            cpu: |_| 0.05,
            memory: |_| 150.0,
            throttled: None,
        },
    ]
}

/// `(scrape index, timestamp)` of each scrape of a series.
fn points(s: &Series) -> impl Iterator<Item = (i64, i64)> + '_ {
    (0..)
        .map(move |i| (i, s.start + i * SCRAPE))
        .take_while(move |(_, t)| *t <= s.end)
}

/// The series as OpenMetrics text, each family's samples together.
fn openmetrics() -> String {
    let all = series();
    let mut text = String::new();
    let labels = |s: &Series| {
        format!(
            r#"namespace="shop",pod="{}",container="{}""#,
            s.pod, s.container
        )
    };
    let _ = writeln!(text, "# TYPE container_cpu_usage_seconds_total counter");
    for s in &all {
        let mut used = 0.0;
        for (i, t) in points(s) {
            used += (s.cpu)(i) * SCRAPE as f64;
            let _ = writeln!(
                text,
                "container_cpu_usage_seconds_total{{{}}} {used} {t}",
                labels(s)
            );
        }
    }
    for (family, share) in [
        ("container_cpu_cfs_periods_total", 1.0),
        ("container_cpu_cfs_throttled_periods_total", 0.0),
    ] {
        let _ = writeln!(text, "# TYPE {family} counter");
        for s in &all {
            let Some(throttled) = s.throttled else {
                continue;
            };
            let per_scrape = 10.0 * SCRAPE as f64; // 100 ms periods
            let share = if share == 1.0 { 1.0 } else { throttled };
            for (i, t) in points(s) {
                let _ = writeln!(
                    text,
                    "{family}{{{}}} {} {t}",
                    labels(s),
                    per_scrape * share * i as f64
                );
            }
        }
    }
    let _ = writeln!(text, "# TYPE container_memory_working_set_bytes gauge");
    for s in &all {
        for (i, t) in points(s) {
            let _ = writeln!(
                text,
                "container_memory_working_set_bytes{{{}}} {} {t}",
                labels(s),
                ((s.memory)(i) * MI).round()
            );
        }
    }
    // kube-state-metrics: the worker's last termination was an OOM kill, from then on.
    let _ = writeln!(
        text,
        "# TYPE kube_pod_container_status_last_terminated_reason gauge"
    );
    for t in (END - 7 * DAY + 2520 * SCRAPE..=END).step_by(SCRAPE as usize) {
        let _ = writeln!(
            text,
            r#"kube_pod_container_status_last_terminated_reason{{namespace="shop",pod="worker-5c4b-a",container="worker",reason="OOMKilled"}} 1 {t}"#
        );
    }
    text.push_str("# EOF\n");
    text
}

struct RunningPrometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for RunningPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(prometheus: &Path, promtool: &Path) -> RunningPrometheus {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("usage.om");
    std::fs::write(&input, openmetrics()).expect("write OpenMetrics");
    let data = dir.path().join("data");
    let output = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    RunningPrometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Waits until Prometheus answers /-/ready (it loads the blocks first).
async fn ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = reqwest::get(format!("{url}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus at {url} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pod(
    name: &str,
    owner: (&str, &str),
    created: &str,
    containers: Value,
    annotations: Value,
) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created,
            "labels": {"pytune.io/runtime": "python"}, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]},
        "spec": {"containers": containers},
    })
}

fn pods() -> Vec<Value> {
    let web = json!([
        {"name": "web", "image": "python:3.12-slim",
         "command": ["gunicorn", "shop.wsgi", "-b", "0.0.0.0:8000"],
         "ports": [{"containerPort": 8000}],
         "env": [{"name": "WEB_CONCURRENCY", "value": "3"}],
         "resources": {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}},
        {"name": "cloud-sql-proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2"}
    ]);
    let record = json!({"pytune.io/injected": "web: env(WEB_CONCURRENCY)"});
    vec![
        pod(
            "web-7d9f-a",
            ("ReplicaSet", "web-7d9f"),
            "2025-12-01T00:00:00Z",
            web.clone(),
            record.clone(),
        ),
        pod(
            "web-7d9f-b",
            ("ReplicaSet", "web-7d9f"),
            "2025-12-01T00:00:01Z",
            web,
            record,
        ),
        pod(
            "worker-5c4b-a",
            ("ReplicaSet", "worker-5c4b"),
            "2025-12-01T00:00:00Z",
            json!([
            {"name": "worker", "image": "python:3.12-slim",
             "command": ["celery", "-A", "shop", "worker", "--concurrency", "4"],
             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                           "limits": {"cpu": "500m", "memory": "512Mi"}}}]),
            json!({}),
        ),
        pod(
            "report-29001-x",
            ("Job", "report-29001"),
            "2026-01-05T01:00:00Z",
            json!([
            {"name": "report", "image": "python:3.12-slim", "command": ["python", "-m", "report"]}]),
            json!({}),
        ),
        pod(
            "report-29002-x",
            ("Job", "report-29002"),
            "2026-01-06T01:00:00Z",
            json!([
            {"name": "report", "image": "python:3.12-slim", "command": ["python", "-m", "report"]}]),
            json!({}),
        ),
        pod(
            "report-29003-x",
            ("Job", "report-29003"),
            "2026-01-07T01:00:00Z",
            json!([
            {"name": "report", "image": "python:3.12-slim", "command": ["python", "-m", "report"]}]),
            json!({}),
        ),
        pod(
            "canary-6f8d-a",
            ("ReplicaSet", "canary-6f8d"),
            "2026-01-07T22:00:00Z",
            json!([
            {"name": "web", "image": "python:3.12-slim",
             "command": ["uvicorn", "shop.asgi:app", "--host", "0.0.0.0"],
             "ports": [{"containerPort": 8000}]}]),
            json!({}),
        ),
    ]
}

/// Owners as the API holds them; names say nothing (the report's owner is not `report`).
fn owner_of(kind: &str, name: &str) -> Option<(&'static str, &'static str)> {
    match (kind, name) {
        ("replicasets", "web-7d9f") => Some(("Deployment", "web")),
        ("replicasets", "worker-5c4b") => Some(("Deployment", "worker")),
        ("replicasets", "canary-6f8d") => Some(("Deployment", "canary")),
        ("jobs", n) if n.starts_with("report-") => Some(("CronJob", "nightly-report")),
        _ => None,
    }
}

/// What the stand-in API server received as ConfigMap applies: `(namespace, name, query, body)`.
type Applied = Arc<Mutex<Vec<(String, String, HashMap<String, String>, Value)>>>;

async fn start_api() -> (
    String,
    axum_server::Handle<std::net::SocketAddr>,
    String,
    Applied,
) {
    let authority = Authority::new("stand-in cluster CA").expect("CA");
    let applied = Applied::default();
    let record = applied.clone();
    let app = axum::Router::new()
        .route("/api/v1/namespaces/{ns}/configmaps/{name}", patch(|UrlPath((ns, name)): UrlPath<(String, String)>, Query(q): Query<HashMap<String, String>>, headers: axum::http::HeaderMap, body: String| async move {
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/apply-patch+yaml"),
                "a server-side apply"
            );
            let object: Value = serde_json::from_str(&body).expect("the apply body is JSON");
            record.lock().expect("lock").push((ns, name, q, object.clone()));
            Json(object)
        }))
        .route("/api/v1/namespaces/{ns}/pods", get(|UrlPath(ns): UrlPath<String>, Query(q): Query<HashMap<String, String>>| async move {
            assert_eq!(q.get("labelSelector").map(String::as_str), Some("pytune.io/runtime=python"));
            let items: Vec<Value> = pods().into_iter().filter(|p| p["metadata"]["namespace"] == ns).collect();
            Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items}))
        }))
        .route("/apis/{group}/v1/namespaces/{ns}/{kind}/{name}", get(|UrlPath((group, ns, kind, name)): UrlPath<(String, String, String, String)>| async move {
            let Some((owner_kind, owner)) = owner_of(&kind, &name) else {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            };
            let object_kind = if kind == "jobs" { "Job" } else { "ReplicaSet" };
            Json(json!({"apiVersion": format!("{group}/v1"), "kind": object_kind,
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [{"apiVersion": format!("{group}/v1"),
                    "kind": owner_kind, "name": owner, "uid": "1", "controller": true}]},
                "spec": {"selector": {}, "template": {"spec": {"containers": []}}}})).into_response()
        }));
    let (addr, handle) = common::fake_api_server(&authority, app).await;
    (
        format!("https://{addr}"),
        handle,
        authority.cert_pem,
        applied,
    )
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/recommend")
        .join(name);
    if std::env::var_os("PYTUNE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("bless");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with PYTUNE_BLESS=1", path.display()));
    if expected != actual {
        let new = path.with_file_name(format!("{name}.new"));
        std::fs::write(&new, actual).expect("write .new");
        panic!(
            "{} differs; the output is in {}",
            path.display(),
            new.display()
        );
    }
}

#[tokio::test]
async fn recommends_from_a_real_prometheus() {
    let Some((prometheus_bin, promtool)) = tools() else {
        return;
    };
    common::setup();
    let prometheus = start_prometheus(&prometheus_bin, &promtool);
    ready(&prometheus.url).await;
    let (api, handle, ca_pem, applied) = start_api().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca_pem).expect("write CA");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {api}\n    certificate-authority: {}\nusers:\n- name: viewer\n  user:\n    token: not-a-secret\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: viewer\n    namespace: shop\ncurrent-context: stand-in\n",
            ca_path.display()
        ),
    )
    .expect("write kubeconfig");

    for (format, file) in [
        ("text", "expected.txt"),
        ("json", "expected.json"),
        ("policy", "expected-policy.yaml"),
        ("patch", "expected-patch.yaml"),
    ] {
        let (kubeconfig, url) = (kubeconfig.clone(), prometheus.url.clone());
        let output = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_pytune"))
                .args([
                    "recommend",
                    "--prometheus",
                    &url,
                    "--at",
                    &END.to_string(),
                    "-o",
                    format,
                ])
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .env_remove("KUBECONFIG")
                .env_remove("PYTUNE_PROMETHEUS_TOKEN")
                .output()
        })
        .await
        .expect("join")
        .expect("pytune runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{format}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        golden(file, &stdout);
        if format == "json" {
            check_json(&serde_json::from_str(&stdout).expect("JSON"));
        }
    }
    assert!(
        applied.lock().expect("lock").is_empty(),
        "no ConfigMap without --write-configmap"
    );

    let url = prometheus.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pytune"))
            .args(["recommend", "--prometheus", &url, "--at", &END.to_string()])
            .args(["-o", "json", "--write-configmap", "learned-defaults"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("PYTUNE_PROMETHEUS_TOKEN")
            .output()
    })
    .await
    .expect("join")
    .expect("pytune runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("wrote ConfigMap pytune-system/learned-defaults"),
        "{stderr}"
    );
    check_applied(&applied.lock().expect("lock"));
    handle.shutdown();
}

/// The ConfigMap `--write-configmap` applied: one server-side apply by pytune, holding a document
/// the core parser reads back, with the recommended resources of the workloads that had enough
/// samples and nothing else.
fn check_applied(applied: &[(String, String, HashMap<String, String>, Value)]) {
    let [(namespace, name, query, object)] = applied else {
        panic!("one apply expected: {applied:?}");
    };
    assert_eq!(
        (namespace.as_str(), name.as_str()),
        ("pytune-system", "learned-defaults")
    );
    assert_eq!(
        query.get("fieldManager").map(String::as_str),
        Some("pytune")
    );
    assert_eq!(object["kind"], "ConfigMap");
    assert_eq!(object["metadata"]["name"], "learned-defaults");
    // Only pytune's own label: the chart's ConfigMap carries Helm's managed-by, which a forced
    // apply of another value would take over.
    assert_eq!(
        object["metadata"]["labels"],
        json!({"pytune.io/learned-defaults": "true"})
    );
    let text = object["data"]["learned.json"]
        .as_str()
        .expect("learned.json");
    let document = LearnedDocument::parse(text).expect("parses back");
    assert_eq!(document.window, "7d");
    assert_eq!(document.generated_at, "2026-01-08T00:00:00Z");
    let names: Vec<(&str, &str, &str)> = document
        .workloads
        .iter()
        .map(|w| (w.namespace.as_str(), w.kind.as_str(), w.name.as_str()))
        .collect();
    assert!(names.contains(&("shop", "Deployment", "web")), "{names:?}");
    assert!(
        !names.iter().any(|(_, _, name)| *name == "canary"),
        "too few samples: not learned ({names:?})"
    );
    let web = document
        .workloads
        .iter()
        .find(|w| w.name == "web")
        .expect("web");
    let values = &web.containers[0].values;
    assert!(
        values.contains_key("resources.requests.cpu")
            && values.keys().all(|k| k.starts_with("resources.")),
        "{values:?}"
    );
    let now = pytune::core::learned::parse_rfc3339(&document.generated_at).expect("time");
    let found = document
        .learned_for(
            "shop",
            "Deployment",
            "web",
            &web.containers[0].name,
            now,
            86_400,
        )
        .expect("fresh values found");
    assert!(
        found
            .provenance
            .contains("(7d window, generated 2026-01-08)")
    );
}

/// What the golden JSON must say, beyond matching: read as behaviour.
fn check_json(report: &Value) {
    let workload = |name: &str| -> &Value {
        report["workloads"]
            .as_array()
            .expect("workloads")
            .iter()
            .find(|w| w["workload"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let web = &workload("Deployment/web")["containers"];
    // The proxy sidecar is not pytune's to size.
    assert_eq!(web.as_array().map(Vec::len), Some(1), "{web:#}");
    assert_eq!(web[0]["status"], "recommended");
    assert_eq!(web[0]["samples"], 4032);
    assert_eq!(web[0]["observed"]["workers"], 3);
    let worker = &workload("Deployment/worker")["containers"][0];
    assert_eq!(worker["observed"]["oomKilledPods"], 1);
    assert_eq!(worker["observed"]["throttledPercent"], 20.0);
    let report_job = &workload("CronJob/nightly-report")["containers"][0];
    assert_eq!(report_job["status"], "recommended");
    assert_eq!(report_job["pods"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        workload("Deployment/canary")["containers"][0]["status"],
        "too-few-samples"
    );
}
