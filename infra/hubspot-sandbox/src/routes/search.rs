//! `POST /crm/v3/objects/{type}/search`: filter groups (OR of ANDs), one sort, offset paging,
//! HubSpot's limits (5 groups, 6 filters per group, 18 filters, limit 200, 3,000-char body,
//! 10,000 results), archived records never included.

use std::cmp::Ordering;

use axum::Json;
use axum::extract::{Extension, Path, State};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crm::{parse_json, readable};
use super::{AppState, Granted};
use crate::clock::{now_ms, parse_ms};
use crate::error::ApiError;
use crate::model::{ObjectKind, Record};
use crate::store::Store;

pub const MAX_GROUPS: usize = 5;
pub const MAX_FILTERS_PER_GROUP: usize = 6;
pub const MAX_FILTERS: usize = 18;
pub const MAX_LIMIT: usize = 200;
pub const MAX_BODY_CHARS: usize = 3_000;
/// HubSpot never pages a search past this many results.
pub const RESULT_CAP: usize = 10_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    pub operator: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub high_value: Option<Value>,
    #[serde(default)]
    pub values: Option<Vec<Value>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FilterGroup {
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Sort {
    Rule {
        #[serde(rename = "propertyName")]
        property_name: String,
        #[serde(default)]
        direction: Option<String>,
    },
    Text(String),
}

impl Sort {
    /// (property, descending)
    fn parts(&self) -> (String, bool) {
        match self {
            Self::Rule {
                property_name,
                direction,
            } => (
                property_name.clone(),
                direction
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case("DESCENDING")),
            ),
            Self::Text(text) => match text.strip_prefix('-') {
                Some(name) => (name.to_owned(), true),
                None => (text.clone(), false),
            },
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    pub sorts: Vec<Sort>,
    #[serde(default)]
    pub properties: Option<Vec<String>>,
    #[serde(default)]
    pub limit: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(default)]
    pub query: Option<String>,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number_field(value: Option<&Value>, name: &str, default: usize) -> Result<usize, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let raw = text(v);
            if raw.is_empty() {
                return Ok(default);
            }
            raw.parse::<usize>()
                .map_err(|_| ApiError::validation(format!("{name} must be an integer, got {raw}")))
        }
    }
}

/// How a property's values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Typed {
    Time,
    Number,
    Enumeration,
    Text,
}

fn typed(store: &Store, kind: ObjectKind, name: &str) -> Typed {
    match store.property(kind, name).map(|d| d.kind.as_str()) {
        Some("datetime" | "date") => Typed::Time,
        Some("number") => Typed::Number,
        Some("enumeration" | "bool") => Typed::Enumeration,
        _ => Typed::Text,
    }
}

fn compare(kind: Typed, left: &str, right: &str) -> Option<Ordering> {
    match kind {
        Typed::Time => Some(parse_ms(left)?.cmp(&parse_ms(right)?)),
        Typed::Number => left
            .trim()
            .parse::<f64>()
            .ok()?
            .partial_cmp(&right.trim().parse::<f64>().ok()?),
        Typed::Enumeration => Some(left.cmp(right)),
        Typed::Text => Some(left.to_lowercase().cmp(&right.to_lowercase())),
    }
}

/// A record's value for sorting, computed once per record. Missing values sort last.
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Number(f64),
    Text(String),
    Missing,
}

fn sort_key(
    store: &Store,
    kind: ObjectKind,
    record: &Record,
    property: &str,
    typed: Typed,
) -> SortKey {
    if typed == Typed::Time
        && let Some(ms) = record.time_value(property)
    {
        return SortKey::Number(ms as f64);
    }
    let Some(value) = store
        .value(kind, record, property)
        .filter(|v| !v.is_empty())
    else {
        return SortKey::Missing;
    };
    match typed {
        Typed::Time => parse_ms(&value).map_or(SortKey::Missing, |ms| SortKey::Number(ms as f64)),
        Typed::Number => value
            .trim()
            .parse()
            .map_or(SortKey::Missing, SortKey::Number),
        Typed::Enumeration => SortKey::Text(value),
        Typed::Text => SortKey::Text(value.to_lowercase()),
    }
}

fn tokens(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

fn token_matches(pattern: &str, token: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return token == pattern || token.split(['.', '@']).any(|t| t == pattern);
    }
    let mut rest = token;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    true
}

/// A filter checked against the store before evaluation.
struct Compiled {
    filter: Filter,
    typed: Typed,
    association: Option<ObjectKind>,
}

