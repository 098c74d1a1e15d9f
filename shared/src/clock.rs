//! The time, taken when it is needed (never one `now` carried through a run of minutes).
//!
//! Production reads the system clock. Tests that simulate hours or days share an offset with
//! the fake Atlassian site's clock and move both forward together: real time still passes
//! underneath, so leases and timeouts behave as they would, only later.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// The system clock, optionally shifted by an offset a test controls.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None` in production.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock a test can move forward with [`Clock::advance`] (clones share the offset).
    pub fn adjustable() -> Clock {
        Clock {
            offset_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        match &self.offset_ms {
            Some(offset) => now + time::Duration::milliseconds(offset.load(Ordering::SeqCst)),
            None => now,
        }
    }

    /// Move an adjustable clock forward (a no-op on the system clock).
    pub fn advance(&self, by: time::Duration) {
        if let Some(offset) = &self.offset_ms {
            let ms = i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX);
            let _ = offset.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_add(ms.max(0)))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_clones_together_and_never_the_system_clock() {
        let clock = Clock::adjustable();
        let other = clock.clone();
        clock.advance(time::Duration::hours(2));
        assert!(other.now() - OffsetDateTime::now_utc() > time::Duration::minutes(119));
        let system = Clock::system();
        system.advance(time::Duration::hours(2));
        assert!(system.now() - OffsetDateTime::now_utc() < time::Duration::minutes(1));
    }
}
