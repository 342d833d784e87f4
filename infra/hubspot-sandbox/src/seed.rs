//! Deterministic portal data: the same seed always gives the same owners, companies,
//! contacts, associations and lists (ids, names, timestamps included).

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::clock::iso;
use crate::model::{CrmList, ObjectKind, Owner, Team};
use crate::props::{self, CUSTOMER_TIERS, INDUSTRIES, LEAD_STATUSES};
use crate::store::{Props, Store};

/// 2024-01-01T00:00:00Z: seeded records are created during 2024.
pub const SEED_EPOCH_MS: i64 = 1_704_067_200_000;
const DAY_MS: i64 = 86_400_000;
/// The "month-end batch update" stamp that ~10% of seeded records share exactly.
pub const SHARED_MODIFIED_MS: i64 = SEED_EPOCH_MS + 500 * DAY_MS;
pub const FIRST_RECORD_ID: u64 = 1_000_001;

pub const LIST_TARGET_ACCOUNTS: u64 = 1;
pub const LIST_CUSTOMERS: u64 = 2;
pub const LIST_NEWSLETTER: u64 = 3;
pub const LIST_ENTERPRISE: u64 = 4;

const ADJECTIVES: &[&str] = &[
    "Northwind",
    "Blue",
    "Silver",
    "Bright",
    "Granite",
    "Summit",
    "Harbor",
    "Maple",
    "Crimson",
    "Golden",
    "Pioneer",
    "Quantum",
    "Evergreen",
    "Atlas",
    "Cobalt",
    "Redwood",
    "Lumen",
    "Orbit",
    "Prairie",
    "Vertex",
    "Falcon",
    "Juniper",
    "Sterling",
    "Horizon",
];
const NOUNS: &[&str] = &[
    "Analytics",
    "Logistics",
    "Robotics",
    "Health",
    "Foods",
    "Labs",
    "Systems",
    "Capital",
    "Networks",
    "Energy",
    "Textiles",
    "Media",
    "Software",
    "Dynamics",
    "Freight",
    "Bakery",
    "Outfitters",
    "Pharma",
    "Studios",
    "Works",
];
const SUFFIXES: &[&str] = &["Inc", "LLC", "Ltd", "GmbH", "Group", "Co", "", "", ""];
const TLDS: &[&str] = &[
    ".com", ".com", ".com", ".io", ".co", ".net", ".de", ".co.uk",
];
const FIRST_NAMES: &[&str] = &[
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mateo", "Sofia", "Lucas", "Mia", "Amara", "Yuki",
    "Priya", "Chen", "Fatima", "Jonas", "Ingrid", "Diego", "Zoe", "Omar", "Hannah", "Léa", "Björn",
    "Chloé", "Raj",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Müller", "Nguyen", "Patel", "Kim", "Rossi", "Dubois", "Silva",
    "Cohen", "Okafor", "Larsen", "Tanaka", "O'Brien", "Novak", "Haddad", "Schmidt", "Martin",
    "Lopez",
];
const JOB_TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "Head of Finance",
    "Account Manager",
    "Engineer",
    "Procurement Lead",
    "Operations Manager",
    "VP Sales",
    "Office Manager",
    "Controller",
];
const CITIES: &[(&str, &str)] = &[
    ("Boston", "United States"),
    ("Austin", "United States"),
    ("Berlin", "Germany"),
    ("London", "United Kingdom"),
    ("Dublin", "Ireland"),
    ("Toronto", "Canada"),
    ("Paris", "France"),
    ("Sydney", "Australia"),
    ("Singapore", "Singapore"),
    ("São Paulo", "Brazil"),
];
const FREE_MAIL: &[&str] = &["gmail.com", "outlook.com", "yahoo.com", "proton.me"];
/// Weighted lifecycle stages for companies and contacts.
const STAGES: &[(&str, u32)] = &[
    ("subscriber", 5),
    ("lead", 30),
    ("marketingqualifiedlead", 10),
    ("salesqualifiedlead", 10),
    ("opportunity", 15),
    ("customer", 25),
    ("evangelist", 3),
    ("other", 2),
];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn weighted(rng: &mut StdRng, items: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (value, weight) in items {
        if roll < *weight {
            return value;
        }
        roll -= weight;
    }
    items[0].0
}

