//! Reading an `AdmissionReview` body in one pass: the envelope and the object's metadata into
//! small views, the Pod's spec left as raw text for the engine to decode when the Pod is selected.
//! Building a JSON tree of the whole review was the largest cost of answering it.

use kube::core::GroupVersionKind;
use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::Value;

use super::{API_VERSION, BadReview, KIND};
use crate::engine::PodText;

/// An `AdmissionReview` as far as pytune reads it. Members it does not read (`userInfo`,
/// `oldObject`, `options`, …) are skipped without being decoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope<'a> {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    request: Option<RequestView<'a>>,
}

/// The request members pytune reads, with kube's types for the kind and the operation.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestView<'a> {
    #[serde(default)]
    pub uid: Option<String>,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The object's metadata, read in the same pass; its spec stays raw text.
    #[serde(borrow, default)]
    pub object: Option<PodText<'a>>,
}

/// The envelope's request, once it is known to be a review pytune answers.
pub(super) struct Request<'a> {
    pub uid: String,
    pub view: RequestView<'a>,
}

/// A review pytune answers.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per review and taken apart at once; boxing would only add an allocation"
)]
pub(super) enum Review<'a> {
    Readable(Request<'a>),
    /// Its request does not fit the types: answered by allowing, with the reason.
    Unfit {
        uid: String,
        reason: String,
    },
}

/// Reads the envelope; `Err` when there is no review to answer.
pub(super) fn read(body: &[u8]) -> Result<Review<'_>, BadReview> {
    let envelope = match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => envelope,
        Err(err) => return diagnose(body, err),
    };
    check_type(envelope.api_version.as_deref(), envelope.kind.as_deref())?;
    let mut view = envelope.request.ok_or(BadReview::MissingRequest)?;
    match view.uid.take() {
        Some(uid) if !uid.is_empty() => Ok(Review::Readable(Request { uid, view })),
        _ => Err(BadReview::MissingUid),
    }
}

fn check_type(api_version: Option<&str>, kind: Option<&str>) -> Result<(), BadReview> {
    let (api_version, kind) = (api_version.unwrap_or_default(), kind.unwrap_or_default());
    if api_version != API_VERSION || kind != KIND {
        return Err(BadReview::WrongType {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        });
    }
    Ok(())
}

/// A body the views could not read: says why, or returns the uid (and the reason) when it is a
/// review whose request is malformed. Only bad input comes here, so a JSON tree is fine.
fn diagnose(body: &[u8], err: serde_json::Error) -> Result<Review<'static>, BadReview> {
    let review: Value = serde_json::from_slice(body).map_err(BadReview::NotJson)?;
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    check_type(
        text(review.get("apiVersion")).as_deref(),
        text(review.get("kind")).as_deref(),
    )?;
    let request = review
        .get("request")
        .filter(|request| request.is_object())
        .ok_or(BadReview::MissingRequest)?;
    match text(request.get("uid")) {
        Some(uid) if !uid.is_empty() => Ok(Review::Unfit {
            uid,
            reason: format!("the AdmissionReview request does not fit admission.k8s.io/v1: {err}"),
        }),
        _ => Err(BadReview::MissingUid),
    }
}
