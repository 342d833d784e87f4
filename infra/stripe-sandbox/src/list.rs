//! Stripe list semantics: newest first, `limit` 1..=100 (default 10), `starting_after` /
//! `ending_before` cursors, `created` int or range filters, `{object:"list", url, has_more, data}`.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::{Params, int_at};
use crate::model::Listed;
use crate::store::Table;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreatedFilter {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl CreatedFilter {
    /// `created=123` or `created[gte]=...` etc.; absent = `None`.
    pub fn parse(params: &Params, name: &str) -> Result<Option<Self>, ApiError> {
        match params.get(name) {
            None => Ok(None),
            Some(Value::String(_)) => {
                let exact = params.int(name)?;
                Ok(Some(Self {
                    gte: exact,
                    lte: exact,
                    ..Self::default()
                }))
            }
            Some(Value::Object(map)) => {
                for key in map.keys() {
                    if !matches!(key.as_str(), "gt" | "gte" | "lt" | "lte") {
                        return Err(ApiError::unknown_param(&format!("{name}[{key}]")));
                    }
                }
                let at = |k: &str| int_at(map.get(k), &format!("{name}[{k}]"));
                Ok(Some(Self {
                    gt: at("gt")?,
                    gte: at("gte")?,
                    lt: at("lt")?,
                    lte: at("lte")?,
                }))
            }
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid {name} filter"),
            )),
        }
    }

    pub fn matches(&self, t: i64) -> bool {
        self.gt.is_none_or(|v| t > v)
            && self.gte.is_none_or(|v| t >= v)
            && self.lt.is_none_or(|v| t < v)
            && self.lte.is_none_or(|v| t <= v)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub limit: usize,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    pub created: Option<CreatedFilter>,
}

/// Params every list endpoint accepts.
pub const LIST_PARAMS: [&str; 5] = [
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "expand",
];

impl ListQuery {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let limit = match params.int("limit")? {
            None => 10,
            Some(n) if n < 1 => {
                return Err(ApiError::invalid_request(
                    "This value must be greater than or equal to 1.",
                )
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
            Some(n) if n > 100 => {
                return Err(ApiError::invalid_request(
                    "This value must be less than or equal to 100.",
                )
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
            Some(n) => usize::try_from(n).unwrap_or(10),
        };
        let cursor = |name: &str| {
            params
                .str(name)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let starting_after = cursor("starting_after");
        let ending_before = cursor("ending_before");
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::invalid_request(
                "You may only specify one of these parameters: ending_before, starting_after.",
            ));
        }
        Ok(Self {
            limit,
            starting_after,
            ending_before,
            created: CreatedFilter::parse(params, "created")?,
        })
    }
}

/// One page of `table` (after `keep` and the created filter), newest first.
pub fn page<'a, T: Listed>(
    table: &'a Table<T>,
    keep: impl Fn(&T) -> bool,
    query: &ListQuery,
    object_name: &str,
) -> Result<(Vec<&'a T>, bool), ApiError> {
    let key = |t: &T| (t.created(), t.seq());
    let cursor_key = |id: &str, param: &str| {
        table.get(id).map(key).ok_or_else(|| {
            ApiError::no_such(object_name, id, param)
                .with_status(axum::http::StatusCode::BAD_REQUEST)
        })
    };
    let mut all: Vec<&T> = table
        .iter()
        .filter(|t| keep(t))
        .filter(|t| {
            query
                .created
                .as_ref()
                .is_none_or(|f| f.matches(t.created()))
        })
        .collect();
    all.sort_by_key(|t| std::cmp::Reverse(key(t)));
    if let Some(after) = &query.starting_after {
        let k = cursor_key(after, "starting_after")?;
        let rest: Vec<&T> = all.into_iter().filter(|t| key(t) < k).collect();
        let has_more = rest.len() > query.limit;
        Ok((rest.into_iter().take(query.limit).collect(), has_more))
    } else if let Some(before) = &query.ending_before {
        let k = cursor_key(before, "ending_before")?;
        let newer: Vec<&T> = all.into_iter().filter(|t| key(t) > k).collect();
        let has_more = newer.len() > query.limit;
        let skip = newer.len().saturating_sub(query.limit);
        Ok((newer.into_iter().skip(skip).collect(), has_more))
    } else {
        let has_more = all.len() > query.limit;
        Ok((all.into_iter().take(query.limit).collect(), has_more))
    }
}

pub fn list_body(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventRecord;

    fn table(n: u64) -> Table<EventRecord> {
        let mut t = Table::default();
        for i in 0..n {
            t.insert(EventRecord {
                id: format!("evt_{i}"),
                // pairs share a second, as Stripe's 1-second `created` often does
                created: 1_000 + i64::try_from(i / 2).unwrap(),
                seq: i,
                kind: "x".into(),
                body: Value::Null,
                pending_webhooks: 0,
                delivery_success: None,
            });
        }
        t
    }

    fn query(s: &str) -> ListQuery {
        ListQuery::parse(&Params::parse(&[s.as_bytes()]).unwrap()).unwrap()
    }

    fn ids(v: &[&EventRecord]) -> Vec<String> {
        v.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn paging_with_starting_after_visits_every_object_once_newest_first() {
        let t = table(25);
        let mut seen = Vec::new();
        let mut q = query("limit=7");
        loop {
            let (data, has_more) = page(&t, |_| true, &q, "event").unwrap();
            seen.extend(ids(&data));
            if !has_more {
                break;
            }
            q.starting_after = data.last().map(|e| e.id.clone());
        }
        let expected: Vec<String> = (0..25).rev().map(|i| format!("evt_{i}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn ending_before_returns_the_newer_neighbours_in_descending_order() {
        let t = table(10);
        let (data, has_more) =
            page(&t, |_| true, &query("limit=3&ending_before=evt_4"), "event").unwrap();
        assert_eq!(ids(&data), ["evt_7", "evt_6", "evt_5"]);
        assert!(has_more);
        let (data, has_more) =
            page(&t, |_| true, &query("limit=3&ending_before=evt_7"), "event").unwrap();
        assert_eq!(ids(&data), ["evt_9", "evt_8"]);
        assert!(!has_more);
    }

    #[test]
    fn created_ranges_filter_inclusively_and_exclusively() {
        let t = table(10);
        let (data, _) = page(
            &t,
            |_| true,
            &query("created[gte]=1002&created[lt]=1004"),
            "event",
        )
        .unwrap();
        assert_eq!(ids(&data), ["evt_7", "evt_6", "evt_5", "evt_4"]);
        let (data, _) = page(&t, |_| true, &query("created=1000"), "event").unwrap();
        assert_eq!(ids(&data), ["evt_1", "evt_0"]);
    }

    #[test]
    fn limits_outside_one_to_a_hundred_and_two_cursors_are_rejected() {
        for bad in ["limit=0", "limit=101", "starting_after=a&ending_before=b"] {
            assert!(
                ListQuery::parse(&Params::parse(&[bad.as_bytes()]).unwrap()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(query("").limit, 10);
    }

    #[test]
    fn an_unknown_cursor_is_resource_missing() {
        let t = table(3);
        let err = page(&t, |_| true, &query("starting_after=evt_nope"), "event").unwrap_err();
        assert_eq!(
            (err.code, err.param.as_deref()),
            (Some("resource_missing"), Some("starting_after"))
        );
    }
}
