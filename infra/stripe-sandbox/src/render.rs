//! Stored objects -> Stripe JSON, shaped like `fixtures3.json` and adjusted for the requested
//! API version (basil moved periods onto items and dropped `subscription.discount`; clover
//! replaced `discount.coupon` with `discount.source`).

use serde_json::{Value, json};

use crate::model::{
    Coupon, Customer, Discount, Price, Product, Subscription, SubscriptionItem, SubscriptionStatus,
    period_containing,
};
use crate::store::Account;

const BASIL: &str = "2025-03-31";
const CLOVER: &str = "2025-09-30";

/// How to render: the API version and "now" (for current billing periods).
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub version: &'a str,
    pub now: i64,
}

impl View<'_> {
    fn before(&self, date: &str) -> bool {
        self.version.get(..10).is_some_and(|d| d < date)
    }
}

pub fn customer(acct: &Account, c: &Customer, view: &View) -> Value {
    if c.deleted {
        return deleted(&c.id, "customer");
    }
    let discount = c
        .discount
        .as_deref()
        .and_then(|id| acct.discounts.get(id))
        .map_or(Value::Null, |d| discount(acct, d, view));
    json!({
        "id": c.id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": c.created,
        "currency": c.currency,
        "default_source": null,
        "delinquent": c.delinquent,
        "description": c.description,
        "discount": discount,
        "email": c.email,
        "invoice_prefix": invoice_prefix(&c.id),
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": acct.livemode,
        "metadata": c.metadata,
        "name": c.name,
        "next_invoice_sequence": 1,
        "phone": c.phone,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

/// `{id, object, deleted: true}`, as DELETE returns and a retrieve of a deleted object shows.
pub fn deleted(id: &str, object: &str) -> Value {
    json!({ "id": id, "object": object, "deleted": true })
}

fn invoice_prefix(id: &str) -> String {
    id.trim_start_matches("cus_")
        .chars()
        .take(7)
        .collect::<String>()
        .to_uppercase()
}

pub fn product(acct: &Account, p: &Product) -> Value {
    if p.deleted {
        return deleted(&p.id, "product");
    }
    json!({
        "id": p.id,
        "object": "product",
        "active": p.active,
        "created": p.created,
        "default_price": p.default_price,
        "description": p.description,
        "images": [],
        "livemode": acct.livemode,
        "marketing_features": [],
        "metadata": p.metadata,
        "name": p.name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": p.updated,
        "url": null
    })
}

/// A price; `tiers` only appear when expanded (Stripe includes them only on request).
pub fn price(acct: &Account, p: &Price, with_tiers: bool) -> Value {
    let recurring = p.recurring.as_ref().map_or(Value::Null, |r| {
        json!({
            "interval": r.interval.as_str(),
            "interval_count": r.interval_count,
            "meter": null,
            "usage_type": r.usage_type.as_str(),
            "trial_period_days": null
        })
    });
    let unit_amount_decimal = p
        .unit_amount_decimal
        .clone()
        .or_else(|| p.unit_amount.map(|a| a.to_string()));
    let mut v = json!({
        "id": p.id,
        "object": "price",
        "active": p.active,
        "billing_scheme": p.billing_scheme,
        "created": p.created,
        "currency": p.currency,
        "custom_unit_amount": null,
        "livemode": acct.livemode,
        "lookup_key": p.lookup_key,
        "metadata": p.metadata,
        "nickname": p.nickname,
        "product": p.product,
        "recurring": recurring,
        "tax_behavior": p.tax_behavior,
        "tiers_mode": p.tiers_mode,
        "transform_quantity": p.transform_quantity.as_ref().map(|t| json!({"divide_by": t.divide_by, "round": t.round})),
        "type": if p.recurring.is_some() { "recurring" } else { "one_time" },
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": unit_amount_decimal
    });
    if with_tiers && p.billing_scheme == "tiered" {
        v["tiers"] = tiers(p);
    }
    v
}

pub fn tiers(p: &Price) -> Value {
    Value::Array(
        p.tiers
            .iter()
            .map(|t| {
                json!({
                    "flat_amount": t.flat_amount,
                    "flat_amount_decimal": t.flat_amount.map(|a| a.to_string()),
                    "unit_amount": t.unit_amount,
                    "unit_amount_decimal": t.unit_amount.map(|a| a.to_string()),
                    "up_to": t.up_to
                })
            })
            .collect(),
    )
}

/// The legacy `plan` mirror of a recurring price on subscription items.
fn plan(acct: &Account, p: &Price) -> Value {
    let Some(r) = &p.recurring else {
        return Value::Null;
    };
    json!({
        "id": p.id,
        "object": "plan",
        "active": p.active,
        "amount": p.unit_amount,
        "amount_decimal": p.unit_amount_decimal.clone().or_else(|| p.unit_amount.map(|a| a.to_string())),
        "billing_scheme": p.billing_scheme,
        "created": p.created,
        "currency": p.currency,
        "interval": r.interval.as_str(),
        "interval_count": r.interval_count,
        "livemode": acct.livemode,
        "metadata": p.metadata,
        "meter": null,
        "nickname": p.nickname,
        "product": p.product,
        "tiers_mode": p.tiers_mode,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": r.usage_type.as_str()
    })
}

pub fn coupon(acct: &Account, c: &Coupon) -> Value {
    if c.deleted {
        return deleted(&c.id, "coupon");
    }
    let applies_to = c
        .applies_to_products
        .as_ref()
        .map(|products| json!({ "products": products }));
    let mut v = json!({
        "id": c.id,
        "object": "coupon",
        "amount_off": c.amount_off,
        "created": c.created,
        "currency": c.currency,
        "duration": c.duration.as_str(),
        "duration_in_months": c.duration_in_months,
        "livemode": acct.livemode,
        "max_redemptions": null,
        "metadata": c.metadata,
        "name": c.name,
        "percent_off": c.percent_off,
        "redeem_by": null,
        "times_redeemed": c.times_redeemed,
        "valid": true
    });
    if let Some(applies_to) = applies_to {
        v["applies_to"] = applies_to;
    }
    v
}

/// A discount: `source: {type: "coupon", coupon: "<id>"}` from clover on, or the
/// auto-expanded `coupon` object before it.
pub fn discount(acct: &Account, d: &Discount, view: &View) -> Value {
    let mut v = json!({
        "id": d.id,
        "object": "discount",
        "checkout_session": null,
        "customer": d.customer,
        "end": d.end,
        "invoice": null,
        "invoice_item": null,
        "promotion_code": null,
        "start": d.start,
        "subscription": d.subscription,
        "subscription_item": d.subscription_item
    });
    if view.before(CLOVER) {
        v["coupon"] = acct
            .coupons
            .get(&d.coupon)
            .map_or(Value::Null, |c| coupon(acct, c));
    } else {
        v["source"] = json!({ "type": "coupon", "coupon": d.coupon });
    }
    v
}

/// The instant a subscription's period is computed at: its end for ended subscriptions.
fn period_instant(s: &Subscription, now: i64) -> i64 {
    s.ended_at.map_or(now, |ended| ended.min(now))
}

fn item_period(
    acct: &Account,
    s: &Subscription,
    item: &SubscriptionItem,
    view: &View,
) -> (i64, i64) {
    if s.status == SubscriptionStatus::Trialing
        && let (Some(start), Some(end)) = (s.trial_start, s.trial_end)
    {
        return (start, end);
    }
    match acct
        .prices
        .get(&item.price)
        .and_then(|p| p.recurring.as_ref())
    {
        Some(recurring) => period_containing(
            s.billing_cycle_anchor,
            recurring,
            period_instant(s, view.now),
        ),
        None => (s.billing_cycle_anchor, s.billing_cycle_anchor),
    }
}

pub fn subscription_item(
    acct: &Account,
    s: &Subscription,
    item: &SubscriptionItem,
    view: &View,
) -> Value {
    let price_obj = acct.prices.get(&item.price);
    let (start, end) = item_period(acct, s, item, view);
    json!({
        "id": item.id,
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": item.created,
        "current_period_end": end,
        "current_period_start": start,
        "discounts": item.discounts,
        "metadata": item.metadata,
        "plan": price_obj.map_or(Value::Null, |p| plan(acct, p)),
        "price": price_obj.map_or(Value::Null, |p| price(acct, p, false)),
        "quantity": item.quantity,
        "subscription": s.id,
        "tax_rates": []
    })
}

pub fn subscription(acct: &Account, s: &Subscription, view: &View) -> Value {
    let items: Vec<Value> = s
        .items
        .iter()
        .map(|item| subscription_item(acct, s, item, view))
        .collect();
    let mut v = json!({
        "id": s.id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": s.billing_cycle_anchor,
        "billing_cycle_anchor_config": null,
        "billing_mode": { "type": "classic" },
        "billing_thresholds": null,
        "cancel_at": s.cancel_at,
        "cancel_at_period_end": s.cancel_at_period_end,
        "canceled_at": s.canceled_at,
        "cancellation_details": { "comment": null, "feedback": null, "reason": if s.canceled_at.is_some() { json!("cancellation_requested") } else { Value::Null } },
        "collection_method": s.collection_method,
        "created": s.created,
        "currency": s.currency,
        "customer": s.customer,
        "days_until_due": if s.collection_method == "send_invoice" { json!(30) } else { Value::Null },
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": s.discounts,
        "ended_at": s.ended_at,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": {
            "object": "list",
            "data": items,
            "has_more": false,
            "total_count": s.items.len(),
            "url": format!("/v1/subscription_items?subscription={}", s.id)
        },
        "latest_invoice": null,
        "livemode": acct.livemode,
        "metadata": s.metadata,
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": s.pause_collection.as_ref().map(|b| json!({ "behavior": b, "resumes_at": null })),
        "payment_settings": { "payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off" },
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": s.start_date,
        "status": s.status.as_str(),
        "test_clock": null,
        "transfer_data": null,
        "trial_end": s.trial_end,
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "trial_start": s.trial_start
    });
    if view.before(BASIL) {
        let (start, end) = s
            .items
            .first()
            .map_or((s.billing_cycle_anchor, s.billing_cycle_anchor), |item| {
                item_period(acct, s, item, view)
            });
        v["current_period_start"] = json!(start);
        v["current_period_end"] = json!(end);
        v["discount"] = s
            .discounts
            .first()
            .and_then(|id| acct.discounts.get(id))
            .map_or(Value::Null, |d| discount(acct, d, view));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_date_part() {
        let old = View {
            version: "2024-06-20",
            now: 0,
        };
        let dahlia = View {
            version: "2026-07-29.dahlia",
            now: 0,
        };
        assert!(old.before(BASIL) && old.before(CLOVER));
        assert!(!dahlia.before(BASIL) && !dahlia.before(CLOVER));
    }
}
