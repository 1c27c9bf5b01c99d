//! The admission layer over the API server's own review bodies.

use super::*;
use serde_json::Value;

use std::collections::BTreeSet;

use crate::webhook::env_from::SourceNames;

use crate::core::engine::PatchValue;

const CREATE: &str = include_str!("../../../tests/fixtures/apiserver-v1.36/pod-create-review.json");
const DRY_RUN: &str =
    include_str!("../../../tests/fixtures/apiserver-v1.36/pod-dryrun-create-review.json");
const GENERATE_NAME: &str =
    include_str!("../../../tests/fixtures/apiserver-v1.36/pod-generatename-create-review.json");

fn labeled(text: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(text).expect("fixture is JSON");
    review["request"]["object"]["metadata"]["labels"]["pytune.io/runtime"] = "python".into();
    serde_json::to_vec(&review).expect("serializable")
}

fn run(body: &[u8], mode: Mode) -> Outcome {
    review(body, &Policy::embedded(), &Context::default(), mode).expect("a review")
}

fn response_json(outcome: &Outcome) -> Value {
    let body = outcome.to_json().expect("the answer serializes");
    serde_json::from_slice(&body).expect("response is JSON")
}

fn decoded_patch(response: &Value) -> json_patch::Patch {
    use base64::Engine as _;
    let text = response["response"]["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64");
    serde_json::from_slice(&bytes).expect("patch is a JSON patch")
}

fn object_of(text: &str) -> Value {
    let review: Value = serde_json::from_str(text).expect("fixture is JSON");
    review["request"]["object"].clone()
}

#[test]
fn enforce_patches_a_labeled_pod_as_the_engine_plans() {
    let body = labeled(CREATE);
    let outcome = run(&body, Mode::Enforce);
    let json = response_json(&outcome);
    assert_eq!(json["apiVersion"], API_VERSION);
    assert_eq!(json["kind"], KIND);
    assert_eq!(
        json["response"]["uid"],
        "936b7fbd-aa7f-4c7b-9350-aaf4d8e29331"
    );
    assert_eq!(json["response"]["allowed"], true);
    assert_eq!(json["response"]["patchType"], "JSONPatch");
    assert_eq!(outcome.record.verdict, Verdict::Patched);

    let request: Value = serde_json::from_slice(&body).expect("JSON");
    let mut object = request["request"]["object"].clone();
    let plan = engine::plan(&object, &Policy::embedded(), &Context::default()).expect("plan");
    // The log's count is of the values added: the two record annotations are not among them.
    let values = plan
        .changes
        .iter()
        .filter(|c| c.feature != Feature::Record)
        .count();
    assert!(values > 0);
    assert_eq!(outcome.record.change_count(), values);
    assert_eq!(plan.changes.len(), values + 2);
    let mut expected = object.clone();
    json_patch::patch(&mut expected, &plan.json_patch()).expect("engine patch applies");
    json_patch::patch(&mut object, &decoded_patch(&json)).expect("response patch applies");
    assert_eq!(object, expected);
}

#[test]
fn audit_reports_changes_as_warnings_without_a_patch() {
    let outcome = run(&labeled(CREATE), Mode::Audit);
    let json = response_json(&outcome);
    assert!(json["response"].get("patch").is_none());
    assert!(json["response"].get("patchType").is_none());
    assert_eq!(outcome.record.verdict, Verdict::Audited);
    let warnings = outcome.response.warnings.clone().unwrap_or_default();
    assert!(!warnings.is_empty());
    assert!(warnings.iter().any(|w| w.starts_with(AUDIT_PREFIX)));
    assert!(
        warnings
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS)
    );
}

#[test]
fn dry_run_gets_the_same_answer() {
    let dry = run(&labeled(DRY_RUN), Mode::Enforce);
    assert!(dry.record.dry_run);
    let dry_json = response_json(&dry);
    let mut wet_review: Value = serde_json::from_slice(&labeled(DRY_RUN)).expect("JSON");
    wet_review["request"]["dryRun"] = false.into();
    let wet = run(
        &serde_json::to_vec(&wet_review).expect("JSON"),
        Mode::Enforce,
    );
    assert!(!wet.record.dry_run);
    assert_eq!(dry_json, response_json(&wet));
}

#[test]
fn generate_name_is_recorded_as_the_pod() {
    let outcome = run(&labeled(GENERATE_NAME), Mode::Enforce);
    assert_eq!(outcome.record.verdict, Verdict::Patched);
    let generate_name = object_of(GENERATE_NAME)["metadata"]["generateName"].clone();
    assert_eq!(outcome.record.pod.as_deref(), generate_name.as_str());
}

#[test]
fn unlabeled_pods_are_allowed_without_a_patch() {
    let outcome = run(CREATE.as_bytes(), Mode::Enforce);
    let json = response_json(&outcome);
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    assert_eq!(outcome.record.verdict, Verdict::Skipped);
}

