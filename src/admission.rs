//! Admission: request bytes → `AdmissionReview` envelope → Pod JSON → engine → `AdmissionResponse`.
//!
//! No HTTP here. The envelope is read first so every answer carries the request's uid; the object
//! stays raw JSON for the engine (which deserializes it itself and patches the JSON as received).
//! Whatever goes wrong after the uid is known, the answer is `allowed: true` without a patch and
//! with a warning: pytune never blocks a Pod.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use base64::Engine as _;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::Value;
use thiserror::Error;

use crate::engine::{self, Context, Decision, Feature, MAX_WARNING_CHARS, Mode, Plan, truncate};
use crate::policy::Policy;

/// The only review version pytune answers.
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";
/// Audit mode turns at most this many changes into warnings; the rest are counted in one line.
pub const MAX_AUDIT_WARNINGS: usize = 20;
/// Prefix of the warnings audit mode adds for planned changes.
pub const AUDIT_PREFIX: &str = "pytune audit: ";

/// A body that is not an `admission.k8s.io/v1` review: the caller answers HTTP 400 with the text.
#[derive(Debug, Error)]
pub enum BadReview {
    #[error("the request body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error(
        "expected apiVersion {API_VERSION} and kind {KIND}, got apiVersion {api_version:?} and kind {kind:?}"
    )]
    WrongType { api_version: String, kind: String },
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    #[error("the AdmissionReview request has no uid")]
    MissingUid,
}

/// How a review ended, as the `result` label of metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Enforce mode: a patch was returned.
    Patched,
    /// Audit mode: changes were planned and reported as warnings.
    Audited,
    /// Selected, but nothing to change.
    Unchanged,
    /// Not pytune's: another kind, another operation, unlabeled or opted out.
    Skipped,
    /// Something failed; the Pod was allowed unchanged with a warning.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Patched => "patched",
            Verdict::Audited => "audited",
            Verdict::Unchanged => "unchanged",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
        }
    }
}

/// What happened to one review, for the log line and the metrics.
#[derive(Debug, Clone)]
pub struct Record {
    pub uid: String,
    pub namespace: Option<String>,
    /// The Pod's name, or its `generateName` prefix when the API server has not named it yet.
    pub pod: Option<String>,
    pub mode: Mode,
    pub dry_run: bool,
    pub verdict: Verdict,
    /// Why the Pod was skipped, or what failed.
    pub detail: Option<String>,
    /// Planned changes per feature.
    pub changes: BTreeMap<Feature, usize>,
    pub warnings: usize,
}

impl Record {
    pub fn change_count(&self) -> usize {
        self.changes.values().sum()
    }
}

/// The answer to one review.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub response: AdmissionResponse,
    pub record: Record,
}

impl Outcome {
    /// The response body: an `AdmissionReview` holding the response. Written from a borrowed view
    /// with the patch as a base64 string — the form the API server documents — instead of kube's
    /// array of numbers, which is four times larger and the slowest part of answering.
    pub fn to_json(&self) -> Vec<u8> {
        let response = &self.response;
        let patch = response
            .patch
            .as_deref()
            .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes));
        let review = WireReview {
            api_version: API_VERSION,
            kind: KIND,
            response: WireResponse {
                uid: &response.uid,
                allowed: response.allowed,
                status: &response.result,
                patch,
                // kube sets the (private) patch type together with the patch, always JSONPatch.
                patch_type: response.patch.is_some().then_some("JSONPatch"),
                audit_annotations: &response.audit_annotations,
                warnings: response.warnings.as_deref(),
            },
        };
        match serde_json::to_vec(&review) {
            Ok(bytes) => bytes,
            // Serializing these types cannot fail in practice; still answer with the uid.
            Err(_) => fallback_body(&response.uid),
        }
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireReview<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: WireResponse<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
}

/// A minimal allowing review, written without serde.
fn fallback_body(uid: &str) -> Vec<u8> {
    let uid = Value::String(uid.to_string());
    format!(
        r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":{uid},"allowed":true}}}}"#
    )
    .into_bytes()
}

/// Answers one review body. `Err` only when there is no review to answer (HTTP 400).
pub fn review(
    body: &[u8],
    policy: &Policy,
    ctx: &Context,
    mode: Mode,
) -> Result<Outcome, BadReview> {
    Ok(answer(parse(body)?, policy, ctx, mode))
}

/// A review read far enough to be answered: its uid is known.
#[derive(Debug)]
pub struct Parsed {
    /// The request as kube's types read it, or why they could not.
    request: Result<AdmissionRequest<DynamicObject>, String>,
    /// The object exactly as received.
    object: Value,
    record: Record,
}

impl Parsed {
    pub fn uid(&self) -> &str {
        &self.record.uid
    }

    pub fn namespace(&self) -> Option<&str> {
        self.record.namespace.as_deref()
    }

