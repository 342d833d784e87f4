//! One HubSpot HTTP call with everything around it: the per-portal rate limiter, the
//! request timeout, bounded retries on 429 / 5xx with jittered backoff honouring
//! `Retry-After`, and the classification of what failed.

use std::time::Duration;

use connector::Secret;
use connector::backoff::Backoff;
use connector::provider::{ProviderError, ProviderResult};
use connector::rate_limit::RateLimiter;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{self, is_transient};

pub const HEADER_REMAINING: &str = "x-hubspot-ratelimit-remaining";
pub const HEADER_INTERVAL_MS: &str = "x-hubspot-ratelimit-interval-milliseconds";

/// Which of HubSpot's budgets a call spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The 110 per 10 s of a portal.
    General,
    /// Search's own 5 per second.
    Search,
    /// OAuth token calls: not counted per portal.
    Unmetered,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(&'static str, String)>),
}

/// A request, kept as data so it can be sent again on retry.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: Body::None,
        }
    }

    pub fn post_json(path: impl Into<String>, body: serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: Body::Json(body),
        }
    }

    pub fn post_form(path: impl Into<String>, form: Vec<(&'static str, String)>) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: Body::Form(form),
        }
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }
}

/// A 2xx answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> ProviderResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let mut err = error::internal(format!("unexpected HubSpot response shape: {e}"));
            err.status = Some(self.status);
            err.body = Some(error::truncate_body(&String::from_utf8_lossy(&self.body)));
            err
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    Api,
    Token,
}

#[derive(Clone, Debug)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub limiter: RateLimiter,
    pub search_limiter: RateLimiter,
    pub retry: Backoff,
    pub timeout: Duration,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After` in seconds (HubSpot never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

impl Api {
    fn limiter(&self, budget: Budget) -> Option<&RateLimiter> {
        match budget {
            Budget::General => Some(&self.limiter),
            Budget::Search => Some(&self.search_limiter),
            Budget::Unmetered => None,
        }
    }

    fn request(&self, call: &Call, token: Option<&Secret>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path))
            .timeout(self.timeout);
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token.expose());
        }
        match &call.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Form(f) => req.form(f),
        }
    }

    /// Sends `call` for the portal `key`, retrying throttling and HubSpot-side failures a
    /// bounded number of times. Returns the 2xx answer or a classified error.
    pub async fn send(
        &self,
        key: &str,
        budget: Budget,
        token: Option<&Secret>,
        call: &Call,
        style: ErrorStyle,
    ) -> ProviderResult<Reply> {
        let limiter = self.limiter(budget);
        let mut attempt = 0;
        loop {
            if let Some(limiter) = limiter {
                limiter.acquire(key).await;
            }
            let outcome = self.request(call, token).send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(e) => {
                    let err = error::transport(&e);
                    match self.retry.next_delay(attempt, None) {
                        Some(delay) => {
                            tracing::debug!(attempt, ?delay, path = %call.path, "HubSpot transport failure, retrying");
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                            continue;
                        }
                        None => return Err(err),
                    }
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            if let Some(limiter) = limiter {
                limiter.observe_headers(key, header_u64(&headers, HEADER_REMAINING), None);
            }
            let body = match response.bytes().await {
                Ok(body) => body.to_vec(),
                Err(e) => {
                    let err = error::transport(&e);
                    match self.retry.next_delay(attempt, None) {
                        Some(delay) => {
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                            continue;
                        }
                        None => return Err(err),
                    }
                }
            };
            if (200..300).contains(&status) {
                return Ok(Reply { status, body });
            }

            let asked = retry_after(&headers);
            if is_transient(status) {
                let window = header_u64(&headers, HEADER_INTERVAL_MS).map(Duration::from_millis);
                if let Some(delay) = self.retry.next_delay(attempt, asked) {
                    tracing::debug!(attempt, status, ?delay, path = %call.path, "HubSpot asked us to slow down or failed, retrying");
                    match (status, limiter) {
                        // Every caller of this portal pauses, not only this one.
                        (429, Some(limiter)) => limiter.back_off(key, delay),
                        _ => tokio::time::sleep(delay).await,
                    }
                    attempt += 1;
                    continue;
                }
                let body = String::from_utf8_lossy(&body);
                let mut err = match style {
                    ErrorStyle::Api => error::classify_api(status, &body, asked),
                    ErrorStyle::Token => error::classify_token(status, &body, asked),
                };
                if status == 429 && err.retry_after.is_none() {
                    err.retry_after = Some(window.unwrap_or(self.retry.cap));
                }
                return Err(err);
            }
            let body = String::from_utf8_lossy(&body);
            return Err(match style {
                ErrorStyle::Api => error::classify_api(status, &body, asked),
                ErrorStyle::Token => error::classify_token(status, &body, asked),
            });
        }
    }
}

/// Whether an error means "this token is not accepted".
pub fn is_auth_error(e: &ProviderError) -> bool {
    e.status.is_some_and(error::is_auth_failure)
}
