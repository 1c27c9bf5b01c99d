//! Reading a request body within the size limit, and draining one that is refused.
//!
//! A refused body is still read, and thrown away, before the connection may close: closing a TCP
//! socket with unread data sends a reset, and a client still writing its body (no
//! `Expect: 100-continue`) then sees "connection reset" instead of the 413. hyper drains only what
//! has already arrived (`poll_drain_or_close_read`), so for a body of megabytes the reset was
//! the common case.

use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The most of a refused body read and thrown away; past it the connection is closed.
pub const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// The longest a refused body may take to drain.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Why a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Larger than the limit.
    TooLarge,
    /// The connection failed or the client sent a malformed body.
    Failed(String),
}

/// Reads the whole body, refusing it past `limit` bytes. The body stays with the caller, so a
/// refused one can be drained.
pub async fn read(body: &mut Body, limit: usize) -> Result<Bytes, ReadError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if is_length_limit(err.as_ref()) => Err(ReadError::TooLarge),
        Err(err) => Err(ReadError::Failed(err.to_string())),
    }
}

fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(error) = source {
        if error.is::<LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Reads what is left of a refused body in the background, up to [`MAX_DRAIN_BYTES`] and
/// [`DRAIN_TIME`], while the 413 is sent. A body declared larger than the bound is not read at
/// all: it would be reset anyway.
pub fn drain_refused(mut body: Body, declared: Option<u64>) {
    if declared.is_some_and(|length| length > MAX_DRAIN_BYTES) {
        return;
    }
    tokio::spawn(async move {
        let mut left = MAX_DRAIN_BYTES;
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(frame)) = body.frame().await {
                let length = frame.data_ref().map_or(0, |data| data.len() as u64);
                match left.checked_sub(length) {
                    Some(rest) => left = rest,
                    None => break,
                }
            }
        })
        .await;
    });
}
