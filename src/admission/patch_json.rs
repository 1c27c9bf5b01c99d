//! The patch as JSON bytes, for the response. The same JSON `serde_json` writes, but strings are
//! checked for characters to escape eight bytes at a time, jumping to the first such byte: the patch is mostly text (the record
//! annotation repeats every reason), and escaping it byte by byte was a large part of answering.

use json_patch::{Patch, PatchOperation};
use serde_json::Value;

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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` that are control characters, `"` or `\\`, as the high bit of each byte
/// (little-endian: the lowest is the first). A byte above one that truly needs escaping may be
/// flagged too, but the lowest flagged byte is always a true one: a borrow only runs upward.
fn escape_mask(word: u64) -> u64 {
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control
        | zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// `text` as a JSON string.
fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    // `bytes[start..index]` is checked and waits to be copied.
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if let Some(chunk) = bytes.get(index..index + 8)
            && let Ok(word) = <[u8; 8]>::try_from(chunk)
        {
            let mask = escape_mask(u64::from_le_bytes(word));
            if mask == 0 {
                index += 8;
                continue;
            }
            // Straight to the first byte to escape (`trailing_zeros` is at most 63 here).
            index += (mask.trailing_zeros() / 8) as usize;
        } else if !needs_escape(bytes[index]) {
            index += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..index]);
        push_escape(out, bytes[index]);
        index += 1;
        start = index;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn push_escape(out: &mut Vec<u8>, byte: u8) {
    let short: &[u8] = match byte {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x08 => b"\\b",
        0x0c => b"\\f",
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
            return;
        }
    };
    out.extend_from_slice(short);
}

#[cfg(test)]
mod tests {
    use super::*;
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, RemoveOperation};
    use proptest::prelude::*;
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

    proptest! {
        #[test]
        fn strings_are_escaped_as_serde_does(text in any::<String>()) {
            let mut ours = Vec::new();
            write_str(&mut ours, &text);
            prop_assert_eq!(String::from_utf8(ours).expect("UTF-8"), serde_json::to_string(&text).expect("JSON"));
        }

        #[test]
        fn text_with_escapes_anywhere_round_trips(
            parts in prop::collection::vec(prop_oneof!["[a-z ]{0,20}", Just("\"".to_string()), Just("\\".to_string()), Just("\n".to_string()), Just("\u{7}".to_string())], 0..12)
        ) {
            let text: String = parts.concat();
            let mut ours = Vec::new();
            write_str(&mut ours, &text);
            let back: String = serde_json::from_slice(&ours).expect("JSON");
            prop_assert_eq!(back, text);
        }
    }
}
