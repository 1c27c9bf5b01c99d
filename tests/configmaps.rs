//! envFrom ConfigMap lookups against a stand-in API server.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use pytune::core::engine::Context;
use pytune::core::policy::Policy;
use pytune::webhook::configmaps::ConfigMapResolver;
use pytune::webhook::selfsigned::Authority;
use serde_json::{Value, json};

/// GETs of the found ConfigMap, to see the cache at work.
static APP_ENV_GETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn config_map(Path((namespace, name)): Path<(String, String)>) -> Response {
    if namespace == "hooked" && name == "app-env" {
        APP_ENV_GETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return Json(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"DATABASE_URL": "postgres://db"},
            "binaryData": {"CERT": "AA=="}
        }))
        .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("configmaps \"{name}\" not found"), "reason": "NotFound",
            "details": {"name": name, "kind": "configmaps"}, "code": 404
        })),
    )
        .into_response()
}

fn review_with_env_from(names: &[&str]) -> Value {
    let mut review = labeled(fixture("pod-create-review.json"));
    review["request"]["object"]["spec"]["containers"][0]["envFrom"] = names
        .iter()
        .map(|name| json!({"configMapRef": {"name": name}}))
        .collect();
    review
}

fn planned_pod(review: &Value, keys: BTreeMap<String, BTreeSet<String>>) -> Value {
    let mut pod = review["request"]["object"].clone();
    let ctx = Context {
        config_map_keys: keys,
        ..Context::default()
    };
    let plan = pytune::core::engine::plan(&pod, &Policy::embedded(), &ctx).expect("plan");
    json_patch::patch(&mut pod, &plan.json_patch()).expect("applies");
    pod
}

#[tokio::test]
async fn env_from_config_maps_are_looked_up_before_planning() {
    let authority = Authority::new("test cluster CA").expect("CA");
    let app = axum::Router::new().route(
        "/api/v1/namespaces/{namespace}/configmaps/{name}",
        get(config_map),
    );
    let (api, api_handle) = fake_api_server(&authority, app).await;
    let resolver = ConfigMapResolver::new(kube_client(api, &authority));

    let names: BTreeSet<String> = ["app-env", "missing"].map(String::from).into();
    let keys = resolver
        .keys("hooked", &names, std::time::Duration::from_secs(2))
        .await;
    let expected_keys: BTreeMap<String, BTreeSet<String>> = [(
        "app-env".to_string(),
        ["CERT", "DATABASE_URL"].map(String::from).into(),
    )]
    .into();
    assert_eq!(keys, expected_keys, "the missing ConfigMap stays unknown");
    // A ConfigMap that was read is reused for a while: a scale-up does not GET it per Pod.
    let again = resolver
        .keys("hooked", &names, std::time::Duration::from_secs(2))
        .await;
    assert_eq!(again, expected_keys);
    assert_eq!(APP_ENV_GETS.load(std::sync::atomic::Ordering::SeqCst), 1);

    let server = TestServer::start_with(|options| options.config_maps = Some(resolver)).await;
    let mut client = server.connect(&[b"http/1.1"]).await;

    // A known ConfigMap: planned with its keys, which differs from planning with it unknown.
    let review = review_with_env_from(&["app-env"]);
    let known = planned_pod(&review, expected_keys.clone());
    let unknown = planned_pod(&review, BTreeMap::new());
    assert_ne!(known, unknown, "knowing the keys should change the plan");
    let json = client.post("/mutate", bytes(&review)).await.json();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch_of(&json).expect("patch")).expect("applies");
    assert_eq!(pod, known);

    // A missing ConfigMap stays unknown.
    let review = review_with_env_from(&["missing"]);
    let json = client.post("/mutate", bytes(&review)).await.json();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch_of(&json).expect("patch")).expect("applies");
    assert_eq!(pod, planned_pod(&review, BTreeMap::new()));

    server.stop().await;
    api_handle.shutdown();
}
