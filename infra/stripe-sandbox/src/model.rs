//! The stored Stripe objects (typed), the inputs that create and change them, and the
//! billing-period arithmetic. Rendering to Stripe's JSON lives in `render.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

pub type Metadata = BTreeMap<String, String>;

/// Ordering key of a listed object: newest `created` first, then newest insertion first.
pub trait Listed {
    fn id(&self) -> &str;
    fn created(&self) -> i64;
    fn seq(&self) -> u64;
}

macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            fn id(&self) -> &str { &self.id }
            fn created(&self) -> i64 { self.created }
            fn seq(&self) -> u64 { self.seq }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UsageType {
    #[default]
    Licensed,
    Metered,
}

impl UsageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Licensed => "licensed",
            Self::Metered => "metered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    #[default]
    Active,
    Trialing,
    PastDue,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
    Unpaid,
}

impl SubscriptionStatus {
    pub const ALL: [Self; 8] = [
        Self::Active,
        Self::Trialing,
        Self::PastDue,
        Self::Canceled,
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Paused,
        Self::Unpaid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
            Self::Unpaid => "unpaid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Canceled and incomplete_expired are terminal ("ended").
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponDuration {
    Once,
    Repeating,
    Forever,
}

impl CouponDuration {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Repeating => "repeating",
            Self::Forever => "forever",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "once" => Some(Self::Once),
            "repeating" => Some(Self::Repeating),
            "forever" => Some(Self::Forever),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: String,
    pub created: i64,
    pub seq: u64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub currency: Option<String>,
    pub metadata: Metadata,
    /// Customer-level discount (`di_`), if any.
    pub discount: Option<String>,
    pub delinquent: bool,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: String,
    pub created: i64,
    pub updated: i64,
    pub seq: u64,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub default_price: Option<String>,
    pub metadata: Metadata,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recurring {
    pub interval: Interval,
    #[serde(default = "one")]
    pub interval_count: u32,
    #[serde(default)]
    pub usage_type: UsageType,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// `None` is "inf" (the last tier).
    pub up_to: Option<u64>,
    pub unit_amount: Option<i64>,
    pub flat_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformQuantity {
    pub divide_by: u64,
    /// `up` or `down`.
    pub round: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub id: String,
    pub created: i64,
    pub seq: u64,
    pub product: String,
    pub currency: String,
    pub unit_amount: Option<i64>,
    pub unit_amount_decimal: Option<String>,
    pub recurring: Option<Recurring>,
    /// `per_unit` or `tiered`.
    pub billing_scheme: String,
    /// `graduated` or `volume` for tiered prices.
    pub tiers_mode: Option<String>,
    pub tiers: Vec<Tier>,
    pub transform_quantity: Option<TransformQuantity>,
    pub tax_behavior: String,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub active: bool,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Coupon {
    pub id: String,
    pub created: i64,
    pub seq: u64,
    pub name: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: CouponDuration,
    pub duration_in_months: Option<u32>,
    pub applies_to_products: Option<Vec<String>>,
    pub metadata: Metadata,
    pub times_redeemed: u64,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Discount {
    pub id: String,
    pub created: i64,
    pub seq: u64,
    pub coupon: String,
    pub start: i64,
    pub end: Option<i64>,
    pub customer: String,
    pub subscription: Option<String>,
    pub subscription_item: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionItem {
    pub id: String,
    pub created: i64,
    pub price: String,
    /// `None` for metered prices.
    pub quantity: Option<u64>,
    pub discounts: Vec<String>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub created: i64,
    pub seq: u64,
    pub customer: String,
    pub status: SubscriptionStatus,
    pub currency: String,
    pub items: Vec<SubscriptionItem>,
    pub discounts: Vec<String>,
    pub billing_cycle_anchor: i64,
    pub start_date: i64,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub trial_start: Option<i64>,
    pub trial_end: Option<i64>,
    /// `pause_collection.behavior` when collection is paused (status stays as it is).
    pub pause_collection: Option<String>,
    pub collection_method: String,
    pub metadata: Metadata,
}

/// One stored event. `object` is frozen at creation (rendered at the account's version).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: String,
    pub created: i64,
    pub seq: u64,
    pub kind: String,
    pub body: Value,
    /// Endpoints still to deliver to.
    pub pending_webhooks: u32,
    /// `Some(false)` once a delivery attempt failed, `Some(true)` after success.
    pub delivery_success: Option<bool>,
}

listed!(
    Customer,
    Product,
    Price,
    Coupon,
    Discount,
    Subscription,
    EventRecord
);

// ---------- inputs shared by the API and the control API ----------

/// Create or update a customer. `None` leaves a field unchanged on update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Merged into the metadata; an empty value removes the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// A coupon id for a customer-level discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    /// Backdate creation (control API only; the real API has no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemInput {
    pub price: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    /// Coupon ids for item-level discounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionInput {
    pub customer: String,
    pub items: Vec<ItemInput>,
    /// Coupon ids for subscription-level discounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_period_days: Option<i64>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// Start in this status instead of active/trialing (control API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_method: Option<String>,
    /// Backdate creation and the billing anchor (control API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemUpdate {
    /// An existing item (`si_`); without it a new item is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    #[serde(default)]
    pub deleted: bool,
}

/// A change to a subscription. `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemUpdate>>,
    /// Replaces the subscription-level discounts with these coupons (empty clears them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupons: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_at_period_end: Option<bool>,
    /// `Some(None)` clears `cancel_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_at: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// `Some(Some(behavior))` pauses collection, `Some(None)` resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_collection: Option<Option<String>>,
    /// Force a status (control API: past_due, unpaid, paused, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionStatus>,
    /// End the trial now (`trial_end=now`).
    #[serde(default)]
    pub end_trial_now: bool,
}

// ---------- billing periods ----------

/// `ts` moved forward by `steps` intervals of `count` (calendar months keep the anchor day,
/// clamped to the month's length, like Stripe's billing anchors).
pub fn add_intervals(ts: i64, interval: Interval, count: u32, steps: i64) -> i64 {
    let n = i64::from(count) * steps;
    match interval {
        Interval::Day => ts + n * 86_400,
        Interval::Week => ts + n * 7 * 86_400,
        Interval::Month => add_months(ts, n),
        Interval::Year => add_months(ts, n * 12),
    }
}

fn add_months(ts: i64, months: i64) -> i64 {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(ts) else {
        return ts;
    };
    let month0 = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + months;
    let Ok(year) = i32::try_from(month0.div_euclid(12)) else {
        return ts;
    };
    let Ok(month) = u8::try_from(month0.rem_euclid(12) + 1).map(Month::try_from) else {
        return ts;
    };
    let Ok(month) = month else {
        return ts;
    };
    let day = at.day().min(time::util::days_in_month(month, year));
    let Ok(date) = Date::from_calendar_date(year, month, day) else {
        return ts;
    };
    PrimitiveDateTime::new(
        date,
        Time::from_hms(at.hour(), at.minute(), at.second()).unwrap_or(Time::MIDNIGHT),
    )
    .assume_utc()
    .unix_timestamp()
}

/// The billing period `[start, end)` containing `at`, counting from `anchor`.
pub fn period_containing(anchor: i64, recurring: &Recurring, at: i64) -> (i64, i64) {
    let count = recurring.interval_count.max(1);
    if at < anchor {
        return (anchor, add_intervals(anchor, recurring.interval, count, 1));
    }
    // Estimate the step from the average interval length, then correct by walking.
    let approx_len = match recurring.interval {
        Interval::Day => 86_400,
        Interval::Week => 7 * 86_400,
        Interval::Month => 2_629_746,
        Interval::Year => 31_556_952,
    } * i64::from(count);
    let mut steps = ((at - anchor) / approx_len).saturating_sub(1).max(0);
    loop {
        let start = add_intervals(anchor, recurring.interval, count, steps);
        let end = add_intervals(anchor, recurring.interval, count, steps + 1);
        if start > at && steps > 0 {
            steps -= 1;
        } else if end <= at {
            steps += 1;
        } else {
            return (start, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-01-31T12:00:00Z
    const JAN_31: i64 = 1_706_702_400;

    #[test]
    fn a_monthly_anchor_on_the_31st_clamps_to_the_end_of_february() {
        let feb = add_intervals(JAN_31, Interval::Month, 1, 1);
        let date = OffsetDateTime::from_unix_timestamp(feb).unwrap();
        assert_eq!((date.month(), date.day()), (Month::February, 29));
        let mar = add_intervals(JAN_31, Interval::Month, 1, 2);
        assert_eq!(OffsetDateTime::from_unix_timestamp(mar).unwrap().day(), 31);
    }

    #[test]
    fn the_current_period_contains_the_given_instant() {
        let quarterly = Recurring {
            interval: Interval::Month,
            interval_count: 3,
            usage_type: UsageType::Licensed,
        };
        let at = JAN_31 + 400 * 86_400;
        let (start, end) = period_containing(JAN_31, &quarterly, at);
        assert!(start <= at && at < end);
        assert_eq!(add_intervals(start, Interval::Month, 3, 1), end);
        let weekly = Recurring {
            interval: Interval::Week,
            interval_count: 2,
            usage_type: UsageType::Licensed,
        };
        assert_eq!(
            period_containing(0, &weekly, 15 * 86_400),
            (14 * 86_400, 28 * 86_400)
        );
    }
}
