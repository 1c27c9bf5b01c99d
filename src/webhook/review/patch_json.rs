//! The patch as JSON bytes, for the response: the JSON `serde_json` writes for the same
//! operations, written straight from the plan's values, with strings escaped by
//! [`crate::json_text`]. The patch is mostly text (the record annotation repeats every reason), and
//! escaping it byte by byte was a large part of answering.

use crate::core::engine::Addition;
use crate::json_text::write_str;

/// `patch` as a JSON array of `add` operations.
pub fn to_vec(patch: &[Addition]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    for (index, addition) in patch.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"op":"add","path":"#);
        write_str(&mut out, addition.path.as_str());
        out.extend_from_slice(br#","value":"#);
        addition.value.write_json(&mut out);
        out.push(b'}');
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::engine::{PatchValue, Plan};
    use json_patch::jsonptr::PointerBuf;

    fn add(path: &str, value: PatchValue) -> Addition {
        Addition {
            path: PointerBuf::parse(path).expect("a pointer"),
            value,
        }
    }

    #[test]
    fn writes_what_serde_writes() {
        let env = |name: &str, value: &str| {
            PatchValue::object([("name", name.into()), ("value", value.into())])
        };
        let mut plan = Plan::untouched(crate::core::engine::Decision::Selected, Vec::new());
        plan.patch = vec![
            add(
                "/metadata/annotations/a~1b",
                "line one\nline \"two\" \\ tab\t\u{1}".into(),
            ),
            add(
                "/spec/containers/0/env",
                PatchValue::Array(vec![env("X", "1"), env("Y", "ü—€")]),
            ),
            add("/spec/terminationGracePeriodSeconds", 40.into()),
            add(
                "/x",
                PatchValue::object([("a", (-3).into()), ("b", PatchValue::Array(Vec::new()))]),
            ),
        ];
        let ours = to_vec(&plan.patch);
        assert_eq!(
            String::from_utf8(ours).expect("UTF-8"),
            serde_json::to_string(&plan.json_patch()).expect("serialized")
        );
    }
}
