//! Monthly recurring revenue from a customer's Stripe subscriptions (contract `stripe.md` §3).
//!
//! Pure: the same subscriptions, instant and policy always give the same figures. All
//! arithmetic is on exact rationals; each subscription is rounded once (half away from
//! zero) to an integer minor unit, and currencies are never added together.

use std::collections::BTreeMap;

use connector::{Billing, Currency, Money, Timestamp};
use serde::Serialize;

use crate::ratio::Ratio;
use crate::types::{
    BillingScheme, Coupon, CouponDuration, Discount, Expandable, Interval, PriceType,
    RoundDirection, Subscription, SubscriptionItem, SubscriptionStatus, Tier, TiersMode, UsageType,
};

/// Which coupon durations reduce MRR. Stripe's dashboard default subtracts `forever`
/// coupons only; its "Configure" switch can add one-time and repeating ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DiscountDurations {
    pub forever: bool,
    /// `repeating` coupons, while the discount has not reached its `end`.
    pub repeating: bool,
    /// `once` coupons, during the billing period in which the discount started (the one
    /// invoice it reduces).
    pub once: bool,
}

/// The choices the contract leaves open. [`MrrPolicy::default`] is
/// [`MrrPolicy::stripe_dashboard`], so the CSM sees the figure the customer's own Stripe
/// dashboard shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MrrPolicy {
    /// `true` (Stripe): a subscription with `cancel_at_period_end` or `cancel_at` stops
    /// counting when the cancellation is requested. `false` (ChartMogul): it counts until
    /// it actually ends.
    pub churn_on_cancel_request: bool,
    pub discount_durations: DiscountDurations,
}

impl MrrPolicy {
    pub const fn stripe_dashboard() -> Self {
        Self {
            churn_on_cancel_request: true,
            discount_durations: DiscountDurations {
                forever: true,
                repeating: false,
                once: false,
            },
        }
    }
}

impl Default for MrrPolicy {
    fn default() -> Self {
        Self::stripe_dashboard()
    }
}

/// Why a subscription contributes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Exclusion {
    /// Only `active` and `past_due` count.
    Status { status: &'static str },
    /// Cancellation requested and the policy churns at the request.
    CancelRequested,
    /// The subscription's currency is not an ISO code.
    InvalidCurrency { currency: String },
    /// The amounts do not fit in the arithmetic (nonsense input).
    Overflow,
}

/// Something the CS page or the log should know about a counted subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "flag")]
pub enum MrrFlag {
    /// `pause_collection` is set but the status is `active`: Stripe still counts it.
    CollectionPaused,
    /// The price includes tax, which Stripe's MRR would exclude; we cannot back it out.
    TaxInclusivePrice { price_id: String },
    /// A metered (usage-based) item, excluded as Stripe does.
    MeteredItemExcluded { item_id: String },
    /// A one-time price on the subscription, excluded.
    OneTimeItemExcluded { item_id: String },
    /// A tiered price whose tiers were not fetched (`expand[]=tiers`); the item is left out.
    TiersMissing { price_id: String },
    /// The price has no amount in the subscription's currency; the item is left out.
    NoAmountInCurrency { price_id: String },
    /// An interval Stripe does not document; the item is left out.
    UnknownInterval { price_id: String },
    /// A discount whose coupon was not in the payload; it is not subtracted.
    UnresolvedCoupon { discount_id: String },
    /// An `amount_off` coupon with no amount in the subscription's currency; not subtracted.
    CouponCurrencyMismatch { coupon_id: String },
    /// The subscription has more items than the page carried (`items.has_more`).
    ItemsIncomplete,
}

/// One subscription's share of the customer's MRR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscriptionMrr {
    pub subscription_id: String,
    pub currency: Option<Currency>,
    pub status: &'static str,
    /// Monthly amount in the currency's minor unit, rounded once; 0 when excluded.
    pub mrr_minor: i64,
    pub exclusion: Option<Exclusion>,
    /// When a requested cancellation takes effect ("churning on <date>").
    pub scheduled_cancel_at: Option<Timestamp>,
    pub flags: Vec<MrrFlag>,
}

/// A customer's MRR per currency, with the per-subscription breakdown behind it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MrrSummary {
    pub by_currency: BTreeMap<Currency, i64>,
    pub subscriptions: Vec<SubscriptionMrr>,
}