fn compile(store: &Store, kind: ObjectKind, filter: &Filter) -> Result<Compiled, ApiError> {
    const OPERATORS: &[&str] = &[
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    ];
    if !OPERATORS.contains(&filter.operator.as_str()) {
        return Err(ApiError::validation(format!(
            "Invalid operator {} for property {}",
            filter.operator, filter.property_name
        )));
    }
    let association = filter
        .property_name
        .strip_prefix("associations.")
        .map(|t| {
            ObjectKind::parse(t)
                .ok_or_else(|| ApiError::validation(format!("Unknown object type {t}")))
        })
        .transpose()?;
    if association.is_none() && !store.is_live_property(kind, &filter.property_name) {
        return Err(ApiError::validation(format!(
            "There was a problem with the request: property {} does not exist",
            filter.property_name
        ))
        .with("context", json!({ "propertyName": [filter.property_name] })));
    }
    let needs_value = !matches!(
        filter.operator.as_str(),
        "HAS_PROPERTY" | "NOT_HAS_PROPERTY" | "IN" | "NOT_IN"
    );
    if needs_value && filter.value.is_none() {
        return Err(ApiError::validation(format!(
            "Filter on {} with operator {} needs a value",
            filter.property_name, filter.operator
        )));
    }
    Ok(Compiled {
        filter: filter.clone(),
        typed: typed(store, kind, &filter.property_name),
        association,
    })
}

fn matches(store: &Store, kind: ObjectKind, record: &Record, c: &Compiled) -> bool {
    let f = &c.filter;
    let target = f.value.as_ref().map(text).unwrap_or_default();
    if let Some(other) = c.association {
        let linked = if other == kind {
            Vec::new()
        } else {
            store.associated(kind, record.id)
        };
        let hit = linked.iter().any(|id| id.to_string() == target);
        return match f.operator.as_str() {
            "NEQ" => !hit,
            "HAS_PROPERTY" => !linked.is_empty(),
            "NOT_HAS_PROPERTY" => linked.is_empty(),
            "IN" => f
                .values
                .iter()
                .flatten()
                .any(|v| linked.iter().any(|id| id.to_string() == text(v))),
            _ => hit,
        };
    }
    let actual = store.value(kind, record, &f.property_name);
    let actual_ms = (c.typed == Typed::Time)
        .then(|| {
            record
                .time_value(&f.property_name)
                .or_else(|| actual.as_deref().and_then(parse_ms))
        })
        .flatten();
    let cmp = |expected: &str| match c.typed {
        Typed::Time => Some(actual_ms?.cmp(&parse_ms(expected)?)),
        _ => actual
            .as_deref()
            .and_then(|a| compare(c.typed, a, expected)),
    };
    let in_values = || {
        f.values
            .iter()
            .flatten()
            .any(|v| cmp(&text(v)) == Some(Ordering::Equal))
    };
    match f.operator.as_str() {
        "EQ" => cmp(&target) == Some(Ordering::Equal),
        "NEQ" => cmp(&target) != Some(Ordering::Equal),
        "LT" => cmp(&target) == Some(Ordering::Less),
        "LTE" => matches!(cmp(&target), Some(Ordering::Less | Ordering::Equal)),
        "GT" => cmp(&target) == Some(Ordering::Greater),
        "GTE" => matches!(cmp(&target), Some(Ordering::Greater | Ordering::Equal)),
        "BETWEEN" => {
            let high = f.high_value.as_ref().map(text).unwrap_or_default();
            matches!(cmp(&target), Some(Ordering::Greater | Ordering::Equal))
                && matches!(cmp(&high), Some(Ordering::Less | Ordering::Equal))
        }
        "IN" => in_values(),
        "NOT_IN" => !in_values(),
        "HAS_PROPERTY" => actual.is_some_and(|a| !a.is_empty()),
        "NOT_HAS_PROPERTY" => actual.is_none_or(|a| a.is_empty()),
        "CONTAINS_TOKEN" => actual.is_some_and(|a| tokens(&a).any(|t| token_matches(&target, &t))),
        "NOT_CONTAINS_TOKEN" => {
            !actual.is_some_and(|a| tokens(&a).any(|t| token_matches(&target, &t)))
        }
        _ => false,
    }
}

fn free_text_fields(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::Companies => &["name", "domain", "website", "phone"],
        ObjectKind::Contacts => &["firstname", "lastname", "email", "phone", "company"],
    }
}

