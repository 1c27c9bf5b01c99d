//! RFC 3339 timestamps and `14d`-style ages as Unix seconds, without the `time` crate's parsing
//! features (the core only needs UTC seconds).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-20T08:00:00Z`,
/// `2026-11-20T09:00:00.5+01:00`); `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.is_ascii() {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| bytes[at] != c) || !matches!(bytes[10], b'T' | b't') {
        return None;
    }
    let year = i32::try_from(number(0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(number(5, 7)?).ok()?).ok()?;
    let day = u8::try_from(number(8, 10)?).ok()?;
    let hour = u8::try_from(number(11, 13)?).ok()?;
    let minute = u8::try_from(number(14, 16)?).ok()?;
    let second = u8::try_from(number(17, 19)?).ok()?;
    // Fractions of a second say nothing at the scale of days; skip them.
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let part = |from: usize, to: usize| -> Option<i8> {
                let digits = rest.get(from..to)?;
                digits
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| digits.parse().ok())?
            };
            UtcOffset::from_hms(sign * part(1, 3)?, sign * part(4, 6)?, 0).ok()?
        }
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp(),
    )
}

/// `2026-11-20T08:00:00Z`, as `generatedAt` is written.
pub fn format_rfc3339(unix_seconds: i64) -> Option<String> {
    let at = OffsetDateTime::from_unix_timestamp(unix_seconds).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    ))
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
        for bad in [
            "",
            "2026-11-20",
            "2026-13-20T08:00:00Z",
            "2026-02-30T08:00:00Z",
            "2026-11-20T08:00:00",
            "2026-11-20T08:00:00.Z",
            "2026-11-20T08:00:00+1:00",
            "2026-11-20 08:00:00Z",
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
