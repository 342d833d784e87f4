//! The property definitions a fresh portal has for companies and contacts
//! (HubSpot's default internal names, plus two custom ones).

use crate::clock::iso;
use crate::model::{ModificationMetadata, ObjectKind, Owner, PropertyDef, PropertyOption};

pub const LIFECYCLE_STAGES: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

pub const INDUSTRIES: &[(&str, &str)] = &[
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("RETAIL", "Retail"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    (
        "MECHANICAL_OR_INDUSTRIAL_ENGINEERING",
        "Mechanical or Industrial Engineering",
    ),
    ("EDUCATION_MANAGEMENT", "Education Management"),
];

pub const LEAD_STATUSES: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
];

pub const COMPANY_TYPES: &[(&str, &str)] = &[
    ("PROSPECT", "Prospect"),
    ("PARTNER", "Partner"),
    ("RESELLER", "Reseller"),
    ("VENDOR", "Vendor"),
    ("OTHER", "Other"),
];

pub const CUSTOMER_TIERS: &[(&str, &str)] = &[
    ("bronze", "Bronze"),
    ("silver", "Silver"),
    ("gold", "Gold"),
    ("platinum", "Platinum"),
];

/// When the default definitions were "created" (fixed, so output is deterministic).
const DEFINED_AT_MS: i64 = 1_577_836_800_000;

struct Spec<'a> {
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    field_type: &'a str,
    group: &'a str,
    options: &'a [(&'a str, &'a str)],
    read_only: bool,
    custom: bool,
}

const fn spec<'a>(name: &'a str, label: &'a str, kind: &'a str, field_type: &'a str) -> Spec<'a> {
    Spec {
        name,
        label,
        kind,
        field_type,
        group: "",
        options: &[],
        read_only: false,
        custom: false,
    }
}

fn options(pairs: &[(&str, &str)]) -> Vec<PropertyOption> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (value, label))| PropertyOption {
            label: (*label).to_owned(),
            value: (*value).to_owned(),
            display_order: i as i32,
            hidden: false,
        })
        .collect()
}

fn build(specs: Vec<Spec<'_>>, default_group: &str, owners: &[Owner]) -> Vec<PropertyDef> {
    let owner_options: Vec<PropertyOption> = owners
        .iter()
        .enumerate()
        .map(|(i, o)| PropertyOption {
            label: format!("{} {}", o.first_name, o.last_name),
            value: o.id.clone(),
            display_order: i as i32,
            hidden: false,
        })
        .collect();
    specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let opts = if s.name == "hubspot_owner_id" {
                owner_options.clone()
            } else {
                options(s.options)
            };
            PropertyDef {
                name: s.name.to_owned(),
                label: s.label.to_owned(),
                kind: s.kind.to_owned(),
                field_type: s.field_type.to_owned(),
                group_name: if s.group.is_empty() {
                    default_group.to_owned()
                } else {
                    s.group.to_owned()
                },
                description: format!("{} of the record", s.label),
                options: opts,
                display_order: i as i32,
                calculated: s.name == "num_associated_contacts",
                external_options: s.name == "hubspot_owner_id",
                has_unique_value: s.name == "hs_object_id",
                hidden: false,
                hubspot_defined: !s.custom,
                form_field: !s.read_only,
                archived: false,
                archived_at: None,
                modification_metadata: ModificationMetadata {
                    archivable: s.custom,
                    read_only_definition: !s.custom,
                    read_only_value: s.read_only,
                },
                created_at: iso(DEFINED_AT_MS),
                updated_at: iso(DEFINED_AT_MS),
            }
        })
        .collect()
}