fn matches_query(store: &Store, kind: ObjectKind, record: &Record, query: &str) -> bool {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    words.iter().all(|word| {
        free_text_fields(kind).iter().any(|field| {
            store.value(kind, record, field).is_some_and(|v| {
                tokens(&v).any(|t| t.starts_with(word.as_str()))
                    || v.to_lowercase().contains(word.as_str())
            })
        })
    })
}

fn validate_shape(request: &SearchRequest) -> Result<(), ApiError> {
    let total: usize = request.filter_groups.iter().map(|g| g.filters.len()).sum();
    if request.filter_groups.len() > MAX_GROUPS {
        return Err(ApiError::validation(format!(
            "Too many filter groups: {} given, at most {MAX_GROUPS} are allowed.",
            request.filter_groups.len()
        )));
    }
    if let Some(group) = request
        .filter_groups
        .iter()
        .find(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
    {
        return Err(ApiError::validation(format!(
            "Too many filters in a group: {} given, at most {MAX_FILTERS_PER_GROUP} are allowed.",
            group.filters.len()
        )));
    }
    if total > MAX_FILTERS {
        return Err(ApiError::validation(format!(
            "Too many filters: {total} given, at most {MAX_FILTERS} are allowed in total."
        )));
    }
    Ok(())
}

/// Runs a search; the response body of a 200.
pub fn run(
    store: &Store,
    kind: ObjectKind,
    request: &SearchRequest,
    index_lag_ms: u64,
) -> Result<Value, ApiError> {
    validate_shape(request)?;
    let limit = number_field(request.limit.as_ref(), "limit", 10)?;
    if limit > MAX_LIMIT {
        return Err(ApiError::validation(format!(
            "limit must be at most {MAX_LIMIT}, got {limit}"
        )));
    }
    let limit = limit.max(1);
    let offset = number_field(request.after.as_ref(), "after", 0)?;
    if offset + limit > RESULT_CAP {
        return Err(ApiError::validation(format!(
            "Search results are limited to {RESULT_CAP}: after ({offset}) + limit ({limit}) may not exceed {RESULT_CAP}."
        )));
    }
    let groups: Vec<Vec<Compiled>> = request
        .filter_groups
        .iter()
        .map(|g| {
            g.filters
                .iter()
                .map(|f| compile(store, kind, f))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let visible_before = now_ms() - index_lag_ms as i64;
    let query = request
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    let mut hits: Vec<&Record> = store
        .records(kind)
        .values()
        .filter(|r| !r.is_archived())
        .filter(|r| index_lag_ms == 0 || r.updated_ms.max(r.created_ms) <= visible_before)
        .filter(|r| {
            groups.is_empty()
                || groups
                    .iter()
                    .any(|g| g.iter().all(|c| matches(store, kind, r, c)))
        })
        .filter(|r| query.is_none_or(|q| matches_query(store, kind, r, q)))
        .collect();
    if let Some((property, descending)) = request.sorts.first().map(Sort::parts) {
        let typed = typed(store, kind, &property);
        let mut keyed: Vec<(SortKey, &Record)> = hits
            .into_iter()
            .map(|r| (sort_key(store, kind, r, &property, typed), r))
            .collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            let order = match (ka, kb) {
                (SortKey::Missing, SortKey::Missing) => Ordering::Equal,
                (_, SortKey::Missing) => Ordering::Less,
                (SortKey::Missing, _) => Ordering::Greater,
                (x, y) => {
                    let order = x.partial_cmp(y).unwrap_or(Ordering::Equal);
                    if descending { order.reverse() } else { order }
                }
            };
            order.then(a.id.cmp(&b.id))
        });
        hits = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| store.render(kind, r, request.properties.as_deref()))
        .collect();
    let mut body = json!({ "total": total, "results": results });
    let next = offset + limit;
    if next < total {
        body["paging"] = json!({ "next": { "after": next.to_string() } });
    }
    Ok(body)
}

pub async fn search(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = readable(&granted, &object_type)?;
    if String::from_utf8_lossy(&body).chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::validation(format!(
            "The request body is too long: at most {MAX_BODY_CHARS} characters are allowed."
        )));
    }
    let request: SearchRequest = if body.is_empty() {
        SearchRequest::default()
    } else {
        parse_json(&body)?
    };
    let world = shared.lock();
    run(
        &world.store,
        kind,
        &request,
        world.config.faults.search_index_lag_ms,
    )
    .map(Json)
}
