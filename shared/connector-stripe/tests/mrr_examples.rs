//! MRR: every worked example of contract `stripe.md` §3.3 (named after it), the status and
//! discount rules around them, and properties over wide inputs. Subscriptions are built as
//! Stripe JSON so the wire types are exercised too.

#![allow(clippy::expect_used)] // a test crate: helpers panic on bad fixtures by design

use connector::{Currency, Money, Timestamp};
use connector_stripe::mrr::{
    DiscountDurations, Exclusion, MrrFlag, MrrPolicy, billing_summary, compute_customer_mrr,
    compute_mrr, unrounded_subscription_mrr,
};
use connector_stripe::ratio::Ratio;
use connector_stripe::types::{Discount, Subscription};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_750_000_000;
const PERIOD_START: i64 = NOW - 10 * 86_400;
const PERIOD_END: i64 = NOW + 20 * 86_400;

fn now() -> Timestamp {
    Timestamp::from_secs(NOW)
}

fn usd() -> Currency {
    Currency::parse("usd").expect("valid")
}

fn price(unit_amount: i64, interval: &str, interval_count: i64) -> Value {
    json!({
        "id": format!("price_{unit_amount}_{interval}_{interval_count}"),
        "object": "price",
        "currency": "usd",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.to_string(),
        "billing_scheme": "per_unit",
        "type": "recurring",
        "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": "licensed"},
        "tax_behavior": "exclusive",
        "product": "prod_basic",
        "nickname": null
    })
}

fn item(price: Value, quantity: i64) -> Value {
    json!({
        "id": format!("si_{}", quantity),
        "object": "subscription_item",
        "price": price,
        "quantity": quantity,
        "discounts": [],
        "current_period_start": PERIOD_START,
        "current_period_end": PERIOD_END
    })
}

fn subscription_json(status: &str, currency: &str, items: Vec<Value>) -> Value {
    json!({
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "currency": currency,
        "items": {"object": "list", "data": items, "has_more": false, "url": "/v1/subscription_items?subscription=sub_1"},
        "discounts": [],
        "cancel_at_period_end": false,
        "cancel_at": null,
        "pause_collection": null,
        "livemode": false,
        "created": NOW - 100 * 86_400
    })
}

fn parse(value: Value) -> Subscription {
    serde_json::from_value(value).expect("subscription JSON parses")
}

fn active(items: Vec<Value>) -> Subscription {
    parse(subscription_json("active", "usd", items))
}

fn coupon(duration: &str, percent_off: Option<f64>, amount_off: Option<i64>) -> Value {
    json!({
        "id": format!("coupon_{duration}"),
        "object": "coupon",
        "percent_off": percent_off,
        "amount_off": amount_off,
        "currency": amount_off.map(|_| "usd"),
        "duration": duration,
        "duration_in_months": if duration == "repeating" { json!(3) } else { Value::Null },
        "valid": true
    })
}

fn discount(coupon: Value, start: i64, end: Option<i64>) -> Value {
    json!({
        "id": "di_1",
        "object": "discount",
        "source": {"type": "coupon", "coupon": coupon},
        "start": start,
        "end": end
    })
}

fn with_discounts(mut sub: Value, discounts: Vec<Value>) -> Subscription {
    sub["discounts"] = Value::Array(discounts);
    parse(sub)
}

fn mrr(subs: &[Subscription]) -> i64 {
    compute_mrr(subs, now(), &MrrPolicy::default()).for_currency(usd())
}

fn mrr_with(subs: &[Subscription], policy: MrrPolicy) -> i64 {
    compute_mrr(subs, now(), &policy).for_currency(usd())
}

fn policy_with_durations(forever: bool, repeating: bool, once: bool) -> MrrPolicy {
    MrrPolicy {
        discount_durations: DiscountDurations {
            forever,
            repeating,
            once,
        },
        ..MrrPolicy::default()
    }
}