impl MrrSummary {
    /// The per-currency totals as money, in currency order; currencies whose subscriptions
    /// were all excluded are left out.
    pub fn money(&self) -> Vec<Money> {
        self.by_currency
            .iter()
            .filter(|(_, amount)| **amount != 0)
            .map(|(currency, amount)| Money::new(*amount, *currency))
            .collect()
    }

    pub fn for_currency(&self, currency: Currency) -> i64 {
        self.by_currency.get(&currency).copied().unwrap_or(0)
    }
}

/// MRR of one customer's subscriptions with no customer-level discount.
pub fn compute_mrr(
    subscriptions: &[Subscription],
    now: Timestamp,
    policy: &MrrPolicy,
) -> MrrSummary {
    compute_customer_mrr(subscriptions, None, now, policy)
}

/// MRR of one customer's subscriptions; `customer_discount` (`customer.discount`) applies
/// to the subscriptions that have no discount of their own.
pub fn compute_customer_mrr(
    subscriptions: &[Subscription],
    customer_discount: Option<&Discount>,
    now: Timestamp,
    policy: &MrrPolicy,
) -> MrrSummary {
    let mut summary = MrrSummary::default();
    for subscription in subscriptions {
        let result = subscription_mrr(subscription, customer_discount, now, policy);
        if let Some(currency) = result.currency {
            let total = summary.by_currency.entry(currency).or_insert(0);
            *total = total.saturating_add(result.mrr_minor);
        }
        summary.subscriptions.push(result);
    }
    summary
}

/// Whether Stripe counts a subscription in this status.
pub fn status_counts(status: SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::PastDue
    )
}

fn cancel_requested(s: &Subscription) -> bool {
    s.cancel_at_period_end || s.cancel_at.is_some()
}

/// When the subscription's current period ends: the items' periods since basil.
fn current_period_end(s: &Subscription) -> Option<i64> {
    s.items
        .data
        .iter()
        .filter_map(|i| i.current_period_end)
        .min()
}

fn scheduled_cancel_at(s: &Subscription) -> Option<Timestamp> {
    if matches!(
        s.status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    ) {
        return None;
    }
    s.cancel_at
        .or_else(|| {
            if s.cancel_at_period_end {
                current_period_end(s)
            } else {
                None
            }
        })
        .map(Timestamp::from_secs)
}

/// One subscription, rounded once.
pub fn subscription_mrr(
    s: &Subscription,
    customer_discount: Option<&Discount>,
    now: Timestamp,
    policy: &MrrPolicy,
) -> SubscriptionMrr {
    let mut result = SubscriptionMrr {
        subscription_id: s.id.clone(),
        currency: Currency::parse(&s.currency).ok(),
        status: s.status.as_str(),
        mrr_minor: 0,
        exclusion: None,
        scheduled_cancel_at: scheduled_cancel_at(s),
        flags: Vec::new(),
    };
    if result.currency.is_none() {
        result.exclusion = Some(Exclusion::InvalidCurrency {
            currency: s.currency.clone(),
        });
        return result;
    }
    if !status_counts(s.status) {
        result.exclusion = Some(Exclusion::Status {
            status: s.status.as_str(),
        });
        return result;
    }
    if policy.churn_on_cancel_request && cancel_requested(s) {
        result.exclusion = Some(Exclusion::CancelRequested);
        return result;
    }
    if s.pause_collection.as_ref().is_some_and(|p| !p.is_null()) {
        result.flags.push(MrrFlag::CollectionPaused);
    }
    if s.items.has_more {
        result.flags.push(MrrFlag::ItemsIncomplete);
    }
    match discounted_total(s, customer_discount, now, policy, &mut result.flags)
        .map(Ratio::round_half_away_from_zero)
        .and_then(|minor| i64::try_from(minor).ok())
    {
        Some(minor) => result.mrr_minor = minor,
        None => result.exclusion = Some(Exclusion::Overflow),
    }
    result
}

/// The subscription's MRR before the one rounding, as an exact fraction of a minor unit;
/// `None` when it is excluded (status, cancellation, currency) or overflows.
pub fn unrounded_subscription_mrr(
    s: &Subscription,
    customer_discount: Option<&Discount>,
    now: Timestamp,
    policy: &MrrPolicy,
) -> Option<Ratio> {
    Currency::parse(&s.currency).ok()?;
    if !status_counts(s.status) || (policy.churn_on_cancel_request && cancel_requested(s)) {
        return None;
    }
    discounted_total(s, customer_discount, now, policy, &mut Vec::new())
}