fn slug(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The domain as a user typed it: sometimes with `www.`, a scheme, a trailing slash or capitals.
fn noisy(rng: &mut StdRng, domain: &str) -> String {
    match rng.gen_range(0..100) {
        0..8 => format!("www.{domain}"),
        8..13 => format!("https://{domain}"),
        13..16 => format!("https://www.{domain}/"),
        16..18 => domain.to_ascii_uppercase(),
        _ => domain.to_owned(),
    }
}

fn owners(rng: &mut StdRng) -> Vec<Owner> {
    let teams = ["Sales EMEA", "Sales Americas", "Customer Success"];
    (0..8u64)
        .map(|i| {
            let first = *pick(rng, FIRST_NAMES);
            let last = *pick(rng, LAST_NAMES);
            let created = SEED_EPOCH_MS - (400 - i as i64 * 10) * DAY_MS;
            Owner {
                id: (70_000_001 + i).to_string(),
                email: format!("{}.{}@sandbox-portal.example", slug(first), slug(last)),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                user_id: 2_000_001 + i,
                user_id_including_inactive: 2_000_001 + i,
                kind: "PERSON".to_owned(),
                teams: vec![Team {
                    id: (900 + i % 3).to_string(),
                    name: teams[(i % 3) as usize].to_owned(),
                    primary: true,
                }],
                created_at: iso(created),
                updated_at: iso(created + 30 * DAY_MS),
                archived: false,
            }
        })
        .collect()
}

fn timestamps(rng: &mut StdRng, index: usize, count: usize) -> (i64, i64) {
    let span = 365 * DAY_MS;
    let step = span / count.max(1) as i64;
    let created = SEED_EPOCH_MS + index as i64 * step + rng.gen_range(0..step.max(1));
    let updated = if rng.gen_range(0..10) == 0 {
        SHARED_MODIFIED_MS
    } else {
        created + rng.gen_range(0..200 * DAY_MS)
    };
    (created, updated.max(created))
}

struct SeededCompany {
    id: u64,
    name: String,
    domain: Option<String>,
    stage: &'static str,
    revenue: Option<u64>,
}

fn companies(store: &mut Store, rng: &mut StdRng, count: usize) -> Vec<SeededCompany> {
    let owner_ids: Vec<String> = store.owners.iter().map(|o| o.id.clone()).collect();
    let mut out: Vec<SeededCompany> = Vec::with_capacity(count);
    // Real portals hold mostly distinct businesses: a name that is taken gets a city, then
    // a number, so the only duplicate domains are the deliberate ones below.
    let mut taken = std::collections::HashSet::new();
    for i in 0..count {
        let mut base = format!("{} {}", pick(rng, ADJECTIVES), pick(rng, NOUNS));
        if taken.contains(&slug(&base)) {
            base = format!("{base} {}", pick(rng, CITIES).0);
        }
        let mut n = 2;
        let plain = base.clone();
        while taken.contains(&slug(&base)) {
            base = format!("{plain} {n}");
            n += 1;
        }
        taken.insert(slug(&base));
        let suffix = *pick(rng, SUFFIXES);
        let name = if suffix.is_empty() {
            base.clone()
        } else {
            format!("{base} {suffix}")
        };
        let domain = match rng.gen_range(0..100) {
            0..3 => None,
            3..7 if !out.is_empty() => {
                // a duplicate on purpose: the same business entered twice
                let j = rng.gen_range(0..out.len());
                out[j].domain.clone()
            }
            _ => Some(format!("{}{}", slug(&base), pick(rng, TLDS))),
        };
        let stage = weighted(rng, STAGES);
        let revenue = (rng.gen_range(0..10) < 8).then(|| {
            let exponent: f64 = rng.gen_range(5.0..9.7);
            (10f64.powf(exponent) as u64 / 1000) * 1000
        });
        let (city, country) = *pick(rng, CITIES);
        let mut p = Props::new();
        p.insert("name".into(), name.clone());
        if let Some(d) = &domain {
            p.insert("domain".into(), noisy(rng, d));
            if rng.gen_range(0..10) < 6 {
                p.insert("website".into(), format!("https://www.{d}"));
            }
        }
        p.insert("lifecyclestage".into(), stage.to_owned());
        if let Some(r) = revenue {
            p.insert("annualrevenue".into(), r.to_string());
        }
        p.insert(
            "numberofemployees".into(),
            rng.gen_range(1..20_000u32).to_string(),
        );
        p.insert("industry".into(), pick(rng, INDUSTRIES).0.to_owned());
        p.insert("city".into(), city.to_owned());
        p.insert("country".into(), country.to_owned());
        p.insert(
            "phone".into(),
            format!("+1 555 {:04}", rng.gen_range(0..10_000)),
        );
        if rng.gen_range(0..100) < 85 {
            p.insert("hubspot_owner_id".into(), pick(rng, &owner_ids).clone());
        }
        if rng.gen_range(0..100) < 40 {
            p.insert(
                "hs_lead_status".into(),
                pick(rng, LEAD_STATUSES).0.to_owned(),
            );
        }
        if stage == "customer" {
            p.insert(
                "customer_tier".into(),
                pick(rng, CUSTOMER_TIERS).0.to_owned(),
            );
            p.insert("external_account_id".into(), format!("ACC-{:06}", i + 1));
        }
        let (created, updated) = timestamps(rng, i, count);
        let id = store.insert_seeded(ObjectKind::Companies, p, created, updated);
        out.push(SeededCompany {
            id,
            name,
            domain,
            stage,
            revenue,
        });
    }
    out
}

fn contacts(
    store: &mut Store,
    rng: &mut StdRng,
    count: usize,
    companies: &[SeededCompany],
) -> Vec<u64> {
    let owner_ids: Vec<String> = store.owners.iter().map(|o| o.id.clone()).collect();
    let mut emails = BTreeSet::new();
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let first = *pick(rng, FIRST_NAMES);
        let last = *pick(rng, LAST_NAMES);
        let company = (!companies.is_empty() && rng.gen_range(0..100) < 75)
            .then(|| &companies[rng.gen_range(0..companies.len())]);
        let mail_domain = company
            .and_then(|c| c.domain.clone())
            .unwrap_or_else(|| (*pick(rng, FREE_MAIL)).to_owned());
        let local = format!("{}.{}", slug(first), slug(last));
        let mut email = format!("{local}@{mail_domain}");
        let mut n = 2;
        while !emails.insert(email.clone()) {
            email = format!("{local}{n}@{mail_domain}");
            n += 1;
        }
        let mut p = Props::new();
        p.insert("firstname".into(), first.to_owned());
        p.insert("lastname".into(), last.to_owned());
        p.insert("email".into(), email);
        p.insert("jobtitle".into(), pick(rng, JOB_TITLES).to_string());
        p.insert(
            "lifecyclestage".into(),
            company
                .map_or_else(|| weighted(rng, STAGES), |c| c.stage)
                .to_owned(),
        );
        if rng.gen_range(0..100) < 70 {
            p.insert("hubspot_owner_id".into(), pick(rng, &owner_ids).clone());
        }
        if let Some(c) = company {
            p.insert("company".into(), c.name.clone());
            p.insert("associatedcompanyid".into(), c.id.to_string());
        }
        if rng.gen_range(0..100) < 50 {
            p.insert(
                "phone".into(),
                format!("+44 20 7946 {:04}", rng.gen_range(0..10_000)),
            );
        }
        p.insert(
            "newsletter_opt_in".into(),
            (rng.gen_range(0..3) == 0).to_string(),
        );
        let (created, updated) = timestamps(rng, i, count);
        let id = store.insert_seeded(ObjectKind::Contacts, p, created, updated);
        if let Some(c) = company {
            link(store, c.id, id, true);
            if rng.gen_range(0..10) == 0 {
                let other = &companies[rng.gen_range(0..companies.len())];
                if other.id != c.id {
                    link(store, other.id, id, false);
                }
            }
        }
        ids.push(id);
    }
    ids
}

