//! The queue's clock: what "now" is for leases, retries, run times, retention and idempotency
//! windows. It is the system clock, moved forward by however far it was [advanced](Clock::advance):
//! tests make a lease lapse or a backoff pass by advancing it, instead of sleeping. Clones share
//! one offset, so a store and its clones agree on the time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// Now, for the queue.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds this clock is ahead of the system clock.
    ahead_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.ahead_ms.load(Ordering::SeqCst))
    }

    /// Milliseconds since the epoch, now (how the store keeps times).
    pub fn now_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Moves this clock and its clones forward by `by`, as if that much time had passed: a test
    /// hook, so that waiting for a lease or a backoff takes no time.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ahead_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_and_its_clones_are_ahead_by_that_much() {
        let clock = Clock::default();
        let clone = clock.clone();
        let before = clock.now_ms();
        clock.advance(Duration::from_secs(3600));
        let after = clone.now_ms();
        assert!(
            (3_600_000..3_660_000).contains(&(after - before)),
            "{}",
            after - before
        );
    }
}
