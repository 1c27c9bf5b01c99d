//! Learned defaults at admission, against a stand-in API server: the webhook watches the
//! ConfigMap `pytune recommend --write-configmap` writes, resolves a new Pod's workload through
//! its ReplicaSet, and plans the Pod with that workload's learned values.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use pytune::core::engine::Context;
use pytune::core::learned::{LearnedDocument, format_rfc3339};
use pytune::core::policy::Policy;
use pytune::webhook::learned::LearnedDefaults;
use pytune::webhook::selfsigned::Authority;
use serde_json::{Value, json};
use tokio::sync::broadcast;

const NAMESPACE: &str = "pytune-system";
const NAME: &str = "pytune-learned";

/// The stand-in's state: the ConfigMap (if any), its resource version, every watch event by
/// version (a watch from a version gets what came after it, as from the API server), the
/// watchers' channel, and the ReplicaSet GETs made.
struct StandIn {
    config_map: Mutex<Option<Value>>,
    version: AtomicUsize,
    history: Mutex<Vec<(usize, String)>>,
    events: broadcast::Sender<(usize, String)>,
    replica_set_gets: AtomicUsize,
}

impl StandIn {
    /// Stores the ConfigMap with `data` (`None`: deletes it) and tells the watchers.
    fn set(&self, data: Option<Value>) {
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        let mut current = self.config_map.lock().expect("lock");
        let (kind, object) = match data {
            Some(data) => {
                let kind = if current.is_some() {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                let object = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": version.to_string()},
                    "data": data,
                });
                *current = Some(object.clone());
                (kind, object)
            }
            None => {
                let mut object = current.take().expect("a ConfigMap to delete");
                object["metadata"]["resourceVersion"] = version.to_string().into();
                ("DELETED", object)
            }
        };
        let line = json!({"type": kind, "object": object}).to_string() + "\n";
        self.history
            .lock()
            .expect("lock")
            .push((version, line.clone()));
        let _ = self.events.send((version, line));
    }
}

/// `GET .../configmaps?fieldSelector=metadata.name=NAME`: the list, or with `watch=true` the
/// stream of changes.
async fn config_maps(
    State(stand_in): State<Arc<StandIn>>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(namespace, NAMESPACE);
    assert_eq!(
        query.get("fieldSelector").map(String::as_str),
        Some("metadata.name=pytune-learned"),
        "only the one ConfigMap is read"
    );
    if query.get("watch").map(String::as_str) == Some("true") {
        let from: usize = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let receiver = stand_in.events.subscribe();
        let missed: Vec<(usize, String)> = stand_in
            .history
            .lock()
            .expect("lock")
            .iter()
            .filter(|(version, _)| *version > from)
            .cloned()
            .collect();
        let last = missed.last().map_or(from, |(version, _)| *version);
        let replay = futures::stream::iter(missed.into_iter().map(|(_, line)| Ok(line)));
        let live = futures::stream::unfold(receiver, move |mut receiver| async move {
            loop {
                let (version, line) = receiver.recv().await.ok()?;
                if version > last {
                    return Some((Ok::<_, std::io::Error>(line), receiver));
                }
            }
        });
        return Body::from_stream(futures::StreamExt::chain(replay, live)).into_response();
    }
    let items: Vec<Value> = stand_in
        .config_map
        .lock()
        .expect("lock")
        .iter()
        .cloned()
        .collect();
    Json(json!({
        "apiVersion": "v1", "kind": "ConfigMapList",
        "metadata": {"resourceVersion": stand_in.version.load(Ordering::SeqCst).to_string()},
        "items": items,
    }))
    .into_response()
}

async fn replica_set(
    State(stand_in): State<Arc<StandIn>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    stand_in.replica_set_gets.fetch_add(1, Ordering::SeqCst);
    if namespace == "shop" && name == "web-5d4f8" {
        return Json(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d1", "controller": true}
            ]},
        }))
        .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})),
    )
        .into_response()
}

/// A document generated `age_days` ago with values for `shop`'s `Deployment/web`, container `c`.
fn document(age_days: i64, cpu: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let text = json!({
        "version": 1,
        "window": "7d",
        "generatedAt": format_rfc3339(now - age_days * 86_400).expect("a time"),
        "workloads": [{
            "namespace": "shop", "kind": "Deployment", "name": "web",
            "containers": [{
                "name": "c",
                "values": {"resources.requests.cpu": cpu, "resources.requests.memory": "300Mi", "resources.limits.memory": "600Mi"},
                "reason": "requests.cpu p95 150m over 7d, 2016 samples",
            }],
        }],
    })
    .to_string();
    json!({"learned.json": text})
}

/// The API server's review of a Pod of `namespace` created by `owner` (a ReplicaSet's name).
fn review(namespace: &str, owner: Option<&str>) -> Value {
    let mut review = labeled(fixture("pod-create-review.json"));
    review["request"]["namespace"] = namespace.into();
    let pod = &mut review["request"]["object"];
    pod["metadata"]["namespace"] = namespace.into();
    if let Some(owner) = owner {
        pod["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": "r1", "controller": true, "blockOwnerDeletion": true}
        ]);
    }
    review
}

/// The Pod as the engine plans it with `learned` values of the document's container, if any.
fn planned(review: &Value, learned: Option<&Value>) -> Value {
    let mut pod = review["request"]["object"].clone();
    let mut ctx = Context::default();
    if let Some(data) = learned {
        let document =
            LearnedDocument::parse(data["learned.json"].as_str().expect("text")).expect("valid");
        let now = i64::MAX / 2;
        let values = document
            .learned_for("shop", "Deployment", "web", "c", now, u64::MAX)
            .expect("values");
        ctx.learned = BTreeMap::from([("c".to_string(), values)]);
    }
    let plan = pytune::core::engine::plan(&pod, &Policy::embedded(), &ctx).expect("plan");
    json_patch::patch(&mut pod, &plan.json_patch()).expect("applies");
    pod
}

