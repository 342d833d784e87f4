use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ParseError, Provider, SyncDirection};

/// The kind of record at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// HubSpot company -> our customer.
    Company,
    /// HubSpot contact -> our contact.
    Contact,
    /// Stripe customer -> the billing fields of our customer.
    BillingCustomer,
    /// Stripe subscription -> the MRR of its customer.
    Subscription,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::Company,
        ObjectKind::Contact,
        ObjectKind::BillingCustomer,
        ObjectKind::Subscription,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Company => "company",
            ObjectKind::Contact => "contact",
            ObjectKind::BillingCustomer => "billing_customer",
            ObjectKind::Subscription => "subscription",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| ParseError::new("object kind", format!("{raw:?} is unknown")))
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of ours that a provider property can be mapped onto.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TargetField {
    Name,
    Domain,
    Owner,
    /// Annual recurring revenue, money in minor units.
    Arr,
    Email,
    FirstName,
    LastName,
    Phone,
    JobTitle,
    /// A tenant-defined field, kept as text: `custom:<key>`.
    Custom(String),
}

impl TargetField {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Ok(match raw {
            "name" => TargetField::Name,
            "domain" => TargetField::Domain,
            "owner" => TargetField::Owner,
            "arr" => TargetField::Arr,
            "email" => TargetField::Email,
            "first_name" => TargetField::FirstName,
            "last_name" => TargetField::LastName,
            "phone" => TargetField::Phone,
            "job_title" => TargetField::JobTitle,
            other => match other.strip_prefix("custom:") {
                Some(key)
                    if !key.is_empty()
                        && key.len() <= 64
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    TargetField::Custom(key.to_owned())
                }
                _ => {
                    return Err(ParseError::new(
                        "target field",
                        format!(
                            "{raw:?} is not one of name, domain, owner, arr, email, first_name, \
                             last_name, phone, job_title or custom:<key>"
                        ),
                    ));
                }
            },
        })
    }

    pub fn as_string(&self) -> String {
        match self {
            TargetField::Name => "name".into(),
            TargetField::Domain => "domain".into(),
            TargetField::Owner => "owner".into(),
            TargetField::Arr => "arr".into(),
            TargetField::Email => "email".into(),
            TargetField::FirstName => "first_name".into(),
            TargetField::LastName => "last_name".into(),
            TargetField::Phone => "phone".into(),
            TargetField::JobTitle => "job_title".into(),
            TargetField::Custom(key) => format!("custom:{key}"),
        }
    }
}

impl TryFrom<String> for TargetField {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Self::parse(&raw)
    }
}

impl From<TargetField> for String {
    fn from(f: TargetField) -> String {
        f.as_string()
    }
}

/// One mapped field: provider property -> our field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMappingEntry {
    pub object: ObjectKind,
    pub source_property: String,
    pub target: TargetField,
    /// The property's type at the provider when the mapping was last validated
    /// (HubSpot `string`, `number`, `enumeration`, ...). A different type later means
    /// the mapping broke (`field_mapping_invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// Narrows the connection's direction for this field (a two-way connection can keep
    /// one field inbound only); never widens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<SyncDirection>,
}

/// Which provider properties are written to which of our fields. Only mapped fields
/// are ever written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMapping {
    pub entries: Vec<FieldMappingEntry>,
}

impl FieldMapping {
    /// The default map: HubSpot `name`, `domain`, `hubspot_owner_id`, `annualrevenue`
    /// for companies and `email`, `firstname`, `lastname`, `phone`, `jobtitle` for contacts.
    /// Stripe's fields are fixed by the MRR computation, so its map is empty.
    pub fn default_for(provider: Provider) -> Self {
        let entry = |object, prop: &str, target, ty: &str| FieldMappingEntry {
            object,
            source_property: prop.to_owned(),
            target,
            source_type: Some(ty.to_owned()),
            direction: None,
        };
        let entries = match provider {
            Provider::Hubspot => vec![
                entry(ObjectKind::Company, "name", TargetField::Name, "string"),
                entry(ObjectKind::Company, "domain", TargetField::Domain, "string"),
                entry(
                    ObjectKind::Company,
                    "hubspot_owner_id",
                    TargetField::Owner,
                    "enumeration",
                ),
                entry(
                    ObjectKind::Company,
                    "annualrevenue",
                    TargetField::Arr,
                    "number",
                ),
                entry(ObjectKind::Contact, "email", TargetField::Email, "string"),
                entry(
                    ObjectKind::Contact,
                    "firstname",
                    TargetField::FirstName,
                    "string",
                ),
                entry(
                    ObjectKind::Contact,
                    "lastname",
                    TargetField::LastName,
                    "string",
                ),
                entry(ObjectKind::Contact, "phone", TargetField::Phone, "string"),
                entry(
                    ObjectKind::Contact,
                    "jobtitle",
                    TargetField::JobTitle,
                    "string",
                ),
            ],
            Provider::Stripe => Vec::new(),
        };
        Self { entries }
    }