// ---- The contract's worked examples, one test each ----

#[test]
fn example_monthly_times_quantity() {
    assert_eq!(mrr(&[active(vec![item(price(2000, "month", 1), 3)])]), 6000);
}

#[test]
fn example_annual() {
    assert_eq!(
        mrr(&[active(vec![item(price(120_000, "year", 1), 1)])]),
        10_000
    );
}

#[test]
fn example_quarterly() {
    assert_eq!(
        mrr(&[active(vec![item(price(29_900, "month", 3), 1)])]),
        9967
    );
}

#[test]
fn example_weekly() {
    assert_eq!(mrr(&[active(vec![item(price(1000, "week", 1), 1)])]), 4333);
}

#[test]
fn example_daily() {
    assert_eq!(mrr(&[active(vec![item(price(100, "day", 1), 1)])]), 3042);
}

#[test]
fn example_annual_two_seats() {
    assert_eq!(mrr(&[active(vec![item(price(4999, "year", 1), 2)])]), 833);
}

#[test]
fn example_percent_forever() {
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![discount(
            coupon("forever", Some(25.5), None),
            PERIOD_START,
            None,
        )],
    );
    assert_eq!(mrr(&[sub]), 7450);
}

#[test]
fn example_percent_repeating() {
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![discount(
            coupon("repeating", Some(25.5), None),
            PERIOD_START,
            Some(NOW + 60 * 86_400),
        )],
    );
    let subs = [sub];
    assert_eq!(
        mrr(&subs),
        10_000,
        "Stripe's default ignores repeating coupons"
    );
    assert_eq!(
        mrr_with(&subs, policy_with_durations(true, true, false)),
        7450,
        "subtracted while now < end when the policy includes repeating"
    );
}

#[test]
fn example_amount_off_forever_on_annual() {
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(120_000, "year", 1), 1)]),
        vec![discount(
            coupon("forever", None, Some(500)),
            PERIOD_START,
            None,
        )],
    );
    assert_eq!(mrr(&[sub]), 9958);
}

#[test]
fn example_trialing() {
    let sub = parse(subscription_json(
        "trialing",
        "usd",
        vec![item(price(10_000, "month", 1), 4)],
    ));
    let summary = compute_mrr(&[sub], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 0);
    assert_eq!(
        summary.subscriptions[0].exclusion,
        Some(Exclusion::Status { status: "trialing" })
    );
}

#[test]
fn example_past_due() {
    let sub = parse(subscription_json(
        "past_due",
        "usd",
        vec![item(price(10_000, "month", 1), 1)],
    ));
    assert_eq!(mrr(&[sub]), 10_000);
}

#[test]
fn example_cancel_at_period_end_active() {
    let mut json = subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]);
    json["cancel_at_period_end"] = json!(true);
    let subs = [parse(json)];
    assert_eq!(mrr(&subs), 0, "Stripe churns at the cancel request");
    let churn_at_period_end = MrrPolicy {
        churn_on_cancel_request: false,
        ..MrrPolicy::default()
    };
    assert_eq!(mrr_with(&subs, churn_at_period_end), 10_000);
    let summary = compute_mrr(&subs, now(), &MrrPolicy::default());
    assert_eq!(
        summary.subscriptions[0].scheduled_cancel_at,
        Some(Timestamp::from_secs(PERIOD_END))
    );
    assert_eq!(
        summary.subscriptions[0].exclusion,
        Some(Exclusion::CancelRequested)
    );
}

#[test]
fn example_metered_item_plus_licensed_item() {
    let mut metered = price(3, "month", 1);
    metered["recurring"]["usage_type"] = json!("metered");
    let mut metered_item = item(metered, 1);
    metered_item["quantity"] = Value::Null;
    let sub = active(vec![metered_item, item(price(5000, "month", 1), 1)]);
    let summary = compute_mrr(&[sub], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 5000);
    assert!(
        summary.subscriptions[0]
            .flags
            .iter()
            .any(|f| matches!(f, MrrFlag::MeteredItemExcluded { .. }))
    );
}