fn link(store: &mut Store, company: u64, contact: u64, primary: bool) {
    store
        .company_contacts
        .entry(company)
        .or_default()
        .insert(contact);
    store
        .contact_companies
        .entry(contact)
        .or_default()
        .insert(company);
    if primary {
        store.primary_company.insert(contact, company);
    }
}

fn list(
    id: u64,
    name: &str,
    object: ObjectKind,
    processing: &str,
    members: impl IntoIterator<Item = u64>,
) -> CrmList {
    let created = SEED_EPOCH_MS + (id as i64) * DAY_MS;
    let members: BTreeMap<u64, i64> = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, created + 60_000 * i as i64))
        .collect();
    CrmList {
        id,
        name: name.to_owned(),
        object,
        processing_type: processing.to_owned(),
        version: 1,
        created_ms: created,
        updated_ms: members.values().max().copied().unwrap_or(created),
        first_added: members.clone(),
        members,
    }
}

/// Replaces the store's data with the portal generated from `seed`.
pub fn populate(store: &mut Store, seed: u64, company_count: usize, contact_count: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    *store = Store {
        next_id: FIRST_RECORD_ID,
        last_ms: store.last_ms,
        ..Store::default()
    };
    store.owners = owners(&mut rng);
    for kind in ObjectKind::ALL {
        let defs = props::definitions(kind, &store.owners);
        store.properties.insert(kind, defs);
    }
    let seeded = companies(store, &mut rng, company_count);
    let contact_ids = contacts(store, &mut rng, contact_count, &seeded);

    let mut targets: Vec<u64> = seeded.iter().map(|c| c.id).collect();
    targets.shuffle(&mut rng);
    targets.truncate(seeded.len() / 5);
    targets.sort_unstable();
    let customers = seeded
        .iter()
        .filter(|c| c.stage == "customer")
        .map(|c| c.id);
    let enterprise = seeded
        .iter()
        .filter(|c| c.revenue.is_some_and(|r| r >= 100_000_000))
        .map(|c| c.id);
    let newsletter = contact_ids
        .iter()
        .copied()
        .filter(|_| rng.gen_range(0..10) < 3)
        .collect::<Vec<_>>();
    for l in [
        list(
            LIST_TARGET_ACCOUNTS,
            "Target accounts",
            ObjectKind::Companies,
            "MANUAL",
            targets,
        ),
        list(
            LIST_CUSTOMERS,
            "Customers",
            ObjectKind::Companies,
            "DYNAMIC",
            customers,
        ),
        list(
            LIST_NEWSLETTER,
            "Newsletter subscribers",
            ObjectKind::Contacts,
            "MANUAL",
            newsletter,
        ),
        list(
            LIST_ENTERPRISE,
            "Enterprise accounts",
            ObjectKind::Companies,
            "SNAPSHOT",
            enterprise,
        ),
    ] {
        store.lists.insert(l.id, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(seed: u64) -> Store {
        let mut store = Store::default();
        populate(&mut store, seed, 200, 300);
        store
    }

    #[test]
    fn the_same_seed_gives_the_same_portal() {
        let (a, b) = (seeded(7), seeded(7));
        assert_eq!(a.companies, b.companies);
        assert_eq!(a.contacts, b.contacts);
        assert_eq!(a.company_contacts, b.company_contacts);
        assert_eq!(a.lists, b.lists);
        assert_ne!(a.companies, seeded(8).companies);
    }

    #[test]
    fn seeded_data_has_duplicate_and_noisy_domains_and_shared_timestamps() {
        let store = seeded(42);
        let domains: Vec<&String> = store
            .companies
            .values()
            .filter_map(|c| c.props.get("domain"))
            .collect();
        let unique: BTreeSet<_> = domains.iter().collect();
        assert!(unique.len() < domains.len(), "some domains repeat");
        assert!(
            domains
                .iter()
                .any(|d| d.starts_with("www.") || d.starts_with("https://"))
        );
        let shared = store
            .companies
            .values()
            .filter(|c| c.updated_ms == SHARED_MODIFIED_MS)
            .count();
        assert!(shared > 5);
        assert!(!store.lists[&LIST_TARGET_ACCOUNTS].members.is_empty());
        assert!(!store.company_contacts.is_empty());
    }
}
