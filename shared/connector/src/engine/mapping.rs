//! Provider record -> the values of our fields, through the connection's field mapping,
//! checked against the provider's schema. A broken field is reported and skipped; the
//! rest of the record still syncs.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::model::{
    Contact, Currency, Customer, Domain, FieldMapping, FieldMappingEntry, Money, ObjectKind,
    SyncDirection, TargetField,
};
use crate::provider::{PropertySchema, SourceRecord};

/// The provider's properties of one object kind, by name.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    properties: HashMap<String, PropertySchema>,
}

impl Schema {
    pub fn new(properties: Vec<PropertySchema>) -> Self {
        Self {
            properties: properties
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&PropertySchema> {
        self.properties.get(name)
    }
}

/// Why one mapped field was skipped (`field_mapping_invalid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub property: String,
    pub target: TargetField,
    pub reason: String,
}

/// Checks one mapping entry against the schema: the property must exist and keep the
/// type it had when the mapping was validated.
pub fn check_entry(entry: &FieldMappingEntry, schema: &Schema) -> Option<FieldProblem> {
    let problem = |reason: String| FieldProblem {
        property: entry.source_property.clone(),
        target: entry.target.clone(),
        reason,
    };
    match schema.get(&entry.source_property) {
        None => Some(problem(format!(
            "property {:?} no longer exists at the provider",
            entry.source_property
        ))),
        Some(found) => match &entry.source_type {
            Some(expected) if *expected != found.property_type => Some(problem(format!(
                "property {:?} changed type from {expected} to {}",
                entry.source_property, found.property_type
            ))),
            _ => None,
        },
    }
}

/// Every problem of a mapping for one object kind (the mapping endpoint's validation).
pub fn validate_mapping(
    mapping: &FieldMapping,
    kind: ObjectKind,
    schema: &Schema,
) -> Vec<FieldProblem> {
    mapping
        .for_object(kind)
        .filter_map(|entry| check_entry(entry, schema))
        .collect()
}

/// What a mapping's field directions break under a connection's `direction`: a field
/// set wider than its connection, or a read-only property that would be pushed.
pub fn direction_problems(
    mapping: &FieldMapping,
    direction: SyncDirection,
    kind: ObjectKind,
    schema: &Schema,
) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    for entry in mapping.for_object(kind) {
        let problem = |reason: String| FieldProblem {
            property: entry.source_property.clone(),
            target: entry.target.clone(),
            reason,
        };
        if let Some(field) = entry.direction
            && !direction.covers(field)
        {
            problems.push(problem(format!(
                "the field is set to {field} but the connection syncs {direction}: a field can only narrow its connection's direction"
            )));
        }
        let pushed = kind == ObjectKind::Contact && direction.narrowed_by(entry.direction).pushes();
        if pushed
            && schema
                .get(&entry.source_property)
                .is_some_and(|p| p.read_only)
        {
            problems.push(problem(format!(
                "property {:?} is read-only at the provider (calculated or guarded): it can never be written, so set this field to inbound",
                entry.source_property
            )));
        }
    }
    problems
}

/// The mapped values of one record: `None` means the provider has the field empty, which
/// clears ours. Fields that are not mapped are absent and never touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MappedValues {
    pub values: BTreeMap<TargetField, Option<String>>,
    #[serde(skip)]
    pub problems: Vec<FieldProblem>,
}

pub fn map_record(mapping: &FieldMapping, record: &SourceRecord, schema: &Schema) -> MappedValues {
    let mut mapped = MappedValues::default();
    for entry in mapping.for_object(record.kind) {
        if let Some(problem) = check_entry(entry, schema) {
            mapped.problems.push(problem);
            continue;
        }
        let value = record
            .properties
            .get(&entry.source_property)
            .cloned()
            .flatten()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        mapped.values.insert(entry.target.clone(), value);
    }
    mapped
}

/// HubSpot number properties may carry more decimals than a currency's minor unit: keep
/// two, without going through a float.
fn parse_amount(raw: &str, currency: Currency) -> Option<Money> {
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let frac: String = frac.chars().take(2).collect();
    let text = if frac.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{frac}")
    };
    Money::parse_major(&text, currency, 2).ok()
}

/// Writes the mapped values into a customer. Values that do not parse (a domain that is
/// not a host name, revenue that is not a number) are reported as problems and left out.
pub fn apply_to_customer(
    customer: &mut Customer,
    mapped: &MappedValues,
    currency: Currency,
    fallback_name: &str,
) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    for (target, value) in &mapped.values {
        let value = value.as_deref();
        match target {
            TargetField::Name => {
                customer.name = value.unwrap_or(fallback_name).to_owned();
            }
            TargetField::Domain => {
                customer.domain = match value.map(Domain::parse) {
                    None => None,
                    Some(Ok(domain)) => Some(domain),
                    Some(Err(e)) => {
                        problems.push(value_problem(target, &e.to_string()));
                        None
                    }
                };
            }
            TargetField::Owner => customer.owner = value.map(str::to_owned),
            TargetField::Arr => {
                customer.arr = match value {
                    None => None,
                    Some(raw) => match parse_amount(raw, currency) {
                        Some(money) => Some(money),
                        None => {
                            problems
                                .push(value_problem(target, &format!("{raw:?} is not an amount")));
                            None
                        }
                    },
                };
            }
            TargetField::Custom(key) => set_custom(&mut customer.custom, key, value),
            TargetField::Email
            | TargetField::FirstName
            | TargetField::LastName
            | TargetField::Phone
            | TargetField::JobTitle => {
                problems.push(value_problem(
                    target,
                    "is a contact field, not a customer field",
                ));
            }
        }
    }
    problems
}

