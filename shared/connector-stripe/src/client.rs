//! The Stripe REST client: one pinned `Stripe-Version`, a client-side rate limiter per
//! account (live and test budgets differ), retries with jittered backoff for 429 / 409 /
//! 5xx / timeouts (honouring `Stripe-Should-Retry` and `Retry-After`), OAuth token refresh,
//! cursor paging, and the reads MRR needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use connector::provider::{ProviderError, ProviderResult};
use connector::rate_limit::RateLimiter;
use connector::{ErrorCode, Secret, Timestamp};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::auth::{StripeAuth, StripeSession};
use crate::config::{STRIPE_VERSION, StripeConfig};
use crate::error::{RetryHints, classify_api, cut, internal, is_retriable, transport};
use crate::mrr::{BillingSummary, MrrPolicy, billing_summary};
use crate::types::{
    BillingScheme, Coupon, Customer, Discount, DiscountSource, Expandable, HasId, List, Price,
    Product, Subscription, SubscriptionItem,
};
use crate::webhook::{StripeEvent, parse_event};

/// `/v1/events` only reaches back this far (contract §2.5).
pub const EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Margin kept inside the retention window, so a page fetched late still exists.
const EVENT_RETENTION_MARGIN: Duration = Duration::from_secs(3600);
/// Stripe accepts at most this many `types[]`.
pub const MAX_EVENT_TYPES: usize = 20;

/// The event types that change a customer's billing fields (contract §10.4).
pub const BILLING_EVENT_TYPES: [&str; 10] = [
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.discount.created",
    "customer.discount.updated",
    "customer.discount.deleted",
    "invoice.paid",
];

/// Expansions for subscription lists: discounts with their coupons (4 levels, Stripe's
/// maximum) and item-level discounts (their coupons are fetched by id and cached).
/// `items.data.price` is always a full price already.
const SUBSCRIPTION_EXPANSIONS: [&str; 2] =
    ["data.discounts.source.coupon", "data.items.data.discounts"];

/// The outcome of retrieving one customer.
#[derive(Clone, Debug, PartialEq)]
pub enum RetrievedCustomer {
    Found(Box<Customer>),
    /// Deleted at Stripe: `GET` answers 200 with `{"deleted": true}`.
    Deleted {
        id: String,
    },
    /// Never existed (404 `resource_missing`).
    Missing {
        id: String,
    },
}

/// A customer and their billing fields, freshly read.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomerBilling {
    Found {
        customer: Box<Customer>,
        subscriptions: Vec<Subscription>,
        summary: BillingSummary,
    },
    Deleted {
        id: String,
    },
    Missing {
        id: String,
    },
}

/// Which subscriptions to list; `status=all` always (reconciliation needs canceled ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    pub customer: Option<String>,
}

/// A query on the events feed (`GET /v1/events`), newest first from `starting_after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    pub created_gte: Timestamp,
    /// Exact type names, at most [`MAX_EVENT_TYPES`]; empty = all types.
    pub types: Vec<String>,
    pub starting_after: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    /// Newest first, as Stripe lists them.
    pub events: Vec<StripeEvent>,
    /// Pass as `starting_after` for the next (older) page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventFeedError {
    /// The cursor is older than Stripe keeps events: run a full reconciliation instead.
    #[error(
        "events before {oldest_available} are no longer listed by Stripe (asked from {requested})"
    )]
    BeyondRetention {
        requested: Timestamp,
        oldest_available: Timestamp,
    },
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Cheap to clone; clones share the HTTP pool, the limiters and the caches.
#[derive(Clone, Debug)]
pub struct StripeClient {
    inner: Arc<Inner>,
}

type Cache<T> = Mutex<HashMap<(String, String), T>>;

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: StripeConfig,
    live_limiter: RateLimiter,
    test_limiter: RateLimiter,
    /// Keyed by (account rate key, id). Coupons' and prices' amounts are immutable at
    /// Stripe; product names can change, and are refreshed when the process restarts.
    coupons: Cache<Coupon>,
    tiered_prices: Cache<Price>,
    products: Cache<Product>,
}

fn cached<T: Clone>(cache: &Cache<T>, key: &(String, String)) -> Option<T> {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

fn remember<T>(cache: &Cache<T>, key: (String, String), value: T) {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, value);
}