#[test]
fn example_jpy_annual() {
    let mut yen = price(12_000, "year", 1);
    yen["currency"] = json!("jpy");
    let sub = parse(subscription_json("active", "jpy", vec![item(yen, 1)]));
    let summary = compute_mrr(&[sub], now(), &MrrPolicy::default());
    assert_eq!(
        summary.money(),
        vec![Money::new(1000, Currency::parse("JPY").expect("valid"))]
    );
}

// ---- Statuses ----

#[test]
fn only_active_and_past_due_subscriptions_count() {
    for status in [
        "canceled",
        "incomplete",
        "incomplete_expired",
        "paused",
        "unpaid",
        "trialing",
    ] {
        let sub = parse(subscription_json(
            status,
            "usd",
            vec![item(price(10_000, "month", 1), 1)],
        ));
        assert_eq!(mrr(&[sub]), 0, "{status} must not count");
    }
    for status in ["active", "past_due"] {
        let sub = parse(subscription_json(
            status,
            "usd",
            vec![item(price(10_000, "month", 1), 1)],
        ));
        assert_eq!(mrr(&[sub]), 10_000, "{status} must count");
    }
}

#[test]
fn a_scheduled_cancel_at_churns_under_the_stripe_default() {
    let mut json = subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]);
    json["cancel_at"] = json!(NOW + 5 * 86_400);
    let summary = compute_mrr(&[parse(json)], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 0);
    assert_eq!(
        summary.subscriptions[0].scheduled_cancel_at,
        Some(Timestamp::from_secs(NOW + 5 * 86_400))
    );
}

#[test]
fn paused_collection_still_counts_but_is_flagged() {
    let mut json = subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]);
    json["pause_collection"] = json!({"behavior": "void", "resumes_at": null});
    let summary = compute_mrr(&[parse(json)], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 10_000);
    assert!(
        summary.subscriptions[0]
            .flags
            .contains(&MrrFlag::CollectionPaused)
    );
}

// ---- Items and prices ----

#[test]
fn one_time_prices_are_excluded() {
    let mut one_time = price(50_000, "month", 1);
    one_time["type"] = json!("one_time");
    one_time["recurring"] = Value::Null;
    assert_eq!(
        mrr(&[active(vec![
            item(one_time, 1),
            item(price(1000, "month", 1), 1)
        ])]),
        1000
    );
}

#[test]
fn a_subscription_is_rounded_once_not_per_item() {
    // Two items of 1000 per quarter: 333.33 each; rounding once gives 667, per item 666.
    let sub = active(vec![
        item(price(1000, "month", 3), 1),
        item(price(1000, "month", 3), 1),
    ]);
    assert_eq!(mrr(&[sub]), 667);
}

#[test]
fn each_subscription_is_rounded_on_its_own() {
    // 333.33 per subscription rounds to 333 each: the customer total is 666.
    let a = active(vec![item(price(1000, "month", 3), 1)]);
    let mut b = a.clone();
    b.id = "sub_2".into();
    assert_eq!(mrr(&[a, b]), 666);
}

#[test]
fn currencies_are_never_added_together() {
    let mut eur = price(5000, "month", 1);
    eur["currency"] = json!("eur");
    let subs = [
        active(vec![item(price(1000, "month", 1), 1)]),
        parse(subscription_json("active", "eur", vec![item(eur, 1)])),
    ];
    let summary = compute_mrr(&subs, now(), &MrrPolicy::default());
    assert_eq!(
        summary.money(),
        vec![
            Money::new(5000, Currency::parse("EUR").expect("valid")),
            Money::new(1000, usd())
        ]
    );
}