pub fn apply_to_contact(contact: &mut Contact, mapped: &MappedValues) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    for (target, value) in &mapped.values {
        let owned = value.clone();
        match target {
            TargetField::Email => contact.email = owned,
            TargetField::FirstName => contact.first_name = owned,
            TargetField::LastName => contact.last_name = owned,
            TargetField::Phone => contact.phone = owned,
            TargetField::JobTitle => contact.job_title = owned,
            TargetField::Custom(key) => set_custom(&mut contact.custom, key, value.as_deref()),
            TargetField::Name | TargetField::Domain | TargetField::Owner | TargetField::Arr => {
                problems.push(value_problem(
                    target,
                    "is a customer field, not a contact field",
                ));
            }
        }
    }
    problems
}

fn set_custom(custom: &mut BTreeMap<String, String>, key: &str, value: Option<&str>) {
    match value {
        Some(v) => {
            custom.insert(key.to_owned(), v.to_owned());
        }
        None => {
            custom.remove(key);
        }
    }
}

fn value_problem(target: &TargetField, reason: &str) -> FieldProblem {
    FieldProblem {
        property: String::new(),
        target: target.clone(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provider, SourceId, SourceVersion, TenantId, Timestamp};

    fn schema() -> Schema {
        let p = |name: &str, ty: &str| PropertySchema {
            name: name.into(),
            property_type: ty.into(),
            label: None,
            read_only: false,
        };
        Schema::new(vec![
            p("name", "string"),
            p("domain", "string"),
            p("hubspot_owner_id", "enumeration"),
            p("annualrevenue", "number"),
        ])
    }

    fn company(props: &[(&str, Option<&str>)]) -> SourceRecord {
        SourceRecord {
            kind: ObjectKind::Company,
            id: SourceId::parse("1").unwrap(),
            version: SourceVersion(1),
            archived: false,
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                .collect(),
            associated_companies: vec![],
            merged_from: vec![],
            property_times: Default::default(),
        }
    }

    #[test]
    fn the_default_map_fills_every_customer_field() {
        let mapping = FieldMapping::default_for(Provider::Hubspot);
        let record = company(&[
            ("name", Some("Acme")),
            ("domain", Some("https://www.acme.com/")),
            ("hubspot_owner_id", Some("77")),
            ("annualrevenue", Some("1250000.505")),
        ]);
        let mapped = map_record(&mapping, &record, &schema());
        assert!(mapped.problems.is_empty());
        let mut customer =
            Customer::new(TenantId::parse("t").unwrap(), "", Timestamp::from_millis(0));
        let problems =
            apply_to_customer(&mut customer, &mapped, Currency::parse("USD").unwrap(), "x");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(customer.name, "Acme");
        assert_eq!(
            customer.domain.as_ref().map(Domain::as_str),
            Some("acme.com")
        );
        assert_eq!(customer.owner.as_deref(), Some("77"));
        assert_eq!(customer.arr.map(|m| m.amount_minor), Some(125_000_050));
    }

    #[test]
    fn a_deleted_property_is_skipped_and_the_rest_still_maps() {
        let mapping = FieldMapping::default_for(Provider::Hubspot);
        let mut without_revenue = schema();
        without_revenue.properties.remove("annualrevenue");
        let mapped = map_record(
            &mapping,
            &company(&[("name", Some("Acme"))]),
            &without_revenue,
        );
        assert_eq!(mapped.problems.len(), 1);
        assert_eq!(mapped.problems[0].target, TargetField::Arr);
        assert!(mapped.values.contains_key(&TargetField::Name));
        assert!(!mapped.values.contains_key(&TargetField::Arr));
    }

    #[test]
    fn a_retyped_property_is_reported() {
        let mapping = FieldMapping::default_for(Provider::Hubspot);
        let mut retyped = schema();
        retyped.properties.insert(
            "annualrevenue".into(),
            PropertySchema {
                name: "annualrevenue".into(),
                property_type: "string".into(),
                label: None,
                read_only: false,
            },
        );
        let problems = validate_mapping(&mapping, ObjectKind::Company, &retyped);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].reason.contains("changed type"),
            "{:?}",
            problems[0]
        );
    }

    #[test]
    fn empty_values_clear_fields_and_bad_values_are_problems() {
        let mapping = FieldMapping::default_for(Provider::Hubspot);
        let record = company(&[
            ("name", None),
            ("domain", Some("not a domain")),
            ("annualrevenue", Some("lots")),
        ]);
        let mapped = map_record(&mapping, &record, &schema());
        let mut customer = Customer::new(
            TenantId::parse("t").unwrap(),
            "Old",
            Timestamp::from_millis(0),
        );
        customer.owner = Some("1".into());
        let problems = apply_to_customer(
            &mut customer,
            &mapped,
            Currency::parse("USD").unwrap(),
            "Company 1",
        );
        assert_eq!(customer.name, "Company 1");
        assert_eq!(customer.owner, None);
        assert_eq!(customer.domain, None);
        assert_eq!(problems.len(), 2);
    }
}
