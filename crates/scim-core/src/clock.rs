//! The clock that lifetimes are decided by.
//!
//! OAuth codes and tokens expire, and a verified bearer token is trusted
//! from memory for a while (`scim_server::auth`). Every such decision asks
//! a [`Clock`] instead of the system clock directly, so that a test can
//! move time forward and see a lifetime end at once, rather than wait it
//! out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// The system clock, plus an offset that only tests move forward
/// ([`Clock::advance`], feature `testing`); in production the offset stays
/// zero. Clones share the offset, so one clock handed to the SCIM API and
/// the admin side moves for both. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ahead_nanos: Arc<AtomicU64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    fn ahead(&self) -> Duration {
        Duration::from_nanos(self.ahead_nanos.load(Ordering::Acquire))
    }

    /// The current wall-clock instant (UTC), for lifetimes stored in the
    /// database.
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        time::Duration::try_from(self.ahead())
            .ok()
            .and_then(|ahead| now.checked_add(ahead))
            .unwrap_or(now)
    }

    /// [`Clock::now`] in the fixed stored form ([`crate::datetime::format`]).
    pub fn now_text(&self) -> String {
        crate::datetime::format(self.now())
    }

    /// The current monotonic instant, for lifetimes kept in memory: a
    /// wall clock set back must not stretch them.
    pub fn instant(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.ahead()).unwrap_or(now)
    }

    /// Moves this clock (and its clones) forward by `by`.
    #[cfg(any(test, feature = "testing"))]
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .ahead_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_has_no_offset() {
        let clock = Clock::system();
        let before = OffsetDateTime::now_utc();
        let now = clock.now();
        assert!(now >= before && now - before < time::Duration::seconds(5));
        let before = Instant::now();
        assert!(clock.instant().duration_since(before) < Duration::from_secs(5));
    }

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let (wall, mono) = (OffsetDateTime::now_utc(), Instant::now());
        clock.advance(Duration::from_secs(3600));
        assert!(other.now() - wall >= time::Duration::seconds(3600));
        assert!(other.instant().duration_since(mono) >= Duration::from_secs(3600));
    }
}