/// A counted item's monthly value on its way through the discounts.
struct Line {
    monthly: Ratio,
    /// Months per billing period: what a per-invoice `amount_off` is spread over.
    period_months: Ratio,
    product_id: Option<String>,
    period_start: Option<i64>,
}

/// Σ discounted monthly values, unrounded; `None` on arithmetic overflow.
fn discounted_total(
    s: &Subscription,
    customer_discount: Option<&Discount>,
    now: Timestamp,
    policy: &MrrPolicy,
    flags: &mut Vec<MrrFlag>,
) -> Option<Ratio> {
    let mut lines = Vec::new();
    for item in &s.items.data {
        let Some(mut line) = item_line(item, &s.currency, flags)? else {
            continue;
        };
        for discount in &item.discounts {
            if let Some(coupon) = applicable_coupon(discount, now, policy, line.period_start, flags)
            {
                apply_coupon(std::slice::from_mut(&mut line), coupon, &s.currency, flags)?;
            }
        }
        lines.push(line);
    }

    let period_start = lines.iter().filter_map(|l| l.period_start).min();
    let discounts: Vec<&Discount> = if s.discounts.is_empty() {
        customer_discount.into_iter().collect()
    } else {
        let mut resolved = Vec::new();
        for discount in &s.discounts {
            match discount {
                Expandable::Object(d) => resolved.push(d.as_ref()),
                Expandable::Id(id) => flags.push(MrrFlag::UnresolvedCoupon {
                    discount_id: id.clone(),
                }),
            }
        }
        resolved
    };
    for discount in discounts {
        let Some(coupon) = discount_coupon(discount, now, policy, period_start, flags) else {
            continue;
        };
        let products = coupon
            .applies_to
            .as_ref()
            .map(|a| a.products.as_slice())
            .unwrap_or_default();
        let mut targets: Vec<&mut Line> = lines
            .iter_mut()
            .filter(|l| {
                products.is_empty()
                    || l.product_id
                        .as_ref()
                        .is_some_and(|p| products.iter().any(|x| x == p))
            })
            .collect();
        apply_coupon_to(&mut targets, coupon, &s.currency, flags)?;
    }

    lines
        .iter()
        .try_fold(Ratio::ZERO, |sum, line| sum.checked_add(line.monthly))
}

/// Months in one billing period of `interval` × `count`: month 1, year 12, week 12/52,
/// day 12/365.
pub fn period_months(interval: Interval, count: i64) -> Option<Ratio> {
    let unit = match interval {
        Interval::Month => Ratio::from_int(1),
        Interval::Year => Ratio::from_int(12),
        Interval::Week => Ratio::new(12, 52)?,
        Interval::Day => Ratio::new(12, 365)?,
        Interval::Other => return None,
    };
    if count < 1 {
        return None;
    }
    unit.checked_mul(Ratio::from_int(count))
}