#[test]
fn transform_quantity_rounds_the_units_as_the_price_says() {
    let mut packs = price(1000, "month", 1);
    packs["transform_quantity"] = json!({"divide_by": 10, "round": "up"});
    assert_eq!(mrr(&[active(vec![item(packs.clone(), 11)])]), 2000);
    packs["transform_quantity"]["round"] = json!("down");
    assert_eq!(mrr(&[active(vec![item(packs, 11)])]), 1000);
}

#[test]
fn a_decimal_unit_amount_is_used_when_unit_amount_is_null() {
    let mut fractional = price(0, "month", 1);
    fractional["unit_amount"] = Value::Null;
    fractional["unit_amount_decimal"] = json!("0.5");
    assert_eq!(mrr(&[active(vec![item(fractional.clone(), 3)])]), 2);
    assert_eq!(mrr(&[active(vec![item(fractional, 1001)])]), 501);
}

fn tiered(mode: &str) -> Value {
    let mut p = price(0, "month", 1);
    p["billing_scheme"] = json!("tiered");
    p["unit_amount"] = Value::Null;
    p["unit_amount_decimal"] = Value::Null;
    p["tiers_mode"] = json!(mode);
    p["tiers"] = json!([
        {"up_to": 10, "unit_amount": 1000, "flat_amount": 500},
        {"up_to": null, "unit_amount": 800, "flat_amount": 0}
    ]);
    p
}

#[test]
fn volume_tiers_price_every_unit_at_the_tier_the_quantity_falls_in() {
    assert_eq!(
        mrr(&[active(vec![item(tiered("volume"), 5)])]),
        5 * 1000 + 500
    );
    assert_eq!(mrr(&[active(vec![item(tiered("volume"), 12)])]), 12 * 800);
}

#[test]
fn graduated_tiers_price_each_slice_at_its_own_rate() {
    assert_eq!(
        mrr(&[active(vec![item(tiered("graduated"), 12)])]),
        10 * 1000 + 500 + 2 * 800
    );
}

#[test]
fn a_tiered_price_without_its_tiers_is_left_out_and_flagged() {
    let mut p = tiered("volume");
    p["tiers"] = Value::Null;
    let summary = compute_mrr(&[active(vec![item(p, 5)])], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 0);
    assert!(
        summary.subscriptions[0]
            .flags
            .iter()
            .any(|f| matches!(f, MrrFlag::TiersMissing { .. }))
    );
}

#[test]
fn a_price_in_another_currency_uses_its_currency_options() {
    let mut p = price(1000, "month", 1);
    p["currency_options"] = json!({"eur": {"unit_amount": 900, "unit_amount_decimal": "900"}});
    let sub = parse(subscription_json("active", "eur", vec![item(p.clone(), 1)]));
    let eur = Currency::parse("eur").expect("valid");
    assert_eq!(
        compute_mrr(&[sub], now(), &MrrPolicy::default()).for_currency(eur),
        900
    );
    let gbp = parse(subscription_json("active", "gbp", vec![item(p, 1)]));
    let summary = compute_mrr(&[gbp], now(), &MrrPolicy::default());
    assert!(
        summary.subscriptions[0]
            .flags
            .iter()
            .any(|f| matches!(f, MrrFlag::NoAmountInCurrency { .. }))
    );
}

#[test]
fn tax_inclusive_prices_are_flagged() {
    let mut p = price(1000, "month", 1);
    p["tax_behavior"] = json!("inclusive");
    let summary = compute_mrr(&[active(vec![item(p, 1)])], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 1000);
    assert!(
        summary.subscriptions[0]
            .flags
            .iter()
            .any(|f| matches!(f, MrrFlag::TaxInclusivePrice { .. }))
    );
}

// ---- Discounts ----

