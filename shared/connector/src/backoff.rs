//! Retry delays for provider calls, as data: exponential backoff with full jitter, and
//! the provider's `Retry-After` honoured but clamped.

use std::time::Duration;

use rand::Rng;

/// `attempt` counts failures so far: 0 is the delay after the first failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay ceiling of the first retry; doubles with every attempt.
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    /// How many retries are allowed in all.
    pub max_attempts: u32,
}

impl Backoff {
    /// Whether retry number `attempt` (0-based) is still allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The ceiling of the jittered delay for `attempt`: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry `attempt`: uniformly random in `[0, ceiling(attempt)]`
    /// ("full jitter"), but never shorter than the provider's `retry_after`. The result
    /// is clamped to `cap`, so a huge `Retry-After` cannot park a caller for hours; see
    /// [`Backoff::next_delay`] to give up instead.
    pub fn delay_for(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(&mut rand::thread_rng(), attempt, retry_after)
    }

    /// [`Backoff::delay_for`] with a given random source.
    pub fn delay_with(
        &self,
        rng: &mut impl Rng,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            ceiling.mul_f64(rng.gen_range(0.0..=1.0))
        };
        jittered.max(retry_after.unwrap_or_default()).min(self.cap)
    }

    /// The delay before retry `attempt` if retrying in place makes sense: `None` once the
    /// attempts are used up, or when the provider asks for a longer wait than `cap`
    /// (hand the error, with its `retry_after`, to the job queue instead).
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if !self.allows(attempt) || retry_after.is_some_and(|r| r > self.cap) {
            return None;
        }
        Some(self.delay_for(attempt, retry_after))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(500),
        cap: Duration::from_secs(30),
        max_attempts: 4,
    };

    #[test]
    fn the_ceiling_doubles_until_the_cap() {
        let ceilings: Vec<_> = (0..8).map(|a| BACKOFF.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(BACKOFF.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jittered_delays_stay_within_the_ceiling_and_spread_out() {
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..200)
            .map(|_| BACKOFF.delay_with(&mut rng, 2, None))
            .collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "full jitter spreads retries out");
        assert!(delays.iter().any(|d| *d < Duration::from_millis(500)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let d = BACKOFF.delay_with(&mut rng, 0, Some(Duration::from_secs(10)));
            assert_eq!(d, Duration::from_secs(10));
        }
    }

    #[test]
    fn a_huge_retry_after_is_clamped_to_the_cap() {
        let d = BACKOFF.delay_for(0, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(d, Duration::from_secs(30));
    }

    #[test]
    fn next_delay_gives_up_after_max_attempts_or_a_too_long_retry_after() {
        assert!(BACKOFF.next_delay(3, None).is_some());
        assert!(BACKOFF.next_delay(4, None).is_none());
        assert!(
            BACKOFF
                .next_delay(0, Some(Duration::from_secs(31)))
                .is_none()
        );
        assert_eq!(
            BACKOFF.next_delay(0, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
    }
}
