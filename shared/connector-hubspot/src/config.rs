use std::time::Duration;

use connector::Secret;
use connector::backoff::Backoff;
use connector::rate_limit::RateLimit;

/// Everything the HubSpot client needs to know about the app and HubSpot's limits.
#[derive(Clone, Debug)]
pub struct HubSpotConfig {
    /// `https://api.hubapi.com`, or the sandbox's base URL. No trailing slash.
    pub api_base: String,
    /// `https://app.hubspot.com`, or the sandbox's base URL. No trailing slash.
    pub authorize_base: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Must match the app's registered redirect exactly.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Dropped silently by HubSpot when the portal's tier lacks them.
    pub optional_scopes: Vec<String>,
    /// Per portal, search excluded.
    pub rate_limit: RateLimit,
    /// Search's own budget, per portal.
    pub search_rate_limit: RateLimit,
    pub request_timeout: Duration,
    /// Retries inside one client call (429, 5xx, timeouts).
    pub retry: Backoff,
    /// Refresh the access token when it has less than this left.
    pub refresh_margin: Duration,
    /// Search refuses to page past this many results per query.
    pub search_result_cap: u32,
    /// How long a list's full membership, read once, answers `filter_members` (list
    /// membership changes send no webhooks, so a short reuse costs nothing in freshness).
    pub list_membership_ttl: Duration,
}

/// Scopes every installation must grant.
pub const REQUIRED_SCOPES: &[&str] = &[
    "oauth",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.lists.read",
];

/// Scopes used when the portal has them: owners for the owner field, deals for
/// pipeline filters, schemas for property validation on portals that separate them.
pub const OPTIONAL_SCOPES: &[&str] = &[
    "crm.objects.owners.read",
    "crm.schemas.companies.read",
    "crm.schemas.contacts.read",
];

impl HubSpotConfig {
    /// HubSpot's production hosts and documented limits for a public OAuth app:
    /// 110 requests per rolling 10 s per portal, search 5 per second. Our windows are a
    /// little longer than HubSpot's because HubSpot stamps a request when it arrives and
    /// we stamp it when we send it.
    pub fn production(
        client_id: impl Into<String>,
        client_secret: Secret,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            api_base: "https://api.hubapi.com".to_owned(),
            authorize_base: "https://app.hubspot.com".to_owned(),
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            scopes: REQUIRED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            optional_scopes: OPTIONAL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            rate_limit: RateLimit {
                max_requests: 110,
                per: Duration::from_millis(10_100),
            },
            search_rate_limit: RateLimit {
                max_requests: 5,
                per: Duration::from_millis(1_050),
            },
            request_timeout: Duration::from_secs(20),
            retry: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(12),
                max_attempts: 4,
            },
            refresh_margin: Duration::from_secs(5 * 60),
            search_result_cap: 10_000,
            list_membership_ttl: Duration::from_secs(60),
        }
    }

    /// The same, against one base URL serving both the API and the authorize page (the
    /// sandbox).
    pub fn with_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base = base.to_owned();
        self.authorize_base = base.to_owned();
        self
    }
}
