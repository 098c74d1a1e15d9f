//! The time, taken when it is needed (never one `now` carried through a run of minutes).
//!
//! Production reads the system clock. Tests that simulate hours or days either share an
//! offset with the fake Atlassian site's clock and move both forward together
//! ([`Clock::adjustable`]: real time still passes underneath, so leases and timeouts behave as
//! they would, only later), or read the fake site's clock itself ([`Clock::from_fn`]), so a
//! 30-minute `Retry-After` can be waited out without waiting and every "not before"
//! comparison stays honest.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    /// The system time plus milliseconds a test added.
    Offset(Arc<AtomicI64>),
    /// Any time source (tests: the fake site's clock).
    Fn(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>),
}

/// Cheap to clone; every clone reads the same time source.
#[derive(Clone, Default)]
pub struct Clock {
    source: Source,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.source {
            Source::System => "Clock(system)",
            Source::Offset(_) => "Clock(adjustable)",
            Source::Fn(_) => "Clock(custom)",
        })
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock a test can move forward with [`Clock::advance`] (clones share the offset).
    pub fn adjustable() -> Clock {
        Clock {
            source: Source::Offset(Arc::new(AtomicI64::new(0))),
        }
    }

    /// A clock read from `source` (tests: the fake site's clock, which they advance).
    pub fn from_fn(source: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Clock {
        Clock {
            source: Source::Fn(Arc::new(source)),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        match &self.source {
            Source::System => OffsetDateTime::now_utc(),
            Source::Offset(offset) => {
                OffsetDateTime::now_utc()
                    + time::Duration::milliseconds(offset.load(Ordering::SeqCst))
            }
            Source::Fn(f) => f(),
        }
    }

    /// Move an adjustable clock forward (a no-op on the other kinds).
    pub fn advance(&self, by: time::Duration) {
        if let Source::Offset(offset) = &self.source {
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

    #[test]
    fn a_custom_clock_is_read_through_every_clone() {
        let fixed = OffsetDateTime::UNIX_EPOCH + time::Duration::days(3);
        let clock = Clock::from_fn(move || fixed);
        assert_eq!(clock.clone().now(), fixed);
        assert!(Clock::system().now() > fixed);
    }
}
