//! A client-side rate limiter keyed by provider account (HubSpot portal, Stripe account).
//!
//! Each account gets a sliding window: at most `max_requests` in any span of `per`,
//! which is exactly how providers state their limits (HubSpot: 110 per rolling 10 s), so
//! the limiter allows the full documented rate and never more. (A token bucket refilled
//! at the same rate would allow a double burst inside one window.) [`RateLimiter::acquire`]
//! takes one slot, sleeping (never spinning) until one is free; waiters of one account
//! are served in FIFO order. The provider's own view wins when it is stricter:
//! [`RateLimiter::observe_headers`] lowers what is left of the window to what the provider
//! reports (other processes share the account), and [`RateLimiter::back_off`] (after a
//! 429) pauses every caller of that account.
//!
//! Time is tokio's clock, so tests run it paused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How many requests an account may make in any window of `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max_requests: u32,
    pub per: Duration,
}

/// Cheap to clone: clones share the windows.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    accounts: Arc<Mutex<HashMap<String, Arc<Account>>>>,
}

#[derive(Debug)]
struct Account {
    /// Held by the caller waiting for the next slot, so waiters are served in order.
    queue: tokio::sync::Mutex<()>,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// When each request of the current window was sent, oldest first.
    sent: VecDeque<Instant>,
    /// No request before this instant (a 429's `Retry-After`, or the provider's reset hint).
    paused_until: Option<Instant>,
}

impl Window {
    fn forget_expired(&mut self, limit: RateLimit, now: Instant) {
        while self.sent.front().is_some_and(|t| *t + limit.per <= now) {
            self.sent.pop_front();
        }
    }

    /// Takes a slot, or says how long to wait before trying again.
    fn try_take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Err(until - now);
            }
            self.paused_until = None;
        }
        self.forget_expired(limit, now);
        match self.sent.front() {
            Some(oldest) if self.sent.len() >= limit.max_requests as usize => {
                Err((*oldest + limit.per).saturating_duration_since(now))
            }
            _ => {
                self.sent.push_back(now);
                Ok(())
            }
        }
    }

    fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit: RateLimit {
                max_requests: limit.max_requests.max(1),
                per: limit.per,
            },
            accounts: Arc::default(),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn account(&self, key: &str) -> Arc<Account> {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(accounts.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(Account {
                queue: tokio::sync::Mutex::new(()),
                window: Mutex::new(Window::default()),
            })
        }))
    }

    /// Waits until `key` may make one more request, and counts it.
    pub async fn acquire(&self, key: &str) {
        let account = self.account(key);
        let _turn = account.queue.lock().await;
        loop {
            let wait = {
                let mut window = account
                    .window
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match window.try_take(self.limit, Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            // A back-off arriving meanwhile only extends the wait; the loop re-checks.
            tokio::time::sleep(wait.max(Duration::from_micros(1))).await;
        }
    }

    /// Takes into account what the provider reported after a response: `remaining`
    /// requests left in its window, and, if it says, when its window frees up
    /// (`reset_after`). When the provider has fewer left than we think, the difference
    /// is counted as sent now; with none left and a reset hint, callers wait for it.
    pub fn observe_headers(
        &self,
        key: &str,
        remaining: Option<u64>,
        reset_after: Option<Duration>,
    ) {
        let Some(remaining) = remaining else {
            return;
        };
        let account = self.account(key);
        let mut window = account
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        window.forget_expired(self.limit, now);
        let free = (self.limit.max_requests as usize).saturating_sub(window.sent.len());
        let remaining = usize::try_from(remaining).unwrap_or(usize::MAX);
        for _ in remaining..free {
            window.sent.push_back(now);
        }
        if remaining == 0
            && let Some(reset_after) = reset_after
        {
            window.pause_until(now + reset_after);
        }
    }

    /// The provider throttled `key` (429): every caller of that account waits `retry_after`.
    pub fn back_off(&self, key: &str, retry_after: Duration) {
        let account = self.account(key);
        let mut window = account
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        window.pause_until(Instant::now() + retry_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_requests: u32, per_ms: u64) -> RateLimiter {
        RateLimiter::new(RateLimit {
            max_requests,
            per: Duration::from_millis(per_ms),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_serves_its_burst_without_waiting() {
        let limiter = limiter(10, 1000);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire("portal-1").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_burst_requests_wait_for_the_window_to_slide() {
        let limiter = limiter(10, 1000);
        let start = Instant::now();
        for _ in 0..30 {
            limiter.acquire("portal-1").await;
        }
        // 10 per rolling second: at 0, 1000 and 2000 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn no_rolling_window_ever_holds_more_than_the_limit() {
        let limiter = limiter(10, 1000);
        let start = Instant::now();
        let mut sent = Vec::new();
        for i in 0..60u64 {
            // Irregular gaps between callers.
            tokio::time::sleep(Duration::from_millis((i * 37) % 150)).await;
            limiter.acquire("p").await;
            sent.push(start.elapsed());
        }
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .filter(|u| **u < *t + Duration::from_millis(1000))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} requests in the window from {t:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_remaining_without_a_hint_waits_for_our_oldest_request_to_age_out() {
        let limiter = limiter(10, 1000);
        limiter.acquire("p").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        limiter.observe_headers("p", Some(0), None);
        let start = Instant::now();
        limiter.acquire("p").await;
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn accounts_do_not_share_a_window() {
        let limiter = limiter(2, 1000);
        let start = Instant::now();
        for key in ["a", "a", "b", "b", "c", "c"] {
            limiter.acquire(key).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire("a").await;
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_back_off_pauses_every_caller_of_that_account() {
        let limiter = limiter(100, 1000);
        let start = Instant::now();
        limiter.back_off("portal-1", Duration::from_secs(3));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire("portal-1").await;
                    Instant::now()
                })
            })
            .collect();
        for task in tasks {
            let at = task.await.expect("task runs");
            assert!(at - start >= Duration::from_secs(3));
        }
        // Another account is not affected.
        let before = Instant::now();
        limiter.acquire("portal-2").await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_back_off_arriving_while_a_caller_waits_extends_its_wait() {
        let limiter = limiter(1, 1000);
        limiter.acquire("p").await;
        let start = Instant::now();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter.acquire("p").await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        limiter.back_off("p", Duration::from_secs(5));
        let at = waiter.await.expect("task runs");
        assert!(
            at - start >= Duration::from_millis(5100),
            "{:?}",
            at - start
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_providers_remaining_count_lowers_our_budget() {
        let limiter = limiter(10, 1000);
        limiter.acquire("p").await;
        // Someone else (another process) used most of the window.
        limiter.observe_headers("p", Some(2), None);
        let start = Instant::now();
        limiter.acquire("p").await;
        limiter.acquire("p").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire("p").await;
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_remaining_waits_for_the_reset_hint() {
        let limiter = limiter(10, 1000);
        limiter.observe_headers("p", Some(0), Some(Duration::from_secs(2)));
        let start = Instant::now();
        limiter.acquire("p").await;
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn headers_without_a_remaining_count_change_nothing() {
        let limiter = limiter(3, 1000);
        limiter.observe_headers("p", None, Some(Duration::from_secs(9)));
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire("p").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