#[test]
fn a_once_coupon_counts_only_when_the_policy_says_and_only_in_its_period() {
    let in_this_period = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![discount(
            coupon("once", Some(50.0), None),
            PERIOD_START + 60,
            None,
        )],
    );
    let once = policy_with_durations(true, false, true);
    assert_eq!(mrr(std::slice::from_ref(&in_this_period)), 10_000);
    assert_eq!(mrr_with(std::slice::from_ref(&in_this_period), once), 5000);
    let from_last_period = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![discount(
            coupon("once", Some(50.0), None),
            PERIOD_START - 86_400,
            None,
        )],
    );
    assert_eq!(mrr_with(&[from_last_period], once), 10_000);
}

#[test]
fn a_repeating_coupon_past_its_end_no_longer_counts() {
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![discount(
            coupon("repeating", Some(25.5), None),
            NOW - 100 * 86_400,
            Some(NOW - 1),
        )],
    );
    assert_eq!(
        mrr_with(&[sub], policy_with_durations(true, true, true)),
        10_000
    );
}

#[test]
fn stacked_discounts_apply_in_order() {
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![
            discount(coupon("forever", Some(50.0), None), PERIOD_START, None),
            discount(coupon("forever", None, Some(1000)), PERIOD_START, None),
        ],
    );
    assert_eq!(mrr(&[sub]), 4000);
}

#[test]
fn an_amount_off_larger_than_the_price_clamps_at_zero() {
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(1000, "month", 1), 1)]),
        vec![discount(
            coupon("forever", None, Some(5000)),
            PERIOD_START,
            None,
        )],
    );
    assert_eq!(mrr(&[sub]), 0);
}

#[test]
fn an_amount_off_in_another_currency_is_not_subtracted_and_is_flagged() {
    let mut eur_coupon = coupon("forever", None, Some(500));
    eur_coupon["currency"] = json!("eur");
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(1000, "month", 1), 1)]),
        vec![discount(eur_coupon.clone(), PERIOD_START, None)],
    );
    let summary = compute_mrr(&[sub], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 1000);
    assert!(
        summary.subscriptions[0]
            .flags
            .iter()
            .any(|f| matches!(f, MrrFlag::CouponCurrencyMismatch { .. }))
    );
    eur_coupon["currency_options"] = json!({"usd": {"amount_off": 300}});
    let sub = with_discounts(
        subscription_json("active", "usd", vec![item(price(1000, "month", 1), 1)]),
        vec![discount(eur_coupon, PERIOD_START, None)],
    );
    assert_eq!(mrr(&[sub]), 700);
}

#[test]
fn a_coupon_restricted_to_products_only_reduces_those_items() {
    let mut addon = price(2000, "month", 1);
    addon["product"] = json!("prod_addon");
    let mut restricted = coupon("forever", Some(50.0), None);
    restricted["applies_to"] = json!({"products": ["prod_addon"]});
    let sub = with_discounts(
        subscription_json(
            "active",
            "usd",
            vec![item(price(10_000, "month", 1), 1), item(addon, 1)],
        ),
        vec![discount(restricted, PERIOD_START, None)],
    );
    assert_eq!(mrr(&[sub]), 11_000);
}

#[test]
fn an_item_level_discount_reduces_only_its_item() {
    let mut discounted = item(price(2000, "month", 1), 1);
    discounted["discounts"] = json!([discount(
        coupon("forever", Some(25.0), None),
        PERIOD_START,
        None
    )]);
    let sub = active(vec![item(price(10_000, "month", 1), 1), discounted]);
    assert_eq!(mrr(&[sub]), 11_500);
}

#[test]
fn the_customer_discount_applies_only_to_subscriptions_without_their_own() {
    let customer_discount: Discount = serde_json::from_value(discount(
        coupon("forever", Some(10.0), None),
        PERIOD_START,
        None,
    ))
    .expect("discount parses");
    let plain = active(vec![item(price(10_000, "month", 1), 1)]);
    let mut own = with_discounts(
        subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]),
        vec![discount(
            coupon("forever", Some(50.0), None),
            PERIOD_START,
            None,
        )],
    );
    own.id = "sub_2".into();
    let summary = compute_customer_mrr(
        &[plain, own],
        Some(&customer_discount),
        now(),
        &MrrPolicy::default(),
    );
    assert_eq!(summary.for_currency(usd()), 9000 + 5000);
}

