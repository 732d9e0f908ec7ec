//! Per-credential rate limiting of the SCIM API.
//!
//! Each authenticated credential (a secret token, or an OAuth grant: the
//! `token_id` of [`crate::auth::Principal`]) gets a budget of requests,
//! refilled at a steady rate with room for a burst: the generic cell rate
//! algorithm of the `governor` crate, one state per credential. A request
//! over the budget is answered 429 Too Many Requests (RFC 6585 §4) with
//! `Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3), and an
//! RFC 7644 §3.12 error document ([`crate::ApiError::TooManyRequests`]).
//!
//! The check runs in [`crate::auth::require_bearer`] right after
//! authentication: a request without a valid credential gets 401 and
//! spends nothing, and only a credential the database knows creates a
//! state here. It runs before the User Synchronization gate, so a
//! throttled request costs no database work at all.
//!
//! The budget is per process: with several replicas behind a load
//! balancer each keeps its own, and a credential may send up to that many
//! times the configured rate in all.
//!
//! Memory: one small state per credential in recent use. Every
//! [`RETAIN_EVERY`] checks the states whose budget is full again (the
//! credential was idle long enough, or has been revoked) are dropped, so
//! the map follows the credentials in use, never all that ever were.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::Quota;

/// How many checks pass between two sweeps of the idle credentials'
/// states (a sweep visits every state once).
pub const RETAIN_EVERY: u64 = 4096;

/// The budget of each credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests a credential that has been idle may send at once.
    pub burst: NonZeroU32,
}

/// The SCIM API's per-credential limiter. Cheap to clone: build one per
/// process and give every worker's [`crate::ScimApi`] a clone, so that the
/// budget holds for the process rather than for each worker thread.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limit: RateLimit,
    states: Box<dyn States>,
    checks: AtomicU64,
}

/// A keyed `governor` limiter over some clock (the real one, or a test's
/// `governor::clock::FakeRelativeClock`).
trait States: Send + Sync {
    /// Spends one request of `key`'s budget, or says how long until one
    /// is available again.
    #[expect(clippy::ptr_arg, reason = "governor's check_key takes &K")]
    fn check(&self, key: &String) -> Result<(), Duration>;
    /// Drops the states whose budget is full again.
    fn retain_recent(&self);
    /// How many credentials have a state.
    fn len(&self) -> usize;
}

type Keyed<C> = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

impl<C> States for Keyed<C>
where
    C: Clock + Send + Sync,
{
    fn check(&self, key: &String) -> Result<(), Duration> {
        self.check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock().now()))
    }

    fn retain_recent(&self) {
        governor::RateLimiter::retain_recent(self);
        self.shrink_to_fit();
    }

    fn len(&self) -> usize {
        governor::RateLimiter::len(self)
    }
}

impl RateLimiter {
    /// A limiter on the monotonic clock.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }

    /// A limiter on `clock` (tests pass a
    /// `governor::clock::FakeRelativeClock` and advance it).
    pub fn with_clock<C>(limit: RateLimit, clock: C) -> Self
    where
        C: Clock + Send + Sync + 'static,
    {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        let states: Keyed<C> = governor::RateLimiter::dashmap_with_clock(quota, clock);
        RateLimiter {
            inner: Arc::new(Inner {
                limit,
                states: Box::new(states),
                checks: AtomicU64::new(0),
            }),
        }
    }

    /// The configured budget.
    pub fn limit(&self) -> RateLimit {
        self.inner.limit
    }

    /// Spends one request of the credential `token_id`'s budget; over it,
    /// the whole seconds to wait before the next request passes (at least
    /// 1, for `Retry-After`).
    pub fn check(&self, token_id: &String) -> Result<(), u64> {
        let checks = self.inner.checks.fetch_add(1, Ordering::Relaxed);
        if checks % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.inner.states.retain_recent();
        }
        self.inner.states.check(token_id).map_err(whole_seconds)
    }

    /// How many credentials have a state (at most those used within the
    /// last sweeps).
    pub fn tracked_credentials(&self) -> usize {
        self.inner.states.len()
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.inner.limit)
            .finish_non_exhaustive()
    }
}

/// `wait` in whole seconds, rounded up, and at least 1: `Retry-After`
/// cannot say less, and 0 would invite an immediate retry that fails again.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        match (NonZeroU32::new(per_second), NonZeroU32::new(burst)) {
            (Some(per_second), Some(burst)) => RateLimit { per_second, burst },
            _ => panic!("zero in a test limit"),
        }
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let clock = FakeRelativeClock::default();
        // 2 per second: a request every 500 ms, 3 at once.
        let limiter = RateLimiter::with_clock(limit(2, 3), clock.clone());
        let key = "token".to_string();
        for _ in 0..3 {
            assert_eq!(limiter.check(&key), Ok(()));
        }
        assert_eq!(limiter.check(&key), Err(1));
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check(&key), Ok(()));
        assert_eq!(limiter.check(&key), Err(1));
        // 1 per second, 1 at once: after a refused request the wait is
        // what is left of the second.
        let slow = RateLimiter::with_clock(limit(1, 1), clock.clone());
        assert_eq!(slow.check(&key), Ok(()));
        clock.advance(Duration::from_millis(300));
        assert_eq!(slow.check(&key), Err(1));
        clock.advance(Duration::from_millis(700));
        assert_eq!(slow.check(&key), Ok(()));
    }

    #[test]
    fn idle_credentials_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(limit(10, 5), clock.clone());
        for i in 0..100 {
            assert_eq!(limiter.check(&format!("revoked-{i}")), Ok(()));
        }
        assert_eq!(limiter.tracked_credentials(), 100);
        // Once their budgets are full again, the next sweep drops them;
        // the credential still in use keeps its state.
        clock.advance(Duration::from_secs(1));
        let busy = "busy".to_string();
        for _ in 0..RETAIN_EVERY {
            let _ = limiter.check(&busy);
        }
        assert_eq!(limiter.tracked_credentials(), 1);
    }
}
