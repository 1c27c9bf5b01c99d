//! Kubernetes resource quantities (`250m`, `0.5`, `512Mi`, `1e9`) reduced to integers we can compare.
//!
//! Only what pytune needs: CPU in millicores and memory in bytes. The text the user wrote is never
//! rewritten; these numbers are used for comparisons and sizing only.
//!
//! The grammar is the API server's (`resource.Quantity` in k8s.io/apimachinery): a decimal number
//! (`5`, `5.`, `.5`, `1.25`, optionally with a leading `+`) followed by a decimal SI suffix
//! (`n u m k M G T P E`), a binary one (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent (`e3`, `E-2`).
//! Where the value is not a whole number of the unit, the API server rounds up (`MilliValue()`,
//! `Value()`): `100u` of CPU is one millicore. To agree with it on every input the arithmetic is exact
//! integer arithmetic, never floating point (with f64, `1000000n` came out as two millicores): the
//! digits are an integer mantissa with a decimal scale, the suffix is applied exactly and the result
//! is divided rounding up.

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

/// A non-negative quantity as written: the decimal digits `int` followed by `frac`, times
/// `10^scale × 2^shift`. Leading zeros are dropped from the digits (the scale already fixes where
/// the point is), so long zero paddings cost nothing later.
#[derive(Debug)]
struct Exact<'a> {
    int: &'a str,
    frac: &'a str,
    scale: i64,
    shift: u32,
}

/// Reads a quantity; `None` if it does not follow the grammar.
///
/// Surrounding whitespace is ignored (policy files and annotations are hand-written). Any `-` is
/// rejected, even `-0`: pytune has no use for negative quantities.
fn parse(text: &str) -> Option<Exact<'_>> {
    let text = text.trim();
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    let (int, rest) = split_digits(unsigned);
    let (frac, suffix) = rest.strip_prefix('.').map_or(("", rest), split_digits);
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let (exponent, shift) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        // `1E` is exa (above); `1E3` is an exponent. The API server reads it as a 64-bit integer.
        other => (other.strip_prefix(['e', 'E'])?.parse::<i64>().ok()?, 0),
    };
    let scale = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let int = int.trim_start_matches('0');
    let frac = if int.is_empty() {
        frac.trim_start_matches('0')
    } else {
        frac
    };
    Some(Exact {
        int,
        frac,
        scale,
        shift,
    })
}

/// Splits `text` after its leading ASCII digits.
fn split_digits(text: &str) -> (&str, &str) {
    text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    )
}

impl Exact<'_> {
    /// The mantissa's digits, most significant first, as numbers 0-9.
    fn digits(&self) -> impl DoubleEndedIterator<Item = u128> + '_ {
        self.int
            .bytes()
            .chain(self.frac.bytes())
            .map(|b| u128::from(b - b'0'))
    }

    /// The value in units of `10^-unit_exponent` (3 for millicores, 0 for bytes), rounded up to a
    /// whole unit; `None` if it does not fit in a u64.
    fn ceil_in(&self, unit_exponent: i64) -> Option<u64> {
        let len = self.int.len() + self.frac.len();
        if len == 0 {
            return Some(0);
        }
        let factor = 1u128 << self.shift; // at most 2^60
        let scale = self.scale.checked_add(unit_exponent)?;
        if scale >= 0 {
            // A whole number: mantissa × 10^scale × 2^shift. A mantissa beyond u128 is beyond u64
            // anyway.
            let mantissa = integer(self.digits())?;
            let power = 10u128.checked_pow(u32::try_from(scale).ok()?)?;
            let value = mantissa.checked_mul(power)?.checked_mul(factor)?;
            return u64::try_from(value).ok();
        }
        let point = scale.unsigned_abs();
        // `point` digits from the right are the fraction (with implicit zeros in front if there are
        // fewer digits than that). The whole part times the factor must fit.
        let frac_len = len.min(usize::try_from(point).unwrap_or(usize::MAX));
        let whole = integer(self.digits().take(len - frac_len))?.checked_mul(factor)?;
        // Fraction × factor, by long multiplication from the last digit: what is carried out of
        // the fraction's digits is the whole part of the product, and any non-zero digit left
        // behind means it was not whole. The carry stays below the factor, so nothing overflows
        // and the number of digits does not matter.
        let mut carry = 0u128;
        let mut inexact = false;
        for digit in self.digits().rev().take(frac_len) {
            let product = digit * factor + carry;
            inexact |= !product.is_multiple_of(10);
            carry = product / 10;
        }
        // The implicit zeros shift the carry further right; once it is zero, nothing changes.
        let mut zeros = point - frac_len as u64;
        while carry != 0 && zeros > 0 {
            inexact |= !carry.is_multiple_of(10);
            carry /= 10;
            zeros -= 1;
        }
        let value = whole.checked_add(carry)?.checked_add(u128::from(inexact))?;
        u64::try_from(value).ok()
    }
}

