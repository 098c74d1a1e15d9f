//! The time the export machinery reads: the system clock in production, a clock the tests
//! move forward (shared with the fake Atlassian site) so a 30-minute `Retry-After` can be
//! waited out without waiting, and every "not before" comparison stays honest.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

/// Cheap to clone; every clone reads the same time source.
#[derive(Clone, Default)]
pub struct Clock {
    source: Option<Arc<dyn Fn() -> OffsetDateTime + Send + Sync>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.source.is_some() {
            "Clock(custom)"
        } else {
            "Clock(system)"
        })
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock read from `source` (tests: the fake site's clock, which they advance).
    pub fn from_fn(source: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Clock {
        Clock {
            source: Some(Arc::new(source)),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        match &self.source {
            Some(f) => f(),
            None => OffsetDateTime::now_utc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_clock_is_read_through_every_clone() {
        let fixed = OffsetDateTime::UNIX_EPOCH + time::Duration::days(3);
        let clock = Clock::from_fn(move || fixed);
        assert_eq!(clock.clone().now(), fixed);
        assert!(Clock::system().now() > fixed);
    }
}
