//! One Stripe account's data (per mode) and the mutations on it. Every mutation records the
//! events Stripe would send (`customer.created`, `customer.subscription.updated`, ...), with
//! `data.object` frozen at the account's API version.

use std::collections::HashMap;

use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::model::{
    Coupon, CouponDuration, Customer, CustomerInput, Discount, EventRecord, Interval, Listed,
    Metadata, Price, Product, Recurring, Subscription, SubscriptionInput, SubscriptionItem,
    SubscriptionStatus, SubscriptionUpdate, Tier, TransformQuantity, add_intervals,
};
use crate::render::{self, View};

/// Objects of one kind, in insertion order, with an id index.
#[derive(Debug, Clone)]
pub struct Table<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: Listed> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).and_then(|&i| self.items.get(i))
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.index.get(id).and_then(|&i| self.items.get_mut(i))
    }

    pub fn insert(&mut self, item: T) {
        self.index.insert(item.id().to_owned(), self.items.len());
        self.items.push(item);
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops every object matching `pred` (used for the 30-day event horizon).
    pub fn retain(&mut self, pred: impl Fn(&T) -> bool) {
        self.items.retain(|t| pred(t));
        self.index = self
            .items
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id().to_owned(), i))
            .collect();
    }
}

/// Deterministic Stripe-looking ids (`cus_` + 14 alphanumerics, ...).
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: StdRng,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn next(&mut self, prefix: &str, len: usize) -> String {
        let body: String = (0..len)
            .map(|_| char::from(self.rng.sample(Alphanumeric)))
            .collect();
        format!("{prefix}{body}")
    }
}

/// An event waiting for webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub event_id: String,
    pub kind: String,
    pub account: String,
    pub livemode: bool,
    /// The exact JSON bytes to sign and send.
    pub payload: String,
}

/// What every mutation needs besides the account: ids, clock, version, and the outbox.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub ids: IdGen,
    pub seq: u64,
    pub now: i64,
    pub api_version: String,
    /// `(request id, idempotency key)` of the API request causing the mutation; `None` = automatic.
    pub request: Option<(String, Option<String>)>,
    /// Endpoints an event will be delivered to (its `pending_webhooks`).
    pub webhook_endpoints: u32,
    pub outbox: Vec<Outgoing>,
}

impl Ctx {
    pub fn new(seed: u64, api_version: String) -> Self {
        Self {
            ids: IdGen::new(seed),
            seq: 0,
            now: 0,
            api_version,
            request: None,
            webhook_endpoints: 0,
            outbox: Vec::new(),
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn view(&self) -> View<'_> {
        View {
            version: &self.api_version,
            now: self.now,
        }
    }
}

pub struct NewProduct {
    pub id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub created: Option<i64>,
}

pub struct NewPrice {
    pub product: String,
    pub currency: String,
    pub unit_amount: Option<i64>,
    pub unit_amount_decimal: Option<String>,
    pub recurring: Option<Recurring>,
    pub tiers_mode: Option<String>,
    pub tiers: Vec<Tier>,
    pub transform_quantity: Option<TransformQuantity>,
    pub tax_behavior: Option<String>,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub metadata: Metadata,
    pub created: Option<i64>,
}

pub struct NewCoupon {
    pub id: Option<String>,
    pub name: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: CouponDuration,
    pub duration_in_months: Option<u32>,
    pub applies_to_products: Option<Vec<String>>,
    pub metadata: Metadata,
    pub created: Option<i64>,
}

/// One account's objects in one mode.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub livemode: bool,
    /// Events of connected accounts carry `account`; the platform's own do not.
    pub is_platform: bool,
    pub customers: Table<Customer>,
    pub products: Table<Product>,
    pub prices: Table<Price>,
    pub coupons: Table<Coupon>,
    pub discounts: Table<Discount>,
    pub subscriptions: Table<Subscription>,
    pub events: Table<EventRecord>,
}

