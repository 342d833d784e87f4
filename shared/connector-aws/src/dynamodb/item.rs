//! Items as attribute maps: building them, reading them back, and turning SDK failures
//! into [`StoreError`]s.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use connector::ports::{StoreError, StoreResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{self, Key};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The table key of an item as an attribute map (for GetItem, DeleteItem, UpdateItem).
pub fn key_map(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(&key.pk)),
        (keys::SK.to_owned(), s(&key.sk)),
    ])
}

/// Builds an item: key, record type, body and the attributes conditions and indexes need.
pub struct ItemBuilder(Item);

impl ItemBuilder {
    pub fn new(key: &Key, record_type: &str) -> Self {
        let mut item = key_map(key);
        item.insert(keys::TYPE.to_owned(), s(record_type));
        Self(item)
    }

    pub fn body<T: Serialize>(self, value: &T) -> StoreResult<Self> {
        let json = serde_json::to_string(value)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize item body: {e}")))?;
        Ok(self.string(keys::BODY, json))
    }

    pub fn string(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.to_owned(), s(value));
        self
    }

    pub fn number(mut self, name: &str, value: impl ToString) -> Self {
        self.0.insert(name.to_owned(), n(value));
        self
    }

    pub fn boolean(mut self, name: &str, value: bool) -> Self {
        self.0.insert(name.to_owned(), AttributeValue::Bool(value));
        self
    }

    /// A GSI key pair; items without it stay out of that (sparse) index.
    pub fn index(self, pk_name: &str, pk: String, sk_name: &str, sk: String) -> Self {
        self.string(pk_name, pk).string(sk_name, sk)
    }

    /// The expiry both as TTL seconds and as the milliseconds reads filter on.
    pub fn expires(self, at: connector::Timestamp) -> Self {
        self.number(keys::EXPIRES_AT_S, at.as_secs())
            .number(keys::EXPIRES_AT_MS, at.as_millis())
    }

    pub fn build(self) -> Item {
        self.0
    }
}

pub fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub fn number<T: FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn required_string<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    string(item, name).ok_or_else(|| missing(item, name))
}

fn missing(item: &Item, name: &str) -> StoreError {
    let pk = string(item, keys::PK).unwrap_or("?");
    StoreError::Corrupt(format!("item {pk} lacks a valid {name:?}"))
}

/// The domain value stored in the item's body.
pub fn body<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let json = required_string(item, keys::BODY)?;
    serde_json::from_str(json).map_err(|e| {
        let pk = string(item, keys::PK).unwrap_or("?");
        StoreError::Corrupt(format!("item {pk} has an unreadable body: {e}"))
    })
}

/// Whether an item is still readable at `now_ms` (the port's rule: gone once
/// `expires_at <= now`); one without an expiry always is.
pub fn is_live(item: &Item, now_ms: i64) -> bool {
    number::<i64>(item, keys::EXPIRES_AT_MS).is_none_or(|at| at > now_ms)
}

/// Any SDK failure that is not one of the named outcomes a caller checks for first.
pub fn backend<E>(e: E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::backend(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_items_read_back() {
        let key = Key {
            pk: "T#a#LOG#1".into(),
            sk: "LOG".into(),
        };
        let item = ItemBuilder::new(&key, keys::TYPE_LOG)
            .body(&serde_json::json!({"x": 1}))
            .expect("serializes")
            .number(keys::VERSION, 7u64)
            .expires(connector::Timestamp::from_millis(5_500))
            .build();
        assert_eq!(string(&item, keys::PK), Some("T#a#LOG#1"));
        assert_eq!(string(&item, keys::TYPE), Some(keys::TYPE_LOG));
        assert_eq!(number::<u64>(&item, keys::VERSION), Some(7));
        assert_eq!(number::<i64>(&item, keys::EXPIRES_AT_S), Some(5));
        let v: serde_json::Value = body(&item).expect("body parses");
        assert_eq!(v["x"], 1);
        assert!(is_live(&item, 5_499));
        assert!(!is_live(&item, 5_500));
        let lasting = key_map(&Key {
            pk: "p".into(),
            sk: "s".into(),
        });
        assert!(is_live(&lasting, i64::MAX));
    }

    #[test]
    fn a_missing_body_is_corrupt() {
        let item = key_map(&Key {
            pk: "p".into(),
            sk: "s".into(),
        });
        assert!(matches!(
            body::<serde_json::Value>(&item),
            Err(StoreError::Corrupt(_))
        ));
    }
}
