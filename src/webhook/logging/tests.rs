use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// Lines written by a subscriber, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("UTF-8")
    }
}

/// The same events as the server logs them, and a few shapes it may one day log.
fn emit_events() {
    let error = std::io::Error::other("disk \"full\"");
    tracing::info!(
        uid = %"936b7fbd-aa7f",
        namespace = "hooked",
        pod = "p1",
        mode = "enforce",
        dry_run = false,
        result = "patched",
        changes = 14usize,
        warnings = 0usize,
        detail = Option::<&str>::None,
        latency_ms = 0.123,
        "review"
    );
    tracing::warn!(
        mode = "audit",
        status = 400u16,
        error = %"the body is not JSON: EOF while parsing",
        "request rejected"
    );
    tracing::error!(
        detail = Some("panicked: \"index\" out of bounds\n\tat engine"),
        latency_ms = f64::NAN,
        big = u64::MAX,
        negative = -5i64,
        wide = 5i128,
        "review failed; {} allowed unchanged",
        "Pod"
    );
    tracing::info!(reading = ?("/etc/ü", 2), cause = &error as &dyn std::error::Error, "reload");
    tracing::debug!(target: "other::place", flag = true, "a target of its own");
    let span = tracing::info_span!("lookup", namespace = "hooked", attempt = 1);
    let _entered = span.enter();
    tracing::info!(found = 3u64, "inside a span");
}

fn captured_with(
    subscriber: impl Subscriber + Send + Sync + 'static,
    captured: &Captured,
) -> String {
    tracing::subscriber::with_default(subscriber, emit_events);
    captured.text()
}

/// The line with its timestamp's value replaced, and that value.
fn without_timestamp(line: &str) -> (String, String) {
    let key = r#""timestamp":""#;
    let start = line.find(key).expect("a timestamp") + key.len();
    let end = start + line[start..].find('"').expect("closed");
    (
        format!("{}…{}", &line[..start], &line[end..]),
        line[start..end].to_string(),
    )
}

/// A subscriber builder for every level, without colours, writing to `captured`.
fn builder(
    captured: &Captured,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    Format,
    tracing_subscriber::filter::LevelFilter,
    Captured,
> {
    tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
}

#[test]
fn json_lines_are_what_tracing_subscriber_writes() {
    let reference = Captured::default();
    let expected = captured_with(
        builder(&reference).json().flatten_event(true).finish(),
        &reference,
    );
    let ours = Captured::default();
    let actual = captured_with(
        builder(&ours)
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines::new())
            .finish(),
        &ours,
    );

    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    assert_eq!(actual.len(), 6, "{actual:#?}");
    assert_eq!(actual.len(), expected.len());
    for (ours, theirs) in actual.iter().zip(&expected) {
        let (ours, our_time) = without_timestamp(ours);
        let (theirs, their_time) = without_timestamp(theirs);
        assert_eq!(ours, theirs);
        assert_eq!(
            our_time.len(),
            their_time.len(),
            "{our_time} vs {their_time}"
        );
        // Written microseconds apart: the same day, barring midnight.
        assert_eq!(our_time.get(..4), their_time.get(..4));
    }
    assert!(actual[0].contains(r#""message":"review""#), "{}", actual[0]);
    assert!(actual[2].contains(r#""latency_ms":null"#), "{}", actual[2]);
}

#[test]
fn timestamps_are_utc_with_microseconds() {
    let cases = [
        (0, "1970-01-01T00:00:00"),
        (59, "1970-01-01T00:00:59"),
        (86_399, "1970-01-01T23:59:59"),
        (86_400, "1970-01-02T00:00:00"),
        (68_169_600, "1972-02-29T00:00:00"),
        (946_684_800, "2000-01-01T00:00:00"),
        (951_782_400, "2000-02-29T00:00:00"),
        (951_868_799, "2000-02-29T23:59:59"),
        (951_868_800, "2000-03-01T00:00:00"),
        (1_709_164_800, "2024-02-29T00:00:00"),
        (1_795_488_123, "2026-11-24T02:42:03"),
        (4_107_542_399, "2100-02-28T23:59:59"),
        (4_107_542_400, "2100-03-01T00:00:00"),
        (253_402_300_799, "9999-12-31T23:59:59"),
    ];
    for (seconds, expected) in cases {
        let time = UNIX_EPOCH + Duration::new(seconds, 7_654_321);
        let mut out = Vec::new();
        push_timestamp(&mut out, time).expect("writable");
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            format!("{expected}.007654Z")
        );
    }
}

#[test]
fn times_this_format_cannot_write_are_left_to_tracing_subscriber() {
    let mut out = Vec::new();
    assert!(push_timestamp(&mut out, UNIX_EPOCH - Duration::from_secs(1)).is_none());
    let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    assert!(push_timestamp(&mut out, year_10000).is_none());
}
