//! Stripe's objects as they arrive on the wire at [`crate::STRIPE_VERSION`], reduced to the
//! fields the sync and the MRR computation read. Deserialisation is lenient where Stripe
//! sends `null` for empty values; unknown enum values land in an `Other` arm instead of
//! failing the whole page.

use std::collections::BTreeMap;

use connector::Secret;
use serde::{Deserialize, Deserializer};

/// `null` reads as the type's default (Stripe sends `"metadata": null` on some objects).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An expandable field: an id by default, the object when `expand[]` asked for it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

/// Objects that have an id, so an [`Expandable`] can always name its target.
pub trait HasId {
    fn id(&self) -> &str;
}

impl<T: HasId> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }

    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(object) => Some(object),
        }
    }
}

/// A page of a list endpoint: `{object: "list", data, has_more, url}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub url: Option<String>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
            url: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub delinquent: Option<bool>,
    /// The customer-level discount; applies to subscriptions that have none of their own.
    #[serde(default)]
    pub discount: Option<Discount>,
    #[serde(default)]
    pub livemode: bool,
    /// Only `true` on the stub `GET /v1/customers/{id}` returns for a deleted customer.
    #[serde(default)]
    pub deleted: bool,
}

impl HasId for Customer {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    PastDue,
    Trialing,
    Incomplete,
    IncompleteExpired,
    Unpaid,
    Canceled,
    Paused,
    #[serde(other)]
    Other,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Other => "other",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: Expandable<Customer>,
    pub status: SubscriptionStatus,
    pub currency: String,
    #[serde(default)]
    pub items: List<SubscriptionItem>,
    /// Subscription-level discounts, in the order Stripe applies them (ids unless expanded).
    #[serde(default, deserialize_with = "null_as_default")]
    pub discounts: Vec<Expandable<Discount>>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    #[serde(default)]
    pub cancel_at: Option<i64>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    pub trial_start: Option<i64>,
    #[serde(default)]
    pub trial_end: Option<i64>,
    #[serde(default)]
    pub start_date: Option<i64>,
    #[serde(default)]
    pub created: i64,
    /// Set while collection is paused; the status stays `active`.
    #[serde(default)]
    pub pause_collection: Option<serde_json::Value>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
}

