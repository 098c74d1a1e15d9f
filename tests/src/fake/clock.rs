//! The fake clock: real time since start plus whatever a test advanced. Token expiry, rotation
//! leeway, code expiry, the 90/365-day refresh-token limits and `touch_*` timestamps use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub(crate) struct FakeClock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    start: OffsetDateTime,
    started: Instant,
    /// Milliseconds added by `advance`.
    offset_ms: AtomicU64,
}

impl FakeClock {
    pub(crate) fn new(start: OffsetDateTime) -> Self {
        Self {
            inner: Arc::new(ClockInner {
                start,
                started: Instant::now(),
                offset_ms: AtomicU64::new(0),
            }),
        }
    }

    /// The instant the fake started at (seeded timestamps are relative to it).
    pub(crate) fn start(&self) -> OffsetDateTime {
        self.inner.start
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        let offset = Duration::from_millis(self.inner.offset_ms.load(Ordering::SeqCst));
        self.inner.start + self.inner.started.elapsed() + offset
    }

    /// Moves the clock forward, by at most a thousand years in total (so date arithmetic can
    /// never overflow, whatever an admin call asks for).
    pub(crate) fn advance(&self, by: Duration) {
        const MAX_OFFSET_MS: u64 = 1000 * 366 * 86_400 * 1000;
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_add(ms).min(MAX_OFFSET_MS))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = FakeClock::new(OffsetDateTime::UNIX_EPOCH);
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() - before >= time::Duration::hours(1));
    }
}
