//! Reading an `AdmissionReview` body in one pass: the envelope into a small view, and the object
//! straight into the parts of a Pod the engine reads. Building a JSON tree of the whole review
//! was the largest cost of answering it.

use kube::core::GroupVersionKind;
use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::Value;

use super::{API_VERSION, BadReview, KIND};
use crate::core::engine::PodView;

/// An `AdmissionReview` as far as pytune reads it. Members it does not read (`userInfo`,
/// `oldObject`, `options`, …) are skipped without being decoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    request: Option<RequestView>,
}

/// The request members pytune reads, with kube's types for the kind and the operation.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestView {
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
    /// The parts of the object the engine reads, decoded in the same pass.
    #[serde(default)]
    pub object: Option<PodView>,
}

/// The envelope's request, once it is known to be a review pytune answers.
pub(super) struct Request {
    pub uid: String,
    pub view: RequestView,
    /// Why the object could not be decoded, when that was the only fault.
    pub object_error: Option<String>,
}

/// A review pytune answers.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per review and taken apart at once; boxing would only add an allocation"
)]
pub(super) enum Review {
    Readable(Request),
    /// Its request does not fit the types: answered by allowing, with the reason.
    Unfit {
        uid: String,
        reason: String,
    },
}

/// Reads the envelope; `Err` when there is no review to answer.
pub(super) fn read(body: &[u8]) -> Result<Review, BadReview> {
    // Checking the whole body as UTF-8 once is cheaper than checking each string as it is read.
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(_) => return diagnose(body, None),
    };
    let envelope = match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => envelope,
        Err(err) => return diagnose(body, Some(err)),
    };
    check_type(envelope.api_version.as_deref(), envelope.kind.as_deref())?;
    let mut view = envelope.request.ok_or(BadReview::MissingRequest)?;
    match view.uid.take() {
        Some(uid) if !uid.is_empty() => Ok(Review::Readable(Request {
            uid,
            view,
            object_error: None,
        })),
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
fn diagnose(body: &[u8], err: Option<serde_json::Error>) -> Result<Review, BadReview> {
    let review: Value = serde_json::from_slice(body).map_err(BadReview::NotJson)?;
    // Only a body that is not UTF-8 comes without an error, and `from_slice` rejects those.
    let err = err.map_or_else(
        || "the body is not UTF-8".to_string(),
        |err| err.to_string(),
    );
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
    check_type(
        text(review.get("apiVersion")).as_deref(),
        text(review.get("kind")).as_deref(),
    )?;
    let request = review
        .get("request")
        .filter(|request| request.is_object())
        .ok_or(BadReview::MissingRequest)?;
    let uid = match request.get("uid") {
        Some(Value::String(uid)) if !uid.is_empty() => uid.clone(),
        None | Some(Value::Null | Value::String(_)) => return Err(BadReview::MissingUid),
        Some(other) => {
            return Err(BadReview::UidNotString {
                found: json_type(other),
            });
        }
    };
    // When only the object is at fault, the request still says whether the object is pytune's.
    let mut request = request.clone();
    if let Some(members) = request.as_object_mut() {
        members.remove("object");
    }
    if let Ok(mut view) = RequestView::deserialize(&request) {
        view.uid = None;
        return Ok(Review::Readable(Request {
            uid,
            view,
            object_error: Some(format!("the object is not a valid Pod: {err}")),
        }));
    }
    Ok(Review::Unfit {
        uid,
        reason: format!("the AdmissionReview request does not fit admission.k8s.io/v1: {err}"),
    })
}

/// How a JSON value's type is named in messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
