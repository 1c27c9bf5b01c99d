//! The record pytune leaves on a Pod stays small whatever the Pod, and never pushes the Pod's
//! annotations past the API server's limit (which would make the API server reject the Pod).

use serde_json::{Value, json};

use pytune::core::engine::record::{RECORD_BUDGET, TOTAL_ANNOTATIONS_LIMIT};
use pytune::core::engine::{self, Context, annotations};
use pytune::core::policy::Policy;

fn labeled_pod(containers: usize, annotations: Value) -> Value {
    let containers: Vec<Value> = (0..containers)
        .map(|i| {
            json!({
                "name": format!("app-{i}"),
                "image": "python:3.13-slim",
                "command": ["gunicorn", "app.wsgi", "-b", "0.0.0.0:8000"],
                "ports": [{"containerPort": 8000}],
            })
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "big",
            "labels": {"pytune.io/runtime": "python"},
            "annotations": annotations,
        },
        "spec": {"containers": containers},
    })
}

/// The Pod with pytune's patch applied.
fn mutated(pod: &Value) -> (Value, engine::Plan) {
    let plan = engine::plan(pod, &Policy::embedded(), &Context::default()).expect("a plan");
    let mut mutated = pod.clone();
    json_patch::patch(&mut mutated, &plan.json_patch()).expect("the patch applies");
    (mutated, plan)
}

fn annotations_size(pod: &Value) -> usize {
    pod["metadata"]["annotations"]
        .as_object()
        .map(|values| {
            values
                .iter()
                .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_pod_of_200_containers_gets_a_record_within_budget() {
    let (pod, plan) = mutated(&labeled_pod(200, json!({})));
    let record = pod["metadata"]["annotations"][annotations::INJECTED]
        .as_str()
        .expect("a record");
    assert!(record.len() <= RECORD_BUDGET, "{} bytes", record.len());
    assert!(
        plan.changes.len() > 2000,
        "every container is still changed"
    );
}

#[test]
fn annotations_near_the_limit_get_less_record_and_never_pass_it() {
    let policy = Policy::embedded();
    // Room left for pytune: from none at all to more than the whole record needs.
    for room in [0, 20, 40, 80, 200, 2000] {
        let filler = TOTAL_ANNOTATIONS_LIMIT - room - "team".len();
        let pod = labeled_pod(3, json!({"team": "x".repeat(filler)}));
        let (mutated, plan) = mutated(&pod);
        assert!(
            annotations_size(&mutated) <= TOTAL_ANNOTATIONS_LIMIT,
            "room {room}: annotations total {} bytes",
            annotations_size(&mutated)
        );
        let values = &mutated["metadata"]["annotations"];
        let has_revision = values[annotations::POLICY_REVISION] == json!(policy.revision);
        let has_record = values[annotations::INJECTED].is_string();
        let revision_size = annotations::POLICY_REVISION.len() + policy.revision.len();
        assert_eq!(has_revision, room >= revision_size, "room {room}");
        if room < 200 {
            assert!(
                plan.warning_texts()
                    .iter()
                    .any(|w| w.contains("256 KiB limit")),
                "room {room}: the user is told: {:?}",
                plan.warning_texts()
            );
        } else {
            assert!(has_record, "room {room}: a record fits");
        }
        // The values themselves are added whatever happens to the record.
        assert!(
            mutated["spec"]["containers"][0]["resources"]["requests"]["cpu"].is_string(),
            "room {room}"
        );
    }
}