fn query(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A path segment from an id we were given: ids are `[A-Za-z0-9_]`, anything else is refused.
fn path_id(id: &str) -> ProviderResult<&str> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id)
    } else {
        Err(internal(format!("{id:?} is not a Stripe id")))
    }
}

impl StripeClient {
    pub fn new(config: StripeConfig) -> ProviderResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!(
                "sync-service-connector-stripe/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                live_limiter: RateLimiter::new(config.live_rate_limit),
                test_limiter: RateLimiter::new(config.test_rate_limit),
                config,
                coupons: Mutex::default(),
                tiered_prices: Mutex::default(),
                products: Mutex::default(),
            }),
        })
    }

    pub fn config(&self) -> &StripeConfig {
        &self.inner.config
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn limiter(&self, session: &StripeSession) -> &RateLimiter {
        if session.livemode() {
            &self.inner.live_limiter
        } else {
            &self.inner.test_limiter
        }
    }

    /// `GET {api_base}{path}?{query}` as `session`, parsed.
    pub async fn get<T: DeserializeOwned>(
        &self,
        session: &StripeSession,
        path: &str,
        query: &[(String, String)],
    ) -> ProviderResult<T> {
        let body = self.get_raw(session, path, query).await?;
        serde_json::from_str(&body).map_err(|e| ProviderError {
            code: ErrorCode::Internal,
            message: format!("unexpected response shape from {path}: {e}"),
            status: Some(200),
            body: Some(cut(&body)),
            retry_after: None,
            missing_scopes: Vec::new(),
            refusal: None,
        })
    }

    /// The raw body of a successful `GET`, after retries and a token refresh if needed.
    pub async fn get_raw(
        &self,
        session: &StripeSession,
        path: &str,
        query: &[(String, String)],
    ) -> ProviderResult<String> {
        let mut url = format!("{}{}", self.inner.config.api_base, path);
        if !query.is_empty() {
            let encoded = serde_urlencoded::to_string(query)
                .map_err(|e| internal(format!("cannot encode the query: {e}")))?;
            url.push('?');
            url.push_str(&encoded);
        }
        self.send(session, Method::GET, &url).await
    }

    async fn send(
        &self,
        session: &StripeSession,
        method: Method,
        url: &str,
    ) -> ProviderResult<String> {
        let config = &self.inner.config;
        let limiter = self.limiter(session);
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            if !refreshed {
                self.refresh_if_old(session).await?;
            }
            limiter.acquire(session.rate_key()).await;
            let auth = session.request_auth(&config.secret_key).await;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url)
                .bearer_auth(auth.bearer.expose())
                .header("Stripe-Version", STRIPE_VERSION);
            if let Some(account) = &auth.stripe_account {
                request = request.header("Stripe-Account", account);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let hints = RetryHints::from_headers(response.headers());
                    response
                        .text()
                        .await
                        .map(|body| (status, hints, body))
                        .map_err(|e| transport(&e))
                }
                Err(e) => Err(transport(&e)),
            };
            let (status, hints, body) = match outcome {
                Ok(answer) => answer,
                Err(error) => match config.backoff.next_delay(attempt, None) {
                    Some(delay) => {
                        attempt += 1;
                        tracing::debug!(
                            attempt,
                            ?delay,
                            "stripe request failed in transit; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    None => return Err(error),
                },
            };
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let mut error = classify_api(status, &body, hints);
            if status == 401 && auth.refreshable && !refreshed {
                // An expired or rotated access token: refresh once and try again.
                refreshed = true;
                self.refresh_session(session, &auth.bearer).await?;
                continue;
            }
            if is_retriable(hints, error.code)
                && let Some(delay) = config.backoff.next_delay(attempt, hints.retry_after)
            {
                attempt += 1;
                tracing::debug!(status, attempt, ?delay, "stripe asked us to retry");
                if status == 429 {
                    // Every caller of this account waits, not only this one.
                    limiter.back_off(session.rate_key(), delay);
                } else {
                    tokio::time::sleep(delay).await;
                }
                continue;
            }
            if error.code == ErrorCode::RateLimited && error.retry_after.is_none() {
                error.retry_after = Some(config.backoff.cap);
            }
            return Err(error);
        }
    }

    /// Refreshes an OAuth access token older than the configured lifetime.
    async fn refresh_if_old(&self, session: &StripeSession) -> ProviderResult<()> {
        let Some(ttl) = self.inner.config.oauth_access_token_ttl else {
            return Ok(());
        };
        let stale = match &*session.lock().lock().await {
            StripeAuth::OAuth(tokens)
                if tokens.refresh_token.is_some()
                    && Timestamp::now().since(tokens.obtained_at) >= ttl =>
            {
                Some(tokens.access_token.clone())
            }
            _ => None,
        };
        match stale {
            Some(bearer) => self.refresh_session(session, &bearer).await,
            None => Ok(()),
        }
    }

    /// Replaces the session's tokens with fresh ones, unless another caller already did
    /// (its access token is no longer `stale_bearer`). Holding the lock across the call
    /// makes sure a rotating refresh token is used exactly once.
    async fn refresh_session(
        &self,
        session: &StripeSession,
        stale_bearer: &Secret,
    ) -> ProviderResult<()> {
        let mut auth = session.lock().lock().await;
        let StripeAuth::OAuth(tokens) = &*auth else {
            return Ok(());
        };
        if tokens.access_token != *stale_bearer {
            return Ok(());
        }
        let fresh = self.refresh_tokens(tokens).await?;
        *auth = StripeAuth::OAuth(fresh);
        session.mark_updated();
        Ok(())
    }

    /// Every page of a list endpoint.
    pub async fn list_all<T: DeserializeOwned + HasId>(
        &self,
        session: &StripeSession,
        path: &str,
        params: &[(String, String)],
    ) -> ProviderResult<Vec<T>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: List<T> = self
                .list_page(session, path, params, cursor.as_deref())
                .await?;
            let next = page.next_cursor();
            all.extend(page.data);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of a list endpoint from `starting_after`.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        session: &StripeSession,
        path: &str,
        params: &[(String, String)],
        starting_after: Option<&str>,
    ) -> ProviderResult<List<T>> {
        let mut q = params.to_vec();
        if !q.iter().any(|(k, _)| k == "limit") {
            q.push((
                "limit".into(),
                self.inner.config.page_size.clamp(1, 100).to_string(),
            ));
        }
        if let Some(after) = starting_after {
            q.push(("starting_after".into(), after.to_owned()));
        }
        self.get(session, path, &q).await
    }

    pub async fn list_customers(
        &self,
        session: &StripeSession,
        starting_after: Option<&str>,
    ) -> ProviderResult<List<Customer>> {
        self.list_page(session, "/v1/customers", &[], starting_after)
            .await
    }

    /// Subscriptions of every status, discounts expanded (not yet resolved: see
    /// [`StripeClient::resolve_references`]).
    pub async fn list_subscriptions(
        &self,
        session: &StripeSession,
        filter: &SubscriptionFilter,
        starting_after: Option<&str>,
    ) -> ProviderResult<List<Subscription>> {
        self.list_page(
            session,
            "/v1/subscriptions",
            &subscription_params(filter),
            starting_after,
        )
        .await
    }

    pub async fn list_prices(
        &self,
        session: &StripeSession,
        starting_after: Option<&str>,
    ) -> ProviderResult<List<Price>> {
        self.list_page(session, "/v1/prices", &[], starting_after)
            .await
    }

    pub async fn list_coupons(
        &self,
        session: &StripeSession,
        starting_after: Option<&str>,
    ) -> ProviderResult<List<Coupon>> {
        self.list_page(session, "/v1/coupons", &[], starting_after)
            .await
    }

    pub async fn retrieve_customer(
        &self,
        session: &StripeSession,
        id: &str,
    ) -> ProviderResult<RetrievedCustomer> {
        let path = format!("/v1/customers/{}", path_id(id)?);
        match self.get::<Customer>(session, &path, &[]).await {
            Ok(customer) if customer.deleted => Ok(RetrievedCustomer::Deleted { id: customer.id }),
            Ok(customer) => Ok(RetrievedCustomer::Found(Box::new(customer))),
            Err(e) if e.status == Some(404) => Ok(RetrievedCustomer::Missing { id: id.to_owned() }),
            Err(e) => Err(e),
        }
    }

    pub async fn retrieve_coupon(
        &self,
        session: &StripeSession,
        id: &str,
    ) -> ProviderResult<Coupon> {
        let key = (session.rate_key().to_owned(), id.to_owned());
        if let Some(coupon) = cached(&self.inner.coupons, &key) {
            return Ok(coupon);
        }
        let path = format!("/v1/coupons/{}", path_id(id)?);
        let coupon: Coupon = self.get(session, &path, &[]).await?;
        remember(&self.inner.coupons, key, coupon.clone());
        Ok(coupon)
    }

    /// A price with its tiers (`expand[]=tiers`), cached.
    pub async fn retrieve_price_with_tiers(
        &self,
        session: &StripeSession,
        id: &str,
    ) -> ProviderResult<Price> {
        let key = (session.rate_key().to_owned(), id.to_owned());
        if let Some(price) = cached(&self.inner.tiered_prices, &key) {
            return Ok(price);
        }
        let path = format!("/v1/prices/{}", path_id(id)?);
        let price: Price = self
            .get(session, &path, &query(&[("expand[]", "tiers".into())]))
            .await?;
        remember(&self.inner.tiered_prices, key, price.clone());
        Ok(price)
    }

    pub async fn retrieve_product(
        &self,
        session: &StripeSession,
        id: &str,
    ) -> ProviderResult<Product> {
        let key = (session.rate_key().to_owned(), id.to_owned());
        if let Some(product) = cached(&self.inner.products, &key) {
            return Ok(product);
        }
        let path = format!("/v1/products/{}", path_id(id)?);
        let product: Product = self.get(session, &path, &[]).await?;
        remember(&self.inner.products, key, product.clone());
        Ok(product)
    }

    /// All of a customer's subscriptions (every status), with every item, coupon, tier
    /// and product name MRR and the customer page need filled in.
    pub async fn customer_subscriptions(
        &self,
        session: &StripeSession,
        customer_id: &str,
    ) -> ProviderResult<Vec<Subscription>> {
        let filter = SubscriptionFilter {
            customer: Some(path_id(customer_id)?.to_owned()),
        };
        let mut subscriptions: Vec<Subscription> = self
            .list_all(session, "/v1/subscriptions", &subscription_params(&filter))
            .await?;
        self.resolve_references(session, &mut subscriptions).await?;
        Ok(subscriptions)
    }

    /// Fills in what list responses cannot carry: items beyond the embedded page, coupons
    /// named by id, tiers of tiered prices, product names. Each is fetched once and cached.
    pub async fn resolve_references(
        &self,
        session: &StripeSession,
        subscriptions: &mut [Subscription],
    ) -> ProviderResult<()> {
        for subscription in subscriptions.iter_mut() {
            if subscription.items.has_more {
                let params = query(&[("subscription", subscription.id.clone())]);
                let items: Vec<SubscriptionItem> = self
                    .list_all(session, "/v1/subscription_items", &params)
                    .await?;
                subscription.items = List {
                    data: items,
                    has_more: false,
                    url: subscription.items.url.take(),
                };
            }
            for discount in subscription.discounts.iter_mut() {
                self.resolve_discount(session, discount).await?;
            }
            for item in subscription.items.data.iter_mut() {
                for discount in item.discounts.iter_mut() {
                    self.resolve_discount(session, discount).await?;
                }
                if item.price.billing_scheme == Some(BillingScheme::Tiered)
                    && item.price.tiers.is_none()
                {
                    let full = self
                        .retrieve_price_with_tiers(session, &item.price.id)
                        .await?;
                    item.price.tiers = full.tiers;
                }
                if let Some(Expandable::Id(product_id)) = &item.price.product {
                    let product = self.retrieve_product(session, product_id).await?;
                    item.price.product = Some(Expandable::Object(Box::new(product)));
                }
            }
        }
        Ok(())
    }

    async fn resolve_discount(
        &self,
        session: &StripeSession,
        discount: &mut Expandable<Discount>,
    ) -> ProviderResult<()> {
        // A bare discount id cannot be fetched on its own; MRR flags it.
        let Expandable::Object(discount) = discount else {
            return Ok(());
        };
        if discount.coupon().is_some() {
            return Ok(());
        }
        let Some(coupon_id) = discount.coupon_id().map(str::to_owned) else {
            return Ok(());
        };
        let coupon = self.retrieve_coupon(session, &coupon_id).await?;
        discount.source = Some(DiscountSource {
            source_type: "coupon".into(),
            coupon: Some(Expandable::Object(Box::new(coupon))),
        });
        Ok(())
    }

    /// A customer, their subscriptions and the billing fields computed from them.
    pub async fn customer_billing(
        &self,
        session: &StripeSession,
        customer_id: &str,
        now: Timestamp,
        policy: &MrrPolicy,
    ) -> ProviderResult<CustomerBilling> {
        let customer = match self.retrieve_customer(session, customer_id).await? {
            RetrievedCustomer::Found(customer) => customer,
            RetrievedCustomer::Deleted { id } => return Ok(CustomerBilling::Deleted { id }),
            RetrievedCustomer::Missing { id } => return Ok(CustomerBilling::Missing { id }),
        };
        let subscriptions = self.customer_subscriptions(session, &customer.id).await?;
        Ok(self.billing_of(*customer, subscriptions, now, policy))
    }

    /// The billing fields of a customer already read (listing pages).
    pub fn billing_of(
        &self,
        customer: Customer,
        subscriptions: Vec<Subscription>,
        now: Timestamp,
        policy: &MrrPolicy,
    ) -> CustomerBilling {
        let summary = billing_summary(&subscriptions, customer.discount.as_ref(), now, policy);
        CustomerBilling::Found {
            customer: Box::new(customer),
            subscriptions,
            summary,
        }
    }

    /// One page of the events feed since `query.created_gte`. Stripe lists only the last
    /// 30 days: an older cursor is [`EventFeedError::BeyondRetention`] (reconcile in full).
    pub async fn list_events(
        &self,
        session: &StripeSession,
        query: &EventQuery,
        now: Timestamp,
    ) -> Result<EventPage, EventFeedError> {
        let oldest_available = now.minus(EVENT_RETENTION).plus(EVENT_RETENTION_MARGIN);
        if query.created_gte < oldest_available {
            return Err(EventFeedError::BeyondRetention {
                requested: query.created_gte,
                oldest_available,
            });
        }
        if query.types.len() > MAX_EVENT_TYPES {
            return Err(internal(format!(
                "Stripe lists at most {MAX_EVENT_TYPES} event types at once, {} asked",
                query.types.len()
            ))
            .into());
        }
        let mut params = vec![(
            "created[gte]".to_owned(),
            query.created_gte.as_secs().to_string(),
        )];
        params.extend(
            query
                .types
                .iter()
                .map(|t| ("types[]".to_owned(), t.clone())),
        );
        let page: List<serde_json::Value> = self
            .list_page(
                session,
                "/v1/events",
                &params,
                query.starting_after.as_deref(),
            )
            .await?;
        let mut events = Vec::with_capacity(page.data.len());
        for raw in &page.data {
            let bytes = serde_json::to_vec(raw).map_err(|e| internal(e.to_string()))?;
            let event =
                parse_event(&bytes).map_err(|e| internal(format!("unreadable event: {e}")))?;
            events.push(event);
        }
        let next_cursor = if page.has_more {
            events.last().map(|e| e.id.as_str().to_owned())
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }
}