/// The item's undiscounted monthly value, or `Ok(None)` (with a flag) when it does not count.
/// The outer `Option` is `None` on overflow.
fn item_line(
    item: &SubscriptionItem,
    currency: &str,
    flags: &mut Vec<MrrFlag>,
) -> Option<Option<Line>> {
    let price = &item.price;
    let recurring = match (&price.price_type, &price.recurring) {
        (PriceType::Recurring, Some(recurring)) => recurring,
        _ => {
            flags.push(MrrFlag::OneTimeItemExcluded {
                item_id: item.id.clone(),
            });
            return Some(None);
        }
    };
    if recurring.usage_type != UsageType::Licensed {
        flags.push(MrrFlag::MeteredItemExcluded {
            item_id: item.id.clone(),
        });
        return Some(None);
    }
    let Some(months) = period_months(recurring.interval, recurring.interval_count) else {
        flags.push(MrrFlag::UnknownInterval {
            price_id: price.id.clone(),
        });
        return Some(None);
    };

    // The amounts in the subscription's currency: the price's own, or its currency_options.
    let (unit_amount, unit_amount_decimal, tiers, tax_behavior) =
        if price.currency.eq_ignore_ascii_case(currency) {
            (
                price.unit_amount,
                price.unit_amount_decimal.as_deref(),
                price.tiers.as_deref(),
                price.tax_behavior.as_deref(),
            )
        } else {
            match price
                .currency_options
                .as_ref()
                .and_then(|o| o.get(&currency.to_ascii_lowercase()))
            {
                Some(option) => (
                    option.unit_amount,
                    option.unit_amount_decimal.as_deref(),
                    option.tiers.as_deref(),
                    option
                        .tax_behavior
                        .as_deref()
                        .or(price.tax_behavior.as_deref()),
                ),
                None => {
                    flags.push(MrrFlag::NoAmountInCurrency {
                        price_id: price.id.clone(),
                    });
                    return Some(None);
                }
            }
        };
    if tax_behavior == Some("inclusive") {
        flags.push(MrrFlag::TaxInclusivePrice {
            price_id: price.id.clone(),
        });
    }

    let quantity = item.quantity.unwrap_or(1).max(0);
    let gross = if price.billing_scheme == Some(BillingScheme::Tiered) {
        let Some(tiers) = tiers.filter(|t| !t.is_empty()) else {
            flags.push(MrrFlag::TiersMissing {
                price_id: price.id.clone(),
            });
            return Some(None);
        };
        match tiered_amount(tiers, price.tiers_mode, quantity) {
            TieredAmount::Amount(amount) => amount,
            TieredAmount::Unusable => {
                flags.push(MrrFlag::TiersMissing {
                    price_id: price.id.clone(),
                });
                return Some(None);
            }
            TieredAmount::Overflow => return None,
        }
    } else {
        let unit = match (unit_amount, unit_amount_decimal) {
            (Some(amount), _) => Ratio::from_int(amount),
            (None, Some(decimal)) => match Ratio::parse_decimal(decimal) {
                Some(amount) => amount,
                None => {
                    flags.push(MrrFlag::NoAmountInCurrency {
                        price_id: price.id.clone(),
                    });
                    return Some(None);
                }
            },
            (None, None) => {
                flags.push(MrrFlag::NoAmountInCurrency {
                    price_id: price.id.clone(),
                });
                return Some(None);
            }
        };
        let units = match &price.transform_quantity {
            Some(t) if t.divide_by > 0 => {
                let q = Ratio::new(i128::from(quantity), i128::from(t.divide_by))?;
                match t.round {
                    RoundDirection::Up => q.ceil(),
                    RoundDirection::Down | RoundDirection::Other => q.floor(),
                }
            }
            _ => i128::from(quantity),
        };
        unit.checked_mul(Ratio::new(units, 1)?)?
    };
    let monthly = gross.checked_div(months)?.max(Ratio::ZERO);
    Some(Some(Line {
        monthly,
        period_months: months,
        product_id: price.product.as_ref().map(|p| p.id().to_owned()),
        period_start: item.current_period_start,
    }))
}

enum TieredAmount {
    Amount(Ratio),
    /// A tier without an amount, or tiers that do not cover the quantity.
    Unusable,
    Overflow,
}

fn tier_amounts(tier: &Tier) -> Option<(Ratio, Ratio)> {
    let unit = match (tier.unit_amount, &tier.unit_amount_decimal) {
        (Some(a), _) => Ratio::from_int(a),
        (None, Some(d)) => Ratio::parse_decimal(d)?,
        (None, None) => Ratio::ZERO,
    };
    let flat = match (tier.flat_amount, &tier.flat_amount_decimal) {
        (Some(a), _) => Ratio::from_int(a),
        (None, Some(d)) => Ratio::parse_decimal(d)?,
        (None, None) => Ratio::ZERO,
    };
    Some((unit, flat))
}

/// Volume: the whole quantity at the rate of the tier it falls in. Graduated: each tier's
/// slice at its own rate, plus the flat amount of every tier touched.
fn tiered_amount(tiers: &[Tier], mode: Option<TiersMode>, quantity: i64) -> TieredAmount {
    let result = match mode {
        Some(TiersMode::Graduated) => graduated(tiers, quantity),
        _ => volume(tiers, quantity),
    };
    match result {
        Ok(Some(amount)) => TieredAmount::Amount(amount),
        Ok(None) => TieredAmount::Unusable,
        Err(()) => TieredAmount::Overflow,
    }
}