impl HasId for Subscription {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: Price,
    /// `null` for metered prices; 1 when absent.
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub discounts: Vec<Expandable<Discount>>,
    /// Since 2025-03-31.basil the billing period lives on the item.
    #[serde(default)]
    pub current_period_start: Option<i64>,
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

impl HasId for SubscriptionItem {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceType {
    OneTime,
    Recurring,
    #[serde(other)]
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingScheme {
    PerUnit,
    Tiered,
    #[serde(other)]
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TiersMode {
    Graduated,
    Volume,
    #[serde(other)]
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
    #[serde(other)]
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageType {
    Licensed,
    Metered,
    #[serde(other)]
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundDirection {
    Up,
    Down,
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Recurring {
    pub interval: Interval,
    #[serde(default = "one")]
    pub interval_count: i64,
    #[serde(default = "licensed")]
    pub usage_type: UsageType,
}

fn one() -> i64 {
    1
}

fn licensed() -> UsageType {
    UsageType::Licensed
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TransformQuantity {
    pub divide_by: i64,
    pub round: RoundDirection,
}

/// One tier of a tiered price (only present when the price was fetched with `expand[]=tiers`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Tier {
    /// `null` = infinity (the last tier).
    #[serde(default)]
    pub up_to: Option<i64>,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    #[serde(default)]
    pub flat_amount: Option<i64>,
    #[serde(default)]
    pub flat_amount_decimal: Option<String>,
}

/// A price's amounts in another currency (`price.currency_options[cur]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CurrencyOption {
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    #[serde(default)]
    pub tiers: Option<Vec<Tier>>,
    #[serde(default)]
    pub tax_behavior: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Price {
    pub id: String,
    pub currency: String,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub unit_amount_decimal: Option<String>,
    #[serde(default)]
    pub billing_scheme: Option<BillingScheme>,
    #[serde(default)]
    pub tiers_mode: Option<TiersMode>,
    #[serde(default)]
    pub tiers: Option<Vec<Tier>>,
    #[serde(default)]
    pub transform_quantity: Option<TransformQuantity>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    #[serde(rename = "type")]
    pub price_type: PriceType,
    #[serde(default)]
    pub tax_behavior: Option<String>,
    #[serde(default)]
    pub currency_options: Option<BTreeMap<String, CurrencyOption>>,
    #[serde(default)]
    pub product: Option<Expandable<Product>>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub lookup_key: Option<String>,
}

impl HasId for Price {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Product {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

impl HasId for Product {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponDuration {
    Forever,
    Once,
    Repeating,
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CouponAmount {
    pub amount_off: i64,
}

#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
pub struct AppliesTo {
    #[serde(default)]
    pub products: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Coupon {
    pub id: String,
    /// A JSON number such as `25.5`; read exactly through [`crate::ratio::Ratio::from_f64_decimal`].
    #[serde(default)]
    pub percent_off: Option<f64>,
    /// In minor units of `currency`.
    #[serde(default)]
    pub amount_off: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub currency_options: Option<BTreeMap<String, CouponAmount>>,
    pub duration: CouponDuration,
    #[serde(default)]
    pub duration_in_months: Option<i64>,
    #[serde(default)]
    pub applies_to: Option<AppliesTo>,
    #[serde(default)]
    pub valid: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
}

impl HasId for Coupon {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Since 2025-09-30.clover a discount names its coupon here (an id unless expanded).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DiscountSource {
    #[serde(rename = "type")]
    pub source_type: String,
    #[serde(default)]
    pub coupon: Option<Expandable<Coupon>>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Discount {
    pub id: String,
    #[serde(default)]
    pub source: Option<DiscountSource>,
    /// Before 2025-09-30.clover: the coupon, always expanded.
    #[serde(default)]
    pub coupon: Option<Coupon>,
    #[serde(default)]
    pub start: Option<i64>,
    /// When a `repeating` discount stops; `null` for `once` and `forever`.
    #[serde(default)]
    pub end: Option<i64>,
}

impl HasId for Discount {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Discount {
    /// The coupon, when it is in the payload (expanded, or the pre-clover field).
    pub fn coupon(&self) -> Option<&Coupon> {
        self.coupon.as_ref().or_else(|| {
            self.source
                .as_ref()
                .and_then(|s| s.coupon.as_ref())
                .and_then(Expandable::object)
        })
    }

    /// The coupon's id, expanded or not.
    pub fn coupon_id(&self) -> Option<&str> {
        if let Some(coupon) = &self.coupon {
            return Some(&coupon.id);
        }
        self.source
            .as_ref()
            .and_then(|s| s.coupon.as_ref())
            .map(Expandable::id)
    }
}

/// Stripe's API error body: `{"error": {type, code, message, param, ...}}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiError,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ApiError {
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

/// The OAuth endpoints' error body: `{"error": "invalid_grant", "error_description": ...}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// `POST /oauth/token`'s answer. Refresh tokens rotate: keep the newest one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OAuthToken {
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    pub stripe_user_id: String,
    #[serde(default)]
    pub stripe_publishable_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = include_str!("../tests/fixtures/fixtures3.json");

    fn fixture(name: &str) -> serde_json::Value {
        let all: serde_json::Value = serde_json::from_str(FIXTURES).expect("fixtures parse");
        all["resources"][name].clone()
    }

    #[test]
    fn stripes_example_customer_parses() {
        let c: Customer = serde_json::from_value(fixture("customer")).expect("customer parses");
        assert_eq!(c.id, "cus_QXg1o8vcGmoR32");
        assert!(!c.deleted);
        assert!(c.discount.is_some());
    }

    #[test]
    fn stripes_example_deleted_customer_parses_as_deleted() {
        let c: Customer =
            serde_json::from_value(fixture("deleted_customer")).expect("deleted customer parses");
        assert!(c.deleted);
    }

    #[test]
    fn stripes_example_subscription_parses_with_item_periods_and_full_price() {
        let s: Subscription =
            serde_json::from_value(fixture("subscription")).expect("subscription parses");
        assert_eq!(s.customer.id(), "cus_QXg1o8vcGmoR32");
        let item = &s.items.data[0];
        assert_eq!(item.price.unit_amount, Some(2000));
        assert_eq!(item.price.price_type, PriceType::Recurring);
        assert!(item.current_period_end.is_some());
        assert!(s.pause_collection.is_some());
    }

    #[test]
    fn stripes_example_price_coupon_and_discount_parse() {
        let p: Price = serde_json::from_value(fixture("price")).expect("price parses");
        assert_eq!(
            p.recurring.as_ref().map(|r| r.interval),
            Some(Interval::Month)
        );
        let c: Coupon = serde_json::from_value(fixture("coupon")).expect("coupon parses");
        assert_eq!(c.percent_off, Some(25.5));
        assert_eq!(c.duration, CouponDuration::Forever);
        let d: Discount = serde_json::from_value(fixture("discount")).expect("discount parses");
        assert_eq!(d.coupon_id(), None);
        assert_eq!(d.end, Some(1234567890));
    }

    #[test]
    fn stripes_example_product_and_subscription_item_parse() {
        let p: Product = serde_json::from_value(fixture("product")).expect("product parses");
        assert!(p.id.starts_with("prod_"));
        let i: SubscriptionItem =
            serde_json::from_value(fixture("subscription_item")).expect("item parses");
        assert!(i.id.starts_with("si_"));
    }

    #[test]
    fn a_discount_names_its_coupon_whether_expanded_or_not() {
        let by_id: Discount = serde_json::from_str(
            r#"{"id":"di_1","source":{"type":"coupon","coupon":"SAVE"},"start":1,"end":null}"#,
        )
        .expect("parses");
        assert_eq!(by_id.coupon_id(), Some("SAVE"));
        assert!(by_id.coupon().is_none());
        let expanded: Discount = serde_json::from_str(
            r#"{"id":"di_1","source":{"type":"coupon","coupon":{"id":"SAVE","percent_off":10,"duration":"forever"}}}"#,
        )
        .expect("parses");
        assert_eq!(expanded.coupon().map(|c| c.percent_off), Some(Some(10.0)));
    }

    #[test]
    fn unknown_statuses_do_not_fail_the_page() {
        let s: SubscriptionStatus = serde_json::from_str("\"brand_new\"").expect("parses");
        assert_eq!(s, SubscriptionStatus::Other);
    }

    #[test]
    fn an_oauth_token_response_parses_with_its_secrets_wrapped() {
        let t: OAuthToken = serde_json::from_str(
            r#"{"access_token":"sk_test_x","refresh_token":"rt_1","token_type":"bearer","scope":"read_only","livemode":false,"stripe_user_id":"acct_1","stripe_publishable_key":"pk_test_1"}"#,
        )
        .expect("parses");
        assert_eq!(t.stripe_user_id, "acct_1");
        assert_eq!(format!("{:?}", t.access_token), "Secret(***)");
    }
}