    /// The ConfigMaps the Pod's containers take variables from (`envFrom`), when the request is a
    /// Pod CREATE that `policy` selects: what is worth looking up before planning.
    pub fn env_from_config_maps(&self, policy: &Policy) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let Ok(request) = &self.request else {
            return names;
        };
        if !engine::selects(&self.object, policy) || skip_reason(request).is_some() {
            return names;
        }
        let containers = self
            .object
            .pointer("/spec/containers")
            .and_then(Value::as_array);
        for container in containers.into_iter().flatten() {
            let sources = container.get("envFrom").and_then(Value::as_array);
            for source in sources.into_iter().flatten() {
                if let Some(name) = source
                    .pointer("/configMapRef/name")
                    .and_then(Value::as_str)
                    .filter(|name| !name.is_empty())
                {
                    names.insert(name.to_string());
                }
            }
        }
        names
    }
}

/// Reads the envelope: `Err` only when there is no review to answer (HTTP 400).
pub fn parse(body: &[u8]) -> Result<Parsed, BadReview> {
    let mut review: Value = serde_json::from_slice(body).map_err(BadReview::NotJson)?;
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = review
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != API_VERSION || kind != KIND {
        return Err(BadReview::WrongType {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        });
    }
    let Some(request) = review.get_mut("request").and_then(Value::as_object_mut) else {
        return Err(BadReview::MissingRequest);
    };
    let uid = match request.get("uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => return Err(BadReview::MissingUid),
    };
    // The object goes to the engine untouched; the rest is read with kube's types.
    let object = request.remove("object").unwrap_or(Value::Null);
    request.remove("oldObject");
    let dry_run = request
        .get("dryRun")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let record = Record {
        uid,
        namespace: request
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        pod: pod_name(&object, request.get("name").and_then(Value::as_str)),
        mode: Mode::Enforce,
        dry_run,
        verdict: Verdict::Skipped,
        detail: None,
        changes: BTreeMap::new(),
        warnings: 0,
    };

    let request = match serde_json::from_value::<AdmissionReview<DynamicObject>>(review)
        .map(TryInto::try_into)
    {
        Ok(Ok(request)) => Ok(request),
        Ok(Err(_)) => return Err(BadReview::MissingRequest),
        Err(err) => Err(format!(
            "the AdmissionReview request does not fit admission.k8s.io/v1: {err}"
        )),
    };
    Ok(Parsed {
        request,
        object,
        record,
    })
}

/// Plans and answers a parsed review; never fails (see the module documentation).
pub fn answer(parsed: Parsed, policy: &Policy, ctx: &Context, mode: Mode) -> Outcome {
    let Parsed {
        request,
        object,
        mut record,
    } = parsed;
    record.mode = mode;
    let request = match request {
        Ok(request) => request,
        Err(detail) => {
            let response = allowing(&record.uid);
            return failed(response, record, detail);
        }
    };
    let response = AdmissionResponse::from(&request);

    if let Some(reason) = skip_reason(&request) {
        record.detail = Some(reason);
        return Outcome { response, record };
    }

    let ctx = Context {
        mode,
        ..ctx.clone()
    };
    let plan = match catch_unwind(AssertUnwindSafe(|| engine::plan(&object, policy, &ctx))) {
        Ok(Ok(plan)) => plan,
        Ok(Err(err)) => return failed(response, record, err.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            return failed(response, record, format!("the engine panicked: {what}"));
        }
    };
    answer_plan(response, record, plan, mode)
}

/// Why a request is not pytune's to look at, if it is not.
fn skip_reason(request: &AdmissionRequest<DynamicObject>) -> Option<String> {
    let kind = &request.kind;
    if !kind.group.is_empty() || kind.kind != "Pod" {
        return Some(format!("kind {}/{} is not a Pod", kind.group, kind.kind));
    }
    if let Some(sub) = request
        .sub_resource
        .as_deref()
        .filter(|sub| !sub.is_empty())
    {
        return Some(format!("subresource {sub}"));
    }
    if request.operation != Operation::Create {
        return Some(format!("operation {:?} is not CREATE", request.operation));
    }
    None
}

fn answer_plan(
    mut response: AdmissionResponse,
    mut record: Record,
    plan: Plan,
    mode: Mode,
) -> Outcome {
    let mut warnings = plan.warning_texts();
    match &plan.decision {
        Decision::Selected => {}
        Decision::NotSelected(reason) | Decision::OptedOut(reason) => {
            record.detail = Some(reason.clone());
        }
    }
    for change in &plan.changes {
        *record.changes.entry(change.feature).or_default() += 1;
    }
    record.verdict = match (&plan.decision, plan.is_empty(), mode) {
        (Decision::NotSelected(_) | Decision::OptedOut(_), _, _) => Verdict::Skipped,
        (Decision::Selected, true, _) => Verdict::Unchanged,
        (Decision::Selected, false, Mode::Audit) => Verdict::Audited,
        (Decision::Selected, false, Mode::Enforce) => Verdict::Patched,
    };
    match record.verdict {
        Verdict::Patched => match response.clone().with_patch(plan.patch) {
            Ok(patched) => response = patched,
            Err(err) => {
                return failed(
                    response,
                    record,
                    format!("cannot serialize the patch: {err}"),
                );
            }
        },
        Verdict::Audited => warnings.extend(audit_warnings(&plan.changes)),
        _ => {}
    }
    record.warnings = warnings.len();
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    Outcome { response, record }
}

