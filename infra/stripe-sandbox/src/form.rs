//! Stripe's form encoding with bracket syntax: `expand[]=a`, `items[0][price]=p`,
//! `metadata[key]=v`, `created[gte]=1`. Parsed into a JSON tree of strings, where
//! objects whose keys are all indexes become arrays (ordered by index).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The parsed parameters of one request (query string and body merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Parses one or more url-encoded strings (query, then body).
    pub fn parse(parts: &[&[u8]]) -> Result<Self, ApiError> {
        let mut root = Value::Object(Map::new());
        for part in parts {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(part)
                .map_err(|e| ApiError::invalid_request(format!("Invalid request body: {e}")))?;
            for (key, value) in pairs {
                let path = split_key(&key).ok_or_else(|| {
                    ApiError::invalid_request(format!("Invalid parameter name: {key}"))
                })?;
                insert(&mut root, &path, value, &key)?;
            }
        }
        let root = arrays_from_index_maps(root);
        match root {
            Value::Object(map) => Ok(Self(map)),
            _ => Ok(Self::default()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// An integer param; a non-integer is Stripe's `parameter_invalid_integer`.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        int_at(self.0.get(name), name)
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        bool_at(self.0.get(name), name)
    }

    /// `expand[]` values (a single `expand=x` is accepted too).
    pub fn expand(&self) -> Vec<String> {
        strings(self.0.get("expand"))
    }
}

pub fn int_at(value: Option<&Value>, name: &str) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid_request(format!("Invalid integer: {s}"))
                .with_code("parameter_invalid_integer")
                .with_param(name)
        }),
        Some(_) => Err(
            ApiError::invalid_request(format!("Invalid integer: {name}"))
                .with_code("parameter_invalid_integer")
                .with_param(name),
        ),
    }
}

pub fn bool_at(value: Option<&Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match value.and_then(Value::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(
            ApiError::invalid_request(format!("Invalid boolean: {other}"))
                .with_code("parameter_invalid_boolean")
                .with_param(name),
        ),
    }
}

/// The strings of an array param, or of a single string.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A key segment: a name, or `[]` (append).
#[derive(Debug, PartialEq)]
enum Segment {
    Name(String),
    Append,
}

/// `items[0][price]` -> [items, 0, price]; `expand[]` -> [expand, Append].
fn split_key(key: &str) -> Option<Vec<Segment>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut path = vec![Segment::Name(head.to_owned())];
    while !rest.is_empty() {
        let inner_end = rest.find(']')?;
        if !rest.starts_with('[') {
            return None;
        }
        let inner = &rest[1..inner_end];
        path.push(if inner.is_empty() {
            Segment::Append
        } else {
            Segment::Name(inner.to_owned())
        });
        rest = &rest[inner_end + 1..];
    }
    Some(path)
}

fn insert(node: &mut Value, path: &[Segment], value: String, key: &str) -> Result<(), ApiError> {
    let conflict =
        || ApiError::invalid_request(format!("Invalid parameter: {key}")).with_param(key);
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    match first {
        Segment::Name(name) => {
            let Value::Object(map) = node else {
                return Err(conflict());
            };
            if rest.is_empty() {
                map.insert(name.clone(), Value::String(value));
                return Ok(());
            }
            let child = map.entry(name.clone()).or_insert_with(|| match rest[0] {
                Segment::Append => Value::Array(Vec::new()),
                Segment::Name(_) => Value::Object(Map::new()),
            });
            insert(child, rest, value, key)
        }
        Segment::Append => {
            let Value::Array(items) = node else {
                return Err(conflict());
            };
            if rest.is_empty() {
                items.push(Value::String(value));
                return Ok(());
            }
            let mut child = match rest[0] {
                Segment::Append => Value::Array(Vec::new()),
                Segment::Name(_) => Value::Object(Map::new()),
            };
            insert(&mut child, rest, value, key)?;
            items.push(child);
            Ok(())
        }
    }
}

/// `{"0": a, "1": b}` -> `[a, b]`, recursively.
fn arrays_from_index_maps(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let all_indexes = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if all_indexes {
                let mut entries: Vec<(usize, Value)> = map
                    .into_iter()
                    .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
                    .collect();
                entries.sort_by_key(|(i, _)| *i);
                Value::Array(
                    entries
                        .into_iter()
                        .map(|(_, v)| arrays_from_index_maps(v))
                        .collect(),
                )
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, arrays_from_index_maps(v)))
                        .collect(),
                )
            }
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(arrays_from_index_maps).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        Value::Object(Params::parse(&[s.as_bytes()]).unwrap().0)
    }

    #[test]
    fn bracket_arrays_indexes_and_maps_become_a_json_tree() {
        let v = parse(
            "expand[]=data.discounts&expand[]=data.customer&items[0][price]=price_a&items[0][quantity]=3\
             &items[1][price]=price_b&metadata[hubspot_id]=42&created[gte]=1700000000&email=a%40b.com",
        );
        assert_eq!(
            v,
            json!({
                "expand": ["data.discounts", "data.customer"],
                "items": [{"price": "price_a", "quantity": "3"}, {"price": "price_b"}],
                "metadata": {"hubspot_id": "42"},
                "created": {"gte": "1700000000"},
                "email": "a@b.com"
            })
        );
    }

    #[test]
    fn indexes_are_ordered_numerically_not_as_text() {
        let pairs: String = (0..12)
            .map(|i| format!("items[{i}][price]=p{i}&"))
            .collect();
        let v = parse(&pairs);
        assert_eq!(v["items"][10]["price"], "p10");
        assert_eq!(v["items"][2]["price"], "p2");
    }

    #[test]
    fn nested_discounts_inside_items_are_parsed() {
        let v = parse("items[0][discounts][0][coupon]=SAVE&discounts=");
        assert_eq!(v["items"][0]["discounts"][0]["coupon"], "SAVE");
        assert_eq!(v["discounts"], "");
    }

    #[test]
    fn a_scalar_and_a_nested_key_with_the_same_name_is_rejected() {
        assert!(Params::parse(&[b"metadata=x&metadata[a]=b"]).is_err());
        assert!(Params::parse(&[b"[a]=b"]).is_err());
    }

    #[test]
    fn a_non_integer_limit_is_parameter_invalid_integer() {
        let p = Params::parse(&[b"limit=ten"]).unwrap();
        let err = p.int("limit").unwrap_err();
        assert_eq!(err.code, Some("parameter_invalid_integer"));
    }
}