fn merge_metadata(target: &mut Metadata, update: &Metadata) {
    for (k, v) in update {
        if v.is_empty() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// `previous_attributes`: old values of the top-level fields that changed (metadata per key).
fn previous_attributes(before: &Value, after: &Value) -> Value {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Value::Object(Map::new());
    };
    let mut prev = Map::new();
    for (key, old) in before {
        let new = after.get(key).unwrap_or(&Value::Null);
        if old == new {
            continue;
        }
        if key == "metadata"
            && let (Some(old_map), Some(new_map)) = (old.as_object(), new.as_object())
        {
            let mut changed = Map::new();
            for (k, v) in old_map {
                if new_map.get(k) != Some(v) {
                    changed.insert(k.clone(), v.clone());
                }
            }
            for k in new_map.keys() {
                if !old_map.contains_key(k) {
                    changed.insert(k.clone(), Value::Null);
                }
            }
            prev.insert(key.clone(), Value::Object(changed));
        } else {
            prev.insert(key.clone(), old.clone());
        }
    }
    Value::Object(prev)
}

impl Account {
    pub fn new(id: &str, livemode: bool, is_platform: bool) -> Self {
        Self {
            id: id.to_owned(),
            livemode,
            is_platform,
            customers: Table::default(),
            products: Table::default(),
            prices: Table::default(),
            coupons: Table::default(),
            discounts: Table::default(),
            subscriptions: Table::default(),
            events: Table::default(),
        }
    }

    /// Records an event (and queues it for delivery). `previous` only on `*.updated`.
    pub fn emit(
        &mut self,
        ctx: &mut Ctx,
        kind: &str,
        object: Value,
        previous: Option<Value>,
    ) -> String {
        let id = ctx.ids.next("evt_", 24);
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let (request_id, idempotency_key) = ctx
            .request
            .clone()
            .map_or((Value::Null, Value::Null), |(rid, key)| {
                (json!(rid), json!(key))
            });
        let mut body = json!({
            "id": id,
            "object": "event",
            "api_version": ctx.api_version,
            "created": ctx.now,
            "data": data,
            "livemode": self.livemode,
            "pending_webhooks": ctx.webhook_endpoints,
            "request": { "id": request_id, "idempotency_key": idempotency_key },
            "type": kind
        });
        if !self.is_platform {
            body["account"] = json!(self.id);
        }
        let payload = body.to_string();
        let seq = ctx.next_seq();
        self.events.insert(EventRecord {
            id: id.clone(),
            created: ctx.now,
            seq,
            kind: kind.to_owned(),
            body,
            pending_webhooks: ctx.webhook_endpoints,
            delivery_success: None,
        });
        ctx.outbox.push(Outgoing {
            event_id: id.clone(),
            kind: kind.to_owned(),
            account: self.id.clone(),
            livemode: self.livemode,
            payload,
        });
        id
    }

    fn customer_json(&self, ctx: &Ctx, id: &str) -> Value {
        self.customers
            .get(id)
            .map_or(Value::Null, |c| render::customer(self, c, &ctx.view()))
    }

    fn subscription_json(&self, ctx: &Ctx, id: &str) -> Value {
        self.subscriptions
            .get(id)
            .map_or(Value::Null, |s| render::subscription(self, s, &ctx.view()))
    }

    fn live_customer(&self, id: &str, param: &str) -> Result<&Customer, ApiError> {
        match self.customers.get(id) {
            Some(c) if !c.deleted => Ok(c),
            _ => Err(ApiError::no_such("customer", id, param)),
        }
    }

    fn coupon_for(&self, id: &str, param: &str) -> Result<&Coupon, ApiError> {
        match self.coupons.get(id) {
            Some(c) if !c.deleted => Ok(c),
            _ => Err(ApiError::no_such("coupon", id, param)
                .with_status(axum::http::StatusCode::BAD_REQUEST)),
        }
    }

    /// Creates a discount for `coupon` and emits `customer.discount.created`.
    fn add_discount(
        &mut self,
        ctx: &mut Ctx,
        coupon_id: &str,
        customer: &str,
        subscription: Option<&str>,
        subscription_item: Option<&str>,
        start: i64,
    ) -> String {
        let end = self.coupons.get(coupon_id).and_then(|c| match c.duration {
            CouponDuration::Repeating => c
                .duration_in_months
                .map(|m| add_intervals(start, Interval::Month, m, 1)),
            _ => None,
        });
        if let Some(c) = self.coupons.get_mut(coupon_id) {
            c.times_redeemed += 1;
        }
        let id = ctx.ids.next("di_", 24);
        let seq = ctx.next_seq();
        let discount = Discount {
            id: id.clone(),
            created: start,
            seq,
            coupon: coupon_id.to_owned(),
            start,
            end,
            customer: customer.to_owned(),
            subscription: subscription.map(str::to_owned),
            subscription_item: subscription_item.map(str::to_owned),
        };
        let object = render::discount(self, &discount, &ctx.view());
        self.discounts.insert(discount);
        self.emit(ctx, "customer.discount.created", object, None);
        id
    }

    // ---------- customers ----------

    pub fn create_customer(
        &mut self,
        ctx: &mut Ctx,
        input: CustomerInput,
    ) -> Result<String, ApiError> {
        if let Some(coupon) = &input.coupon {
            self.coupon_for(coupon, "coupon")?;
        }
        let id = ctx.ids.next("cus_", 14);
        let created = input.created.unwrap_or(ctx.now);
        let seq = ctx.next_seq();
        self.customers.insert(Customer {
            id: id.clone(),
            created,
            seq,
            name: input.name,
            email: input.email,
            description: input.description,
            phone: input.phone,
            currency: input.currency,
            metadata: input.metadata.unwrap_or_default(),
            discount: None,
            delinquent: false,
            deleted: false,
        });
        let object = self.customer_json(ctx, &id);
        self.emit(ctx, "customer.created", object, None);
        if let Some(coupon) = input.coupon {
            let discount = self.add_discount(ctx, &coupon, &id, None, None, created);
            if let Some(c) = self.customers.get_mut(&id) {
                c.discount = Some(discount);
            }
        }
        Ok(id)
    }

    pub fn update_customer(
        &mut self,
        ctx: &mut Ctx,
        id: &str,
        input: CustomerInput,
    ) -> Result<(), ApiError> {
        self.live_customer(id, "id")?;
        if let Some(coupon) = &input.coupon {
            self.coupon_for(coupon, "coupon")?;
        }
        let before = self.customer_json(ctx, id);
        let new_discount = match &input.coupon {
            Some(coupon) => Some(self.add_discount(ctx, coupon, id, None, None, ctx.now)),
            None => None,
        };
        if let Some(c) = self.customers.get_mut(id) {
            if let Some(v) = input.name {
                c.name = Some(v);
            }
            if let Some(v) = input.email {
                c.email = Some(v);
            }
            if let Some(v) = input.description {
                c.description = Some(v);
            }
            if let Some(v) = input.phone {
                c.phone = Some(v);
            }
            if let Some(v) = input.currency {
                c.currency = Some(v);
            }
            if let Some(m) = &input.metadata {
                merge_metadata(&mut c.metadata, m);
            }
            if new_discount.is_some() {
                c.discount = new_discount;
            }
        }
        let after = self.customer_json(ctx, id);
        if before != after {
            let prev = previous_attributes(&before, &after);
            self.emit(ctx, "customer.updated", after, Some(prev));
        }
        Ok(())
    }

    /// Deletes a customer: cancels its live subscriptions (each `customer.subscription.deleted`),
    /// then `customer.deleted` with the last snapshot.
    pub fn delete_customer(&mut self, ctx: &mut Ctx, id: &str) -> Result<(), ApiError> {
        self.live_customer(id, "id")?;
        let live_subs: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s.customer == id && !s.status.is_ended())
            .map(|s| s.id.clone())
            .collect();
        for sub in live_subs {
            self.cancel_subscription(ctx, &sub)?;
        }
        let snapshot = self.customer_json(ctx, id);
        if let Some(c) = self.customers.get_mut(id) {
            c.deleted = true;
        }
        self.emit(ctx, "customer.deleted", snapshot, None);
        Ok(())
    }

    // ---------- catalog ----------

    pub fn create_product(&mut self, ctx: &mut Ctx, input: NewProduct) -> Result<String, ApiError> {
        let id = match input.id {
            Some(id) if self.products.get(&id).is_some() => {
                return Err(ApiError::invalid_request("Product already exists.")
                    .with_code("resource_already_exists")
                    .with_param("id"));
            }
            Some(id) => id,
            None => ctx.ids.next("prod_", 14),
        };
        let created = input.created.unwrap_or(ctx.now);
        let seq = ctx.next_seq();
        let product = Product {
            id: id.clone(),
            created,
            updated: created,
            seq,
            name: input.name,
            description: input.description,
            active: true,
            default_price: None,
            metadata: input.metadata,
            deleted: false,
        };
        let object = render::product(self, &product);
        self.products.insert(product);
        self.emit(ctx, "product.created", object, None);
        Ok(id)
    }

    pub fn create_price(&mut self, ctx: &mut Ctx, input: NewPrice) -> Result<String, ApiError> {
        match self.products.get(&input.product) {
            Some(p) if !p.deleted => {}
            _ => {
                return Err(ApiError::no_such("product", &input.product, "product")
                    .with_status(axum::http::StatusCode::BAD_REQUEST));
            }
        }
        let tiered = !input.tiers.is_empty();
        if !tiered && input.unit_amount.is_none() && input.unit_amount_decimal.is_none() {
            return Err(ApiError::missing_param("unit_amount"));
        }
        if let Some(r) = &input.recurring {
            let max = match r.interval {
                Interval::Day => 1095,
                Interval::Week => 156,
                Interval::Month => 36,
                Interval::Year => 3,
            };
            if r.interval_count == 0 || r.interval_count > max {
                return Err(ApiError::invalid_param(
                    "recurring[interval_count]",
                    "The maximum billing interval is 3 years (3 years, 36 months, or 156 weeks).",
                ));
            }
        }
        let id = ctx.ids.next("price_", 24);
        let created = input.created.unwrap_or(ctx.now);
        let seq = ctx.next_seq();
        let price = Price {
            id: id.clone(),
            created,
            seq,
            product: input.product.clone(),
            currency: input.currency.to_lowercase(),
            unit_amount: input.unit_amount,
            unit_amount_decimal: input.unit_amount_decimal,
            recurring: input.recurring,
            billing_scheme: if tiered { "tiered" } else { "per_unit" }.to_owned(),
            tiers_mode: if tiered {
                Some(input.tiers_mode.unwrap_or_else(|| "graduated".to_owned()))
            } else {
                None
            },
            tiers: input.tiers,
            transform_quantity: input.transform_quantity,
            tax_behavior: input
                .tax_behavior
                .unwrap_or_else(|| "unspecified".to_owned()),
            nickname: input.nickname,
            lookup_key: input.lookup_key,
            active: true,
            metadata: input.metadata,
        };
        let object = render::price(self, &price, false);
        self.prices.insert(price);
        if let Some(p) = self.products.get_mut(&input.product)
            && p.default_price.is_none()
        {
            p.default_price = Some(id.clone());
        }
        self.emit(ctx, "price.created", object, None);
        Ok(id)
    }

    pub fn create_coupon(&mut self, ctx: &mut Ctx, input: NewCoupon) -> Result<String, ApiError> {
        match (input.percent_off, input.amount_off) {
            (None, None) | (Some(_), Some(_)) => {
                return Err(ApiError::invalid_request(
                    "Coupons must have exactly one of `percent_off` or `amount_off` set.",
                ));
            }
            (Some(p), None) if !(p > 0.0 && p <= 100.0) => {
                return Err(ApiError::invalid_param(
                    "percent_off",
                    "percent_off must be between 0 and 100.",
                ));
            }
            (None, Some(_)) if input.currency.is_none() => {
                return Err(ApiError::missing_param("currency"));
            }
            _ => {}
        }
        if input.duration == CouponDuration::Repeating && input.duration_in_months.is_none() {
            return Err(ApiError::missing_param("duration_in_months"));
        }
        let id = match input.id {
            Some(id) if self.coupons.get(&id).is_some() => {
                return Err(ApiError::invalid_request("Coupon already exists.")
                    .with_code("resource_already_exists")
                    .with_param("id"));
            }
            Some(id) => id,
            None => ctx.ids.next("", 8),
        };
        let seq = ctx.next_seq();
        let coupon = Coupon {
            id: id.clone(),
            created: input.created.unwrap_or(ctx.now),
            seq,
            name: input.name,
            percent_off: input.percent_off,
            amount_off: input.amount_off,
            currency: input.currency.map(|c| c.to_lowercase()),
            duration: input.duration,
            duration_in_months: if input.duration == CouponDuration::Repeating {
                input.duration_in_months
            } else {
                None
            },
            applies_to_products: input.applies_to_products,
            metadata: input.metadata,
            times_redeemed: 0,
            deleted: false,
        };
        let object = render::coupon(self, &coupon);
        self.coupons.insert(coupon);
        self.emit(ctx, "coupon.created", object, None);
        Ok(id)
    }

    pub fn delete_coupon(&mut self, ctx: &mut Ctx, id: &str) -> Result<(), ApiError> {
        let snapshot = match self.coupons.get(id) {
            Some(c) if !c.deleted => render::coupon(self, c),
            _ => return Err(ApiError::no_such("coupon", id, "id")),
        };
        if let Some(c) = self.coupons.get_mut(id) {
            c.deleted = true;
        }
        self.emit(ctx, "coupon.deleted", snapshot, None);
        Ok(())
    }

    // ---------- subscriptions ----------

    fn recurring_price(&self, id: &str, param: &str) -> Result<&Price, ApiError> {
        let price = self.prices.get(id).ok_or_else(|| {
            ApiError::no_such("price", id, param).with_status(axum::http::StatusCode::BAD_REQUEST)
        })?;
        if price.recurring.is_none() {
            return Err(ApiError::invalid_param(
                param,
                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
            ));
        }
        Ok(price)
    }

    fn new_item(
        &self,
        ctx: &mut Ctx,
        price: &str,
        quantity: Option<u64>,
        param: &str,
    ) -> Result<SubscriptionItem, ApiError> {
        let p = self.recurring_price(price, param)?;
        let metered = p
            .recurring
            .as_ref()
            .is_some_and(|r| r.usage_type == crate::model::UsageType::Metered);
        Ok(SubscriptionItem {
            id: ctx.ids.next("si_", 14),
            created: ctx.now,
            price: price.to_owned(),
            quantity: if metered {
                None
            } else {
                Some(quantity.unwrap_or(1))
            },
            discounts: Vec::new(),
            metadata: Metadata::new(),
        })
    }

    pub fn create_subscription(
        &mut self,
        ctx: &mut Ctx,
        input: SubscriptionInput,
    ) -> Result<String, ApiError> {
        self.live_customer(&input.customer, "customer")
            .map_err(|e| e.with_status(axum::http::StatusCode::BAD_REQUEST))?;
        if input.items.is_empty() {
            return Err(ApiError::missing_param("items"));
        }
        if input.items.len() > 20 {
            return Err(ApiError::invalid_param(
                "items",
                "A subscription can have at most 20 items.",
            ));
        }
        for coupon in &input.coupons {
            self.coupon_for(coupon, "discounts")?;
        }
        for (i, item) in input.items.iter().enumerate() {
            for coupon in &item.coupons {
                self.coupon_for(coupon, &format!("items[{i}][discounts]"))?;
            }
        }
        let created = input.created.unwrap_or(ctx.now);
        let saved_now = ctx.now;
        ctx.now = created;
        let mut items = Vec::with_capacity(input.items.len());
        let mut currency: Option<String> = None;
        for (i, item) in input.items.iter().enumerate() {
            let param = format!("items[{i}][price]");
            let built = self.new_item(ctx, &item.price, item.quantity, &param);
            let built = match built {
                Ok(b) => b,
                Err(e) => {
                    ctx.now = saved_now;
                    return Err(e);
                }
            };
            let item_currency = self.prices.get(&item.price).map(|p| p.currency.clone());
            match (&currency, item_currency) {
                (None, c) => currency = c,
                (Some(a), Some(b)) if *a != b => {
                    ctx.now = saved_now;
                    return Err(ApiError::invalid_param(
                        &param,
                        "All prices on a subscription must have the same `currency`.",
                    ));
                }
                _ => {}
            }
            items.push(built);
        }
        ctx.now = saved_now;
        let status = input
            .status
            .unwrap_or(if input.trial_period_days.is_some() {
                SubscriptionStatus::Trialing
            } else {
                SubscriptionStatus::Active
            });
        let (trial_start, trial_end) = if status == SubscriptionStatus::Trialing {
            let days = input.trial_period_days.unwrap_or(14);
            (Some(created), Some(created + days * 86_400))
        } else {
            (None, None)
        };
        let ended = status.is_ended().then_some(ctx.now.max(created));
        let id = ctx.ids.next("sub_", 24);
        let seq = ctx.next_seq();
        let sub = Subscription {
            id: id.clone(),
            created,
            seq,
            customer: input.customer.clone(),
            status,
            currency: currency.unwrap_or_else(|| "usd".to_owned()),
            items,
            discounts: Vec::new(),
            billing_cycle_anchor: trial_end.unwrap_or(created),
            start_date: created,
            cancel_at_period_end: input.cancel_at_period_end,
            cancel_at: None,
            canceled_at: if status == SubscriptionStatus::Canceled {
                ended
            } else {
                None
            },
            ended_at: ended,
            trial_start,
            trial_end,
            pause_collection: None,
            collection_method: input
                .collection_method
                .unwrap_or_else(|| "charge_automatically".to_owned()),
            metadata: input.metadata.unwrap_or_default(),
        };
        let item_ids: Vec<String> = sub.items.iter().map(|i| i.id.clone()).collect();
        self.subscriptions.insert(sub);
        let mut discounts = Vec::new();
        for coupon in &input.coupons {
            discounts.push(self.add_discount(
                ctx,
                coupon,
                &input.customer,
                Some(&id),
                None,
                created,
            ));
        }
        for (item, item_id) in input.items.iter().zip(&item_ids) {
            let mut item_discounts = Vec::new();
            for coupon in &item.coupons {
                item_discounts.push(self.add_discount(
                    ctx,
                    coupon,
                    &input.customer,
                    Some(&id),
                    Some(item_id),
                    created,
                ));
            }
            if let Some(s) = self.subscriptions.get_mut(&id)
                && let Some(si) = s.items.iter_mut().find(|si| &si.id == item_id)
            {
                si.discounts = item_discounts;
            }
        }
        if let Some(s) = self.subscriptions.get_mut(&id) {
            s.discounts = discounts;
        }
        let object = self.subscription_json(ctx, &id);
        self.emit(ctx, "customer.subscription.created", object, None);
        Ok(id)
    }

    fn existing_subscription(&self, id: &str) -> Result<&Subscription, ApiError> {
        self.subscriptions
            .get(id)
            .ok_or_else(|| ApiError::no_such("subscription", id, "id"))
    }

    pub fn update_subscription(
        &mut self,
        ctx: &mut Ctx,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<(), ApiError> {
        let current = self.existing_subscription(id)?.clone();
        if current.status == SubscriptionStatus::Canceled
            && update.status != Some(SubscriptionStatus::Canceled)
        {
            return Err(ApiError::invalid_request(
                "A canceled subscription can only update its cancellation_details and metadata.",
            ));
        }
        if update.status == Some(SubscriptionStatus::Canceled) {
            return self.cancel_subscription(ctx, id);
        }
        let before = self.subscription_json(ctx, id);
        let mut next = current.clone();
        if let Some(items) = &update.items {
            for (i, change) in items.iter().enumerate() {
                match &change.id {
                    Some(item_id) => {
                        let pos = next
                            .items
                            .iter()
                            .position(|si| &si.id == item_id)
                            .ok_or_else(|| {
                                ApiError::no_such(
                                    "subscription_item",
                                    item_id,
                                    &format!("items[{i}][id]"),
                                )
                                .with_status(axum::http::StatusCode::BAD_REQUEST)
                            })?;
                        if change.deleted {
                            next.items.remove(pos);
                            continue;
                        }
                        if let Some(price) = &change.price {
                            let fresh = self.new_item(
                                ctx,
                                price,
                                change.quantity.or(next.items[pos].quantity),
                                &format!("items[{i}][price]"),
                            )?;
                            next.items[pos].price = fresh.price;
                            next.items[pos].quantity = fresh.quantity;
                        } else if let Some(q) = change.quantity
                            && next.items[pos].quantity.is_some()
                        {
                            next.items[pos].quantity = Some(q);
                        }
                    }
                    None => {
                        let price = change.price.as_deref().ok_or_else(|| {
                            ApiError::missing_param(&format!("items[{i}][price]"))
                        })?;
                        let item = self.new_item(
                            ctx,
                            price,
                            change.quantity,
                            &format!("items[{i}][price]"),
                        )?;
                        next.items.push(item);
                    }
                }
            }
            if next.items.is_empty() {
                return Err(ApiError::invalid_param(
                    "items",
                    "A subscription must have at least one active plan.",
                ));
            }
        }
        if let Some(coupons) = &update.coupons {
            for coupon in coupons {
                self.coupon_for(coupon, "discounts")?;
            }
        }
        if let Some(v) = update.cancel_at_period_end {
            next.cancel_at_period_end = v;
        }
        if let Some(v) = update.cancel_at {
            next.cancel_at = v;
        }
        if let Some(m) = &update.metadata {
            merge_metadata(&mut next.metadata, m);
        }
        if let Some(p) = &update.pause_collection {
            next.pause_collection = p.clone();
        }
        if update.end_trial_now && next.status == SubscriptionStatus::Trialing {
            next.status = SubscriptionStatus::Active;
            next.trial_end = Some(ctx.now);
            next.billing_cycle_anchor = ctx.now;
        }
        if let Some(status) = update.status {
            if status == SubscriptionStatus::Trialing && next.status != SubscriptionStatus::Trialing
            {
                next.trial_start = Some(ctx.now);
                next.trial_end = Some(ctx.now + 14 * 86_400);
                next.billing_cycle_anchor = ctx.now + 14 * 86_400;
            }
            if status == SubscriptionStatus::IncompleteExpired {
                next.ended_at = Some(ctx.now);
            }
            next.status = status;
        }
        let was_paused = current.status == SubscriptionStatus::Paused;
        let is_paused = next.status == SubscriptionStatus::Paused;
        if let Some(coupons) = update.coupons {
            let mut discounts = Vec::new();
            for coupon in &coupons {
                discounts.push(self.add_discount(
                    ctx,
                    coupon,
                    &next.customer,
                    Some(id),
                    None,
                    ctx.now,
                ));
            }
            next.discounts = discounts;
        }
        if let Some(s) = self.subscriptions.get_mut(id) {
            *s = next;
        }
        let after = self.subscription_json(ctx, id);
        if before != after {
            let prev = previous_attributes(&before, &after);
            self.emit(
                ctx,
                "customer.subscription.updated",
                after.clone(),
                Some(prev),
            );
        }
        if is_paused && !was_paused {
            self.emit(ctx, "customer.subscription.paused", after, None);
        } else if was_paused && !is_paused {
            self.emit(ctx, "customer.subscription.resumed", after, None);
        }
        Ok(())
    }

    /// Cancels now (`DELETE /v1/subscriptions/{id}`): status canceled, event `customer.subscription.deleted`.
    pub fn cancel_subscription(&mut self, ctx: &mut Ctx, id: &str) -> Result<(), ApiError> {
        let current = self.existing_subscription(id)?;
        if current.status == SubscriptionStatus::Canceled {
            return Err(ApiError::no_such("subscription", id, "id")
                .with_status(axum::http::StatusCode::NOT_FOUND));
        }
        if let Some(s) = self.subscriptions.get_mut(id) {
            s.status = SubscriptionStatus::Canceled;
            s.canceled_at = Some(ctx.now);
            s.ended_at = Some(ctx.now);
        }
        let object = self.subscription_json(ctx, id);
        self.emit(ctx, "customer.subscription.deleted", object, None);
        Ok(())
    }

    /// Drops events older than the 30-day horizon.
    pub fn expire_events(&mut self, now: i64) {
        let horizon = now - 30 * 86_400;
        if self.events.iter().any(|e| e.created < horizon) {
            self.events.retain(|e| e.created >= horizon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ItemInput, UsageType};

    fn setup() -> (Account, Ctx, String) {
        let mut acct = Account::new("acct_1", false, true);
        let mut ctx = Ctx::new(7, "2026-07-29.dahlia".into());
        ctx.now = 1_750_000_000;
        let product = acct
            .create_product(
                &mut ctx,
                NewProduct {
                    id: None,
                    name: "Pro".into(),
                    description: None,
                    metadata: Metadata::new(),
                    created: None,
                },
            )
            .unwrap();
        let price = acct
            .create_price(
                &mut ctx,
                NewPrice {
                    product,
                    currency: "usd".into(),
                    unit_amount: Some(2000),
                    unit_amount_decimal: None,
                    recurring: Some(Recurring {
                        interval: Interval::Month,
                        interval_count: 1,
                        usage_type: UsageType::Licensed,
                    }),
                    tiers_mode: None,
                    tiers: vec![],
                    transform_quantity: None,
                    tax_behavior: None,
                    nickname: None,
                    lookup_key: None,
                    metadata: Metadata::new(),
                    created: None,
                },
            )
            .unwrap();
        (acct, ctx, price)
    }

    #[test]
    fn deleting_a_customer_cancels_its_subscriptions_before_the_customer_deleted_event() {
        let (mut acct, mut ctx, price) = setup();
        let cus = acct
            .create_customer(
                &mut ctx,
                CustomerInput {
                    name: Some("Acme".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let sub = acct
            .create_subscription(
                &mut ctx,
                SubscriptionInput {
                    customer: cus.clone(),
                    items: vec![ItemInput {
                        price,
                        quantity: Some(2),
                        coupons: vec![],
                    }],
                    ..Default::default()
                },
            )
            .unwrap();
        ctx.outbox.clear();
        acct.delete_customer(&mut ctx, &cus).unwrap();
        let kinds: Vec<&str> = ctx.outbox.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, ["customer.subscription.deleted", "customer.deleted"]);
        assert_eq!(
            acct.subscriptions.get(&sub).unwrap().status,
            SubscriptionStatus::Canceled
        );
        assert!(acct.customers.get(&cus).unwrap().deleted);
        let err = acct.delete_customer(&mut ctx, &cus).unwrap_err();
        assert_eq!(err.code, Some("resource_missing"));
    }

    #[test]
    fn an_update_reports_the_old_values_in_previous_attributes() {
        let (mut acct, mut ctx, _) = setup();
        let mut metadata = Metadata::new();
        metadata.insert("tier".into(), "gold".into());
        let cus = acct
            .create_customer(
                &mut ctx,
                CustomerInput {
                    name: Some("Old".into()),
                    metadata: Some(metadata),
                    ..Default::default()
                },
            )
            .unwrap();
        let mut change = Metadata::new();
        change.insert("tier".into(), "silver".into());
        acct.update_customer(
            &mut ctx,
            &cus,
            CustomerInput {
                name: Some("New".into()),
                metadata: Some(change),
                ..Default::default()
            },
        )
        .unwrap();
        let event = acct.events.iter().last().unwrap();
        assert_eq!(event.kind, "customer.updated");
        assert_eq!(
            event.body["data"]["previous_attributes"],
            json!({"name": "Old", "metadata": {"tier": "gold"}})
        );
        assert_eq!(event.body["data"]["object"]["name"], "New");
    }

    #[test]
    fn a_one_time_price_cannot_be_subscribed_to() {
        let (mut acct, mut ctx, price) = setup();
        let product = acct.prices.get(&price).unwrap().product.clone();
        let one_time = acct
            .create_price(
                &mut ctx,
                NewPrice {
                    product,
                    currency: "usd".into(),
                    unit_amount: Some(500),
                    unit_amount_decimal: None,
                    recurring: None,
                    tiers_mode: None,
                    tiers: vec![],
                    transform_quantity: None,
                    tax_behavior: None,
                    nickname: None,
                    lookup_key: None,
                    metadata: Metadata::new(),
                    created: None,
                },
            )
            .unwrap();
        let cus = acct
            .create_customer(&mut ctx, CustomerInput::default())
            .unwrap();
        let err = acct
            .create_subscription(
                &mut ctx,
                SubscriptionInput {
                    customer: cus,
                    items: vec![ItemInput {
                        price: one_time,
                        quantity: None,
                        coupons: vec![],
                    }],
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("items[0][price]"));
    }
}
