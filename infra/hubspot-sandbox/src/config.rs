//! Every knob of the sandbox. `SandboxConfig::default()` behaves like a real HubSpot portal
//! with one installed OAuth app; tests lower the limits and compress the retry schedule.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Scopes a freshly minted token carries when the authorize call names none.
pub const DEFAULT_SCOPES: &[&str] = &[
    "oauth",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.schemas.companies.read",
    "crm.schemas.contacts.read",
    "crm.lists.read",
    "crm.objects.owners.read",
    "crm.objects.deals.read",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// 0 picks a free port.
    pub port: u16,
    /// Seed for the generated data and for every random fault decision.
    pub seed: u64,
    /// Records generated at start (0 = start empty; seed later through the control API).
    pub companies: usize,
    pub contacts: usize,
    pub app: OAuthAppConfig,
    /// Lifetime of an access token (`expires_in`), seconds.
    pub access_token_ttl_secs: u64,
    pub rate_limit: RateLimitConfig,
    pub webhooks: WebhookConfig,
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 42,
            companies: 0,
            contacts: 0,
            app: OAuthAppConfig::default(),
            access_token_ttl_secs: 1800,
            rate_limit: RateLimitConfig::default(),
            webhooks: WebhookConfig::default(),
            faults: Faults::default(),
        }
    }
}

/// The installed public app and the portal it is installed in.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuthAppConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The installing portal (`hub_id` in token info, `portalId` in webhooks).
    pub portal_id: u64,
    pub app_id: u64,
    pub user_id: u64,
    pub user_email: String,
    pub hub_domain: String,
    /// Allowed `redirect_uri` values (exact match). Empty: any http(s) loopback URL.
    pub redirect_uris: Vec<String>,
}

impl Default for OAuthAppConfig {
    fn default() -> Self {
        Self {
            client_id: "6a3b7c1e-2f4d-4e8a-9b0c-1d2e3f4a5b6c".to_owned(),
            client_secret: "8f14e45f-ceea-467a-9575-3ba3a9d1a2b3".to_owned(),
            portal_id: 62515,
            app_id: 54321,
            user_id: 293199,
            user_email: "admin@sandbox-portal.example".to_owned(),
            hub_domain: "sandbox-portal.example".to_owned(),
            redirect_uris: Vec::new(),
        }
    }
}

impl fmt::Debug for OAuthAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthAppConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("portal_id", &self.portal_id)
            .field("app_id", &self.app_id)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// HubSpot's limits for a public OAuth app: 110 requests per rolling 10 s per portal
/// (search excluded), search 5 requests per second without headers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub max_per_interval: u32,
    pub interval_ms: u64,
    pub search_per_second: u32,
    /// HubSpot does not always send `Retry-After` on a 429; off makes clients use the window.
    pub send_retry_after: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_interval: 110,
            interval_ms: 10_000,
            search_per_second: 5,
            send_retry_after: true,
        }
    }
}

/// Which legacy `X-HubSpot-Signature` accompanies the v3 signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegacySignature {
    V1,
    V2,
    None,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Where batches are POSTed; nothing is delivered until set.
    pub target_url: Option<String>,
    /// Off: events are still recorded but nothing is sent (not even on flush).
    pub enabled: bool,
    /// Deliver in the background; off: only `POST /_sandbox/webhooks/flush` delivers.
    pub auto_deliver: bool,
    /// How long the background sender gathers events before sending a batch.
    pub batch_delay_ms: u64,
    /// Events per POST (HubSpot: at most 100).
    pub max_batch: usize,
    /// A delivery taking longer counts as failed (HubSpot: 5 s).
    pub timeout_ms: u64,
    /// Delays before retry 1, 2, ... (HubSpot: 10 retries over about 24 h, randomized).
    pub retry_schedule_ms: Vec<u64>,
    /// Multiplies every retry delay: 1.0 is HubSpot's pace, 0.0001 makes a day last ~9 s.
    pub retry_scale: f64,
    /// Up to this fraction (0..1) of each delay is added at random.
    pub retry_jitter: f64,
    pub legacy_signature: LegacySignature,
    /// Properties with a `propertyChange` subscription; `None`: every property that HubSpot
    /// lets an app subscribe to.
    pub property_subscriptions: Option<Vec<String>>,
    /// Creating a record also sends `propertyChange` for each subscribed property it sets.
    pub property_change_on_create: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            target_url: None,
            enabled: true,
            auto_deliver: true,
            batch_delay_ms: 50,
            max_batch: 100,
            timeout_ms: 5_000,
            retry_schedule_ms: vec![
                60_000, 120_000, 300_000, 600_000, 1_200_000, 2_400_000, 4_800_000, 9_600_000,
                19_200_000, 38_400_000,
            ],
            retry_scale: 1.0,
            retry_jitter: 0.2,
            legacy_signature: LegacySignature::V1,
            property_subscriptions: None,
            property_change_on_create: true,
        }
    }
}

/// Fault switches; rates are probabilities 0.0..=1.0 drawn from the seeded RNG.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API (non-control) response.
    pub latency_ms: u64,
    /// Fraction of API calls answered with a 5xx (500/502/503/504 in turn).
    pub error_5xx_rate: f64,
    /// The next N API calls get a 429 `TEN_SECONDLY_ROLLING` whatever the window says.
    pub burst_429: u32,
    /// Fraction of API calls answered 429 on top of the real limiter.
    pub rate_429: f64,
    /// Fraction of webhook events silently never delivered.
    pub webhook_drop_rate: f64,
    /// Fraction of webhook events delivered twice (the copy in a later batch).
    pub webhook_duplicate_rate: f64,
    /// Fraction of webhook events held back and delivered after later ones.
    pub webhook_reorder_rate: f64,
    /// Fraction of webhook deliveries where the sandbox pretends the target failed
    /// (the batch is retried with a higher `attemptNumber`).
    pub webhook_fail_rate: f64,
    /// Records changed less than this long ago are not yet visible to search.
    pub search_index_lag_ms: u64,
}
