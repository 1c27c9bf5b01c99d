//! RFC 3339 timestamps and `14d`-style ages as Unix seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-20T08:00:00Z`,
/// `2026-11-20T09:00:00.5+01:00`; fractions of a second are dropped); `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// `2026-11-20T08:00:00Z`, as `generatedAt` is written.
pub fn format_rfc3339(unix_seconds: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// The units of an age: seconds to weeks.
const AGE_UNITS: &[(char, u64)] = &[
    ('s', 1),
    ('m', 60),
    ('h', 3600),
    ('d', 86_400),
    ('w', 604_800),
];

/// An age like `14d`, `36h`, `2w`, `1d12h` (units s, m, h, d, w) in seconds; `None` when it is
/// not one or is zero.
pub fn parse_age(text: &str) -> Option<u64> {
    duration_seconds(text, AGE_UNITS)
}

/// Seconds in a duration written as whole numbers each followed by one of `units` (`1d12h`);
/// `None` when it is not one or is zero.
pub fn duration_seconds(text: &str, units: &[(char, u64)]) -> Option<u64> {
    let mut seconds: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = units.iter().find(|(name, _)| *name == c)?.1;
        let count: u64 = digits.parse().ok()?;
        seconds = seconds.saturating_add(count.saturating_mul(unit));
        digits.clear();
    }
    (digits.is_empty() && seconds > 0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_offsets_count() {
        let at = parse_rfc3339("2026-11-20T08:00:00Z").unwrap();
        assert_eq!(format_rfc3339(at).unwrap(), "2026-11-20T08:00:00Z");
        assert_eq!(parse_rfc3339("2026-11-20T09:00:00+01:00"), Some(at));
        assert_eq!(parse_rfc3339("2026-11-20T08:00:00.250Z"), Some(at));
        assert_eq!(parse_rfc3339("2026-11-20T07:30:00.5-00:30"), Some(at));
        // RFC 3339 §5.6 lets a space stand for the T.
        assert_eq!(parse_rfc3339("2026-11-20 08:00:00Z"), Some(at));
        for bad in [
            "",
            "2026-11-20",
            "2026-13-20T08:00:00Z",
            "2026-02-30T08:00:00Z",
            "2026-11-20T08:00:00",
            "2026-11-20T08:00:00.Z",
            "2026-11-20T08:00:00+1:00",
            "２026-11-20T08:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_read_as_written() {
        assert_eq!(parse_age("14d"), Some(14 * 86_400));
        assert_eq!(parse_age("1d12h"), Some(36 * 3600));
        assert_eq!(parse_age("2w"), Some(14 * 86_400));
        for bad in ["", "0d", "14", "d", "14x", "-1d"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
    }
}
