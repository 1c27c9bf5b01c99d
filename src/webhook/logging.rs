//! Log output: tracing-subscriber's text format, or one JSON object per line.
//!
//! JSON lines (the chart's default) for pytune's own events outside any span are written here,
//! byte for byte what tracing-subscriber's flattened JSON format writes. That format runs a serde
//! serializer per field and formats the time through `fmt`, which made the per-review line cost
//! about a tenth of serving the review. Events inside spans, and those bridged from the `log`
//! crate, still go through tracing-subscriber's formatter, which knows how to render those.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::json_text::write_str;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line, the event's fields at the top level
    Json,
}

/// Installs the global subscriber: stderr, level from `RUST_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines::new())
            .init(),
        LogFormat::Text => builder.init(),
    }
}

/// tracing-subscriber's flattened JSON format, with a direct path for plain events.
pub struct JsonLines {
    general: Format<Json>,
}

impl JsonLines {
    pub fn new() -> Self {
        JsonLines {
            general: tracing_subscriber::fmt::format().json().flatten_event(true),
        }
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let in_span = event.parent().is_some() || ctx.lookup_current().is_some();
        // Events bridged from `log` carry their real target and location in fields.
        let bridged = event.metadata().target() == "log";
        let line = if in_span || bridged {
            None
        } else {
            plain_line(event)
        };
        match line {
            Some(line) => writer.write_str(&line),
            None => self.general.format_event(ctx, writer, event),
        }
    }
}

/// The JSON line of an event outside any span; `None` for a time this format cannot write.
fn plain_line(event: &Event<'_>) -> Option<String> {
    let meta = event.metadata();
    let mut line = Vec::with_capacity(384);
    line.extend_from_slice(br#"{"timestamp":""#);
    push_timestamp(&mut line, SystemTime::now())?;
    line.extend_from_slice(br#"","level":""#);
    line.extend_from_slice(meta.level().as_str().as_bytes());
    line.push(b'"');
    event.record(&mut Members(&mut line));
    line.extend_from_slice(br#","target":"#);
    write_str(&mut line, meta.target());
    line.extend_from_slice(b"}\n");
    String::from_utf8(line).ok()
}

/// Writes each field as `,"name":value`, with the JSON types tracing-serde gives them.
struct Members<'a>(&'a mut Vec<u8>);

impl Members<'_> {
    fn key(&mut self, field: &Field) {
        self.0.push(b',');
        write_str(self.0, field.name());
        self.0.push(b':');
    }

    fn number(&mut self, field: &Field, value: impl serde::Serialize) {
        self.key(field);
        // Numbers only fail to serialize into a Vec when memory runs out.
        if serde_json::to_writer(&mut *self.0, &value).is_err() {
            self.0.extend_from_slice(b"null");
        }
    }
}

impl Visit for Members<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        write_str(self.0, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        write_str(self.0, &format!("{value:?}"));
    }
}

/// `2026-11-24T01:02:03.456789Z`, as tracing-subscriber writes UTC time (microseconds).
fn push_timestamp(out: &mut Vec<u8>, time: SystemTime) -> Option<()> {
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    let seconds = i64::try_from(since_epoch.as_secs()).ok()?;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    // Years past 9999 get a sign in tracing-subscriber's format; leave those to it.
    let year = u32::try_from(year).ok().filter(|year| *year <= 9999)?;
    let of_day = seconds.rem_euclid(86_400) as u32;
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, of_day / 3600, 2);
    out.push(b':');
    push_digits(out, of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, of_day % 60, 2);
    out.push(b'.');
    push_digits(out, since_epoch.subsec_micros(), 6);
    out.push(b'Z');
    Some(())
}

/// `value` in decimal, zero-padded to `width` digits (it has at most `width`).
fn push_digits(out: &mut Vec<u8>, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width.saturating_sub(1));
    while divisor > 0 {
        out.push(b'0' + (value / divisor % 10) as u8);
        divisor /= 10;
    }
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
