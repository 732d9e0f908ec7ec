//! The store's pool metrics (`metrics` facade; scimd renders them at
//! `GET /metrics`): how long a connection checkout waited, and how many
//! timed out, per pool (`read`, or SQLite's `write`).

use r2d2::event::{CheckoutEvent, HandleEvent, TimeoutEvent};

/// r2d2's event handler for one pool. Its handles are registered once,
/// when the pool is built (after scimd installed its recorder), so a
/// checkout costs one atomic push, not a registry lookup.
#[derive(Debug, Clone)]
pub(crate) struct PoolMetrics {
    wait: metrics::Histogram,
    timeouts: metrics::Counter,
}

impl PoolMetrics {
    /// The handler of the pool labelled `pool` (`read` or `write`).
    pub(crate) fn new(pool: &'static str) -> Self {
        PoolMetrics {
            wait: metrics::histogram!("scimd_store_pool_wait_seconds", "pool" => pool),
            timeouts: metrics::counter!("scimd_store_pool_timeouts_total", "pool" => pool),
        }
    }
}

impl HandleEvent for PoolMetrics {
    fn handle_checkout(&self, event: CheckoutEvent) {
        self.wait.record(event.duration());
    }

    fn handle_timeout(&self, _: TimeoutEvent) {
        self.timeouts.increment(1);
    }
}
