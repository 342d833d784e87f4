//! Property values checked as HubSpot checks a write: every invalid property of the
//! request is reported at once, in the `VALIDATION_ERROR` body HubSpot sends today (the
//! details inside `message` and again in `errors[]`).

use serde_json::{Value, json};

use time::{Date, Month};

use crate::clock::{iso, parse_ms};
use crate::error::ApiError;
use crate::model::{ObjectKind, PropertyDef};
use crate::store::{Props, Store};

/// One property a write may not set as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub name: String,
    pub code: &'static str,
    pub message: String,
    pub value: String,
}

impl Invalid {
    fn new(name: &str, code: &'static str, message: String, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            code,
            message,
            value: value.to_owned(),
        }
    }
}

/// What is wrong with `props` for a write to a `kind` record; empty when nothing is.
pub fn invalid_properties(store: &Store, kind: ObjectKind, props: &Props) -> Vec<Invalid> {
    props
        .iter()
        .filter_map(|(name, value)| match store.property(kind, name) {
            Some(def) if !def.archived => invalid_value(kind, def, value),
            _ => Some(Invalid::new(
                name,
                "PROPERTY_DOESNT_EXIST",
                format!("Property \"{name}\" does not exist"),
                value,
            )),
        })
        .collect()
}

fn invalid_value(kind: ObjectKind, def: &PropertyDef, value: &str) -> Option<Invalid> {
    let name = def.name.as_str();
    if def.calculated || def.modification_metadata.read_only_value {
        let what = if def.calculated {
            "a calculated property"
        } else {
            "a read-only property"
        };
        return Some(Invalid::new(
            name,
            "READ_ONLY_VALUE",
            format!("\"{name}\" is {what}; its value cannot be set."),
            value,
        ));
    }
    // An empty value clears the property, whatever its type.
    if value.is_empty() {
        return None;
    }
    if def.kind != "string" && value.trim() != value {
        return Some(Invalid::new(
            name,
            "LEADING_TRAILING_WHITESPACE",
            format!("\"{value}\" includes leading or trailing whitespace."),
            value,
        ));
    }
    match def.kind.as_str() {
        "enumeration" | "bool" => invalid_option(def, value),
        "number" if !is_number(value) => Some(Invalid::new(
            name,
            "INVALID_INTEGER",
            format!("{value} was not a valid number."),
            value,
        )),
        "date" => invalid_date(name, value),
        "datetime" if parse_ms(value).is_none() => Some(Invalid::new(
            name,
            "INVALID_LONG",
            format!(
                "{value} is not a valid datetime: write epoch milliseconds or an ISO-8601 timestamp"
            ),
            value,
        )),
        "string" if kind == ObjectKind::Contacts && name == "email" && !is_email(value) => {
            Some(Invalid::new(
                name,
                "INVALID_EMAIL",
                format!("Email address {value} is invalid"),
                value,
            ))
        }
        _ => None,
    }
}

/// Every `;`-separated choice of a checkbox, or the whole value otherwise, must be one of
/// the options, exactly as spelled.
fn invalid_option(def: &PropertyDef, value: &str) -> Option<Invalid> {
    let allowed: Vec<String> = if def.kind == "bool" {
        vec!["true".to_owned(), "false".to_owned()]
    } else {
        def.options.iter().map(|o| o.value.clone()).collect()
    };
    let chosen: Vec<&str> = if def.field_type == "checkbox" {
        value.split(';').collect()
    } else {
        vec![value]
    };
    let wrong = chosen
        .into_iter()
        .find(|c| !allowed.iter().any(|a| a == c))?;
    let listed: Vec<String> = def
        .options
        .iter()
        .map(|o| {
            format!(
                "label: \"{}\"\nvalue: \"{}\"\ndisplay_order: {}\nhidden: {}\nread_only: false\n",
                o.label, o.value, o.display_order, o.hidden
            )
        })
        .collect();
    Some(Invalid::new(
        &def.name,
        "INVALID_OPTION",
        format!(
            "{wrong} was not one of the allowed options: [{}]",
            listed.join(", ")
        ),
        value,
    ))
}

const DAY_MS: i64 = 86_400_000;

/// A date property takes epoch milliseconds at midnight UTC or an ISO-8601 date.
fn invalid_date(name: &str, value: &str) -> Option<Invalid> {
    let ms = iso_date_ms(value).or_else(|| parse_ms(value));
    let message = match ms {
        Some(ms) if ms.rem_euclid(DAY_MS) == 0 => return None,
        Some(ms) => format!("{value} is at {} UTC, not midnight!", &iso(ms)[11..23]),
        None => format!(
            "{value} is not a valid date: write epoch milliseconds at midnight UTC or YYYY-MM-DD"
        ),
    };
    Some(Invalid::new(name, "INVALID_DATE", message, value))
}

/// `YYYY-MM-DD` as epoch milliseconds at that day's midnight UTC.
fn iso_date_ms(value: &str) -> Option<i64> {
    let mut parts = value.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// A plain decimal: digits with at most one point and an optional sign (no commas, no
/// exponent, as HubSpot's contacts refuse them).
fn is_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let mut parts = digits.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    parts.next().is_none()
        && !(whole.is_empty() && fraction.is_none_or(str::is_empty))
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit()))
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && !value.contains(char::is_whitespace)
        && labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// The 400 for `invalid` (not empty), as HubSpot answers a write with bad values.
pub fn validation_error(invalid: &[Invalid], portal_id: u64) -> ApiError {
    let details: Vec<Value> = invalid
        .iter()
        .map(|i| {
            json!({
                "isValid": false,
                "message": i.message,
                "error": i.code,
                "name": i.name,
                "localizedErrorMessage": i.message,
                "propertyValue": i.value,
                "portalId": portal_id,
            })
        })
        .collect();
    let errors: Vec<Value> = invalid
        .iter()
        .map(|i| {
            json!({
                "message": i.message,
                "code": i.code,
                "context": { "propertyName": [i.name] },
            })
        })
        .collect();
    ApiError::validation(format!(
        "Property values were not valid: {}",
        Value::Array(details)
    ))
    .with("errors", Value::Array(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_decimals() {
        for good in ["0", "17", "-3", "10.5", ".5", "5."] {
            assert!(is_number(good), "{good}");
        }
        for bad in [
            "",
            "-",
            ".",
            "1,000",
            "1.2.3",
            "1e5",
            "ten",
            "1.4210854715202004e-14",
        ] {
            assert!(!is_number(bad), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(is_email("ada@example.com"));
        assert!(is_email("a+x@b.co"));
        for bad in [
            "example.lcom",
            "a@b",
            "@b.com",
            "a@b.c",
            "a b@c.com",
            "a@b..com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn dates_are_midnight_utc_and_datetimes_any_instant() {
        for good in ["1430438400000", "2015-05-01", "2015-05-01T00:00:00Z"] {
            assert_eq!(invalid_date("d", good), None, "{good}");
        }
        let late = invalid_date("closedate", "1635535865").expect("not midnight");
        assert_eq!(late.code, "INVALID_DATE");
        assert_eq!(
            late.message,
            "1635535865 is at 22:18:55.865 UTC, not midnight!"
        );
        for bad in ["2015-13-01", "May 1st", "2015-05-01T10:00:00Z"] {
            assert!(invalid_date("d", bad).is_some(), "{bad}");
        }
        assert!(parse_ms("2015-05-01T10:00:00Z").is_some());
        assert!(parse_ms("2025-10-23").is_none(), "a datetime needs a time");
    }
}
