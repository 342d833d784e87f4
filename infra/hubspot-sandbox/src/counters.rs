//! Request counters for `GET /_sandbox/requests`: how hard a client drove the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
pub struct Counters {
    pub since_ms: i64,
    pub api_requests: u64,
    pub oauth_requests: u64,
    pub rate_limited: u64,
    pub unauthorized: u64,
    pub forbidden: u64,
    pub injected_5xx: u64,
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    /// Times (ms) of API requests that passed the limiter, for the busiest-window figure.
    pub admitted_ms: Vec<i64>,
    pub search_admitted_ms: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CountersReport {
    pub since_ms: i64,
    pub total: u64,
    pub api_requests: u64,
    pub oauth_requests: u64,
    pub rate_limited: u64,
    pub unauthorized: u64,
    pub forbidden: u64,
    pub injected_5xx: u64,
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    /// Most non-search requests admitted within any 10 s window.
    pub max_in_any_10s: u64,
    /// Most search requests admitted within any 1 s window.
    pub max_search_in_any_1s: u64,
}

/// The largest number of timestamps (sorted) within any window of `width_ms`.
pub fn busiest_window(times: &[i64], width_ms: i64) -> u64 {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= width_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

impl Counters {
    pub fn report(&self) -> CountersReport {
        CountersReport {
            since_ms: self.since_ms,
            total: self.api_requests + self.oauth_requests,
            api_requests: self.api_requests,
            oauth_requests: self.oauth_requests,
            rate_limited: self.rate_limited,
            unauthorized: self.unauthorized,
            forbidden: self.forbidden,
            injected_5xx: self.injected_5xx,
            by_route: self.by_route.clone(),
            by_status: self.by_status.clone(),
            max_in_any_10s: busiest_window(&self.admitted_ms, 10_000),
            max_search_in_any_1s: busiest_window(&self.search_admitted_ms, 1_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_counts_requests_closer_than_its_width() {
        assert_eq!(busiest_window(&[], 10), 0);
        assert_eq!(busiest_window(&[0, 5, 9, 10, 11, 30], 10), 4);
        assert_eq!(busiest_window(&[0, 10, 20], 10), 1);
    }
}
