//! The HubSpot client's writes (the push steps of outbound sync) against the sandbox.

// The helpers below are test code too: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;

use connector::provider::{ContactKey, Fetched, ListAdd, OwnKey, RecordWriter, SourceProvider};
use connector::{ErrorCode, ObjectKind, SourceId};
use serde_json::json;

mod support;

use support::{Harness, found, harness};

const WRITE_SCOPES: &[&str] = &[
    "oauth",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.schemas.companies.read",
    "crm.schemas.contacts.read",
    "crm.objects.companies.write",
    "crm.objects.contacts.write",
    "crm.schemas.companies.write",
    "crm.schemas.contacts.write",
    "crm.lists.read",
    "crm.lists.write",
];
const KEY_PROPERTY: &str = "sync_company_key";

async fn writer() -> Harness {
    let mut h = harness(0, 0).await;
    h.grant(WRITE_SCOPES).await;
    h
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Harness {
    async fn contact(&self, id: &SourceId) -> connector::provider::SourceRecord {
        let fetched = self
            .provider
            .fetch(
                &self.connection,
                ObjectKind::Contact,
                std::slice::from_ref(id),
                &["email", "firstname", "phone", "sync_contact_key"],
            )
            .await
            .expect("fetch");
        found(&fetched[0].1).clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_is_upserted_by_email_once_and_updated_after() {
    let h = writer().await;
    let lead = props(&[("email", "ada@example.com"), ("firstname", "Ada")]);
    let first = h
        .provider
        .write_contact(&h.connection, ContactKey::Email, &lead)
        .await
        .expect("created");
    assert!(first.created);
    let again = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Email,
            &props(&[("email", "ada@example.com"), ("firstname", "Augusta")]),
        )
        .await
        .expect("updated");
    assert_eq!(again.id, first.id);
    assert!(!again.created);
    assert!(again.version >= first.version);
    let record = h.contact(&first.id).await;
    assert_eq!(record.properties["firstname"].as_deref(), Some("Augusta"));
    assert_eq!(
        record.version, again.version,
        "the write's version is what a read sees"
    );
}

fn own_key(value: &str) -> OwnKey {
    OwnKey {
        property: "sync_contact_key".to_owned(),
        value: value.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_keyed_by_our_own_property_is_created_once_however_often_it_is_written() {
    let h = writer().await;
    let lead = props(&[("email", "once@example.com"), ("firstname", "Once")]);
    let first = h
        .provider
        .write_contact(&h.connection, ContactKey::Own(own_key("ours-9")), &lead)
        .await
        .expect("created");
    assert!(first.created);
    let again = h
        .provider
        .write_contact(&h.connection, ContactKey::Own(own_key("ours-9")), &lead)
        .await
        .expect("the same contact, updated");
    assert_eq!(again.id, first.id);
    assert!(!again.created);
    assert_eq!(
        h.contact(&first.id).await.properties["sync_contact_key"].as_deref(),
        Some("ours-9")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dedupe_off_an_existing_email_is_contact_exists_naming_the_contact() {
    let h = writer().await;
    let existing = h
        .control
        .create("contacts", json!({ "email": "taken@example.com" }))
        .await;
    let err = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Own(own_key("ours-1")),
            &props(&[("email", "TAKEN@example.com")]),
        )
        .await
        .expect_err("exists");
    assert_eq!(err.code, ErrorCode::ContactExists);
    assert_eq!(err.existing_id(), Some(&existing));
    assert_eq!(err.status, Some(409));
    assert!(err.body.as_deref().unwrap_or("").contains("Existing ID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_email_the_phone_finds_the_contact_to_update() {
    let h = writer().await;
    let existing = h
        .control
        .create(
            "contacts",
            json!({ "phone": "+49 30 1234567", "firstname": "Old" }),
        )
        .await;
    let written = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Phone(own_key("ours-2")),
            &props(&[("phone", "+49 30 1234567"), ("firstname", "New")]),
        )
        .await
        .expect("updated");
    assert_eq!(written.id, existing);
    assert!(!written.created);
    let fresh = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Phone(own_key("ours-3")),
            &props(&[("phone", "+1 555 0100")]),
        )
        .await
        .expect("created");
    assert!(fresh.created);
    assert_eq!(
        h.contact(&existing).await.properties["firstname"].as_deref(),
        Some("New")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_is_keyed_by_a_unique_property_the_service_creates_once() {
    let h = writer().await;
    let first = h
        .provider
        .write_company(
            &h.connection,
            KEY_PROPERTY,
            "acme.io",
            &props(&[("domain", "acme.io"), ("name", "Acme")]),
        )
        .await
        .expect("created");
    assert!(first.created);
    let again = h
        .provider
        .write_company(
            &h.connection,
            KEY_PROPERTY,
            "acme.io",
            &props(&[("name", "Acme")]),
        )
        .await
        .expect("found");
    assert_eq!(again.id, first.id);
    assert!(!again.created);
    let schema = h
        .provider
        .properties(&h.connection, ObjectKind::Company)
        .await
        .expect("schema");
    assert!(schema.iter().any(|p| p.name == KEY_PROPERTY));
    assert_eq!(
        h.control
            .route_count("POST /crm/v3/properties/{object_type}")
            .await,
        1,
        "the key property is created once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_is_associated_and_added_to_a_static_list_once() {
    let h = writer().await;
    let contact = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Email,
            &props(&[("email", "lin@example.com")]),
        )
        .await
        .expect("contact")
        .id;
    let company = h
        .provider
        .write_company(
            &h.connection,
            KEY_PROPERTY,
            "lin.example",
            &props(&[("name", "Lin")]),
        )
        .await
        .expect("company")
        .id;
    for _ in 0..2 {
        h.provider
            .associate_company(&h.connection, &contact, &company)
            .await
            .expect("associated");
    }
    assert_eq!(
        h.contact(&contact).await.associated_companies,
        vec![company]
    );

    let create_list = |name: &str, processing: &str| {
        let body =
            json!({ "name": name, "object_type": "contacts", "processing_type": processing });
        let control = &h.control;
        async move {
            control.post("/lists", body).await["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let leads = create_list("Leads", "MANUAL").await;
    let dynamic = create_list("Berlin", "DYNAMIC").await;
    let add = |list: String| {
        let (h, contact) = (&h, contact.clone());
        async move { h.provider.add_to_list(&h.connection, &list, &contact).await }
    };
    assert_eq!(add(leads.clone()).await.expect("added"), ListAdd::Added);
    assert_eq!(add(leads).await.expect("member"), ListAdd::AlreadyMember);
    assert_eq!(
        add(dynamic).await.expect("skipped"),
        ListAdd::SkippedDynamic
    );
    let gone = add("987654".to_owned()).await.expect_err("no such list");
    assert_eq!(gone.code, ErrorCode::FieldMappingInvalid);
    assert!(gone.message.contains("987654"), "{}", gone.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_are_typed_with_what_to_fix() {
    let mut h = writer().await;
    let write = |properties: BTreeMap<String, String>| {
        let h = &h;
        async move {
            h.provider
                .write_contact(&h.connection, ContactKey::Email, &properties)
                .await
                .expect_err("refused")
        }
    };
    let unknown = write(props(&[("email", "x@example.com"), ("shoe_size", "44")])).await;
    assert_eq!(unknown.code, ErrorCode::FieldMappingInvalid);
    assert_eq!(unknown.invalid_values()[0].property, "shoe_size");

    let option = write(props(&[
        ("email", "x@example.com"),
        ("lifecyclestage", "Nope"),
    ]))
    .await;
    assert_eq!(option.code, ErrorCode::InvalidPropertyValue);
    let invalid = &option.invalid_values()[0];
    assert_eq!(invalid.property, "lifecyclestage");
    assert_eq!(invalid.value.as_deref(), Some("Nope"));
    assert!(
        invalid.allowed.contains(&"customer".to_owned()),
        "{:?}",
        invalid.allowed
    );
    assert!(
        option
            .body
            .as_deref()
            .unwrap_or("")
            .contains("VALIDATION_ERROR")
    );

    let reader_scopes: Vec<&str> = WRITE_SCOPES
        .iter()
        .copied()
        .filter(|s| !s.ends_with(".write"))
        .collect();
    h.grant(&reader_scopes).await;
    let denied = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Email,
            &props(&[("email", "x@example.com")]),
        )
        .await
        .expect_err("no write scope");
    assert_eq!(denied.code, ErrorCode::PermissionDenied);
    assert_eq!(
        denied.missing_scopes,
        vec!["crm.objects.contacts.write".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_test_contact_is_gone_from_listings() {
    let h = writer().await;
    let id = h
        .provider
        .write_contact(
            &h.connection,
            ContactKey::Email,
            &props(&[("email", "sync-test+a1b2@example.com")]),
        )
        .await
        .expect("created")
        .id;
    h.provider
        .archive_contact(&h.connection, &id)
        .await
        .expect("archived");
    let fetched = h
        .provider
        .fetch(
            &h.connection,
            ObjectKind::Contact,
            std::slice::from_ref(&id),
            &["email"],
        )
        .await
        .expect("fetch");
    let archived = match &fetched[0].1 {
        Fetched::Found(record) => record.archived,
        Fetched::Gone => true,
    };
    assert!(archived);
}
