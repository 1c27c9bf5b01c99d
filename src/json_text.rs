//! JSON string text, escaped exactly as `serde_json` escapes it, but checked for characters to
//! escape eight bytes at a time, jumping to the first such byte. Used where text is written often:
//! the patch in every answer, and the JSON log line of every review.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` that are control characters, `"` or `\`, as the high bit of each byte
/// (little-endian: the lowest is the first). A byte above one that truly needs escaping may be
/// flagged too, but the lowest flagged byte is always a true one: a borrow only runs upward.
fn escape_mask(word: u64) -> u64 {
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    control
        | zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
}

/// `text` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    // `bytes[start..index]` is checked and waits to be copied.
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        let rest = &bytes[index..];
        let word = match rest.first_chunk::<8>() {
            Some(chunk) => *chunk,
            // The last few bytes, padded with spaces, which never need escaping.
            None => {
                let mut padded = [b' '; 8];
                padded[..rest.len()].copy_from_slice(rest);
                padded
            }
        };
        let mask = escape_mask(u64::from_le_bytes(word));
        if mask == 0 {
            index += 8;
            continue;
        }
        // Straight to the first byte to escape (`trailing_zeros` is at most 63 here). It is
        // never padding: the lowest flagged byte is a true one.
        index += (mask.trailing_zeros() / 8) as usize;
        let Some(&byte) = bytes.get(index) else {
            break;
        };
        out.extend_from_slice(&bytes[start..index]);
        push_escape(out, byte);
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
    use proptest::prelude::*;

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
