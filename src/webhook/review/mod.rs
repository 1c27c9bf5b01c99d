//! Admission: request bytes → `AdmissionReview` envelope and Pod → engine → [`Answer`].
//!
//! No HTTP here. The body is read in one pass (`envelope`): the request's uid, so every answer can
//! carry it, and the parts of the Pod the engine reads; the engine's patch targets the JSON as
//! received. Whatever goes wrong after the uid is known, the answer is `allowed: true` without a
//! patch and with a warning: pytune never blocks a Pod.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::admission::Operation;
use thiserror::Error;

use crate::core::engine::record::{self, Detail};
use crate::core::engine::{
    self, Context, Decision, Feature, MAX_WARNING_CHARS, Mode, Plan, PodView, truncate,
};
use crate::core::policy::Policy;
use crate::webhook::env_from::SourceNames;

mod answer;
mod envelope;

pub use answer::{Answer, JsonPatch};

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
    #[error("the AdmissionReview request's uid must be a string, not {found}")]
    UidNotString { found: &'static str },
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
    /// The fields added, as the Pod's record names them (`web: resources.requests(cpu) env(A)`,
    /// lines joined with `; `); empty when nothing was added.
    pub added: String,
    pub warnings: usize,
}

impl Record {
    fn new(uid: String, namespace: Option<String>, pod: Option<String>, dry_run: bool) -> Record {
        Record {
            uid,
            namespace,
            pod,
            mode: Mode::Enforce,
            dry_run,
            verdict: Verdict::Skipped,
            detail: None,
            changes: BTreeMap::new(),
            added: String::new(),
            warnings: 0,
        }
    }

    /// The values added to the Pod; pytune's own record annotations are not counted.
    pub fn change_count(&self) -> usize {
        self.changes
            .iter()
            .filter(|(feature, _)| **feature != Feature::Record)
            .map(|(_, count)| count)
            .sum()
    }
}

/// The answer to one review.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub response: Answer,
    pub record: Record,
}

impl Outcome {
    /// The response body: an `AdmissionReview` holding the response.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        self.response.to_review_json()
    }
}

/// Answers one review body. `Err` only when there is no review to answer (HTTP 400).
pub fn review(
    body: &[u8],
    policy: &Policy,
    ctx: &Context,
    mode: Mode,
) -> Result<Outcome, BadReview> {
    Ok(answer(parse(body, policy)?, policy, ctx, mode))
}

/// A review read far enough to be answered: its uid is known, and so is what to do with it.
#[derive(Debug)]
pub struct Parsed {
    subject: Subject,
    record: Record,
}

#[derive(Debug)]
enum Subject {
    /// Not pytune's to look at, and why.
    Skip(String),
    /// The request or its Pod could not be read: allowed unchanged, with a warning.
    Unreadable(String),
    /// A selected Pod CREATE, decoded for the engine.
    Pod(Box<Pod>),
}

impl Parsed {
    pub fn uid(&self) -> &str {
        &self.record.uid
    }

    pub fn namespace(&self) -> Option<&str> {
        self.record.namespace.as_deref()
    }

    /// The owners of a selected Pod CREATE (empty for anything else).
    pub fn owner_references(&self) -> &[OwnerReference] {
        match &self.subject {
            Subject::Pod(pod) => pod.metadata.owner_references.as_deref().unwrap_or_default(),
            _ => &[],
        }
    }

