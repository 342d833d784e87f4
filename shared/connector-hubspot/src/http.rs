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
    /// A request without a body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Body::None,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post_json(path: impl Into<String>, body: serde_json::Value) -> Self {
        Self::send_json(Method::POST, path, body)
    }

    /// A write with a JSON body (`PUT`, `PATCH`, `POST`).
    pub fn send_json(method: Method, path: impl Into<String>, body: serde_json::Value) -> Self {
        Self {
            method,
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

    /// The path as logs may show it: a token in the path (the access-token-info call) is
    /// cut out.
    pub fn logged_path(&self) -> &str {
        match self.path.find(TOKEN_PATH) {
            Some(at) => &self.path[..at + TOKEN_PATH.len()],
            None => &self.path,
        }
    }
}

/// The one HubSpot path that carries a token.
const TOKEN_PATH: &str = "/access-tokens/";

/// A 2xx answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub style: ErrorStyle,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> ProviderResult<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            // An auth endpoint's answer carries tokens: neither it nor the parser's message
            // (which quotes values) is kept, logged or shown.
            let mut err = match self.style {
                ErrorStyle::Api => {
                    let mut err =
                        error::internal(format!("unexpected HubSpot response shape: {e}"));
                    err.body = Some(error::truncate_body(&String::from_utf8_lossy(&self.body)));
                    err
                }
                ErrorStyle::Token => error::internal(format!(
                    "unexpected HubSpot OAuth response shape (line {}, column {})",
                    e.line(),
                    e.column()
                )),
            };
            err.status = Some(self.status);
            err
        })
    }
}

/// How a call's failures read, and whether its bodies may be kept: `Token` calls (the
/// OAuth endpoints) answer with tokens, so their bodies are never attached to an error.
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
                            tracing::debug!(attempt, ?delay, path = %call.logged_path(), "HubSpot transport failure, retrying");
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
                return Ok(Reply {
                    status,
                    body,
                    style,
                });
            }

            let asked = retry_after(&headers);
            if is_transient(status) {
                let window = header_u64(&headers, HEADER_INTERVAL_MS).map(Duration::from_millis);
                if let Some(delay) = self.retry.next_delay(attempt, asked) {
                    tracing::debug!(attempt, status, ?delay, path = %call.logged_path(), "HubSpot asked us to slow down or failed, retrying");
                    match (status, limiter) {
                        // Every caller of this portal pauses, not only this one.
                        (429, Some(limiter)) => limiter.back_off(key, delay),
                        _ => tokio::time::sleep(delay).await,
                    }
                    attempt += 1;
                    continue;
                }
                let body = String::from_utf8_lossy(&body);
                let mut err = classify(style, status, &body, asked);
                if status == 429 && err.retry_after.is_none() {
                    err.retry_after = Some(window.unwrap_or(self.retry.cap));
                }
                return Err(err);
            }
            let body = String::from_utf8_lossy(&body);
            return Err(classify(style, status, &body, asked));
        }
    }
}

fn classify(style: ErrorStyle, status: u16, body: &str, asked: Option<Duration>) -> ProviderError {
    match style {
        ErrorStyle::Api => error::classify_api(status, body, asked),
        ErrorStyle::Token => {
            let mut err = error::classify_token(status, body, asked);
            err.body = None;
            err
        }
    }
}

/// Whether an error means "this token is not accepted".
pub fn is_auth_error(e: &ProviderError) -> bool {
    e.status.is_some_and(error::is_auth_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_in_the_path_never_reaches_the_logs() {
        let call = Call::get(
            "/oauth/v1/access-tokens/CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4",
        );
        assert_eq!(call.logged_path(), "/oauth/v1/access-tokens/");
        let plain = Call::get("/crm/v3/objects/companies");
        assert_eq!(plain.logged_path(), "/crm/v3/objects/companies");
    }

    #[test]
    fn auth_endpoint_bodies_are_never_kept_on_an_error() {
        let token_body = br#"{"access_token":"secret-access","refresh_token":"secret-refresh","expires_in":"soon"}"#;
        let reply = |style| Reply {
            status: 200,
            body: token_body.to_vec(),
            style,
        };
        #[derive(Debug, serde::Deserialize)]
        struct Strict {
            #[allow(dead_code)]
            expires_in: u64,
        }
        let token = reply(ErrorStyle::Token).json::<Strict>().unwrap_err();
        assert_eq!(token.body, None);
        assert!(!token.message.contains("secret"), "{}", token.message);
        let api = reply(ErrorStyle::Api).json::<Strict>().unwrap_err();
        assert!(api.body.is_some());

        let refused =
            r#"{"status":"BAD_REFRESH_TOKEN","message":"refresh token secret-refresh is invalid"}"#;
        let err = classify(ErrorStyle::Token, 400, refused, None);
        assert_eq!(err.code, connector::ErrorCode::OauthRevoked);
        assert_eq!(err.body, None);
    }
}