fn volume(tiers: &[Tier], quantity: i64) -> Result<Option<Ratio>, ()> {
    let Some(tier) = tiers
        .iter()
        .find(|t| t.up_to.is_none_or(|up_to| quantity <= up_to))
    else {
        return Ok(None);
    };
    let Some((unit, flat)) = tier_amounts(tier) else {
        return Ok(None);
    };
    unit.checked_mul(Ratio::from_int(quantity))
        .and_then(|a| a.checked_add(flat))
        .map(Some)
        .ok_or(())
}

fn graduated(tiers: &[Tier], quantity: i64) -> Result<Option<Ratio>, ()> {
    let mut total = Ratio::ZERO;
    let mut below = 0i64;
    for tier in tiers {
        if quantity <= below {
            break;
        }
        let Some((unit, flat)) = tier_amounts(tier) else {
            return Ok(None);
        };
        let upper = tier.up_to.map_or(quantity, |u| u.min(quantity));
        let units = (upper - below).max(0);
        let slice = unit
            .checked_mul(Ratio::from_int(units))
            .and_then(|a| a.checked_add(flat))
            .ok_or(())?;
        total = total.checked_add(slice).ok_or(())?;
        below = upper;
        if tier.up_to.is_none() {
            break;
        }
    }
    if quantity > below {
        return Ok(None);
    }
    Ok(Some(total))
}

/// The coupon of an item-level discount entry, if it applies now under the policy.
fn applicable_coupon<'a>(
    discount: &'a Expandable<Discount>,
    now: Timestamp,
    policy: &MrrPolicy,
    period_start: Option<i64>,
    flags: &mut Vec<MrrFlag>,
) -> Option<&'a Coupon> {
    match discount {
        Expandable::Object(d) => discount_coupon(d, now, policy, period_start, flags),
        Expandable::Id(id) => {
            flags.push(MrrFlag::UnresolvedCoupon {
                discount_id: id.clone(),
            });
            None
        }
    }
}

/// The discount's coupon if it reduces MRR at `now` under the policy.
fn discount_coupon<'a>(
    discount: &'a Discount,
    now: Timestamp,
    policy: &MrrPolicy,
    period_start: Option<i64>,
    flags: &mut Vec<MrrFlag>,
) -> Option<&'a Coupon> {
    let Some(coupon) = discount.coupon() else {
        flags.push(MrrFlag::UnresolvedCoupon {
            discount_id: discount.id.clone(),
        });
        return None;
    };
    let now_s = now.as_secs();
    if discount.end.is_some_and(|end| end <= now_s) || discount.start.is_some_and(|s| s > now_s) {
        return None;
    }
    let durations = policy.discount_durations;
    let applies = match coupon.duration {
        CouponDuration::Forever => durations.forever,
        // Its window is [start, end), checked above.
        CouponDuration::Repeating => durations.repeating,
        // One invoice: the one of the period in which the discount started.
        CouponDuration::Once => {
            durations.once && matches!((discount.start, period_start), (Some(s), Some(p)) if s >= p)
        }
        CouponDuration::Other => false,
    };
    applies.then_some(coupon)
}

fn apply_coupon(
    lines: &mut [Line],
    coupon: &Coupon,
    currency: &str,
    flags: &mut Vec<MrrFlag>,
) -> Option<()> {
    let mut targets: Vec<&mut Line> = lines.iter_mut().collect();
    apply_coupon_to(&mut targets, coupon, currency, flags)
}

/// Percent off multiplies every target; amount off is per invoice, so it is spread over
/// the billing period's months and taken off the targets' total in proportion, never
/// below zero. `None` on overflow.
fn apply_coupon_to(
    targets: &mut [&mut Line],
    coupon: &Coupon,
    currency: &str,
    flags: &mut Vec<MrrFlag>,
) -> Option<()> {
    if targets.is_empty() {
        return Some(());
    }
    if let Some(percent) = coupon.percent_off {
        let Some(percent) = Ratio::from_f64_decimal(percent) else {
            return Some(());
        };
        let factor = Ratio::ONE
            .checked_sub(percent.checked_div(Ratio::from_int(100))?)?
            .max(Ratio::ZERO);
        for line in targets.iter_mut() {
            line.monthly = line.monthly.checked_mul(factor)?;
        }
        return Some(());
    }
    let Some(amount_off) = coupon_amount_in(coupon, currency) else {
        if coupon.amount_off.is_some() {
            flags.push(MrrFlag::CouponCurrencyMismatch {
                coupon_id: coupon.id.clone(),
            });
        }
        return Some(());
    };
    let total = targets
        .iter()
        .try_fold(Ratio::ZERO, |sum, l| sum.checked_add(l.monthly))?;
    if total <= Ratio::ZERO {
        return Some(());
    }
    let reduction = Ratio::from_int(amount_off).checked_div(targets[0].period_months)?;
    let remaining = total.checked_sub(reduction)?.max(Ratio::ZERO);
    let scale = remaining.checked_div(total)?;
    for line in targets.iter_mut() {
        line.monthly = line.monthly.checked_mul(scale)?;
    }
    Some(())
}

