//! Every knob of the sandbox. `SandboxConfig::default()` is a working test-mode Stripe.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The account behind the default keys (our "platform").
pub const PLATFORM_ACCOUNT: &str = "acct_1SandboxPlatform0";
/// Default test secret key of the platform account.
pub const TEST_SECRET_KEY: &str = "sk_test_sandbox_platform_key";
/// Default live secret key of the platform account.
pub const LIVE_SECRET_KEY: &str = "sk_live_sandbox_platform_key";
/// Default restricted test key: read access to everything this sandbox serves, no writes.
pub const READ_ONLY_RESTRICTED_KEY: &str = "rk_test_sandbox_read_only_key";
/// The platform's Connect OAuth client id.
pub const OAUTH_CLIENT_ID: &str = "ca_SandboxPlatformClient0";
/// Stripe's default API version for this sandbox's accounts (the `latest` openapi spec).
pub const DEFAULT_API_VERSION: &str = "2026-07-29.dahlia";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Seeds ids and fault dice; the same seed gives the same data.
    pub seed: u64,
    /// Seed this many customers (with subscriptions) into the platform account at start.
    pub seed_customers: usize,
    /// Version new events are rendered at, and the default for requests without `Stripe-Version`.
    pub api_version: String,
    pub platform_account: String,
    pub test_secret_key: String,
    pub live_secret_key: String,
    pub read_only_restricted_key: String,
    pub oauth_client_id: String,
    /// Connect access tokens do not expire; Stripe Apps OAuth tokens last an hour. `None` = never.
    pub oauth_access_token_ttl_secs: Option<i64>,
    pub rate_limits: RateLimits,
    pub webhooks: WebhookConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 42,
            seed_customers: 0,
            api_version: DEFAULT_API_VERSION.to_owned(),
            platform_account: PLATFORM_ACCOUNT.to_owned(),
            test_secret_key: TEST_SECRET_KEY.to_owned(),
            live_secret_key: LIVE_SECRET_KEY.to_owned(),
            read_only_restricted_key: READ_ONLY_RESTRICTED_KEY.to_owned(),
            oauth_client_id: OAUTH_CLIENT_ID.to_owned(),
            oauth_access_token_ttl_secs: None,
            rate_limits: RateLimits::default(),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// Requests per second per (account, mode), enforced as a token bucket holding one second's worth.
/// Stripe: 100/s live, 25/s in test mode; search 20/s (docs.stripe.com/rate-limits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub enabled: bool,
    pub live_per_sec: u32,
    pub test_per_sec: u32,
    pub search_per_sec: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            live_per_sec: 100,
            test_per_sec: 25,
            search_per_sec: 20,
        }
    }
}

/// The webhook endpoint the sandbox delivers events to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Target URL; `None` = events are recorded but not delivered.
    pub url: Option<String>,
    /// Active signing secrets, newest first; two during a rotation (one `v1` each).
    pub secrets: Vec<String>,
    pub enabled: bool,
    /// Deliver in the background as events happen; `false` = only on `/_sandbox/webhooks/flush`.
    pub auto_deliver: bool,
    /// Delay before each retry after a failed attempt (Stripe: 3 retries over a few hours in test mode).
    pub retry_schedule_ms: Vec<u64>,
    /// How long a "reordered" event is held back so later events overtake it.
    pub reorder_delay_ms: u64,
    /// Per-attempt HTTP timeout.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            secrets: vec!["whsec_sandbox_default_secret".to_owned()],
            enabled: true,
            auto_deliver: true,
            retry_schedule_ms: vec![200, 1_000, 5_000],
            reorder_delay_ms: 300,
            timeout_ms: 5_000,
        }
    }
}

impl WebhookConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}
