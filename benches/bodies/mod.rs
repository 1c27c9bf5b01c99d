//! The review bodies the benchmarks send: the API server's own Pod CREATE (shared fixtures),
//! labeled so pytune plans for it, as a gunicorn web service, and as a large Pod.
#![allow(dead_code)]

use serde_json::{Value, json};

/// A review exactly as the API server sent it.
pub fn fixture(name: &str) -> Value {
    let text = match name {
        "pod-create-review.json" => {
            include_str!("../../tests/fixtures/apiserver-v1.36/pod-create-review.json")
        }
        "pod-generatename-create-review.json" => {
            include_str!("../../tests/fixtures/apiserver-v1.36/pod-generatename-create-review.json")
        }
        "pod-dryrun-create-review.json" => {
            include_str!("../../tests/fixtures/apiserver-v1.36/pod-dryrun-create-review.json")
        }
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixture parses")
}

/// The review with its Pod labeled as a Python service.
pub fn labeled(mut review: Value) -> Value {
    review["request"]["object"]["metadata"]["labels"]["pytune.io/runtime"] = json!("python");
    review
}

/// The labeled review, its container running gunicorn on a declared port (probes planned too).
pub fn web_service(review: Value) -> Value {
    let mut review = labeled(review);
    let container = &mut review["request"]["object"]["spec"]["containers"][0];
    container["command"] = json!(["gunicorn", "app.wsgi", "-b", "0.0.0.0:8000"]);
    container["ports"] = json!([{"containerPort": 8000}]);
    review
}

/// The web service with four containers of 60 variables each.
pub fn large(review: Value) -> Value {
    let mut review = web_service(review);
    let env: Vec<Value> = (0..60)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
        .collect();
    let spec = &mut review["request"]["object"]["spec"];
    let template = spec["containers"][0].clone();
    let mut containers = Vec::new();
    for name in ["web", "worker", "beat", "istio-proxy"] {
        let mut container = template.clone();
        container["name"] = json!(name);
        container["env"] = Value::Array(env.clone());
        containers.push(container);
    }
    containers[1]["command"] = json!(["celery", "-A", "app", "worker", "-c", "2"]);
    containers[2]["command"] = json!(["celery", "-A", "app", "beat"]);
    spec["containers"] = Value::Array(containers);
    review
}

/// The Pod inside a review.
pub fn object(review: &Value) -> Value {
    review["request"]["object"].clone()
}

/// Named bodies, as the benchmarks report them.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let create = || fixture("pod-create-review.json");
    let bodies = [
        ("labeled", labeled(create())),
        (
            "labeled-generatename",
            labeled(fixture("pod-generatename-create-review.json")),
        ),
        (
            "labeled-dryrun",
            labeled(fixture("pod-dryrun-create-review.json")),
        ),
        ("web-service", web_service(create())),
        ("large", large(create())),
        ("unlabeled", create()),
    ];
    bodies
        .into_iter()
        .map(|(name, review)| (name, serde_json::to_vec(&review).expect("JSON")))
        .collect()
}