fn with<'a>(mut s: Spec<'a>, f: impl FnOnce(&mut Spec<'a>)) -> Spec<'a> {
    f(&mut s);
    s
}

fn read_only(s: Spec<'_>) -> Spec<'_> {
    with(s, |s| s.read_only = true)
}

fn enumeration<'a>(s: Spec<'a>, opts: &'a [(&'a str, &'a str)]) -> Spec<'a> {
    with(s, |s| s.options = opts)
}

fn custom(s: Spec<'_>) -> Spec<'_> {
    with(s, |s| {
        s.custom = true;
        s.group = "sandbox_custom";
    })
}

pub fn definitions(kind: ObjectKind, owners: &[Owner]) -> Vec<PropertyDef> {
    let shared = |specs: &mut Vec<Spec<'static>>| {
        specs.push(read_only(spec(
            "createdate",
            "Create Date",
            "datetime",
            "date",
        )));
        specs.push(read_only(spec(
            "hs_lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
        )));
        specs.push(read_only(spec(
            "hs_object_id",
            "Record ID",
            "number",
            "number",
        )));
        specs.push(read_only(spec(
            "hs_merged_object_ids",
            "Merged Record IDs",
            "enumeration",
            "checkbox",
        )));
        specs.push(enumeration(
            spec("lifecyclestage", "Lifecycle Stage", "enumeration", "radio"),
            LIFECYCLE_STAGES,
        ));
        specs.push(enumeration(
            spec("hs_lead_status", "Lead Status", "enumeration", "radio"),
            LEAD_STATUSES,
        ));
        specs.push(spec("hubspot_owner_id", "Owner", "enumeration", "select"));
        specs.push(spec("phone", "Phone Number", "string", "phonenumber"));
        specs.push(spec("city", "City", "string", "text"));
        specs.push(spec("country", "Country/Region", "string", "text"));
    };
    let mut specs = Vec::new();
    match kind {
        ObjectKind::Companies => {
            specs.push(spec("name", "Name", "string", "text"));
            specs.push(spec("domain", "Company Domain Name", "string", "text"));
            specs.push(spec("website", "Website URL", "string", "text"));
            specs.push(spec(
                "hs_additional_domains",
                "Additional Domains",
                "string",
                "text",
            ));
            specs.push(enumeration(
                spec("industry", "Industry", "enumeration", "select"),
                INDUSTRIES,
            ));
            specs.push(spec("annualrevenue", "Annual Revenue", "number", "number"));
            specs.push(spec(
                "numberofemployees",
                "Number of Employees",
                "number",
                "number",
            ));
            specs.push(spec("state", "State/Region", "string", "text"));
            specs.push(spec("zip", "Postal Code", "string", "text"));
            specs.push(spec("address", "Street Address", "string", "text"));
            specs.push(enumeration(
                spec("type", "Type", "enumeration", "select"),
                COMPANY_TYPES,
            ));
            specs.push(spec("description", "Description", "string", "textarea"));
            specs.push(read_only(spec(
                "num_associated_contacts",
                "Number of Associated Contacts",
                "number",
                "number",
            )));
            shared(&mut specs);
            specs.push(custom(enumeration(
                spec("customer_tier", "Customer Tier", "enumeration", "select"),
                CUSTOMER_TIERS,
            )));
            specs.push(custom(spec(
                "external_account_id",
                "External Account ID",
                "string",
                "text",
            )));
            build(specs, "companyinformation", owners)
        }
        ObjectKind::Contacts => {
            specs.push(spec("email", "Email", "string", "text"));
            specs.push(spec("firstname", "First Name", "string", "text"));
            specs.push(spec("lastname", "Last Name", "string", "text"));
            specs.push(spec(
                "mobilephone",
                "Mobile Phone Number",
                "string",
                "phonenumber",
            ));
            specs.push(spec("company", "Company Name", "string", "text"));
            specs.push(spec("jobtitle", "Job Title", "string", "text"));
            specs.push(read_only(spec(
                "associatedcompanyid",
                "Primary Associated Company ID",
                "number",
                "number",
            )));
            specs.push(read_only(spec(
                "lastmodifieddate",
                "Last Modified Date",
                "datetime",
                "date",
            )));
            shared(&mut specs);
            specs.push(custom(spec(
                "newsletter_opt_in",
                "Newsletter Opt-in",
                "bool",
                "booleancheckbox",
            )));
            build(specs, "contactinformation", owners)
        }
    }
}