async fn mutated(client: &mut Client, review: &Value) -> Value {
    let json = client.post("/mutate", bytes(review)).await.json();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch_of(&json).expect("patch")).expect("applies");
    pod
}

/// Waits until the webhook serves from a document for which `ready` holds.
async fn until(learned: &LearnedDefaults, ready: impl Fn(Option<&LearnedDocument>) -> bool) {
    let delivered = eventually(Duration::from_secs(5), async || {
        ready(learned.document().as_deref())
    })
    .await;
    assert!(delivered, "the watch did not deliver the change");
}

#[tokio::test]
async fn new_pods_of_a_known_workload_start_from_its_learned_values() {
    let authority = Authority::new("test cluster CA").expect("CA");
    let (events, _) = broadcast::channel(16);
    let stand_in = Arc::new(StandIn {
        config_map: Mutex::new(None),
        version: AtomicUsize::new(1),
        history: Mutex::new(Vec::new()),
        events,
        replica_set_gets: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/configmaps",
            get(config_maps),
        )
        .route(
            "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}",
            get(replica_set),
        )
        .with_state(stand_in.clone());
    let (api, api_handle) = fake_api_server(&authority, app).await;
    let learned = LearnedDefaults::new(
        kube_client(api, &authority),
        format!("{NAMESPACE}/{NAME}").parse().expect("source"),
    );
    let server = TestServer::start_with(|options| options.learned = Some(learned.clone())).await;
    let mut client = server.connect(&[b"h2"]).await;
    let web = review("shop", Some("web-5d4f8"));

    // No ConfigMap yet: profile defaults, and no lookup of the Pod's owners.
    assert_eq!(mutated(&mut client, &web).await, planned(&web, None));
    assert_eq!(stand_in.replica_set_gets.load(Ordering::SeqCst), 0);

    // Written: the next Pod of Deployment/web starts from its learned values, with the reason.
    let fresh = document(1, "180m");
    stand_in.set(Some(fresh.clone()));
    until(&learned, |d| d.is_some()).await;
    let pod = mutated(&mut client, &web).await;
    assert_eq!(pod, planned(&web, Some(&fresh)));
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "180m"
    );
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "300Mi"
    );
    // The record on the Pod says the values came from learned defaults, and of which day.
    let record = pod["metadata"]["annotations"]["pytune.io/injected"]
        .as_str()
        .expect("a record");
    let generated = LearnedDocument::parse(fresh["learned.json"].as_str().expect("text"))
        .expect("valid")
        .generated_at;
    assert!(
        record.starts_with(&format!(
            "c[learned:{}]: resources.requests(cpu,memory)",
            &generated[..10]
        )),
        "{record}"
    );
    assert_ne!(planned(&web, Some(&fresh)), planned(&web, None));
    // The ReplicaSet's Deployment is read once for the many Pods of a scale-up.
    assert_eq!(
        mutated(&mut client, &web).await,
        planned(&web, Some(&fresh))
    );
    assert_eq!(stand_in.replica_set_gets.load(Ordering::SeqCst), 1);

    // A user's value is never replaced by a learned one.
    let mut own = web.clone();
    own["request"]["object"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "1"}});
    let pod = mutated(&mut client, &own).await;
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "1"
    );

    // Other workloads and namespaces: nothing learned, and a namespace the document does not
    // name costs no API call.
    let other = review("shop", Some("api-77c9"));
    assert_eq!(mutated(&mut client, &other).await, planned(&other, None));
    let elsewhere = review("hooked", Some("web-5d4f8"));
    let gets = stand_in.replica_set_gets.load(Ordering::SeqCst);
    assert_eq!(
        mutated(&mut client, &elsewhere).await,
        planned(&elsewhere, None)
    );
    assert_eq!(stand_in.replica_set_gets.load(Ordering::SeqCst), gets);
    let bare = review("shop", None);
    assert_eq!(mutated(&mut client, &bare).await, planned(&bare, None));

    // An invalid document is refused and the last valid one kept.
    stand_in.set(Some(document(1, "lots")));
    eventually(Duration::from_secs(5), async || {
        server
            .metrics()
            .await
            .contains(r#"pytune_reloads_total{kind="learned",result="error"} 1"#)
    })
    .await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"pytune_reloads_total{kind="learned",result="error"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("pytune_learned_workloads 1"), "{metrics}");
    assert_eq!(
        mutated(&mut client, &web).await,
        planned(&web, Some(&fresh))
    );

    // Older than the policy's learned.maxAge (14d): profile defaults again.
    stand_in.set(Some(document(15, "190m")));
    until(&learned, |d| {
        d.is_some_and(|d| d.workloads[0].containers[0].values["resources.requests.cpu"] == "190m")
    })
    .await;
    assert_eq!(mutated(&mut client, &web).await, planned(&web, None));

    // Deleted: nothing learned.
    stand_in.set(Some(fresh.clone()));
    until(&learned, |d| {
        d.is_some_and(|d| d.workloads[0].containers[0].values["resources.requests.cpu"] == "180m")
    })
    .await;
    stand_in.set(None);
    until(&learned, |d| d.is_none()).await;
    assert_eq!(mutated(&mut client, &web).await, planned(&web, None));
    assert!(
        server
            .metrics()
            .await
            .contains("pytune_learned_workloads 0")
    );

    server.stop().await;
    api_handle.shutdown();
}