fn subscription_params(filter: &SubscriptionFilter) -> Vec<(String, String)> {
    let mut params = vec![("status".to_owned(), "all".to_owned())];
    if let Some(customer) = &filter.customer {
        params.push(("customer".into(), customer.clone()));
    }
    params.extend(
        SUBSCRIPTION_EXPANSIONS
            .iter()
            .map(|e| ("expand[]".to_owned(), (*e).to_owned())),
    );
    params
}

impl<T: HasId> List<T> {
    /// `starting_after` for the next page, or `None` on the last one.
    pub fn next_cursor(&self) -> Option<String> {
        if self.has_more {
            self.data.last().map(|item| item.id().to_owned())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_lists_ask_for_every_status_and_at_most_four_levels_of_expansion() {
        let params = subscription_params(&SubscriptionFilter {
            customer: Some("cus_1".into()),
        });
        assert!(params.contains(&("status".into(), "all".into())));
        assert!(params.contains(&("customer".into(), "cus_1".into())));
        for (k, v) in &params {
            if k == "expand[]" {
                assert!(v.split('.').count() <= 4, "{v} is too deep");
            }
        }
        let encoded = serde_urlencoded::to_string(&params).expect("encodes");
        assert!(encoded.contains("expand%5B%5D=data.discounts.source.coupon"));
    }

    #[test]
    fn ids_with_path_characters_are_refused() {
        assert!(path_id("cus_123").is_ok());
        assert!(path_id("../v1/charges").is_err());
        assert!(path_id("").is_err());
    }
}
