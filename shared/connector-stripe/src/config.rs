//! Everything the Stripe client is configured with; built once per process.

use std::time::Duration;

use connector::Secret;
use connector::backoff::Backoff;
use connector::rate_limit::RateLimit;

/// The API version pinned on every call (contract §0): the version of the `stripe/openapi`
/// spec and fixtures our types were checked against. Webhook endpoints we create should
/// pin the same one.
pub const STRIPE_VERSION: &str = "2026-07-29.dahlia";

#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// `https://api.stripe.com` (no trailing slash).
    pub api_base: String,
    /// `https://connect.stripe.com`, where Connect OAuth lives.
    pub connect_base: String,
    /// The platform's Connect client id (`ca_...`), for OAuth.
    pub client_id: Option<String>,
    /// Where Stripe sends the admin back after OAuth (must be registered with Stripe).
    pub redirect_uri: Option<String>,
    /// The platform's secret key: authenticates the OAuth token calls and
    /// `Stripe-Account` calls on connected accounts.
    pub secret_key: Secret,
    /// Webhook signing secrets; two while one is being rolled.
    pub webhook_secrets: Vec<Secret>,
    /// Client-side budget per live-mode account (Stripe allows 100/s; leave headroom).
    pub live_rate_limit: RateLimit,
    /// Client-side budget per test-mode account (Stripe allows 25/s).
    pub test_rate_limit: RateLimit,
    /// Retries in place for 429 / 409 / 5xx / timeouts, honouring `Retry-After`.
    pub backoff: Backoff,
    /// Per request.
    pub timeout: Duration,
    /// Stripe Apps OAuth access tokens last an hour (Connect ones never expire): refresh
    /// before this age. `None` = only refresh when Stripe refuses the token.
    pub oauth_access_token_ttl: Option<Duration>,
    /// Page size of list calls (Stripe's maximum is 100).
    pub page_size: u32,
    /// Customers whose billing is computed concurrently while listing a page.
    pub concurrency: usize,
}

impl StripeConfig {
    /// Production endpoints with the contract's recommended budgets (§4.3, §10).
    pub fn new(secret_key: Secret) -> Self {
        Self {
            api_base: "https://api.stripe.com".to_owned(),
            connect_base: "https://connect.stripe.com".to_owned(),
            client_id: None,
            redirect_uri: None,
            secret_key,
            webhook_secrets: Vec::new(),
            live_rate_limit: RateLimit {
                max_requests: 80,
                per: Duration::from_secs(1),
            },
            test_rate_limit: RateLimit {
                max_requests: 20,
                per: Duration::from_secs(1),
            },
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(5),
                max_attempts: 4,
            },
            timeout: Duration::from_secs(20),
            oauth_access_token_ttl: None,
            page_size: 100,
            concurrency: 5,
        }
    }

    /// Both API and Connect endpoints at `base` (a sandbox: `http://127.0.0.1:PORT`).
    pub fn with_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base = base.to_owned();
        self.connect_base = base.to_owned();
        self
    }
}