#[test]
fn a_discount_whose_coupon_is_only_an_id_is_flagged_not_guessed() {
    let mut json = subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]);
    json["discounts"] = json!([
        "di_unexpanded",
        {"id": "di_2", "source": {"type": "coupon", "coupon": "SAVE50"}, "start": PERIOD_START, "end": null}
    ]);
    let summary = compute_mrr(&[parse(json)], now(), &MrrPolicy::default());
    assert_eq!(summary.for_currency(usd()), 10_000);
    let unresolved = summary.subscriptions[0]
        .flags
        .iter()
        .filter(|f| matches!(f, MrrFlag::UnresolvedCoupon { .. }))
        .count();
    assert_eq!(unresolved, 2);
}

#[test]
fn a_pre_clover_discount_with_its_coupon_inline_still_counts() {
    let mut json = subscription_json("active", "usd", vec![item(price(10_000, "month", 1), 1)]);
    json["discounts"] = json!([{"id": "di_1", "coupon": coupon("forever", Some(20.0), None), "start": PERIOD_START, "end": null}]);
    assert_eq!(mrr(&[parse(json)]), 8000);
}

#[test]
fn a_nonsense_currency_excludes_the_subscription_instead_of_failing() {
    let sub = parse(subscription_json(
        "active",
        "currency",
        vec![item(price(1000, "month", 1), 1)],
    ));
    let summary = compute_mrr(&[sub], now(), &MrrPolicy::default());
    assert!(summary.by_currency.is_empty());
    assert!(matches!(
        summary.subscriptions[0].exclusion,
        Some(Exclusion::InvalidCurrency { .. })
    ));
}

// ---- The customer page ----

#[test]
fn the_billing_summary_shows_the_liveliest_status_plans_and_next_renewal() {
    let mut named = price(10_000, "month", 1);
    named["product"] = json!({"id": "prod_pro", "object": "product", "name": "Pro"});
    let mut nick = price(500, "month", 1);
    nick["nickname"] = json!("Extra seats");
    let live = active(vec![item(named, 1), item(nick, 2)]);
    let mut old = parse(subscription_json(
        "canceled",
        "usd",
        vec![item(price(9, "month", 1), 1)],
    ));
    old.id = "sub_old".into();
    let summary = billing_summary(&[old, live], None, now(), &MrrPolicy::default());
    assert_eq!(summary.subscription_status.as_deref(), Some("active"));
    assert_eq!(summary.plan_names, vec!["Pro", "Extra seats"]);
    assert_eq!(summary.next_renewal, Some(Timestamp::from_secs(PERIOD_END)));
    let billing = summary.into_billing(now());
    assert_eq!(billing.mrr, vec![Money::new(11_000, usd())]);
    assert_eq!(billing.updated_at, Some(now()));
}

#[test]
fn a_customer_without_subscriptions_has_an_empty_billing_summary() {
    let summary = billing_summary(&[], None, now(), &MrrPolicy::default());
    assert!(summary.mrr.is_empty());
    assert_eq!(summary.subscription_status, None);
    assert_eq!(summary.next_renewal, None);
}

// ---- Properties ----

fn arb_interval() -> impl Strategy<Value = (&'static str, i64)> {
    prop_oneof![
        (1i64..=36).prop_map(|c| ("month", c)),
        (1i64..=3).prop_map(|c| ("year", c)),
        (1i64..=156).prop_map(|c| ("week", c)),
        (1i64..=1095).prop_map(|c| ("day", c)),
    ]
}

