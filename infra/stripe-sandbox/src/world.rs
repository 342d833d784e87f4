//! Everything the sandbox holds: accounts (per mode), API keys and OAuth grants, the clock,
//! faults, request counters, rate-limit buckets, idempotency records and the webhook queue.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::SandboxConfig;
use crate::store::{Account, Ctx, Outgoing};

/// What a key may do.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyAccess {
    /// A secret key or a `read_write` OAuth token.
    Full,
    /// A `read_only` OAuth token.
    ReadOnly,
    /// A restricted key: permissions like `customer_read`, `subscription_write` (write implies read).
    Restricted(BTreeSet<String>),
}

impl KeyAccess {
    /// `None` when allowed, else the missing permission's name.
    pub fn missing(&self, resource: &str, write: bool) -> Option<String> {
        let level = if write { "write" } else { "read" };
        let allowed = match self {
            Self::Full => true,
            Self::ReadOnly => !write,
            Self::Restricted(perms) => {
                perms.contains(&format!("{resource}_write"))
                    || (!write && perms.contains(&format!("{resource}_read")))
            }
        };
        (!allowed).then(|| format!("rak_{resource}_{level}"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub account: String,
    pub livemode: bool,
    pub access: KeyAccess,
    /// Platform keys may act on connected accounts with `Stripe-Account`.
    pub platform: bool,
    pub revoked: bool,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OAuthCode {
    pub account: String,
    pub scope: String,
    pub livemode: bool,
    pub used: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshGrant {
    pub account: String,
    pub scope: String,
    pub livemode: bool,
    /// Rotated out or revoked: using it is `invalid_grant`.
    pub active: bool,
}

/// Switchable faults; `PUT /_sandbox/faults` replaces them all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API response.
    pub latency_ms: u64,
    /// Chance (0..1) that an API request fails with a 500.
    pub server_error_rate: f64,
    /// `Stripe-Should-Retry` on injected 500s (`None` = header not sent).
    pub server_error_should_retry: Option<bool>,
    /// The next N API requests get a rate-limit 429 (`Stripe-Rate-Limited-Reason`).
    pub rate_limit_burst: u32,
    /// The next N API requests get a 429 `lock_timeout` (no rate-limit reason header).
    pub lock_timeout_burst: u32,
    /// Chance that a webhook delivery is silently dropped.
    pub webhook_drop_rate: f64,
    /// Chance that a webhook is delivered twice.
    pub webhook_duplicate_rate: f64,
    /// Chance that a webhook is held back so later events overtake it.
    pub webhook_reorder_rate: f64,
}

/// Counters for `GET /_sandbox/requests`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestCounters {
    pub total: u64,
    pub rate_limited: u64,
    pub lock_timeouts: u64,
    pub server_errors: u64,
    /// `GET /v1/customers/{id}` -> count.
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    /// `Stripe-Version` header values seen (`(none)` when absent).
    pub stripe_versions: BTreeMap<String, u64>,
    /// Account acted on (after `Stripe-Account`) -> count.
    pub by_account: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A stored response for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

/// One queued webhook delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event: Outgoing,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub due: Instant,
}

/// What happened to one delivery attempt (reported by flush and `GET /_sandbox/webhooks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub account: String,
    pub attempt: u32,
    /// HTTP status from the receiver, `None` on a network error or a dropped delivery.
    pub status: Option<u16>,
    pub ok: bool,
    /// `delivered`, `failed`, `dropped` (fault), or `gave_up` (retries exhausted).
    pub outcome: String,
}

pub struct World {
    pub config: SandboxConfig,
    pub ctx: Ctx,
    pub accounts: BTreeMap<(String, bool), Account>,
    /// Connected accounts the platform may act on; `false` once deauthorized.
    pub connected: BTreeMap<String, bool>,
    pub keys: HashMap<String, ApiKey>,
    pub oauth_codes: HashMap<String, OAuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    /// The account the next `/oauth/authorize` connects (`None` = a new empty account).
    pub oauth_next_account: Option<String>,
    pub clock_offset: i64,
    pub faults: Faults,
    pub fault_rng: StdRng,
    pub counters: RequestCounters,
    pub buckets: HashMap<(String, bool, &'static str), Bucket>,
    pub idempotency: HashMap<(String, String), StoredResponse>,
    pub webhook_queue: VecDeque<Delivery>,
    pub webhook_log: Vec<DeliveryReport>,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl World {
    pub fn new(config: SandboxConfig) -> Self {
        let mut world = Self {
            ctx: Ctx::new(config.seed, config.api_version.clone()),
            accounts: BTreeMap::new(),
            connected: BTreeMap::new(),
            keys: HashMap::new(),
            oauth_codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            oauth_next_account: None,
            clock_offset: 0,
            faults: Faults::default(),
            fault_rng: StdRng::seed_from_u64(config.seed ^ 0x5eed_fa17),
            counters: RequestCounters::default(),
            buckets: HashMap::new(),
            idempotency: HashMap::new(),
            webhook_queue: VecDeque::new(),
            webhook_log: Vec::new(),
            config,
        };
        world.install_default_keys();
        world
    }

    /// Back to an empty platform account and the default keys; config, faults and counters stay.
    pub fn reset(&mut self) {
        let config = self.config.clone();
        let faults = self.faults.clone();
        let counters = self.counters.clone();
        *self = Self::new(config);
        self.faults = faults;
        self.counters = counters;
    }

    fn install_default_keys(&mut self) {
        let platform = self.config.platform_account.clone();
        let mut add = |key: &str, livemode: bool, access: KeyAccess| {
            self.keys.insert(
                key.to_owned(),
                ApiKey {
                    account: platform.clone(),
                    livemode,
                    access,
                    platform: true,
                    revoked: false,
                    expires_at: None,
                },
            );
        };
        add(&self.config.test_secret_key.clone(), false, KeyAccess::Full);
        add(&self.config.live_secret_key.clone(), true, KeyAccess::Full);
        let read_all = [
            "customer",
            "subscription",
            "product",
            "price",
            "coupon",
            "event",
            "account",
        ]
        .iter()
        .map(|r| format!("{r}_read"))
        .collect();
        add(
            &self.config.read_only_restricted_key.clone(),
            false,
            KeyAccess::Restricted(read_all),
        );
    }

    pub fn now(&self) -> i64 {
        unix_now() + self.clock_offset
    }

    /// Sets the mutation context's clock and cause; call before every mutation.
    pub fn begin(&mut self, request: Option<(String, Option<String>)>) {
        self.ctx.now = self.now();
        self.ctx.request = request;
        self.ctx.webhook_endpoints = u32::from(self.webhook_target().is_some());
        self.ctx.api_version = self.config.api_version.clone();
    }

    pub fn webhook_target(&self) -> Option<&str> {
        let hooks = &self.config.webhooks;
        hooks.url.as_deref().filter(|_| hooks.enabled)
    }

    pub fn is_platform(&self, account: &str) -> bool {
        account == self.config.platform_account
    }

    /// The account's data in one mode, created empty on first use.
    pub fn account_mut(&mut self, id: &str, livemode: bool) -> &mut Account {
        let is_platform = self.is_platform(id);
        if !is_platform {
            self.connected.entry(id.to_owned()).or_insert(true);
        }
        self.accounts
            .entry((id.to_owned(), livemode))
            .or_insert_with(|| Account::new(id, livemode, is_platform))
    }

    /// Splits the borrow: the account and the mutation context together.
    pub fn account_and_ctx(&mut self, id: &str, livemode: bool) -> (&mut Account, &mut Ctx) {
        self.account_mut(id, livemode);
        let is_platform = self.is_platform(id);
        let acct = self
            .accounts
            .entry((id.to_owned(), livemode))
            .or_insert_with(|| Account::new(id, livemode, is_platform));
        (acct, &mut self.ctx)
    }

    pub fn account(&self, id: &str, livemode: bool) -> Option<&Account> {
        self.accounts.get(&(id.to_owned(), livemode))
    }

    /// Takes one token from the (account, mode, class) bucket; `false` = rate limited.
    pub fn take_token(&mut self, account: &str, livemode: bool, class: &'static str) -> bool {
        let limits = &self.config.rate_limits;
        if !limits.enabled {
            return true;
        }
        let rate = f64::from(match (class, livemode) {
            ("search", _) => limits.search_per_sec,
            (_, true) => limits.live_per_sec,
            (_, false) => limits.test_per_sec,
        });
        let now = Instant::now();
        let bucket = self
            .buckets
            .entry((account.to_owned(), livemode, class))
            .or_insert(Bucket {
                tokens: rate,
                last: now,
            });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.fault_rng.gen_bool(rate.clamp(0.0, 1.0))
    }

    /// Moves new events from the outbox into the webhook queue, applying the drop /
    /// duplicate / reorder faults.
    pub fn enqueue_outbox(&mut self) {
        let outgoing: Vec<Outgoing> = std::mem::take(&mut self.ctx.outbox);
        if self.webhook_target().is_none() {
            return;
        }
        let now = Instant::now();
        let reorder_delay = std::time::Duration::from_millis(self.config.webhooks.reorder_delay_ms);
        for event in outgoing {
            if self.roll(self.faults.webhook_drop_rate) {
                self.mark_delivery(&event, Some(false));
                self.webhook_log.push(DeliveryReport {
                    event_id: event.event_id.clone(),
                    kind: event.kind.clone(),
                    account: event.account.clone(),
                    attempt: 0,
                    status: None,
                    ok: false,
                    outcome: "dropped".to_owned(),
                });
                continue;
            }
            let due = if self.roll(self.faults.webhook_reorder_rate) {
                now + reorder_delay
            } else {
                now
            };
            if self.roll(self.faults.webhook_duplicate_rate) {
                self.webhook_queue.push_back(Delivery {
                    event: event.clone(),
                    attempt: 0,
                    due,
                });
            }
            self.webhook_queue.push_back(Delivery {
                event,
                attempt: 0,
                due,
            });
        }
    }

    /// Records a delivery result on the stored event (`pending_webhooks`, `delivery_success`).
    pub fn mark_delivery(&mut self, event: &Outgoing, success: Option<bool>) {
        if let Some(acct) = self
            .accounts
            .get_mut(&(event.account.clone(), event.livemode))
            && let Some(rec) = acct.events.get_mut(&event.event_id)
        {
            match success {
                Some(true) => {
                    rec.pending_webhooks = 0;
                    rec.delivery_success = Some(true);
                }
                Some(false) if rec.delivery_success != Some(true) => {
                    rec.delivery_success = Some(false);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_keys_need_the_named_permission_and_write_implies_read() {
        let access =
            KeyAccess::Restricted(["customer_write".to_owned(), "event_read".to_owned()].into());
        assert_eq!(access.missing("customer", false), None);
        assert_eq!(access.missing("customer", true), None);
        assert_eq!(
            access.missing("event", true).as_deref(),
            Some("rak_event_write")
        );
        assert_eq!(
            access.missing("subscription", false).as_deref(),
            Some("rak_subscription_read")
        );
        assert_eq!(
            KeyAccess::ReadOnly.missing("customer", true).as_deref(),
            Some("rak_customer_write")
        );
    }

    #[test]
    fn a_bucket_allows_one_seconds_worth_then_limits() {
        let mut config = SandboxConfig::default();
        config.rate_limits.test_per_sec = 5;
        let mut world = World::new(config);
        let allowed = (0..8)
            .filter(|_| world.take_token("acct_a", false, "global"))
            .count();
        // five at once, plus whatever trickled back in while the loop ran (far less than one)
        assert_eq!(allowed, 5);
        assert!(
            world.take_token("acct_b", false, "global"),
            "buckets are per account"
        );
        assert!(world.take_token("acct_a", true, "global"), "and per mode");
    }
}