    pub fn for_object(&self, object: ObjectKind) -> impl Iterator<Item = &FieldMappingEntry> {
        self.entries.iter().filter(move |e| e.object == object)
    }

    /// The provider properties to request for one object kind.
    pub fn source_properties(&self, object: ObjectKind) -> Vec<&str> {
        self.for_object(object)
            .map(|e| e.source_property.as_str())
            .collect()
    }
}

/// Which provider companies are mirrored. Companies outside it are never mirrored, and
/// one that leaves it is archived like a deletion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CompanyFilter {
    /// Every company.
    #[default]
    All,
    /// Members of one HubSpot list (the recommended filter).
    List { list_id: String },
    /// Companies whose `lifecyclestage` is one of these.
    LifecycleStage { stages: Vec<String> },
    /// Companies in this pipeline (`hs_pipeline`), optionally only some of its stages.
    Pipeline {
        pipeline_id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stage_ids: Vec<String>,
    },
}

impl CompanyFilter {
    /// What is wrong with the filter before the provider is asked: every id is a plain
    /// token (it goes into provider URLs), a list id is a number, and a stage filter names
    /// at least one stage.
    pub fn shape_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut token = |what: &str, id: &str| {
            let plain = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !plain {
                problems.push(format!(
                    "{what} {id:?} is not an id (letters, digits, '_' and '-', at most 64)"
                ));
            }
            plain
        };
        match self {
            CompanyFilter::All => {}
            CompanyFilter::List { list_id } => {
                if token("list", list_id) && !list_id.bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!("list {list_id:?} is not a list id (a number)"));
                }
            }
            CompanyFilter::LifecycleStage { stages } => {
                for stage in stages {
                    token("lifecycle stage", stage);
                }
                if stages.is_empty() {
                    problems.push("a lifecycle stage filter names at least one stage".into());
                }
            }
            CompanyFilter::Pipeline {
                pipeline_id,
                stage_ids,
            } => {
                token("pipeline", pipeline_id);
                for stage in stage_ids {
                    token("pipeline stage", stage);
                }
            }
        }
        problems
    }

    /// What names the filter uses that `choices` does not offer.
    pub fn unknown_names(&self, choices: &FilterChoices) -> Vec<String> {
        match self {
            CompanyFilter::All => Vec::new(),
            CompanyFilter::List { list_id } => {
                if choices.lists.iter().any(|l| &l.id == list_id) {
                    Vec::new()
                } else {
                    vec![format!(
                        "list {list_id} does not exist or holds no companies"
                    )]
                }
            }
            CompanyFilter::LifecycleStage { stages } => stages
                .iter()
                .filter(|s| !choices.lifecycle_stages.iter().any(|o| &o.id == *s))
                .map(|s| format!("lifecycle stage {s:?} does not exist"))
                .collect(),
            CompanyFilter::Pipeline {
                pipeline_id,
                stage_ids,
            } => match choices.pipelines.iter().find(|p| &p.id == pipeline_id) {
                None => vec![format!("pipeline {pipeline_id:?} does not exist")],
                Some(pipeline) => stage_ids
                    .iter()
                    .filter(|s| !pipeline.stages.iter().any(|o| &o.id == *s))
                    .map(|s| format!("stage {s:?} is not a stage of pipeline {pipeline_id:?}"))
                    .collect(),
            },
        }
    }
}

