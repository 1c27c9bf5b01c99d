//! The response body as the API server reads it: an `AdmissionReview` holding the response, with
//! the patch as a base64 string (the documented form) rather than kube's array of numbers, which
//! is four times larger. Written piece by piece so the base64 text goes straight into the body:
//! passing it through a JSON string serializer would escape-check every character of a text that
//! never needs escaping, which was the largest part of answering.

use kube::core::admission::AdmissionResponse;
use serde::Serialize;

use super::{API_VERSION, KIND};

/// The body answering with `response`.
pub fn review_body(response: &AdmissionResponse) -> Vec<u8> {
    let patch_len = response
        .patch
        .as_ref()
        .map_or(0, |patch| base64_simd::STANDARD.encoded_length(patch.len()));
    let mut body = Vec::with_capacity(256 + patch_len);
    match write(&mut body, response) {
        Ok(()) => body,
        // Serializing these types cannot fail in practice; still answer with the uid.
        Err(_) => fallback_body(&response.uid),
    }
}

fn write(body: &mut Vec<u8>, response: &AdmissionResponse) -> serde_json::Result<()> {
    body.extend_from_slice(
        format!(r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":"#).as_bytes(),
    );
    serde_json::to_writer(&mut *body, &response.uid)?;
    body.extend_from_slice(if response.allowed {
        br#","allowed":true"#
    } else {
        br#","allowed":false"#
    });
    member(body, "status", &response.result)?;
    if let Some(patch) = &response.patch {
        body.extend_from_slice(br#","patch":""#);
        // SIMD encoding: the patch is the largest part of the body, a few KiB.
        base64_simd::STANDARD.encode_append(patch, body);
        // kube sets the (private) patch type together with the patch, always JSONPatch.
        body.extend_from_slice(br#"","patchType":"JSONPatch""#);
    }
    if !response.audit_annotations.is_empty() {
        member(body, "auditAnnotations", &response.audit_annotations)?;
    }
    if let Some(warnings) = &response.warnings {
        member(body, "warnings", warnings)?;
    }
    body.extend_from_slice(b"}}");
    Ok(())
}

/// `,"name":value`
fn member(body: &mut Vec<u8>, name: &str, value: &impl Serialize) -> serde_json::Result<()> {
    body.push(b',');
    serde_json::to_writer(&mut *body, name)?;
    body.push(b':');
    serde_json::to_writer(&mut *body, value)
}

/// A minimal allowing review, written without serde.
pub fn fallback_body(uid: &str) -> Vec<u8> {
    let uid = serde_json::Value::String(uid.to_string());
    format!(
        r#"{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":{uid},"allowed":true}}}}"#
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parsed(response: &AdmissionResponse) -> Value {
        serde_json::from_slice(&review_body(response)).expect("the body is JSON")
    }

    fn response(uid: &str) -> AdmissionResponse {
        super::super::allowing(uid)
    }

    #[test]
    fn an_allowing_response_without_a_patch() {
        assert_eq!(
            parsed(&response("u-\"1\"")),
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": "u-\"1\"", "allowed": true, "status": {}}
            })
        );
    }

    #[test]
    fn the_patch_is_base64_with_its_type_and_warnings_follow() {
        let patch = json_patch::Patch(vec![json_patch::PatchOperation::Add(
            json_patch::AddOperation {
                path: json_patch::jsonptr::PointerBuf::parse("/metadata/annotations")
                    .expect("a pointer"),
                value: json!({"a": "ü\n\"b\""}),
            },
        )]);
        let mut patched = response("u").with_patch(patch).expect("serializable");
        patched.warnings = Some(vec!["careful \"here\"".to_string()]);
        patched
            .audit_annotations
            .insert("k".to_string(), "v".to_string());
        let body = parsed(&patched);
        let response = &body["response"];
        assert_eq!(response["patchType"], "JSONPatch");
        assert_eq!(response["warnings"], json!(["careful \"here\""]));
        assert_eq!(response["auditAnnotations"], json!({"k": "v"}));
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().expect("a string"))
            .expect("base64");
        assert_eq!(bytes, patched.patch.expect("a patch"));
    }

    proptest::proptest! {
        /// Any patch bytes, of any length (padding cases), decode back with an independent decoder.
        #[test]
        fn the_patch_text_decodes_to_the_patch(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            use base64::Engine as _;
            let mut answer = response("u");
            answer.patch = Some(bytes.clone());
            let body = parsed(&answer);
            let text = body["response"]["patch"].as_str().expect("a string");
            let decoded = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
            proptest::prop_assert_eq!(decoded, bytes);
        }
    }

    #[test]
    fn the_fallback_escapes_the_uid() {
        let body: Value = serde_json::from_slice(&fallback_body("a\"b")).expect("JSON");
        assert_eq!(body["response"]["uid"], "a\"b");
        assert_eq!(body["response"]["allowed"], true);
    }
}
