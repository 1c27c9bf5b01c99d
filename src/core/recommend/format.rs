//! Numbers as people and the API server read them.

use super::MIB;
use crate::core::quantity;

/// `180m`, `1500m`: millicores, as the API server writes CPU quantities.
pub fn cpu_text(millis: u64) -> String {
    format!("{millis}m")
}

/// Memory rounded up to whole MiB: `472Mi`, `1Gi`.
pub fn memory_text(bytes: u64) -> String {
    quantity::format_bytes(round_up(bytes, MIB))
}

/// `value` rounded up to a multiple of `step` (saturating).
pub fn round_up(value: u64, step: u64) -> u64 {
    let step = step.max(1);
    value.div_ceil(step).saturating_mul(step)
}

/// `2016` → `2,016`.
pub fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `a × percent / 100`, rounded up, in integers (no float drift in recommendations).
pub fn percent_of(value: u64, percent: u64) -> u64 {
    let product = u128::from(value) * u128::from(percent);
    u64::try_from(product.div_ceil(100)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(group_digits(2016), "2,016");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000_000), "1,000,000");
        assert_eq!(memory_text(410 * MIB + 1), "411Mi");
        assert_eq!(memory_text(1024 * MIB), "1Gi");
        assert_eq!(round_up(181, 5), 185);
        assert_eq!(percent_of(100, 115), 115);
        assert_eq!(percent_of(101, 115), 117);
        assert_eq!(percent_of(u64::MAX, 150), u64::MAX);
    }
}