    /// The container names of a selected Pod CREATE (empty for anything else).
    pub fn container_names(&self) -> Vec<&str> {
        match &self.subject {
            Subject::Pod(pod) => pod
                .spec
                .iter()
                .flat_map(|spec| &spec.containers)
                .map(|container| container.name.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The ConfigMaps and Secrets the containers of a selected Pod CREATE take variables from
    /// (`envFrom`): what is worth looking up before planning.
    pub fn env_from_names(&self) -> SourceNames {
        let mut names = SourceNames::default();
        let Subject::Pod(pod) = &self.subject else {
            return names;
        };
        let containers = pod.spec.iter().flat_map(|spec| &spec.containers);
        for source in containers.flat_map(|container| container.env_from.iter().flatten()) {
            if let Some(config_map) = source
                .config_map_ref
                .as_ref()
                .filter(|r| !r.name.is_empty())
            {
                names.config_maps.insert(config_map.name.clone());
            }
            if let Some(secret) = source.secret_ref.as_ref().filter(|r| !r.name.is_empty()) {
                names.secrets.insert(secret.name.clone());
            }
        }
        names
    }
}

/// Reads the review and, for a Pod CREATE that `policy` selects, decodes the Pod. `Err` only when
/// there is no review to answer (HTTP 400).
pub fn parse(body: &[u8], policy: &Policy) -> Result<Parsed, BadReview> {
    let request = match envelope::read(body)? {
        envelope::Review::Readable(request) => request,
        envelope::Review::Unfit { uid, reason } => {
            let record = Record::new(uid, None, None, false);
            return Ok(Parsed {
                subject: Subject::Unreadable(reason),
                record,
            });
        }
    };
    let envelope::Request {
        uid,
        view,
        object_error,
    } = request;
    let pod = view
        .object
        .as_ref()
        .and_then(PodView::name)
        .or(view.name.as_deref().filter(|name| !name.is_empty()))
        .map(str::to_string);
    let record = Record::new(uid, view.namespace.clone(), pod, view.dry_run == Some(true));
    let subject = match (skip_reason(&view), view.object, object_error) {
        (Some(reason), _, _) => Subject::Skip(reason),
        (None, _, Some(error)) => Subject::Unreadable(error),
        (None, None, None) => Subject::Skip("the request has no object".to_string()),
        (None, Some(object), None) => {
            match engine::selection(object.label(&policy.selector.label), policy) {
                Decision::Selected => Subject::Pod(Box::new(object.into_pod())),
                Decision::NotSelected(reason) | Decision::OptedOut(reason) => Subject::Skip(reason),
            }
        }
    };
    Ok(Parsed { subject, record })
}

/// Plans and answers a parsed review; never fails (see the module documentation).
pub fn answer(parsed: Parsed, policy: &Policy, ctx: &Context, mode: Mode) -> Outcome {
    let Parsed {
        subject,
        mut record,
    } = parsed;
    record.mode = mode;
    let pod = match subject {
        Subject::Pod(pod) => pod,
        Subject::Skip(reason) => {
            record.detail = Some(reason);
            let response = Answer::allowing(record.uid.clone());
            return Outcome { response, record };
        }
        Subject::Unreadable(detail) => return failed(record, detail),
    };
    let ctx = Context {
        mode,
        ..ctx.clone()
    };
    match catch_unwind(AssertUnwindSafe(|| engine::plan_pod(&pod, policy, &ctx))) {
        Ok(plan) => answer_plan(record, plan, mode),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            failed(record, format!("the engine panicked: {what}"))
        }
    }
}

/// Why a request is not pytune's to look at, if it is not.
fn skip_reason(request: &envelope::RequestView) -> Option<String> {
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

fn answer_plan(mut record: Record, plan: Plan, mode: Mode) -> Outcome {
    let mut warnings = plan.warning_texts();
    match &plan.decision {
        Decision::Selected => {}
        Decision::NotSelected(reason) | Decision::OptedOut(reason) => {
            record.detail = Some(reason.clone());
        }
    }
    if !plan.changes.is_empty() {
        let apps: Vec<(String, String)> = plan
            .containers
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.app.as_ref()?.entry.clone())))
            .collect();
        record.added = record::render(&plan.changes, Detail::Fields, &apps).replace('\n', "; ");
    }
    for change in &plan.changes {
        // The reasons no longer travel on the Pod: they are here, at debug level, and in
        // `pytune explain`.
        tracing::debug!(
            uid = %record.uid,
            container = change.container.as_deref().unwrap_or(record::POD),
            field = %change.field,
            value = %change.display_value(),
            reason = %change.reason,
            "change"
        );
        *record.changes.entry(change.feature).or_default() += 1;
    }
    record.verdict = match (&plan.decision, plan.is_empty(), mode) {
        (Decision::NotSelected(_) | Decision::OptedOut(_), _, _) => Verdict::Skipped,
        (Decision::Selected, true, _) => Verdict::Unchanged,
        (Decision::Selected, false, Mode::Audit) => Verdict::Audited,
        (Decision::Selected, false, Mode::Enforce) => Verdict::Patched,
    };
    let mut response = Answer::allowing(record.uid.clone());
    match record.verdict {
        Verdict::Patched => match serde_json::to_vec(&plan.patch) {
            Ok(patch) => response = response.with_patch(patch),
            Err(err) => return failed(record, format!("cannot serialize the patch: {err}")),
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
fn failed(mut record: Record, detail: String) -> Outcome {
    let response = Answer::failed(record.uid.clone());
    record.verdict = Verdict::Error;
    record.detail = Some(detail);
    record.changes.clear();
    record.added.clear();
    record.warnings = 1;
    Outcome { response, record }
}

#[cfg(test)]
mod tests;
