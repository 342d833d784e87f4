//! HubSpot's rolling-window limits: N requests per interval for the portal (headers on every
//! response) and a separate per-second bucket for search (no headers).

use std::collections::VecDeque;

use crate::config::RateLimitConfig;

/// What the limiter decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `remaining` in the window after this request.
    Allowed { remaining: u32 },
    /// Refused; the oldest request in the window leaves it in `retry_after_ms`.
    Limited { retry_after_ms: u64 },
}

/// A rolling window: the times (ms) of the requests it let through.
#[derive(Debug, Default)]
pub struct Window {
    accepted: VecDeque<i64>,
}

impl Window {
    pub fn check(&mut self, now_ms: i64, max: u32, interval_ms: u64) -> Decision {
        let interval = interval_ms as i64;
        while self
            .accepted
            .front()
            .is_some_and(|t| *t <= now_ms - interval)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() as u64 >= u64::from(max) {
            let oldest = self.accepted.front().copied().unwrap_or(now_ms);
            let retry_after_ms = (oldest + interval - now_ms).max(1) as u64;
            return Decision::Limited { retry_after_ms };
        }
        self.accepted.push_back(now_ms);
        Decision::Allowed {
            remaining: max.saturating_sub(self.accepted.len() as u32),
        }
    }

    pub fn clear(&mut self) {
        self.accepted.clear();
    }
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    pub general: Window,
    pub search: Window,
}

impl RateLimiter {
    pub fn check_general(&mut self, config: &RateLimitConfig, now_ms: i64) -> Decision {
        if !config.enabled {
            return Decision::Allowed {
                remaining: config.max_per_interval,
            };
        }
        self.general
            .check(now_ms, config.max_per_interval, config.interval_ms)
    }

    pub fn check_search(&mut self, config: &RateLimitConfig, now_ms: i64) -> Decision {
        if !config.enabled {
            return Decision::Allowed {
                remaining: config.search_per_second,
            };
        }
        self.search.check(now_ms, config.search_per_second, 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_admits_max_requests_then_refuses_until_the_oldest_ages_out() {
        let mut w = Window::default();
        for i in 0..110 {
            assert_eq!(
                w.check(1_000 + i, 110, 10_000),
                Decision::Allowed {
                    remaining: 109 - i as u32
                }
            );
        }
        assert_eq!(
            w.check(5_000, 110, 10_000),
            Decision::Limited {
                retry_after_ms: 6_000
            }
        );
        assert_eq!(
            w.check(11_000, 110, 10_000),
            Decision::Allowed { remaining: 0 }
        );
        assert!(matches!(
            w.check(11_000, 110, 10_000),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn refused_requests_do_not_use_up_the_window() {
        let mut w = Window::default();
        for _ in 0..5 {
            w.check(0, 5, 1_000);
        }
        for _ in 0..50 {
            assert!(matches!(w.check(500, 5, 1_000), Decision::Limited { .. }));
        }
        assert_eq!(w.check(1_000, 5, 1_000), Decision::Allowed { remaining: 4 });
    }
}
