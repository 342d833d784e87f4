//! The record worker's retry schedule, as data: which failures are retried, after how long.

use std::time::Duration;

use crate::model::ErrorCode;
use crate::ports::MAX_DELAY;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before retry n (0-based): immediately, 30 s, 2 min, 5 min. After the last,
    /// the job ends as a log row with a Retry action.
    pub schedule: Vec<Duration>,
    /// `rate_limited` waits are the provider's to set, so they get more attempts: a 429
    /// storm resolves without the admin.
    pub rate_limited_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: vec![
                Duration::ZERO,
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(300),
            ],
            rate_limited_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next try of a job whose try number `attempt` (0-based) failed
    /// with `code`, or `None` when the job should end with a log row.
    pub fn next_delay(
        &self,
        code: ErrorCode,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let scheduled = |n: u32| self.schedule.get(n as usize).copied();
        let delay = match code {
            ErrorCode::ProviderUnavailable | ErrorCode::StoreUnavailable => scheduled(attempt)?,
            // Our own bug: one more try, then a log row with a correlation id.
            ErrorCode::Internal => (attempt == 0).then_some(Duration::ZERO)?,
            ErrorCode::RateLimited => {
                if attempt >= self.rate_limited_attempts {
                    return None;
                }
                let last = self.schedule.last().copied().unwrap_or(Duration::ZERO);
                let base = scheduled(attempt).unwrap_or(last);
                base.max(retry_after.unwrap_or(Duration::ZERO))
            }
            ErrorCode::OauthRevoked
            | ErrorCode::SourceDeleted
            | ErrorCode::FieldMappingInvalid
            | ErrorCode::MatchAmbiguous
            | ErrorCode::FilterInvalid
            | ErrorCode::PermissionDenied
            | ErrorCode::NotConnected
            | ErrorCode::ContactExists
            | ErrorCode::InvalidPropertyValue
            | ErrorCode::MissingEmail
            | ErrorCode::NothingToSync => return None,
        };
        Some(delay.min(MAX_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_outages_follow_the_schedule_then_stop() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (0..5)
            .map(|n| p.next_delay(ErrorCode::ProviderUnavailable, n, None))
            .collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::ZERO),
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(300)),
                None
            ]
        );
    }

    #[test]
    fn rate_limits_honour_retry_after_within_the_sqs_delay_limit() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next_delay(ErrorCode::RateLimited, 0, Some(Duration::from_secs(10))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            p.next_delay(ErrorCode::RateLimited, 1, Some(Duration::from_secs(3600))),
            Some(MAX_DELAY)
        );
        assert_eq!(
            p.next_delay(ErrorCode::RateLimited, 6, None),
            Some(Duration::from_secs(300))
        );
        assert_eq!(p.next_delay(ErrorCode::RateLimited, 12, None), None);
    }

    #[test]
    fn permanent_failures_are_not_retried_and_bugs_once() {
        let p = RetryPolicy::default();
        for code in [
            ErrorCode::OauthRevoked,
            ErrorCode::PermissionDenied,
            ErrorCode::MatchAmbiguous,
        ] {
            assert_eq!(p.next_delay(code, 0, None), None, "{code}");
        }
        assert_eq!(
            p.next_delay(ErrorCode::Internal, 0, None),
            Some(Duration::ZERO)
        );
        assert_eq!(p.next_delay(ErrorCode::Internal, 1, None), None);
    }
}
