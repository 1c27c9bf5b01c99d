//! The patch as JSON bytes, for the response. The same JSON `serde_json` writes, with strings
//! escaped by [`crate::json_text`]: the patch is mostly text (the record annotation repeats every
//! reason), and escaping it byte by byte was a large part of answering.

use json_patch::{Patch, PatchOperation};
use serde_json::Value;

use crate::json_text::write_str;

/// `patch` as a JSON array.
pub fn to_vec(patch: &Patch) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    for (index, operation) in patch.0.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        match operation {
            PatchOperation::Add(add) => {
                out.extend_from_slice(br#"{"op":"add","path":"#);
                write_str(&mut out, add.path.as_str());
                out.extend_from_slice(br#","value":"#);
                write_value(&mut out, &add.value)?;
                out.push(b'}');
            }
            // The engine only adds; anything else is written by serde.
            other => serde_json::to_writer(&mut out, other)?,
        }
    }
    out.push(b']');
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => serde_json::to_writer(&mut *out, number)?,
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (index, (key, item)) in members.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, RemoveOperation};
    use serde_json::json;

    fn add(path: &str, value: Value) -> PatchOperation {
        PatchOperation::Add(AddOperation {
            path: PointerBuf::parse(path).expect("a pointer"),
            value,
        })
    }

    #[test]
    fn writes_what_serde_writes() {
        let patch = Patch(vec![
            add(
                "/metadata/annotations/a~1b",
                json!("line one\nline \"two\" \\ tab\t\u{1}"),
            ),
            add(
                "/spec/containers/0/env",
                json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "ü—€"}]),
            ),
            add("/spec/terminationGracePeriodSeconds", json!(40)),
            add(
                "/x",
                json!({"a": null, "b": [true, false, 1.5, -3], "c": {}}),
            ),
            PatchOperation::Remove(RemoveOperation {
                path: PointerBuf::parse("/y").expect("a pointer"),
            }),
        ]);
        let ours = to_vec(&patch).expect("written");
        assert_eq!(
            String::from_utf8(ours).expect("UTF-8"),
            serde_json::to_string(&patch).expect("serialized")
        );
    }
}
