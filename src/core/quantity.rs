//! Kubernetes resource quantities (`250m`, `0.5`, `512Mi`, `1e9`) reduced to integers we can compare.
//!
//! Only what pytune needs: CPU in millicores and memory in bytes. The text the user wrote is never
//! rewritten; these numbers are used for comparisons and sizing only.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text:?} is not a valid {kind} quantity ({hint})")]
pub struct QuantityError {
    pub text: String,
    pub kind: &'static str,
    pub hint: &'static str,
}

const CPU_HINT: &str = "examples: 250m, 0.5, 2";
const MEMORY_HINT: &str = "examples: 256Mi, 1Gi, 512M, 1e9";

/// Splits `12.5Mi` into the number (as a decimal string) and the suffix.
fn split(text: &str) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '+' || *c == '-'))
        .map_or(text.len(), |(i, _)| i);
    (&text[..end], &text[end..])
}

/// Multiplies a decimal number string by `scale` (a power of ten or two), rounding up so that a
/// fractional millicore or byte never becomes zero.
fn scaled(number: &str, numerator: f64, denominator: f64) -> Option<u64> {
    if number.is_empty() || number.starts_with('-') {
        return None;
    }
    let value: f64 = number.trim_start_matches('+').parse().ok()?;
    let result = (value * numerator / denominator).ceil();
    (result.is_finite() && result >= 0.0 && result < u64::MAX as f64).then_some(result as u64)
}

fn decimal_exponent(suffix: &str) -> Option<i32> {
    let exp = suffix.strip_prefix(['e', 'E'])?;
    let exp: i32 = exp.parse().ok()?;
    (-18..=18).contains(&exp).then_some(exp)
}

/// Value of a quantity in units of `unit` (1 for bytes, 1/1000 for millicores), rounded up.
fn parse_in(text: &str, per_unit: f64) -> Option<u64> {
    let text = text.trim();
    let (number, suffix) = split(text);
    let factor: f64 = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => 10f64.powi(decimal_exponent(other)?),
    };
    scaled(number, factor * per_unit, 1.0)
}

/// CPU in millicores: `250m` → 250, `0.5` → 500, `2` → 2000.
pub fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    parse_in(text, 1000.0).ok_or_else(|| QuantityError {
        text: text.to_string(),
        kind: "CPU",
        hint: CPU_HINT,
    })
}

/// Memory in bytes: `512Mi` → 536870912, `1G` → 1000000000.
pub fn memory_bytes(text: &str) -> Result<u64, QuantityError> {
    parse_in(text, 1.0).ok_or_else(|| QuantityError {
        text: text.to_string(),
        kind: "memory",
        hint: MEMORY_HINT,
    })
}

/// Whole CPUs a container may use, rounded up and at least one: what CPython's
/// `PYTHON_CPU_COUNT` and worker formulas want.
pub fn whole_cpus(millis: u64) -> u32 {
    u32::try_from(millis.div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Renders bytes the way people write memory sizes (`1536Mi`, `2Gi`), for messages.
pub fn format_bytes(bytes: u64) -> String {
    const MI: u64 = 1024 * 1024;
    const GI: u64 = 1024 * MI;
    if bytes >= GI && bytes.is_multiple_of(GI) {
        format!("{}Gi", bytes / GI)
    } else if bytes >= MI && bytes.is_multiple_of(MI) {
        format!("{}Mi", bytes / MI)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(cpu_millis("250m"), Ok(250));
        assert_eq!(cpu_millis("0.5"), Ok(500));
        assert_eq!(cpu_millis("2"), Ok(2000));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("100u"), Ok(1)); // a fraction of a millicore rounds up
        assert_eq!(cpu_millis("1e3"), Ok(1_000_000));
        assert!(cpu_millis("abc").is_err());
        assert!(cpu_millis("-1").is_err());
        assert!(cpu_millis("").is_err());
        assert!(cpu_millis("1Xi").is_err());
    }

    #[test]
    fn memory_forms() {
        assert_eq!(memory_bytes("512Mi"), Ok(512 * 1024 * 1024));
        assert_eq!(memory_bytes("1Gi"), Ok(1024 * 1024 * 1024));
        assert_eq!(memory_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("1e9"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("128974848"), Ok(128_974_848));
        assert_eq!(memory_bytes("129e6"), Ok(129_000_000));
        assert_eq!(memory_bytes("123Mi "), Ok(123 * 1024 * 1024));
        let err = memory_bytes("lots").unwrap_err();
        assert!(err.to_string().contains("256Mi"), "{err}");
    }

    #[test]
    fn whole_cpus_rounds_up_and_is_at_least_one() {
        assert_eq!(whole_cpus(0), 1);
        assert_eq!(whole_cpus(250), 1);
        assert_eq!(whole_cpus(1000), 1);
        assert_eq!(whole_cpus(1001), 2);
        assert_eq!(whole_cpus(4000), 4);
    }

    #[test]
    fn bytes_render_in_binary_units() {
        assert_eq!(format_bytes(512 * 1024 * 1024), "512Mi");
        assert_eq!(format_bytes(2 * 1024 * 1024 * 1024), "2Gi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
