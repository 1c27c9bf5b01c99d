use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// Lines written by a subscriber, shared with the test.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

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
    /// What `run` logged in `format`, with the subscriber `init` installs.
    pub(crate) fn logs(format: LogFormat, run: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), captured.clone(), false);
        tracing::subscriber::with_default(subscriber, run);
        let bytes = captured.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    /// Each line of what `run` logged as JSON, parsed.
    pub(crate) fn json_lines(run: impl FnOnce()) -> Vec<Value> {
        Captured::logs(LogFormat::Json, run)
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON value"))
            .collect()
    }
}

#[test]
fn json_lines_are_flat_objects() {
    let lines = Captured::json_lines(|| {
        tracing::warn!(
            mode = "audit",
            status = 400u16,
            error = %"the body is not \"JSON\":\nEOF",
            "request rejected"
        );
        tracing::debug!("below the level");
        let span = tracing::info_span!("lookup", namespace = "hooked");
        let _entered = span.enter();
        tracing::info!(found = 3u64, "inside a span");
    });
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let rejected = &lines[0];
    assert_eq!(rejected["level"], "WARN");
    assert_eq!(rejected["message"], "request rejected");
    assert_eq!(rejected["mode"], "audit");
    assert_eq!(rejected["status"], 400);
    assert_eq!(rejected["error"], "the body is not \"JSON\":\nEOF");
    assert!(rejected["timestamp"].is_string());
    assert!(rejected["target"].is_string());
    assert_eq!(lines[1]["found"], 3);
    assert_eq!(lines[1]["span"]["namespace"], "hooked");
}

#[test]
fn text_lines_are_not_json() {
    let text = Captured::logs(LogFormat::Text, || {
        tracing::info!(uid = "u-1", "review");
    });
    assert!(
        text.contains("review") && text.contains("uid=\"u-1\""),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(text.trim()).is_err());
}