fn arb_coupon() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (
            0u32..=10_000,
            prop_oneof![Just("forever"), Just("once"), Just("repeating")]
        )
            .prop_map(|(bp, d)| Some(coupon(d, Some(f64::from(bp) / 100.0), None))),
        (
            0i64..=1_000_000,
            prop_oneof![Just("forever"), Just("once"), Just("repeating")]
        )
            .prop_map(|(a, d)| Some(coupon(d, None, Some(a)))),
    ]
}

fn arb_subscription() -> impl Strategy<Value = (Value, i64)> {
    (
        0i64..=10_000_000,
        arb_interval(),
        1i64..=1000,
        arb_coupon(),
        prop_oneof![Just("active"), Just("past_due"), Just("trialing")],
    )
        .prop_map(|(amount, (interval, count), qty, coupon, status)| {
            let mut sub = subscription_json(
                status,
                "usd",
                vec![item(price(amount, interval, count), qty)],
            );
            if let Some(c) = coupon {
                sub["discounts"] = json!([discount(c, PERIOD_START, Some(NOW + 86_400))]);
            }
            (sub, qty)
        })
}

fn all_durations() -> MrrPolicy {
    policy_with_durations(true, true, true)
}

proptest! {
    #[test]
    fn mrr_is_never_negative((sub, _) in arb_subscription(), include_all in any::<bool>()) {
        let policy = if include_all { all_durations() } else { MrrPolicy::default() };
        let summary = compute_mrr(&[parse(sub)], now(), &policy);
        prop_assert!(summary.subscriptions.iter().all(|s| s.mrr_minor >= 0));
        prop_assert!(summary.by_currency.values().all(|v| *v >= 0));
    }

    #[test]
    fn doubling_the_quantity_doubles_mrr_before_rounding(
        amount in 0i64..=10_000_000, (interval, count) in arb_interval(), qty in 1i64..=1000,
        basis_points in 0u32..=10_000,
    ) {
        let one = with_discounts(
            subscription_json("active", "usd", vec![item(price(amount, interval, count), qty)]),
            vec![discount(coupon("forever", Some(f64::from(basis_points) / 100.0), None), PERIOD_START, None)],
        );
        let two = with_discounts(
            subscription_json("active", "usd", vec![item(price(amount, interval, count), 2 * qty)]),
            vec![discount(coupon("forever", Some(f64::from(basis_points) / 100.0), None), PERIOD_START, None)],
        );
        let policy = MrrPolicy::default();
        let m1 = unrounded_subscription_mrr(&one, None, now(), &policy).expect("counts");
        let m2 = unrounded_subscription_mrr(&two, None, now(), &policy).expect("counts");
        prop_assert_eq!(m1.checked_mul(Ratio::from_int(2)), Some(m2));
    }

    #[test]
    fn a_yearly_price_of_twelve_months_equals_the_monthly_price_exactly(amount in 0i64..=100_000_000) {
        let monthly = active(vec![item(price(amount, "month", 1), 1)]);
        let yearly = active(vec![item(price(12 * amount, "year", 1), 1)]);
        prop_assert_eq!(mrr(&[monthly]), mrr(&[yearly]));
    }

    #[test]
    fn the_customer_total_is_the_sum_of_its_rounded_subscriptions(
        subs in proptest::collection::vec(arb_subscription(), 0..6)
    ) {
        let subs: Vec<Subscription> = subs.into_iter().map(|(s, _)| parse(s)).collect();
        let summary = compute_mrr(&subs, now(), &all_durations());
        let sum: i64 = summary.subscriptions.iter().map(|s| s.mrr_minor).sum();
        prop_assert_eq!(summary.for_currency(usd()), sum);
    }

    #[test]
    fn any_discount_never_raises_mrr((sub, _) in arb_subscription()) {
        let discounted = parse(sub.clone());
        let mut plain = sub;
        plain["discounts"] = json!([]);
        let plain = parse(plain);
        prop_assert!(mrr_with(&[discounted], all_durations()) <= mrr_with(&[plain], all_durations()));
    }
}
