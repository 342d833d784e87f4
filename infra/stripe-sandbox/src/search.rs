//! `GET /v1/customers/search`: a small subset of Stripe's query language, enough for
//! matching customers: `email:'x'`, `name~'sub'`, `metadata['k']:'v'`, `created>N`, `phone:'x'`,
//! joined by all-`AND` or all-`OR`. Responses are `search_result` pages with `next_page`.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::form::Params;
use crate::model::Customer;
use crate::render::{self, View};
use crate::store::Account;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    Contains,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    field: String,
    metadata_key: Option<String>,
    op: Op,
    value: String,
}

fn bad_query(query: &str) -> ApiError {
    ApiError::invalid_param("query", format!("Invalid search query: {query}"))
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
        .unwrap_or(v)
}

fn parse_clause(text: &str, query: &str) -> Result<Clause, ApiError> {
    let text = text.trim();
    let pos = text
        .find([':', '~', '>', '<'])
        .ok_or_else(|| bad_query(query))?;
    let (lhs, rest) = text.split_at(pos);
    let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
        (Op::Gte, v)
    } else if let Some(v) = rest.strip_prefix("<=") {
        (Op::Lte, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else if let Some(v) = rest.strip_prefix('~') {
        (Op::Contains, v)
    } else {
        (Op::Eq, &rest[1..])
    };
    let (field, metadata_key) = match lhs.strip_prefix("metadata[") {
        Some(k) => (
            "metadata".to_owned(),
            Some(unquote(k.trim_end_matches(']')).to_owned()),
        ),
        None => (lhs.trim().to_owned(), None),
    };
    if !matches!(
        field.as_str(),
        "email" | "name" | "phone" | "created" | "metadata"
    ) {
        return Err(ApiError::invalid_param(
            "query",
            format!("Field `{field}` is an unsupported search field for resource `customers`."),
        ));
    }
    let value = unquote(value).to_owned();
    if op == Op::Contains && value.chars().count() < 3 {
        return Err(ApiError::invalid_param(
            "query",
            "Substring matching requires at least 3 characters.",
        ));
    }
    Ok(Clause {
        field,
        metadata_key,
        op,
        value,
    })
}

fn matches(c: &Customer, clause: &Clause) -> bool {
    let text = match clause.field.as_str() {
        "email" => c.email.clone(),
        "name" => c.name.clone(),
        "phone" => c.phone.clone(),
        "metadata" => clause
            .metadata_key
            .as_ref()
            .and_then(|k| c.metadata.get(k).cloned()),
        "created" => {
            let Ok(v) = clause.value.parse::<i64>() else {
                return false;
            };
            return match clause.op {
                Op::Eq => c.created == v,
                Op::Gt => c.created > v,
                Op::Gte => c.created >= v,
                Op::Lt => c.created < v,
                Op::Lte => c.created <= v,
                Op::Contains => false,
            };
        }
        _ => None,
    };
    let Some(text) = text else {
        return false;
    };
    match clause.op {
        Op::Eq => text.eq_ignore_ascii_case(&clause.value),
        Op::Contains => text.to_lowercase().contains(&clause.value.to_lowercase()),
        _ => false,
    }
}

pub fn search_customers(acct: &Account, view: &View, params: &Params) -> Result<Value, ApiError> {
    let query = params
        .str("query")
        .ok_or_else(|| ApiError::missing_param("query"))?;
    let (clauses_text, any): (Vec<&str>, bool) =
        if query.contains(" OR ") && query.contains(" AND ") {
            return Err(ApiError::invalid_param(
                "query",
                "Search queries cannot mix AND and OR.",
            ));
        } else if query.contains(" OR ") {
            (query.split(" OR ").collect(), true)
        } else {
            (query.split(" AND ").collect(), false)
        };
    if clauses_text.len() > 10 {
        return Err(ApiError::invalid_param(
            "query",
            "Search queries can have at most 10 clauses.",
        ));
    }
    let clauses = clauses_text
        .iter()
        .map(|t| parse_clause(t, query))
        .collect::<Result<Vec<_>, _>>()?;
    let limit = usize::try_from(params.int("limit")?.unwrap_or(10).clamp(1, 100)).unwrap_or(10);
    let offset = match params.str("page") {
        None | Some("") => 0,
        Some(p) => p
            .strip_prefix("page_")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid_param("page", "Invalid page token"))?,
    };
    let mut hits: Vec<&Customer> = acct
        .customers
        .iter()
        .filter(|c| !c.deleted)
        .filter(|c| {
            if any {
                clauses.iter().any(|cl| matches(c, cl))
            } else {
                clauses.iter().all(|cl| matches(c, cl))
            }
        })
        .collect();
    hits.sort_by_key(|c| std::cmp::Reverse((c.created, c.seq)));
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| render::customer(acct, c, view))
        .collect();
    let has_more = hits.len() > offset + limit;
    Ok(json!({
        "object": "search_result",
        "url": "/v1/customers/search",
        "has_more": has_more,
        "next_page": if has_more { json!(format!("page_{}", offset + limit)) } else { Value::Null },
        "data": page
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_parse_fields_operators_and_quoted_values() {
        let c = parse_clause("metadata['hubspot_id']:'123'", "q").unwrap();
        assert_eq!(
            (
                c.field.as_str(),
                c.metadata_key.as_deref(),
                c.value.as_str()
            ),
            ("metadata", Some("hubspot_id"), "123")
        );
        assert_eq!(parse_clause("created>=17", "q").unwrap().op, Op::Gte);
        assert_eq!(parse_clause("name~\"acme\"", "q").unwrap().op, Op::Contains);
        assert!(parse_clause("name~'ab'", "q").is_err());
        assert!(parse_clause("balance:1", "q").is_err());
    }
}