/// One warning per planned change (the bookkeeping annotations aside), each at most 120 characters.
pub fn audit_warnings(changes: &[engine::Change]) -> Vec<String> {
    let shown: Vec<&engine::Change> = changes
        .iter()
        .filter(|change| change.feature != Feature::Record)
        .collect();
    let mut warnings: Vec<String> = shown
        .iter()
        .take(MAX_AUDIT_WARNINGS)
        .map(|change| {
            truncate(
                &format!("{AUDIT_PREFIX}{}", change.summary()),
                MAX_WARNING_CHARS,
            )
        })
        .collect();
    if shown.len() > MAX_AUDIT_WARNINGS {
        warnings.push(format!(
            "{AUDIT_PREFIX}and {} more changes",
            shown.len() - MAX_AUDIT_WARNINGS
        ));
    }
    warnings
}

/// Never block: allow unchanged, say so in a warning, keep the detail for the error log.
/// Callers pass a response without a patch (and so without a patch type).
fn failed(mut response: AdmissionResponse, mut record: Record, detail: String) -> Outcome {
    response.allowed = true;
    response.warnings = Some(vec![
        "pytune: Pod admitted unchanged because of an internal error; see the webhook's log"
            .to_string(),
    ]);
    record.verdict = Verdict::Error;
    record.detail = Some(detail);
    record.changes.clear();
    record.warnings = 1;
    Outcome { response, record }
}

/// An allowing response for `uid`, for when the request could not be read with kube's types.
fn allowing(uid: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid("");
    response.uid = uid.to_string();
    response.allowed = true;
    response.result = Default::default();
    response
}

/// The Pod's name, its `generateName` prefix, or the request's name.
fn pod_name(object: &Value, request_name: Option<&str>) -> Option<String> {
    let metadata = object.get("metadata");
    let text = |key: &str| {
        metadata
            .and_then(|metadata| metadata.get(key))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    text("name")
        .or_else(|| text("generateName"))
        .or(request_name.filter(|name| !name.is_empty()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = include_str!("../tests/fixtures/apiserver-v1.36/pod-create-review.json");
    const DRY_RUN: &str =
        include_str!("../tests/fixtures/apiserver-v1.36/pod-dryrun-create-review.json");
    const GENERATE_NAME: &str =
        include_str!("../tests/fixtures/apiserver-v1.36/pod-generatename-create-review.json");

    fn labeled(text: &str) -> Vec<u8> {
        let mut review: Value = serde_json::from_str(text).expect("fixture is JSON");
        review["request"]["object"]["metadata"]["labels"]["pytune.io/runtime"] = "python".into();
        serde_json::to_vec(&review).expect("serializable")
    }

    fn run(body: &[u8], mode: Mode) -> Outcome {
        review(body, &Policy::embedded(), &Context::default(), mode).expect("a review")
    }

    fn response_json(outcome: &Outcome) -> Value {
        serde_json::from_slice(&outcome.to_json()).expect("response is JSON")
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
        assert!(outcome.record.change_count() > 0);

        let request: Value = serde_json::from_slice(&body).expect("JSON");
        let mut object = request["request"]["object"].clone();
        let plan = engine::plan(&object, &Policy::embedded(), &Context::default()).expect("plan");
        let mut expected = object.clone();
        json_patch::patch(&mut expected, &plan.patch).expect("engine patch applies");
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
    }

    #[test]
    fn config_maps_are_looked_up_only_for_selected_pod_creates() {
        let policy = Policy::embedded();
        let with_env_from = |body: &[u8]| {
            let mut review: Value = serde_json::from_slice(body).expect("JSON");
            review["request"]["object"]["spec"]["containers"][0]["envFrom"] = serde_json::json!([
                {"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s"}}, {"prefix": "X_"}
            ]);
            review
        };
        let names = |review: &Value| {
            parse(&serde_json::to_vec(review).expect("JSON"))
                .expect("parsed")
                .env_from_config_maps(&policy)
        };
        let selected = with_env_from(&labeled(CREATE));
        assert_eq!(names(&selected), BTreeSet::from(["a".to_string()]));
        assert!(names(&with_env_from(CREATE.as_bytes())).is_empty());
        let mut update = selected.clone();
        update["request"]["operation"] = "UPDATE".into();
        assert!(names(&update).is_empty());
    }

    #[test]
    fn audit_warnings_are_capped() {
        let change = engine::Change {
            container: Some("web".into()),
            feature: Feature::Env,
            field: "env.X".into(),
            path: "/x".into(),
            value: Value::String("y".repeat(300)),
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
}