fn coupon_amount_in(coupon: &Coupon, currency: &str) -> Option<i64> {
    let own = coupon
        .currency
        .as_deref()
        .filter(|c| c.eq_ignore_ascii_case(currency))
        .and(coupon.amount_off);
    own.or_else(|| {
        coupon
            .currency_options
            .as_ref()?
            .get(&currency.to_ascii_lowercase())
            .map(|o| o.amount_off)
    })
}

/// What the customer page shows from Stripe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BillingSummary {
    pub mrr: Vec<Money>,
    /// The status of the customer's most alive subscription (`active` over `past_due` over
    /// `trialing` ...); `None` without subscriptions.
    pub subscription_status: Option<String>,
    /// Names of the live subscriptions' plans: product name, else price nickname, else price id.
    pub plan_names: Vec<String>,
    /// The soonest period end of a live subscription that will renew.
    pub next_renewal: Option<Timestamp>,
    /// The soonest requested cancellation ("churning on <date>").
    pub scheduled_cancel_at: Option<Timestamp>,
    pub mrr_detail: MrrSummary,
}

impl BillingSummary {
    /// The customer's billing fields, stamped with when they were computed.
    pub fn into_billing(self, computed_at: Timestamp) -> Billing {
        Billing {
            mrr: self.mrr,
            subscription_status: self.subscription_status,
            plan_names: self.plan_names,
            next_renewal: self.next_renewal,
            updated_at: Some(computed_at),
        }
    }
}

fn liveliness(status: SubscriptionStatus) -> u8 {
    match status {
        SubscriptionStatus::Active => 0,
        SubscriptionStatus::PastDue => 1,
        SubscriptionStatus::Trialing => 2,
        SubscriptionStatus::Unpaid => 3,
        SubscriptionStatus::Paused => 4,
        SubscriptionStatus::Incomplete => 5,
        SubscriptionStatus::Canceled => 6,
        SubscriptionStatus::IncompleteExpired => 7,
        SubscriptionStatus::Other => 8,
    }
}

fn is_live(status: SubscriptionStatus) -> bool {
    !matches!(
        status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    )
}

/// MRR plus the customer page's other billing fields.
pub fn billing_summary(
    subscriptions: &[Subscription],
    customer_discount: Option<&Discount>,
    now: Timestamp,
    policy: &MrrPolicy,
) -> BillingSummary {
    let detail = compute_customer_mrr(subscriptions, customer_discount, now, policy);
    let subscription_status = subscriptions
        .iter()
        .map(|s| s.status)
        .min_by_key(|s| liveliness(*s))
        .map(|s| s.as_str().to_owned());

    let mut plan_names: Vec<String> = Vec::new();
    for s in subscriptions.iter().filter(|s| is_live(s.status)) {
        for item in &s.items.data {
            let price = &item.price;
            let name = price
                .product
                .as_ref()
                .and_then(Expandable::object)
                .and_then(|p| p.name.clone())
                .or_else(|| price.nickname.clone())
                .unwrap_or_else(|| price.id.clone());
            if !plan_names.contains(&name) {
                plan_names.push(name);
            }
        }
    }

    let renewing = |s: &&Subscription| {
        matches!(
            s.status,
            SubscriptionStatus::Active | SubscriptionStatus::PastDue | SubscriptionStatus::Trialing
        ) && !cancel_requested(s)
    };
    let next_renewal = subscriptions
        .iter()
        .filter(renewing)
        .filter_map(current_period_end)
        .min()
        .map(Timestamp::from_secs);
    let scheduled_cancel_at = detail
        .subscriptions
        .iter()
        .filter_map(|s| s.scheduled_cancel_at)
        .min();

    BillingSummary {
        mrr: detail.money(),
        subscription_status,
        plan_names,
        next_renewal,
        scheduled_cancel_at,
        mrr_detail: detail,
    }
}
