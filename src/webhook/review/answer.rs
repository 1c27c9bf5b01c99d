//! The answer: an `admission.k8s.io/v1` `AdmissionReview` holding the `response`, serialized by
//! serde. Every answer that carries a uid takes this shape, from the review or from the server.
//!
//! Not kube's `AdmissionResponse`: it serializes the patch as an array of numbers, four times the
//! size of the base64 string the API server documents, which k8s-openapi's `ByteString` writes.

use k8s_openapi::ByteString;
use kube::core::admission::PatchType;
use serde::Serialize;

use super::{API_VERSION, KIND};

/// The only warning of an answer that admits a Pod unchanged because something failed.
const FAILURE_WARNING: &str =
    "pytune: Pod admitted unchanged because of an internal error; see the webhook's log";

/// The `response` of an `AdmissionReview`. pytune never blocks a Pod: every answer allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub uid: String,
    pub allowed: bool,
    /// Read by the API server only when a request is denied; empty, as kube always wrote it.
    status: Status,
    /// The patch with its type: both or neither.
    #[serde(flatten)]
    pub patch: Option<JsonPatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// `"patch"` and `"patchType"`; JSON Patch is the only type the API server takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonPatch {
    /// The RFC 6902 operations as JSON bytes, written as base64.
    #[serde(rename = "patch")]
    pub bytes: ByteString,
    pub patch_type: PatchType,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Status {}

/// The body around the response.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Review<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a Answer,
}

impl Answer {
    /// Allows the request unchanged.
    pub fn allowing(uid: String) -> Answer {
        Answer {
            uid,
            allowed: true,
            status: Status::default(),
            patch: None,
            warnings: None,
        }
    }

    /// Allows the request unchanged, saying that something failed (the log has the detail).
    pub fn failed(uid: String) -> Answer {
        Answer {
            warnings: Some(vec![FAILURE_WARNING.to_string()]),
            ..Answer::allowing(uid)
        }
    }

    /// With `bytes`, a JSON Patch, as the patch.
    pub fn with_patch(self, bytes: Vec<u8>) -> Answer {
        Answer {
            patch: Some(JsonPatch {
                bytes: ByteString(bytes),
                patch_type: PatchType::JsonPatch,
            }),
            ..self
        }
    }

    /// The patch's JSON bytes, if there is a patch.
    pub fn patch_bytes(&self) -> Option<&[u8]> {
        self.patch.as_ref().map(|patch| patch.bytes.0.as_slice())
    }

    /// The response body: an `AdmissionReview` holding this answer.
    pub fn to_review_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&Review {
            api_version: API_VERSION,
            kind: KIND,
            response: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::{Value, json};

    fn parsed(answer: &Answer) -> Value {
        serde_json::from_slice(&answer.to_review_json().expect("serializes")).expect("JSON")
    }

    #[test]
    fn an_allowing_answer_without_a_patch() {
        assert_eq!(
            parsed(&Answer::allowing("u-\"1\"".to_string())),
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": "u-\"1\"", "allowed": true, "status": {}}
            })
        );
    }

    #[test]
    fn a_failed_answer_allows_with_one_warning() {
        assert_eq!(
            parsed(&Answer::failed("a\"b".to_string()))["response"],
            json!({"uid": "a\"b", "allowed": true, "status": {}, "warnings": [FAILURE_WARNING]})
        );
    }

    #[test]
    fn the_patch_is_base64_with_its_type_and_warnings_follow() {
        let patch = br#"[{"op":"add","path":"/metadata/annotations","value":{"a":"\u00fc"}}]"#;
        let mut patched = Answer::allowing("u".to_string()).with_patch(patch.to_vec());
        patched.warnings = Some(vec!["careful \"here\"".to_string()]);
        let body = parsed(&patched);
        let response = &body["response"];
        assert_eq!(response["patchType"], "JSONPatch");
        assert_eq!(response["warnings"], json!(["careful \"here\""]));
        let text = response["patch"].as_str().expect("a string");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64");
        assert_eq!(bytes, patch);
        assert_eq!(patched.patch_bytes(), Some(&patch[..]));
        let keys: Vec<&String> = response.as_object().expect("an object").keys().collect();
        assert_eq!(
            keys,
            ["uid", "allowed", "status", "patch", "patchType", "warnings"]
        );
    }

    proptest::proptest! {
        /// Any patch bytes, of any length (padding cases), decode back with an independent decoder.
        #[test]
        fn the_patch_text_decodes_to_the_patch(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let answer = Answer::allowing("u".to_string()).with_patch(bytes.clone());
            let body = parsed(&answer);
            let text = body["response"]["patch"].as_str().expect("a string");
            let decoded = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
            proptest::prop_assert_eq!(decoded, bytes);
        }
    }
}