#[test]
fn other_kinds_and_operations_are_skipped() {
    let mut review: Value = serde_json::from_slice(&labeled(CREATE)).expect("JSON");
    review["request"]["kind"] =
        serde_json::json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let outcome = run(&serde_json::to_vec(&review).expect("JSON"), Mode::Enforce);
    assert_eq!(outcome.record.verdict, Verdict::Skipped);
    assert!(outcome.response.patch.is_none());

    let mut review: Value = serde_json::from_slice(&labeled(CREATE)).expect("JSON");
    review["request"]["operation"] = "UPDATE".into();
    let outcome = run(&serde_json::to_vec(&review).expect("JSON"), Mode::Enforce);
    assert_eq!(outcome.record.verdict, Verdict::Skipped);
    assert!(outcome.response.patch.is_none());
}

#[test]
fn an_invalid_pod_is_allowed_with_a_warning_and_the_uid() {
    let mut review: Value = serde_json::from_slice(&labeled(CREATE)).expect("JSON");
    review["request"]["object"]["spec"]["containers"] = "not a list".into();
    let outcome = run(&serde_json::to_vec(&review).expect("JSON"), Mode::Enforce);
    let json = response_json(&outcome);
    assert_eq!(outcome.record.verdict, Verdict::Error);
    assert_eq!(
        json["response"]["uid"],
        "936b7fbd-aa7f-4c7b-9350-aaf4d8e29331"
    );
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    assert!(json["response"].get("patchType").is_none());
    assert_eq!(
        json["response"]["warnings"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn an_envelope_kube_cannot_read_is_still_answered_with_its_uid() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":"Pod"}}"#;
    let outcome = run(body, Mode::Enforce);
    let json = response_json(&outcome);
    assert_eq!(outcome.record.verdict, Verdict::Error);
    assert_eq!(json["response"]["uid"], "u-1");
    assert_eq!(json["response"]["allowed"], true);
    assert_eq!(json["apiVersion"], API_VERSION);
}

#[test]
fn bodies_that_are_not_reviews_are_rejected() {
    let policy = Policy::embedded();
    let ctx = Context::default();
    let bad = |body: &[u8]| review(body, &policy, &ctx, Mode::Enforce).err();
    assert!(matches!(bad(b"{not json"), Some(BadReview::NotJson(_))));
    assert!(matches!(bad(b"[]"), Some(BadReview::WrongType { .. })));
    assert!(matches!(
        bad(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#),
        Some(BadReview::WrongType { .. })
    ));
    assert!(matches!(
        bad(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        Some(BadReview::MissingRequest)
    ));
    assert!(matches!(
        bad(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#),
        Some(BadReview::MissingUid)
    ));
    let numeric = bad(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":42}}"#,
    )
    .map(|err| err.to_string());
    assert_eq!(
        numeric.as_deref(),
        Some("the AdmissionReview request's uid must be a string, not a number")
    );
}

#[test]
fn env_from_sources_are_looked_up_only_for_selected_pod_creates() {
    let policy = Policy::embedded();
    let with_env_from = |body: &[u8]| {
        let mut review: Value = serde_json::from_slice(body).expect("JSON");
        review["request"]["object"]["spec"]["containers"][0]["envFrom"] = serde_json::json!([
            {"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s"}}, {"prefix": "X_"}
        ]);
        review
    };
    let names = |review: &Value| {
        parse(&serde_json::to_vec(review).expect("JSON"), &policy)
            .expect("parsed")
            .env_from_names()
    };
    let selected = with_env_from(&labeled(CREATE));
    assert_eq!(
        names(&selected).config_maps,
        BTreeSet::from(["a".to_string()])
    );
    assert_eq!(names(&selected).secrets, BTreeSet::from(["s".to_string()]));
    let none = SourceNames::default();
    assert_eq!(names(&with_env_from(CREATE.as_bytes())), none);
    let mut update = selected.clone();
    update["request"]["operation"] = "UPDATE".into();
    assert_eq!(names(&update), none);
}

#[test]
fn audit_warnings_are_capped() {
    let change = engine::Change {
        container: Some("web".into()),
        feature: Feature::Env,
        field: "env.X".into(),
        path: "/x".into(),
        value: PatchValue::String("y".repeat(300)),
        reason: "r".into(),
    };
    let warnings = audit_warnings(&vec![change; MAX_AUDIT_WARNINGS + 5]);
    assert_eq!(warnings.len(), MAX_AUDIT_WARNINGS + 1);
    assert!(
        warnings
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS)
    );
    assert_eq!(
        warnings[MAX_AUDIT_WARNINGS],
        "pytune audit: and 5 more changes"
    );
}

#[test]
fn another_kind_whose_object_is_not_pod_shaped_is_skipped_not_an_error() {
    let mut review: Value = serde_json::from_slice(&labeled(CREATE)).expect("JSON");
    review["request"]["kind"] =
        serde_json::json!({"group": "batch", "version": "v1", "kind": "CronJob"});
    review["request"]["object"]["spec"] = serde_json::json!({"containers": "not a list"});
    let outcome = run(&serde_json::to_vec(&review).expect("JSON"), Mode::Enforce);
    assert_eq!(outcome.record.verdict, Verdict::Skipped);
    assert!(outcome.response.warnings.is_none());
    assert!(
        outcome
            .record
            .detail
            .as_deref()
            .is_some_and(|detail| detail.contains("CronJob"))
    );
}
