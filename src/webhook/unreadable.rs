//! A watched file that cannot be read is reported when that starts (or its error changes) and
//! when it ends, not at every check: a deleted file would otherwise log an error each interval.

use std::sync::Mutex;

/// The error of the last failed read of a file, while it keeps failing.
#[derive(Debug, Default)]
pub struct ReadFailure(Mutex<Option<String>>);

impl ReadFailure {
    /// Records a failed read; true when it is news: the first, or a different error.
    pub fn failed(&self, error: &str) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(error) {
            return false;
        }
        *last = Some(error.to_string());
        true
    }

    /// Records a successful read; true when reads were failing until now.
    pub fn succeeded(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
    }
}
