//! `expand[]`: replaces ids with objects along dotted paths (at most 4 levels; list paths
//! start with `data.`). Arrays are walked through without using up a level.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::list::list_body;
use crate::render::{self, View};
use crate::store::Account;

pub const MAX_DEPTH: usize = 4;

/// Expands `paths` on one object. `is_list` when `value` is a list body (paths start with `data.`).
pub fn apply(
    acct: &Account,
    view: &View,
    value: &mut Value,
    paths: &[String],
) -> Result<(), ApiError> {
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.len() > MAX_DEPTH {
            return Err(ApiError::expand_too_deep());
        }
        walk(acct, view, value, &segments, path)?;
    }
    Ok(())
}

fn cannot_expand(path: &str) -> ApiError {
    ApiError::invalid_request(format!("This property cannot be expanded ({path})."))
        .with_param("expand")
}

fn walk(
    acct: &Account,
    view: &View,
    value: &mut Value,
    segments: &[&str],
    path: &str,
) -> Result<(), ApiError> {
    let Some((field, rest)) = segments.split_first() else {
        return Ok(());
    };
    match value {
        Value::Array(items) => {
            for item in items {
                walk(acct, view, item, segments, path)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let Some(child) = map.get_mut(*field) else {
                if *field == "tiers"
                    && rest.is_empty()
                    && map.get("object") == Some(&json!("price"))
                {
                    let id = map
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(p) = acct.prices.get(&id) {
                        map.insert("tiers".into(), render::tiers(p));
                    }
                    return Ok(());
                }
                return Err(cannot_expand(path));
            };
            expand_ids(acct, view, field, child, path)?;
            walk(acct, view, child, rest, path)
        }
        _ => Ok(()),
    }
}

/// Replaces an id (or an array of ids) held in `field` with the object it names.
fn expand_ids(
    acct: &Account,
    view: &View,
    field: &str,
    value: &mut Value,
    path: &str,
) -> Result<(), ApiError> {
    match value {
        Value::Array(items) => {
            for item in items {
                expand_ids(acct, view, field, item, path)?;
            }
            Ok(())
        }
        Value::String(id) => {
            let id = id.clone();
            *value = resolve(acct, view, field, &id).ok_or_else(|| cannot_expand(path))?;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn resolve(acct: &Account, view: &View, field: &str, id: &str) -> Option<Value> {
    match field {
        "customer" => acct
            .customers
            .get(id)
            .map(|c| render::customer(acct, c, view)),
        "product" => acct.products.get(id).map(|p| render::product(acct, p)),
        "price" | "default_price" => acct.prices.get(id).map(|p| render::price(acct, p, false)),
        "discounts" | "discount" => acct
            .discounts
            .get(id)
            .map(|d| render::discount(acct, d, view)),
        "coupon" => acct.coupons.get(id).map(|c| render::coupon(acct, c)),
        "subscription" => acct
            .subscriptions
            .get(id)
            .map(|s| render::subscription(acct, s, view)),
        _ => None,
    }
}

/// `customer.subscriptions` is only present when expanded: the customer's live subscriptions.
pub fn customer_subscriptions(acct: &Account, view: &View, customer: &mut Value) {
    let Some(id) = customer
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let mut subs: Vec<_> = acct
        .subscriptions
        .iter()
        .filter(|s| s.customer == id && s.status != crate::model::SubscriptionStatus::Canceled)
        .collect();
    subs.sort_by_key(|s| std::cmp::Reverse((s.created, s.seq)));
    let data = subs
        .iter()
        .map(|s| render::subscription(acct, s, view))
        .collect();
    customer["subscriptions"] =
        list_body(&format!("/v1/customers/{id}/subscriptions"), data, false);
}