/// What an account offers to filter companies by, read live from the provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChoices {
    /// Lists of companies.
    pub lists: Vec<FilterChoice>,
    pub lifecycle_stages: Vec<FilterChoice>,
    /// Company pipelines, each with its stages.
    pub pipelines: Vec<PipelineChoice>,
}

/// One pickable value: its id (what the filter stores) and its label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChoice {
    pub id: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineChoice {
    pub id: String,
    pub label: String,
    pub stages: Vec<FilterChoice>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ids_must_be_plain_tokens_and_list_ids_numbers() {
        let list = |id: &str| CompanyFilter::List { list_id: id.into() };
        assert!(list("987654").shape_problems().is_empty());
        for bad in ["../../oauth/v1/access-tokens/x", "", "12 3", "abc", "1?x=2"] {
            assert!(!list(bad).shape_problems().is_empty(), "{bad}");
        }
        let stages = |s: &[&str]| CompanyFilter::LifecycleStage {
            stages: s.iter().map(|s| s.to_string()).collect(),
        };
        assert!(stages(&["customer", "lead"]).shape_problems().is_empty());
        assert!(!stages(&[]).shape_problems().is_empty());
        assert!(!stages(&["a/b"]).shape_problems().is_empty());
        let pipeline = CompanyFilter::Pipeline {
            pipeline_id: "default".into(),
            stage_ids: vec!["x%2F".into()],
        };
        assert_eq!(pipeline.shape_problems().len(), 1);
        assert!(CompanyFilter::All.shape_problems().is_empty());
    }

    #[test]
    fn unknown_names_are_each_named() {
        let choice = |id: &str| FilterChoice {
            id: id.into(),
            label: id.to_uppercase(),
        };
        let choices = FilterChoices {
            lists: vec![choice("12")],
            lifecycle_stages: vec![choice("lead"), choice("customer")],
            pipelines: vec![PipelineChoice {
                id: "p1".into(),
                label: "P1".into(),
                stages: vec![choice("s1")],
            }],
        };
        let stages = CompanyFilter::LifecycleStage {
            stages: vec!["lead".into(), "Nope".into()],
        };
        assert_eq!(
            stages.unknown_names(&choices),
            vec!["lifecycle stage \"Nope\" does not exist".to_owned()]
        );
        let list = |id: &str| CompanyFilter::List { list_id: id.into() };
        assert!(list("12").unknown_names(&choices).is_empty());
        assert_eq!(list("13").unknown_names(&choices).len(), 1);
        let pipeline = |p: &str, s: &[&str]| CompanyFilter::Pipeline {
            pipeline_id: p.into(),
            stage_ids: s.iter().map(|s| s.to_string()).collect(),
        };
        assert!(pipeline("p1", &["s1"]).unknown_names(&choices).is_empty());
        assert_eq!(pipeline("p1", &["s2"]).unknown_names(&choices).len(), 1);
        assert_eq!(pipeline("p2", &[]).unknown_names(&choices).len(), 1);
        assert!(CompanyFilter::All.unknown_names(&choices).is_empty());
    }

    #[test]
    fn target_fields_round_trip_through_text() {
        for raw in ["name", "arr", "job_title", "custom:tier"] {
            let parsed = TargetField::parse(raw).expect("valid");
            assert_eq!(parsed.as_string(), raw);
        }
        for bad in ["", "custom:", "custom:has space", "Name"] {
            assert!(TargetField::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_hubspot_mapping_names_the_documented_properties() {
        let m = FieldMapping::default_for(Provider::Hubspot);
        assert_eq!(
            m.source_properties(ObjectKind::Company),
            vec!["name", "domain", "hubspot_owner_id", "annualrevenue"]
        );
    }

    #[test]
    fn company_filter_json_is_tagged() {
        let f: CompanyFilter =
            serde_json::from_str(r#"{"type":"list","list_id":"42"}"#).expect("valid");
        assert_eq!(
            f,
            CompanyFilter::List {
                list_id: "42".into()
            }
        );
        assert!(serde_json::from_str::<CompanyFilter>(r#"{"type":"nope"}"#).is_err());
    }
}
