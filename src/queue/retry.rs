//! When a failed attempt runs again: exponential backoff with jitter.

use std::time::Duration;

/// Exponential backoff: `base × factor^(attempt-1)`, capped, with "equal jitter" (half the
/// delay fixed, half random) so that jobs that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first attempt, before jitter.
    pub base: Duration,
    /// Growth per attempt.
    pub factor: u32,
    /// The longest delay.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The delay after attempt `attempt` (1-based) failed; `jitter` is uniform in `0..=1`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        let growth = f64::from(self.factor).powi(exponent as i32);
        let full = self.base.as_secs_f64() * growth;
        let capped = full.min(self.cap.as_secs_f64());
        Duration::from_secs_f64(capped / 2.0 + capped / 2.0 * jitter.clamp(0.0, 1.0))
    }

    /// [`Self::delay`] with fresh randomness.
    pub fn next_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(5),
        factor: 2,
        cap: Duration::from_secs(600),
    };

    #[test]
    fn delays_double_then_stop_at_the_cap() {
        assert_eq!(POLICY.delay(1, 1.0), Duration::from_secs(5));
        assert_eq!(POLICY.delay(2, 1.0), Duration::from_secs(10));
        assert_eq!(POLICY.delay(3, 1.0), Duration::from_secs(20));
        assert_eq!(POLICY.delay(30, 1.0), Duration::from_secs(600));
        assert_eq!(POLICY.delay(u32::MAX, 1.0), Duration::from_secs(600));
    }

    #[test]
    fn jitter_keeps_every_delay_between_half_and_all_of_the_step() {
        for attempt in 1..40 {
            for step in 0..=20 {
                let jitter = f64::from(step) / 20.0;
                let full = POLICY.delay(attempt, 1.0);
                let delay = POLICY.delay(attempt, jitter);
                assert!(
                    delay <= full && delay >= full / 2,
                    "attempt {attempt} jitter {jitter}"
                );
                assert!(POLICY.delay(attempt + 1, jitter) >= delay);
            }
        }
    }
}
