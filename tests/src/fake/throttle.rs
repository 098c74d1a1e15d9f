//! A response body sent at a bandwidth (fault injection, [`super::Fault::bandwidth`]; a test
//! and bench seam, not an Atlassian behaviour): each frame is released once the bytes sent so
//! far fit in the time elapsed at the rate. It models only what any network does: carry so
//! many bytes a second. Frames are split to at most 64 KiB so the pace is smooth.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

const SLICE: usize = 64 * 1024;

pub(crate) struct Throttled {
    inner: Body,
    bytes_per_sec: u64,
    started: Option<Instant>,
    sent: u64,
    /// Data not yet released (the rest of a frame longer than [`SLICE`]).
    pending: Bytes,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Throttled {
    pub(crate) fn new(inner: Body, bytes_per_sec: u64) -> Throttled {
        Throttled {
            inner,
            bytes_per_sec: bytes_per_sec.max(1),
            started: None,
            sent: 0,
            pending: Bytes::new(),
            sleep: None,
        }
    }

    /// When the next `len` bytes may go: once `sent + len` bytes fit the rate.
    fn due(&mut self, len: usize) -> Instant {
        let started = *self.started.get_or_insert_with(Instant::now);
        let total = self.sent + len as u64;
        started + Duration::from_secs_f64(total as f64 / self.bytes_per_sec as f64)
    }
}

impl HttpBody for Throttled {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let len = this.pending.len().min(SLICE);
                if this.sleep.is_none() {
                    let due = this.due(len);
                    this.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
                }
                if let Some(sleep) = this.sleep.as_mut()
                    && sleep.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                this.sleep = None;
                this.sent += len as u64;
                let chunk = this.pending.split_to(len);
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let extra = self.pending.len() as u64;
        hint.set_lower(hint.lower() + extra);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_takes_at_least_its_size_over_the_rate_and_arrives_whole() {
        // 256 KiB at 1 MiB/s: a quarter of a second at least (only the lower bound is
        // checked; a loaded machine may take longer).
        let body = Body::from(vec![7u8; 256 * 1024]);
        let started = Instant::now();
        let throttled = Body::new(Throttled::new(body, 1024 * 1024));
        let bytes = axum::body::to_bytes(throttled, usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bytes.len(), 256 * 1024);
        assert!(bytes.iter().all(|b| *b == 7));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
    }
}