/// The digits as an integer; `None` past u128.
fn integer(mut digits: impl Iterator<Item = u128>) -> Option<u128> {
    digits.try_fold(0u128, |n, digit| n.checked_mul(10)?.checked_add(digit))
}

/// CPU in millicores, rounded up: `250m` → 250, `0.5` → 500, `2` → 2000, `100u` → 1.
pub fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    parse(text)
        .and_then(|quantity| quantity.ceil_in(3))
        .ok_or_else(|| QuantityError {
            text: text.to_string(),
            kind: "CPU",
            hint: CPU_HINT,
        })
}

/// Memory in bytes, rounded up: `512Mi` → 536870912, `1G` → 1000000000.
pub fn memory_bytes(text: &str) -> Result<u64, QuantityError> {
    parse(text)
        .and_then(|quantity| quantity.ceil_in(0))
        .ok_or_else(|| QuantityError {
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
    use proptest::prelude::*;

    const KI: u64 = 1024;
    const MI: u64 = 1024 * KI;
    const GI: u64 = 1024 * MI;

    #[test]
    fn a_million_nanocores_is_one_millicore() {
        assert_eq!(cpu_millis("1000000n"), Ok(1));
    }

    #[test]
    fn half_a_billion_nanocores_is_exactly_500_millicores() {
        assert_eq!(cpu_millis("500000000n"), Ok(500));
    }

    #[test]
    fn cpu_is_read_in_millicores() {
        assert_eq!(cpu_millis("250m"), Ok(250));
        assert_eq!(cpu_millis("0.5"), Ok(500));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("2"), Ok(2000));
    }

    #[test]
    fn every_decimal_si_suffix_scales_by_its_power_of_ten() {
        // (text, millicores, bytes); None where the value does not fit in a u64.
        let cases: [(&str, Option<u64>, Option<u64>); 19] = [
            ("1n", Some(1), Some(1)),
            ("1000000n", Some(1), Some(1)),
            ("1000000001n", Some(1001), Some(2)),
            ("1u", Some(1), Some(1)),
            ("1000u", Some(1), Some(1)),
            ("2000000u", Some(2000), Some(2)),
            ("1m", Some(1), Some(1)),
            ("1000m", Some(1000), Some(1)),
            ("1001m", Some(1001), Some(2)),
            ("1", Some(1000), Some(1)),
            ("1k", Some(1_000_000), Some(1000)),
            ("1M", Some(10u64.pow(9)), Some(10u64.pow(6))),
            ("1G", Some(10u64.pow(12)), Some(10u64.pow(9))),
            ("1T", Some(10u64.pow(15)), Some(10u64.pow(12))),
            ("1P", Some(10u64.pow(18)), Some(10u64.pow(15))),
            ("1E", None, Some(10u64.pow(18))),
            ("18E", None, Some(18 * 10u64.pow(18))),
            ("19E", None, None),
            ("512M", Some(512 * 10u64.pow(9)), Some(512_000_000)),
        ];
        for (text, millis, bytes) in cases {
            assert_eq!(cpu_millis(text).ok(), millis, "cpu {text}");
            assert_eq!(memory_bytes(text).ok(), bytes, "memory {text}");
        }
    }

    #[test]
    fn every_binary_suffix_scales_by_its_power_of_1024() {
        for (i, suffix) in ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].into_iter().enumerate() {
            let unit = 1024u64.pow(u32::try_from(i + 1).expect("small"));
            assert_eq!(memory_bytes(&format!("1{suffix}")), Ok(unit), "1{suffix}");
            assert_eq!(
                memory_bytes(&format!("3{suffix}")),
                Ok(3 * unit),
                "3{suffix}"
            );
            assert_eq!(
                memory_bytes(&format!("1.5{suffix}")),
                Ok(unit / 2 * 3),
                "1.5{suffix}"
            );
        }
        assert_eq!(memory_bytes("512Mi"), Ok(512 * MI));
        assert_eq!(memory_bytes("15Ei"), Ok(15 << 60));
        assert_eq!(cpu_millis("1Ki"), Ok(1_024_000));
    }

    #[test]
    fn decimal_exponents_shift_the_point_either_way() {
        assert_eq!(memory_bytes("1e9"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("1E9"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("1e+9"), Ok(1_000_000_000));
        assert_eq!(memory_bytes("129e6"), Ok(129_000_000));
        assert_eq!(memory_bytes("1.5e3"), Ok(1500));
        assert_eq!(memory_bytes("7e0"), Ok(7));
        assert_eq!(memory_bytes("1e19"), Ok(10u64.pow(19)));
        assert_eq!(cpu_millis("1e3"), Ok(1_000_000));
        assert_eq!(cpu_millis("25e-2"), Ok(250));
        assert_eq!(cpu_millis("5E-1"), Ok(500));
        assert_eq!(cpu_millis("1e-3"), Ok(1));
        assert_eq!(cpu_millis("1e-999999999"), Ok(1));
        assert_eq!(memory_bytes("1e-3"), Ok(1));
    }

    #[test]
    fn a_leading_plus_is_accepted() {
        assert_eq!(cpu_millis("+1"), Ok(1000));
        assert_eq!(cpu_millis("+250m"), Ok(250));
        assert_eq!(cpu_millis("+.5"), Ok(500));
        assert_eq!(memory_bytes("+1Gi"), Ok(GI));
    }

    #[test]
    fn a_number_may_start_or_end_with_the_point() {
        assert_eq!(cpu_millis(".5"), Ok(500));
        assert_eq!(cpu_millis("5."), Ok(5000));
        assert_eq!(memory_bytes(".5Ki"), Ok(512));
        assert_eq!(memory_bytes("5.Mi"), Ok(5 * MI));
    }

    #[test]
    fn surrounding_whitespace_is_ignored_but_inner_whitespace_is_not() {
        assert_eq!(cpu_millis(" 250m"), Ok(250));
        assert_eq!(memory_bytes("123Mi "), Ok(123 * MI));
        assert_eq!(memory_bytes("\t1Gi\n"), Ok(GI));
        for text in ["1 Mi", "1 .5", "+ 1", "1e 3"] {
            assert!(memory_bytes(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn values_that_are_not_whole_round_up_never_to_nearest() {
        assert_eq!(cpu_millis("100u"), Ok(1));
        assert_eq!(cpu_millis("0.0001"), Ok(1));
        assert_eq!(cpu_millis("1.0001"), Ok(1001));
        assert_eq!(cpu_millis("1500u"), Ok(2));
        assert_eq!(memory_bytes("0.1"), Ok(1));
        assert_eq!(memory_bytes("1.1"), Ok(2));
        assert_eq!(memory_bytes("999m"), Ok(1));
        assert_eq!(memory_bytes("0.3Ki"), Ok(308)); // 307.2
    }

    #[test]
    fn zero_is_zero_in_every_form() {
        for text in [
            "0", "+0", "000", "0.0", ".0", "0.", "0m", "0n", "0Ei", "0E", "0e99",
        ] {
            assert_eq!(cpu_millis(text), Ok(0), "{text}");
            assert_eq!(memory_bytes(text), Ok(0), "{text}");
        }
    }

    #[test]
    fn long_digit_strings_are_exact() {
        let zeros = "0".repeat(50);
        let nines = "9".repeat(50);
        assert_eq!(memory_bytes(&format!("1.{zeros}1")), Ok(2));
        assert_eq!(memory_bytes(&format!("0.{nines}Ki")), Ok(1024));
        assert_eq!(memory_bytes(&format!("1{zeros}e-48")), Ok(100));
        assert_eq!(memory_bytes(&format!("{zeros}5Mi")), Ok(5 * MI));
        assert_eq!(cpu_millis(&format!("0.{zeros}1")), Ok(1));
        assert_eq!(cpu_millis(&format!("0.{zeros}")), Ok(0));
    }

    #[test]
    fn malformed_text_is_rejected() {
        for text in [
            "", " ", ".", "+", "++1", "+-1", "1x", "1.2.3", "1.5.Mi", "Mi", "Ki", "e3", "1e",
            "1e1.5", "1e+", "1Xi", "1mi", "1KI", "1K", "1ki", "abc", "lots", "1,5", "1_000",
            "0x10", "NaN", "inf", "١", "1١",
        ] {
            assert!(cpu_millis(text).is_err(), "cpu {text:?}");
            assert!(memory_bytes(text).is_err(), "memory {text:?}");
        }
    }

    #[test]
    fn negative_quantities_are_rejected() {
        for text in ["-1", "-0.5", "-250m", "-1Mi", "-1e3", "-0"] {
            assert!(cpu_millis(text).is_err(), "cpu {text:?}");
            assert!(memory_bytes(text).is_err(), "memory {text:?}");
        }
    }

    #[test]
    fn values_beyond_u64_are_rejected_not_wrapped() {
        assert_eq!(memory_bytes("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(cpu_millis("18446744073709551615m"), Ok(u64::MAX));
        for text in [
            "99999999999Ei",
            "16Ei",
            "18446744073709551616",
            "1e20",
            "1e999999999",
            "1e99999999999999999999", // the exponent itself is beyond i64
            &"9".repeat(40),
        ] {
            assert!(memory_bytes(text).is_err(), "memory {text:?}");
        }
        assert!(cpu_millis("18446744073709551616m").is_err());
        assert!(cpu_millis("18446744073709552").is_err());
        assert!(cpu_millis("1E").is_err());
    }

    #[test]
    fn errors_name_the_text_the_kind_and_examples() {
        assert_eq!(
            cpu_millis("-1").map_err(|err| err.to_string()),
            Err(r#""-1" is not a valid CPU quantity (examples: 250m, 0.5, 2)"#.to_string())
        );
        assert_eq!(
            memory_bytes("lots").map_err(|err| err.to_string()),
            Err(
                r#""lots" is not a valid memory quantity (examples: 256Mi, 1Gi, 512M, 1e9)"#
                    .to_string()
            )
        );
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
        assert_eq!(format_bytes(512 * MI), "512Mi");
        assert_eq!(format_bytes(2 * GI), "2Gi");
        assert_eq!(format_bytes(1536 * MI), "1536Mi");
        assert_eq!(format_bytes(1000), "1000");
    }

    /// A suffix as text with the exact factor it stands for, `numerator / denominator`.
    fn suffixes() -> impl Strategy<Value = (String, u128, u128)> {
        let fixed: Vec<(&str, u128, u128)> = vec![
            ("n", 1, 10u128.pow(9)),
            ("u", 1, 10u128.pow(6)),
            ("m", 1, 1000),
            ("", 1, 1),
            ("k", 10u128.pow(3), 1),
            ("M", 10u128.pow(6), 1),
            ("G", 10u128.pow(9), 1),
            ("T", 10u128.pow(12), 1),
            ("P", 10u128.pow(15), 1),
            ("E", 10u128.pow(18), 1),
            ("Ki", 1 << 10, 1),
            ("Mi", 1 << 20, 1),
            ("Gi", 1 << 30, 1),
            ("Ti", 1 << 40, 1),
            ("Pi", 1 << 50, 1),
            ("Ei", 1 << 60, 1),
        ];
        let fixed = proptest::sample::select(fixed)
            .prop_map(|(text, numerator, denominator)| (text.to_string(), numerator, denominator));
        let exponent = (
            prop_oneof![Just("e"), Just("E")],
            prop_oneof![Just(""), Just("+")],
            -12i32..=12,
        )
            .prop_map(|(letter, plus, exponent)| {
                let power = 10u128.pow(exponent.unsigned_abs());
                let text = if exponent < 0 {
                    format!("{letter}{exponent}")
                } else {
                    format!("{letter}{plus}{exponent}")
                };
                if exponent < 0 {
                    (text, 1, power)
                } else {
                    (text, power, 1)
                }
            });
        prop_oneof![fixed, exponent]
    }

    /// `numerator / denominator` rounded up, if it fits in a u64.
    fn ceil_u64(numerator: u128, denominator: u128) -> Option<u64> {
        u64::try_from(numerator.div_ceil(denominator)).ok()
    }

    proptest! {
        #[test]
        fn parsing_agrees_with_exact_rational_arithmetic(
            int in 0u64..100_000_000_000,
            frac in "[0-9]{0,6}",
            (suffix, numerator, denominator) in suffixes(),
            plus in any::<bool>(),
            bare_point in any::<bool>(),
        ) {
            // int.frac, also written `5.` and `.5` where that is the same number.
            let number = match (frac.is_empty(), int == 0 && bare_point) {
                (true, _) if bare_point => format!("{int}."),
                (true, _) => int.to_string(),
                (false, true) => format!(".{frac}"),
                (false, false) => format!("{int}.{frac}"),
            };
            let text = format!("{}{number}{suffix}", if plus { "+" } else { "" });

            let places = 10u128.pow(u32::try_from(frac.len()).expect("short"));
            let mantissa = u128::from(int) * places + frac.parse::<u128>().unwrap_or(0);
            let value = mantissa.checked_mul(numerator).expect("fits u128");
            let bytes = ceil_u64(value, places * denominator);
            let millis = ceil_u64(value.checked_mul(1000).expect("fits u128"), places * denominator);
            prop_assert_eq!(memory_bytes(&text).ok(), bytes, "memory {}", text);
            prop_assert_eq!(cpu_millis(&text).ok(), millis, "cpu {}", text);
        }

        #[test]
        fn zero_padding_changes_nothing(
            int in 0u64..1_000_000,
            frac in "[0-9]{1,6}",
            leading in 0usize..60,
            trailing in 0usize..60,
            (suffix, _, _) in suffixes(),
        ) {
            let plain = format!("{int}.{frac}{suffix}");
            let padded = format!("{}{int}.{frac}{}{suffix}", "0".repeat(leading), "0".repeat(trailing));
            prop_assert_eq!(memory_bytes(&padded).ok(), memory_bytes(&plain).ok(), "{}", padded);
            prop_assert_eq!(cpu_millis(&padded).ok(), cpu_millis(&plain).ok(), "{}", padded);
        }

        #[test]
        fn any_text_parses_or_is_rejected_without_panicking(
            text in prop_oneof![any::<String>(), "[-+0-9.eEinumkKMGTP \t]{0,40}"],
        ) {
            for (result, kind) in [(cpu_millis(&text), "CPU"), (memory_bytes(&text), "memory")] {
                if let Err(err) = result {
                    prop_assert_eq!(&err.text, &text);
                    prop_assert_eq!(err.kind, kind);
                }
            }
        }

        #[test]
        fn formatted_bytes_read_back_as_the_same_bytes(
            bytes in prop_oneof![
                any::<u64>(),
                (0..u64::MAX / MI).prop_map(|n| n * MI),
                (0..u64::MAX / GI).prop_map(|n| n * GI),
            ],
        ) {
            prop_assert_eq!(memory_bytes(&format_bytes(bytes)), Ok(bytes));
        }

        #[test]
        fn millicores_written_with_m_read_back_unchanged(millis in any::<u64>()) {
            prop_assert_eq!(cpu_millis(&format!("{millis}m")), Ok(millis));
        }
    }
}
