//! envFrom ConfigMap and Secret lookups against a stand-in API server.

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
use pytune::webhook::env_from::{EnvFromResolver, SourceKeys, SourceNames};
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

/// GETs of Secrets: none unless Secret lookups are on.
static SECRET_GETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn secret(Path((namespace, name)): Path<(String, String)>) -> Response {
    SECRET_GETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if namespace == "hooked" && name == "app-secrets" {
        return Json(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"DATABASE_PASSWORD": "c2VjcmV0"}
        }))
        .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        Json(json!({"kind": "Status", "code": 404})),
    )
        .into_response()
}

/// A review whose container takes its variables from ConfigMaps (`cm:`) and Secrets (`secret:`).
fn review_with_env_from(sources: &[&str]) -> Value {
    let mut review = labeled(fixture("pod-create-review.json"));
    review["request"]["object"]["spec"]["containers"][0]["envFrom"] = sources
        .iter()
        .map(|source| match source.split_once(':') {
            Some(("secret", name)) => json!({"secretRef": {"name": name}}),
            _ => json!({"configMapRef": {"name": source.trim_start_matches("cm:")}}),
        })
        .collect();
    review
}

fn planned_pod(review: &Value, keys: SourceKeys) -> Value {
    let mut pod = review["request"]["object"].clone();
    let ctx = Context {
        config_map_keys: keys.config_maps,
        secret_keys: keys.secrets,
        ..Context::default()
    };
    let plan = pytune::core::engine::plan(&pod, &Policy::embedded(), &ctx).expect("plan");
    json_patch::patch(&mut pod, &plan.json_patch()).expect("applies");
    pod
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.map(String::from).into()
}

/// Applies the webhook's answer to the review's Pod.
async fn mutated_by_server(client: &mut Client, review: &Value) -> Value {
    let json = client.post("/mutate", bytes(review)).await.json();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch_of(&json).expect("patch")).expect("applies");
    pod
}

#[tokio::test]
async fn env_from_sources_are_looked_up_before_planning() {
    let authority = Authority::new("test cluster CA").expect("CA");
    let app = axum::Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/configmaps/{name}",
            get(config_map),
        )
        .route("/api/v1/namespaces/{namespace}/secrets/{name}", get(secret));
    let (api, api_handle) = fake_api_server(&authority, app).await;
    let within = std::time::Duration::from_secs(2);
    let names = SourceNames {
        config_maps: set(["app-env", "missing"]),
        secrets: set(["app-secrets", "gone"]),
    };

    // ConfigMaps only (the chart's default): Secrets are never read and stay unknown.
    let config_maps_only = EnvFromResolver::new(kube_client(api, &authority), true, false);
    let keys = config_maps_only.keys("hooked", &names, within).await;
    let config_map_keys: BTreeMap<String, BTreeSet<String>> =
        [("app-env".to_string(), set(["CERT", "DATABASE_URL"]))].into();
    assert_eq!(
        keys.config_maps, config_map_keys,
        "the missing ConfigMap stays unknown"
    );
    assert!(keys.secrets.is_empty());
    assert_eq!(SECRET_GETS.load(std::sync::atomic::Ordering::SeqCst), 0);
    // A source that was read is reused for a while: a scale-up does not GET it per Pod.
    let again = config_maps_only.keys("hooked", &names, within).await;
    assert_eq!(again.config_maps, config_map_keys);
    assert_eq!(APP_ENV_GETS.load(std::sync::atomic::Ordering::SeqCst), 1);

    // With Secrets: their key names, never their values.
    let both = EnvFromResolver::new(kube_client(api, &authority), true, true);
    let keys = both.keys("hooked", &names, within).await;
    let secret_keys: BTreeMap<String, BTreeSet<String>> =
        [("app-secrets".to_string(), set(["DATABASE_PASSWORD"]))].into();
    assert_eq!(
        keys.secrets, secret_keys,
        "the missing Secret stays unknown"
    );
    assert!(
        !format!("{keys:?}").contains("c2VjcmV0"),
        "no value is kept"
    );

    let server = TestServer::start_with(|options| options.env_from = Some(both)).await;
    let mut client = server.connect(&[b"http/1.1"]).await;
    let known = SourceKeys {
        config_maps: config_map_keys,
        secrets: secret_keys,
    };

    // Known sources: planned with their keys, which differs from planning with them unknown.
    for sources in [
        &["app-env"][..],
        &["secret:app-secrets"],
        &["app-env", "secret:app-secrets"],
    ] {
        let review = review_with_env_from(sources);
        let with_keys = planned_pod(&review, known.clone());
        assert_ne!(
            with_keys,
            planned_pod(&review, SourceKeys::default()),
            "{sources:?}"
        );
        assert_eq!(
            mutated_by_server(&mut client, &review).await,
            with_keys,
            "{sources:?}"
        );
    }

    // A missing source stays unknown.
    for sources in [&["missing"][..], &["secret:gone"]] {
        let review = review_with_env_from(sources);
        let unknown = planned_pod(&review, SourceKeys::default());
        assert_eq!(
            mutated_by_server(&mut client, &review).await,
            unknown,
            "{sources:?}"
        );
    }

    server.stop().await;
    api_handle.shutdown();
}
