//! The state store's contract (`connector::ports::Store`), checked the same way against
//! every adapter. Each check expects a fresh, empty store and names its expiry times
//! explicitly (`now`), so none of them sleeps.

use std::collections::BTreeSet;
use std::fmt::Debug;

use connector::model::*;
use connector::ports::*;

/// A fixed "now" so expiry checks need no clock.
const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn at_secs(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + secs * 1000)
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn source(id: &str) -> SourceId {
    SourceId::parse(id).unwrap()
}

fn customer(tenant: &TenantId, name: &str, domain: Option<&str>) -> Customer {
    let mut c = Customer::new(tenant.clone(), name, T0);
    c.domain = domain.map(|d| Domain::parse(d).unwrap());
    c
}

fn contact_of(tenant: &TenantId, customer: &Customer, email: &str) -> Contact {
    let mut c = Contact::new(tenant.clone(), T0);
    c.customer_id = Some(customer.id.clone());
    c.email = Some(email.to_owned());
    c
}

fn link(
    tenant: &TenantId,
    connection: &ConnectionId,
    kind: ObjectKind,
    source_id: &str,
    target: LinkTarget,
    version: i64,
    hash: &str,
) -> SourceLink {
    SourceLink {
        tenant_id: tenant.clone(),
        connection_id: connection.clone(),
        provider: Provider::Hubspot,
        account_id: portal(),
        object_kind: kind,
        source_id: source(source_id),
        target,
        source_version: SourceVersion(version),
        content_hash: ContentHash::from_hex(hash),
        source_gone: false,
        updated_at: T0,
        in_step: Default::default(),
    }
}

/// The HubSpot portal every test link lives in, unless a test says otherwise.
fn portal() -> ProviderAccountId {
    ProviderAccountId::parse("62515").unwrap()
}

fn hubspot_ref(kind: ObjectKind, source_id: &str) -> SourceRef {
    SourceRef {
        provider: Provider::Hubspot,
        account: portal(),
        kind,
        source_id: source(source_id),
    }
}

fn company_link(
    c: &Customer,
    connection: &ConnectionId,
    source_id: &str,
    version: i64,
    hash: &str,
) -> SourceLink {
    link(
        &c.tenant_id,
        connection,
        ObjectKind::Company,
        source_id,
        LinkTarget::Customer(c.id.clone()),
        version,
        hash,
    )
}

fn pending_match(tenant: &TenantId, connection: &ConnectionId, source_id: &str) -> PendingMatch {
    PendingMatch {
        tenant_id: tenant.clone(),
        id: PendingMatchId::generate(),
        connection_id: connection.clone(),
        provider: Provider::Hubspot,
        object_kind: ObjectKind::Company,
        source_id: source(source_id),
        source_name: format!("Company {source_id}"),
        source_domain: Some(Domain::parse("acme.com").unwrap()),
        candidates: vec![CustomerId::generate(), CustomerId::generate()],
        status: PendingMatchStatus::Open,
        resolution: None,
        created_at: T0,
        resolved_at: None,
    }
}

fn oauth_state(tenant: &TenantId, state: &str, expires_at: Timestamp) -> OAuthState {
    OAuthState {
        state: state.to_owned(),
        tenant_id: tenant.clone(),
        connection_id: ConnectionId::generate(),
        provider: Provider::Hubspot,
        code_verifier: Some(Secret::new("verifier-123")),
        created_at: T0,
        expires_at,
    }
}

macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {{
        let result = $result;
        assert!(
            matches!(result, Err($pattern)),
            "expected {}, got {result:?}",
            stringify!($pattern)
        );
    }};
}

async fn write_customer(
    store: &dyn Store,
    customer: &Customer,
    expected_version: u64,
    link: Option<&SourceLink>,
) -> StoreResult<Customer> {
    store
        .write_customer(CustomerWrite {
            customer,
            expected_version,
            link,
        })
        .await
}

async fn write_contact(
    store: &dyn Store,
    contact: &Contact,
    expected_version: u64,
    link: Option<&SourceLink>,
) -> StoreResult<Contact> {
    store
        .write_contact(ContactWrite {
            contact,
            expected_version,
            link,
        })
        .await
}

async fn hubspot_link(
    store: &dyn Store,
    tenant: &TenantId,
    kind: ObjectKind,
    source_id: &str,
) -> Option<SourceLink> {
    store
        .get_link(tenant, &hubspot_ref(kind, source_id))
        .await
        .unwrap()
}

async fn routed(store: &dyn Store, provider: Provider, account: &str) -> Vec<Connection> {
    let account = ProviderAccountId::parse(account).unwrap();
    store
        .find_connections_by_account(provider, &account)
        .await
        .unwrap()
}

async fn new_customer(store: &dyn Store, c: &Customer) -> Customer {
    write_customer(store, c, 0, None).await.unwrap()
}

/// Saves `c` over its stored version (`c.version`).
async fn update_customer(store: &dyn Store, c: &Customer) -> Customer {
    write_customer(store, c, c.version, None).await.unwrap()
}

async fn new_contact(store: &dyn Store, c: &Contact, link: Option<&SourceLink>) -> Contact {
    write_contact(store, c, 0, link).await.unwrap()
}

fn expect_version_conflict<T: Debug>(result: StoreResult<T>) {
    assert_err!(result, StoreError::VersionConflict { .. });
}

fn expect_stale_source<T: Debug>(result: StoreResult<T>) {
    assert_err!(result, StoreError::StaleSource { .. });
}

/// Follows the cursors of a listing to its end. Fails on a page over the limit, a
/// duplicate, or a listing that never ends.
async fn read_all_pages<T, K, F, Fut>(limit: usize, key_of: impl Fn(&T) -> K, mut read: F) -> Vec<T>
where
    K: Ord + Debug,
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Page<T>>>,
{
    let mut all = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = read(PageRequest {
            limit,
            cursor: cursor.take(),
        })
        .await
        .unwrap();
        assert!(
            page.items.len() <= limit,
            "a page holds {} items, over the limit {limit}",
            page.items.len()
        );
        for item in page.items {
            let key = key_of(&item);
            assert!(seen.insert(key), "an item came back twice across pages");
            all.push(item);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
    panic!("the listing did not end after 100 pages");
}

// ---------------------------------------------------------------- versions

pub async fn conditional_writes_check_the_stored_version(store: &dyn Store) {
    let t = tenant("tenant-a");

    let acme_tenant = Tenant {
        id: t.clone(),
        name: "Acme workspace".into(),
        created_at: T0,
    };
    store.put_tenant(&acme_tenant).await.unwrap();
    assert_eq!(store.get_tenant(&t).await.unwrap(), Some(acme_tenant));
    assert_eq!(store.get_tenant(&tenant("nobody")).await.unwrap(), None);

    // customers: 0 means "must not exist"; each write returns the bumped version
    let c = customer(&t, "Acme", Some("acme.com"));
    let v1 = new_customer(store, &c).await;
    assert_eq!(v1.version, 1);
    assert_eq!(v1.name, "Acme");
    assert_eq!(
        store.get_customer(&t, &c.id).await.unwrap(),
        Some(v1.clone())
    );
    expect_version_conflict(write_customer(store, &c, 0, None).await);
    let mut renamed = v1.clone();
    renamed.name = "Acme Corp".into();
    let v2 = update_customer(store, &renamed).await;
    assert_eq!(v2.version, 2);
    assert_eq!(
        store.get_customer(&t, &c.id).await.unwrap(),
        Some(v2.clone())
    );
    expect_version_conflict(write_customer(store, &renamed, 1, None).await);
    let absent = customer(&t, "Nobody", None);
    expect_version_conflict(write_customer(store, &absent, 3, None).await);
    assert_eq!(store.get_customer(&t, &absent.id).await.unwrap(), None);

    // contacts
    let person = contact_of(&t, &v2, "ana@acme.com");
    let p1 = new_contact(store, &person, None).await;
    assert_eq!(p1.version, 1);
    expect_version_conflict(write_contact(store, &person, 0, None).await);
    let p2 = write_contact(store, &p1, 1, None).await.unwrap();
    assert_eq!(p2.version, 2);
    assert_eq!(store.get_contact(&t, &person.id).await.unwrap(), Some(p2));

    // connections
    let conn = Connection::new(t.clone(), Provider::Hubspot, T0);
    let k1 = store.put_connection(&conn).await.unwrap();
    assert_eq!(k1.version, 1);
    expect_version_conflict(store.put_connection(&conn).await);
    let mut connected = k1.clone();
    connected.status = ConnectionStatus::Connected;
    let k2 = store.put_connection(&connected).await.unwrap();
    assert_eq!(k2.version, 2);
    assert_eq!(k2.status, ConnectionStatus::Connected);
    expect_version_conflict(store.put_connection(&connected).await);
    assert_eq!(store.get_connection(&t, &conn.id).await.unwrap(), Some(k2));
}

pub async fn version_races_have_one_winner(store: &dyn Store) {
    let t = tenant("tenant-a");
    let v1 = new_customer(store, &customer(&t, "Acme", None)).await;

    // one after the other, both from version 1
    let mut first = v1.clone();
    first.name = "First".into();
    let mut second = v1.clone();
    second.name = "Second".into();
    let won = update_customer(store, &first).await;
    assert_eq!(won.version, 2);
    expect_version_conflict(write_customer(store, &second, 1, None).await);
    assert_eq!(
        store.get_customer(&t, &v1.id).await.unwrap(),
        Some(won.clone())
    );

    // at the same time, both from version 2
    let mut left = won.clone();
    left.name = "Left".into();
    let mut right = won.clone();
    right.name = "Right".into();
    let (l, r) = tokio::join!(
        write_customer(store, &left, 2, None),
        write_customer(store, &right, 2, None),
    );
    let winner = match (l, r) {
        (Ok(w), Err(StoreError::VersionConflict { .. }))
        | (Err(StoreError::VersionConflict { .. }), Ok(w)) => w,
        other => panic!("expected exactly one winner and one VersionConflict, got {other:?}"),
    };
    assert_eq!(winner.version, 3);
    assert_eq!(store.get_customer(&t, &v1.id).await.unwrap(), Some(winner));

    // the same for connections
    let k1 = store
        .put_connection(&Connection::new(t.clone(), Provider::Stripe, T0))
        .await
        .unwrap();
    let mut a = k1.clone();
    a.scopes = vec!["a".into()];
    let mut b = k1.clone();
    b.scopes = vec!["b".into()];
    let (ra, rb) = tokio::join!(store.put_connection(&a), store.put_connection(&b));
    let winner = match (ra, rb) {
        (Ok(w), Err(StoreError::VersionConflict { .. }))
        | (Err(StoreError::VersionConflict { .. }), Ok(w)) => w,
        other => panic!("expected exactly one winner and one VersionConflict, got {other:?}"),
    };
    assert_eq!(winner.version, 2);
    assert_eq!(
        store.get_connection(&t, &k1.id).await.unwrap(),
        Some(winner)
    );
}

// ---------------------------------------------------------------- source links

pub async fn an_older_source_version_never_overwrites_a_newer_one(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let c = customer(&t, "Acme", None);
    let newer = company_link(&c, &conn, "512", 200, "aaaa");
    let v1 = write_customer(store, &c, 0, Some(&newer)).await.unwrap();

    let mut old_content = v1.clone();
    old_content.name = "Acme (old)".into();
    let older = company_link(&c, &conn, "512", 100, "bbbb");
    let result = write_customer(store, &old_content, 1, Some(&older)).await;
    match result {
        Err(StoreError::StaleSource { offered, stored }) => {
            assert_eq!(offered, SourceVersion(100));
            assert_eq!(stored, SourceVersion(200));
        }
        other => panic!("expected StaleSource, got {other:?}"),
    }
    // the same version with the same content changes nothing either
    let same = company_link(&c, &conn, "512", 200, "aaaa");
    expect_stale_source(write_customer(store, &old_content, 1, Some(&same)).await);
    assert_eq!(
        store.get_customer(&t, &c.id).await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        Some(newer)
    );

    // the same version with different content (the mapping changed) is applied
    let remapped = company_link(&c, &conn, "512", 200, "cccc");
    let mut v2 = v1.clone();
    v2.owner = Some("owner-7".into());
    let v2 = write_customer(store, &v2, 1, Some(&remapped))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // and a newer version is applied
    let newest = company_link(&c, &conn, "512", 300, "cccc");
    let v3 = write_customer(store, &v2, 2, Some(&newest)).await.unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        Some(newest)
    );

    // contacts follow the same rule
    let person = contact_of(&t, &v3, "ana@acme.com");
    let person_link = |version: i64, hash: &str| {
        link(
            &t,
            &conn,
            ObjectKind::Contact,
            "901",
            LinkTarget::Contact(person.id.clone()),
            version,
            hash,
        )
    };
    let stored_link = person_link(50, "aaaa");
    let p1 = new_contact(store, &person, Some(&stored_link)).await;
    let older = person_link(49, "ffff");
    expect_stale_source(write_contact(store, &p1, 1, Some(&older)).await);
    assert_eq!(
        store.get_contact(&t, &person.id).await.unwrap(),
        Some(p1.clone())
    );
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Contact, "901").await,
        Some(stored_link)
    );
    let newer = person_link(51, "aaaa");
    let p2 = write_contact(store, &p1, 1, Some(&newer)).await.unwrap();
    assert_eq!(p2.version, 2);
}

pub async fn a_failed_customer_write_leaves_no_link(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();

    // a new customer written with the wrong expected version: neither it nor its link lands
    let c = customer(&t, "Acme", None);
    let first_link = company_link(&c, &conn, "512", 100, "aaaa");
    expect_version_conflict(write_customer(store, &c, 4, Some(&first_link)).await);
    assert_eq!(store.get_customer(&t, &c.id).await.unwrap(), None);
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        None
    );
    assert!(
        store
            .links_to(&t, &LinkTarget::Customer(c.id.clone()))
            .await
            .unwrap()
            .is_empty()
    );

    // an existing customer: a conflicting write keeps the old link
    let v1 = write_customer(store, &c, 0, Some(&first_link))
        .await
        .unwrap();
    let newer_link = company_link(&c, &conn, "512", 300, "bbbb");
    expect_version_conflict(write_customer(store, &v1, 7, Some(&newer_link)).await);
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        Some(first_link)
    );
    assert_eq!(
        store.get_customer(&t, &c.id).await.unwrap(),
        Some(v1.clone())
    );

    // the same for a contact
    let person = contact_of(&t, &v1, "ana@acme.com");
    let person_link = link(
        &t,
        &conn,
        ObjectKind::Contact,
        "901",
        LinkTarget::Contact(person.id.clone()),
        10,
        "aaaa",
    );
    expect_version_conflict(write_contact(store, &person, 2, Some(&person_link)).await);
    assert_eq!(store.get_contact(&t, &person.id).await.unwrap(), None);
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Contact, "901").await,
        None
    );
}

// ---------------------------------------------------------------- customers

pub async fn archive_and_restore_round_trip(store: &dyn Store) {
    let t = tenant("tenant-a");
    let v1 = new_customer(store, &customer(&t, "Acme", Some("acme.com"))).await;
    let ids_of = |page: Page<Customer>| page.items.into_iter().map(|c| c.id).collect::<Vec<_>>();

    let mut archived = v1.clone();
    archived.archived = Some(Archival {
        at: at_secs(10),
        reason: ArchiveReason::SourceDeleted,
    });
    let v2 = update_customer(store, &archived).await;
    assert!(v2.is_archived());
    assert_eq!(
        store.get_customer(&t, &v1.id).await.unwrap(),
        Some(v2.clone())
    );
    let list = |filter| store.list_customers(&t, filter, PageRequest::first(50));
    assert!(ids_of(list(ArchivedFilter::Active).await.unwrap()).is_empty());
    assert_eq!(
        ids_of(list(ArchivedFilter::Archived).await.unwrap()),
        vec![v1.id.clone()]
    );
    assert_eq!(
        ids_of(list(ArchivedFilter::All).await.unwrap()),
        vec![v1.id.clone()]
    );
    // archived customers are still found when matching
    let acme = Domain::parse("acme.com").unwrap();
    assert_eq!(
        store.find_customers_by_domain(&t, &acme).await.unwrap(),
        vec![v2.clone()]
    );

    let mut restored = v2.clone();
    restored.archived = None;
    let v3 = update_customer(store, &restored).await;
    assert!(!v3.is_archived());
    assert_eq!(v3.version, 3);
    assert_eq!(store.get_customer(&t, &v1.id).await.unwrap(), Some(v3));
    assert_eq!(
        ids_of(list(ArchivedFilter::Active).await.unwrap()),
        vec![v1.id.clone()]
    );
    assert!(ids_of(list(ArchivedFilter::Archived).await.unwrap()).is_empty());
}

pub async fn delete_permanently_needs_an_archived_customer_and_takes_its_links_and_contacts(
    store: &dyn Store,
) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();

    let unknown = CustomerId::generate();
    let result = store.delete_customer_permanently(&t, &unknown).await;
    assert_err!(result, StoreError::NotFound { .. });

    let c = customer(&t, "Acme", None);
    let c_link = company_link(&c, &conn, "512", 1, "aaaa");
    let v1 = write_customer(store, &c, 0, Some(&c_link)).await.unwrap();
    let person = contact_of(&t, &v1, "ana@acme.com");
    let p_link = link(
        &t,
        &conn,
        ObjectKind::Contact,
        "901",
        LinkTarget::Contact(person.id.clone()),
        1,
        "aaaa",
    );
    new_contact(store, &person, Some(&p_link)).await;

    // a neighbour that must survive
    let other = customer(&t, "Globex", None);
    let other_link = company_link(&other, &conn, "513", 1, "aaaa");
    let other = write_customer(store, &other, 0, Some(&other_link))
        .await
        .unwrap();
    let other_person = new_contact(store, &contact_of(&t, &other, "bo@globex.com"), None).await;

    let result = store.delete_customer_permanently(&t, &c.id).await;
    assert_err!(result, StoreError::NotArchived);
    assert_eq!(
        store.get_customer(&t, &c.id).await.unwrap(),
        Some(v1.clone())
    );

    let mut archived = v1.clone();
    archived.archived = Some(Archival {
        at: at_secs(1),
        reason: ArchiveReason::Admin,
    });
    update_customer(store, &archived).await;
    store.delete_customer_permanently(&t, &c.id).await.unwrap();

    assert_eq!(store.get_customer(&t, &c.id).await.unwrap(), None);
    assert_eq!(store.get_contact(&t, &person.id).await.unwrap(), None);
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        None
    );
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Contact, "901").await,
        None
    );
    assert!(
        store
            .links_to(&t, &LinkTarget::Customer(c.id.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_contacts_of_customer(&t, &c.id, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let result = store.delete_customer_permanently(&t, &c.id).await;
    assert_err!(result, StoreError::NotFound { .. });

    assert_eq!(
        store.get_customer(&t, &other.id).await.unwrap(),
        Some(other)
    );
    assert_eq!(
        store.get_contact(&t, &other_person.id).await.unwrap(),
        Some(other_person)
    );
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "513").await,
        Some(other_link)
    );
}

pub async fn customers_are_found_by_domain_name_and_link(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let acme_inc = customer(&t, "Acme, Inc.", Some("https://www.acme.com/about"));
    let acme_link = company_link(&acme_inc, &conn, "512", 1, "aaaa");
    let acme_inc = write_customer(store, &acme_inc, 0, Some(&acme_link))
        .await
        .unwrap();
    let acme_plain = new_customer(store, &customer(&t, "ACME", None)).await;
    let globex = new_customer(store, &customer(&t, "Globex", Some("globex.com"))).await;

    let by_domain = |d: &str| {
        let (t, d) = (&t, Domain::parse(d).unwrap());
        async move { store.find_customers_by_domain(t, &d).await.unwrap() }
    };
    assert_eq!(by_domain("acme.com").await, vec![acme_inc.clone()]);
    assert_eq!(by_domain("globex.com").await, vec![globex.clone()]);
    assert!(by_domain("initech.com").await.is_empty());

    let acme_name = NormalizedName::of("acme").unwrap();
    let mut named: Vec<CustomerId> = store
        .find_customers_by_name(&t, &acme_name)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    named.sort();
    let mut want = vec![acme_inc.id.clone(), acme_plain.id.clone()];
    want.sort();
    assert_eq!(named, want);

    // the lookups follow a changed domain and name
    let mut moved = globex.clone();
    moved.domain = Some(Domain::parse("globex.io").unwrap());
    moved.name = "Globex Industries".into();
    let moved = update_customer(store, &moved).await;
    assert!(by_domain("globex.com").await.is_empty());
    assert_eq!(by_domain("globex.io").await, vec![moved.clone()]);
    assert!(
        store
            .find_customers_by_name(&t, &NormalizedName::of("Globex").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .find_customers_by_name(&t, &NormalizedName::of("globex industries ltd").unwrap())
            .await
            .unwrap(),
        vec![moved]
    );

    // by link
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        Some(acme_link.clone())
    );
    let elsewhere = |provider, account: &str| SourceRef {
        provider,
        account: ProviderAccountId::parse(account).unwrap(),
        kind: ObjectKind::Company,
        source_id: source("512"),
    };
    // Ids repeat across providers and across accounts of one provider.
    for other in [
        elsewhere(Provider::Stripe, "62515"),
        elsewhere(Provider::Hubspot, "777"),
    ] {
        assert_eq!(store.get_link(&t, &other).await.unwrap(), None, "{other:?}");
    }
    assert_eq!(
        store
            .links_to(&t, &LinkTarget::Customer(acme_inc.id.clone()))
            .await
            .unwrap(),
        vec![acme_link.clone()]
    );

    // links written on their own: re-pointed, marked gone, deleted
    let mut repointed = acme_link.clone();
    repointed.target = LinkTarget::Customer(acme_plain.id.clone());
    repointed.source_gone = true;
    store.put_link(&repointed).await.unwrap();
    assert!(
        store
            .links_to(&t, &LinkTarget::Customer(acme_inc.id.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .links_to(&t, &LinkTarget::Customer(acme_plain.id.clone()))
            .await
            .unwrap(),
        vec![repointed.clone()]
    );
    assert_eq!(
        store
            .list_links(
                &t,
                Provider::Hubspot,
                &portal(),
                ObjectKind::Company,
                PageRequest::first(10)
            )
            .await
            .unwrap()
            .items,
        vec![repointed]
    );
    store
        .delete_link(&t, &hubspot_ref(ObjectKind::Company, "512"))
        .await
        .unwrap();
    assert_eq!(
        hubspot_link(store, &t, ObjectKind::Company, "512").await,
        None
    );
}

pub async fn paging_covers_every_item_exactly_once(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let mut all_ids = BTreeSet::new();
    let mut archived_ids = BTreeSet::new();
    let mut first = None;
    for i in 0..25 {
        let mut c = customer(&t, &format!("Customer {i}"), None);
        if i % 3 == 0 {
            c.archived = Some(Archival {
                at: T0,
                reason: ArchiveReason::LeftFilter,
            });
            archived_ids.insert(c.id.clone());
        }
        let l = company_link(&c, &conn, &format!("src-{i}"), 1, "aaaa");
        write_customer(store, &c, 0, Some(&l)).await.unwrap();
        all_ids.insert(c.id.clone());
        first.get_or_insert(c);
    }
    let first = first.unwrap();
    // a link of another kind and one of another portal stay out of the link listing; one
    // written through another connection to the same portal is in it
    let contact_link = link(
        &t,
        &conn,
        ObjectKind::Contact,
        "contact-1",
        LinkTarget::Contact(ContactId::generate()),
        1,
        "aaaa",
    );
    store.put_link(&contact_link).await.unwrap();
    let mut other_portal = company_link(&first, &conn, "elsewhere", 1, "aaaa");
    other_portal.account_id = ProviderAccountId::parse("777").unwrap();
    store.put_link(&other_portal).await.unwrap();
    let reconnected = company_link(&first, &ConnectionId::generate(), "src-25", 1, "aaaa");
    store.put_link(&reconnected).await.unwrap();

    let listed = |filter| {
        let t = &t;
        read_all_pages(
            10,
            |c: &Customer| c.id.clone(),
            move |page| store.list_customers(t, filter, page),
        )
    };
    let ids = |cs: Vec<Customer>| cs.into_iter().map(|c| c.id).collect::<BTreeSet<_>>();
    assert_eq!(ids(listed(ArchivedFilter::All).await), all_ids);
    assert_eq!(ids(listed(ArchivedFilter::Archived).await), archived_ids);
    let active: BTreeSet<_> = all_ids.difference(&archived_ids).cloned().collect();
    assert_eq!(ids(listed(ArchivedFilter::Active).await), active);

    let hubspot_portal = portal();
    let links = read_all_pages(
        10,
        |l: &SourceLink| l.source_id.clone(),
        |page| {
            store.list_links(
                &t,
                Provider::Hubspot,
                &hubspot_portal,
                ObjectKind::Company,
                page,
            )
        },
    )
    .await;
    let link_sources: BTreeSet<_> = links.iter().map(|l| l.source_id.clone()).collect();
    let want: BTreeSet<_> = (0..26).map(|i| source(&format!("src-{i}"))).collect();
    assert_eq!(link_sources, want);

    let mut contact_ids = BTreeSet::new();
    for i in 0..25 {
        let p = new_contact(
            store,
            &contact_of(&t, &first, &format!("p{i}@acme.com")),
            None,
        )
        .await;
        contact_ids.insert(p.id);
    }
    let second = all_ids.iter().find(|id| **id != first.id).unwrap();
    let elsewhere = Contact {
        customer_id: Some(second.clone()),
        ..Contact::new(t.clone(), T0)
    };
    new_contact(store, &elsewhere, None).await;
    let contacts = read_all_pages(
        10,
        |c: &Contact| c.id.clone(),
        |page| store.list_contacts_of_customer(&t, &first.id, page),
    )
    .await;
    assert_eq!(
        contacts.into_iter().map(|c| c.id).collect::<BTreeSet<_>>(),
        contact_ids
    );
}

// ---------------------------------------------------------------- pending matches

pub async fn pending_matches_are_single_open_and_resolve_once(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let hubspot = Provider::Hubspot;
    let m = pending_match(&t, &conn, "512");
    store.create_pending_match(&m).await.unwrap();
    assert_eq!(
        store.get_pending_match(&t, &m.id).await.unwrap(),
        Some(m.clone())
    );

    let mut duplicate = pending_match(&t, &conn, "512");
    duplicate.candidates = vec![];
    let result = store.create_pending_match(&duplicate).await;
    assert_err!(result, StoreError::AlreadyExists { .. });
    assert_eq!(
        store.get_pending_match(&t, &duplicate.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_pending_match(&t, &m.id).await.unwrap(),
        Some(m.clone())
    );

    let open = store
        .list_pending_matches(&t, PendingMatchStatus::Open, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(open.items, vec![m.clone()]);
    assert_eq!(
        store
            .find_pending_match_for_source(&t, hubspot, ObjectKind::Company, &source("512"))
            .await
            .unwrap(),
        Some(m.clone())
    );
    assert_eq!(
        store
            .find_pending_match_for_source(&t, hubspot, ObjectKind::Company, &source("999"))
            .await
            .unwrap(),
        None
    );

    let choice = MatchResolution::LinkTo {
        customer_id: m.candidates[0].clone(),
    };
    let resolved = store
        .resolve_pending_match(&t, &m.id, choice.clone(), at_secs(60))
        .await
        .unwrap();
    assert_eq!(resolved.status, PendingMatchStatus::Resolved);
    assert_eq!(resolved.resolution, Some(choice.clone()));
    assert_eq!(resolved.resolved_at, Some(at_secs(60)));
    assert_eq!(resolved.candidates, m.candidates);
    assert_eq!(
        store.get_pending_match(&t, &m.id).await.unwrap(),
        Some(resolved.clone())
    );

    let again = store
        .resolve_pending_match(&t, &m.id, MatchResolution::Ignore, at_secs(61))
        .await;
    assert_err!(again, StoreError::AlreadyResolved);
    let unknown = store
        .resolve_pending_match(
            &t,
            &PendingMatchId::generate(),
            MatchResolution::Ignore,
            at_secs(61),
        )
        .await;
    assert_err!(unknown, StoreError::NotFound { .. });
    // the admin's choice sticks and is found by the source record
    assert_eq!(
        store
            .find_pending_match_for_source(&t, hubspot, ObjectKind::Company, &source("512"))
            .await
            .unwrap(),
        Some(resolved.clone())
    );
    assert!(
        store
            .list_pending_matches(&t, PendingMatchStatus::Open, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store
            .list_pending_matches(&t, PendingMatchStatus::Resolved, PageRequest::first(10))
            .await
            .unwrap()
            .items,
        vec![resolved]
    );

    // paging over many open matches
    let mut want = BTreeSet::new();
    for i in 0..23 {
        let m = pending_match(&t, &conn, &format!("src-{i}"));
        store.create_pending_match(&m).await.unwrap();
        want.insert(m.id);
    }
    let listed = read_all_pages(
        10,
        |m: &PendingMatch| m.id.clone(),
        |page| store.list_pending_matches(&t, PendingMatchStatus::Open, page),
    )
    .await;
    assert!(listed.iter().all(|m| m.status == PendingMatchStatus::Open));
    assert_eq!(
        listed.into_iter().map(|m| m.id).collect::<BTreeSet<_>>(),
        want
    );
}

// ---------------------------------------------------------------- log

pub async fn the_log_is_newest_first_filtered_paged_and_hides_expired_rows(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let now = at_secs(1000);
    let mut live = Vec::new();
    for i in 0..25 {
        let status = if i % 4 == 0 {
            LogStatus::Failed
        } else {
            LogStatus::Applied
        };
        let mut e = LogEntry::new(
            t.clone(),
            conn.clone(),
            Provider::Hubspot,
            status,
            at_secs(i),
        );
        e.record_id = Some(source(&format!("src-{i}")));
        if i % 5 == 1 {
            // not failed, but carries an error code: still an error row
            e.error_code = Some(ErrorCode::RateLimited);
        }
        store.append_log(&e).await.unwrap();
        live.push(e);
    }
    // rows past their expiry, one of them exactly at `now`; both newer than every live row
    let mut expired = Vec::new();
    for (i, expires_at) in [(2000, now), (2001, at_secs(999))] {
        let mut e = LogEntry::new(
            t.clone(),
            conn.clone(),
            Provider::Hubspot,
            LogStatus::Failed,
            at_secs(i),
        );
        e.expires_at = expires_at;
        store.append_log(&e).await.unwrap();
        expired.push(e);
    }
    // another connection's row
    store
        .append_log(&LogEntry::new(
            t.clone(),
            ConnectionId::generate(),
            Provider::Hubspot,
            LogStatus::Failed,
            at_secs(5),
        ))
        .await
        .unwrap();

    let read = |errors_only| {
        let (t, conn) = (&t, &conn);
        read_all_pages(
            4,
            |e: &LogEntry| e.id.clone(),
            move |page| store.list_log(t, conn, LogFilter { errors_only }, page, now),
        )
    };
    let mut newest_first = live.clone();
    newest_first.reverse();
    assert_eq!(read(false).await, newest_first);
    let errors: Vec<LogEntry> = newest_first
        .iter()
        .filter(|e| e.is_error())
        .cloned()
        .collect();
    assert!(errors.len() >= 5);
    assert_eq!(read(true).await, errors);

    for e in &expired {
        assert_eq!(store.get_log_entry(&t, &e.id, now).await.unwrap(), None);
        // before its expiry it was there
        let before = e.expires_at.minus(std::time::Duration::from_millis(1));
        assert_eq!(
            store.get_log_entry(&t, &e.id, before).await.unwrap(),
            Some(e.clone())
        );
    }
    assert_eq!(
        store.get_log_entry(&t, &live[3].id, now).await.unwrap(),
        Some(live[3].clone())
    );

    // purging changes nothing visible (DynamoDB leaves it to TTL)
    store.purge_expired(now).await.unwrap();
    assert_eq!(read(false).await, newest_first);
    for e in &expired {
        assert_eq!(store.get_log_entry(&t, &e.id, now).await.unwrap(), None);
    }
}

// ---------------------------------------------------------------- expiring items

pub async fn events_are_recorded_once_until_they_expire(store: &dyn Store) {
    let key = "hubspot:evt-100";
    assert!(store.record_event_once(key, at_secs(10), T0).await.unwrap());
    assert!(
        !store
            .record_event_once(key, at_secs(11), at_secs(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_event_once(key, at_secs(12), at_secs(9))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_event_once("hubspot:evt-101", at_secs(10), T0)
            .await
            .unwrap()
    );
    // expired exactly at `now`: the caller is first again, and the new expiry counts
    assert!(
        store
            .record_event_once(key, at_secs(20), at_secs(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_event_once(key, at_secs(30), at_secs(19))
            .await
            .unwrap()
    );

    // two callers at once: one is first
    let (a, b) = tokio::join!(
        store.record_event_once("stripe:evt_1", at_secs(10), T0),
        store.record_event_once("stripe:evt_1", at_secs(10), T0),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one caller must be first");

    store.purge_expired(at_secs(25)).await.unwrap();
    assert!(
        store
            .record_event_once(key, at_secs(40), at_secs(25))
            .await
            .unwrap()
    );

    // a recorded key reads as recorded until it expires; an unknown key never does
    let asked = vec![key.to_owned(), "never-recorded".to_owned(), key.to_owned()];
    let recorded = |now| store.events_recorded(&asked, now);
    let only_key = BTreeSet::from([key.to_owned()]);
    assert_eq!(recorded(at_secs(26)).await.unwrap(), only_key);
    assert_eq!(recorded(at_secs(39)).await.unwrap(), only_key);
    assert!(recorded(at_secs(40)).await.unwrap().is_empty());
}

pub async fn a_batch_of_events_is_checked_and_recorded_together(store: &dyn Store) {
    // More than one read or write batch holds, one key asked twice, one past the key size.
    let mut keys: Vec<String> = (0..150).map(|i| format!("hubspot:batch-{i}")).collect();
    keys.push(format!("hubspot:{}", "x".repeat(2_000)));
    keys.push("hubspot:batch-7".to_owned());
    let first_half: Vec<String> = keys.iter().step_by(2).cloned().collect();
    assert!(store.events_recorded(&keys, T0).await.unwrap().is_empty());
    store.record_events(&first_half, at_secs(10)).await.unwrap();
    let expected: BTreeSet<String> = first_half.iter().cloned().collect();
    assert_eq!(store.events_recorded(&keys, T0).await.unwrap(), expected);
    // Recording again moves the expiry, whether or not the key was there.
    store.record_events(&keys, at_secs(20)).await.unwrap();
    let all: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(
        store.events_recorded(&keys, at_secs(15)).await.unwrap(),
        all
    );
    assert!(
        store
            .events_recorded(&keys, at_secs(20))
            .await
            .unwrap()
            .is_empty()
    );
    // The one-caller-first write sees them too.
    assert!(
        !store
            .record_event_once("hubspot:batch-3", at_secs(30), at_secs(19))
            .await
            .unwrap()
    );
}

async fn claim(
    store: &dyn Store,
    t: &TenantId,
    conn: &ConnectionId,
    run: &SyncRunId,
    expires: Timestamp,
    now: Timestamp,
) -> SyncRunId {
    store.claim_pass(t, conn, run, expires, now).await.unwrap()
}

pub async fn one_pass_per_connection_holds_the_lease(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let (first, second) = (SyncRunId::generate(), SyncRunId::generate());
    assert_eq!(
        claim(store, &t, &conn, &first, at_secs(100), T0).await,
        first
    );
    // held: another run is refused and told who holds it; the holder renews
    assert_eq!(
        claim(store, &t, &conn, &second, at_secs(200), at_secs(10)).await,
        first
    );
    assert_eq!(
        claim(store, &t, &conn, &first, at_secs(150), at_secs(20)).await,
        first
    );
    assert_eq!(
        claim(store, &t, &conn, &second, at_secs(200), at_secs(120)).await,
        first
    );
    // expired: the next run takes it, and the old one cannot renew any more
    assert_eq!(
        claim(store, &t, &conn, &second, at_secs(300), at_secs(150)).await,
        second
    );
    assert_eq!(
        claim(store, &t, &conn, &first, at_secs(400), at_secs(160)).await,
        second
    );
    // a release by a run that does not hold it changes nothing; the holder's frees it
    store.release_pass(&t, &conn, &first).await.unwrap();
    assert_eq!(
        claim(store, &t, &conn, &first, at_secs(400), at_secs(170)).await,
        second
    );
    store.release_pass(&t, &conn, &second).await.unwrap();
    assert_eq!(
        claim(store, &t, &conn, &first, at_secs(400), at_secs(170)).await,
        first
    );
    // leases are per connection and per tenant
    let other = ConnectionId::generate();
    assert_eq!(
        store
            .claim_pass(&t, &other, &second, at_secs(400), at_secs(170))
            .await
            .unwrap(),
        second
    );
    assert_eq!(
        store
            .claim_pass(
                &tenant("tenant-b"),
                &conn,
                &second,
                at_secs(400),
                at_secs(170)
            )
            .await
            .unwrap(),
        second
    );
    // two runs racing for a free lease: exactly one gets it
    let lone = ConnectionId::generate();
    let (a, b) = (SyncRunId::generate(), SyncRunId::generate());
    let (got_a, got_b) = tokio::join!(
        store.claim_pass(&t, &lone, &a, at_secs(400), at_secs(170)),
        store.claim_pass(&t, &lone, &b, at_secs(400), at_secs(170)),
    );
    let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
    assert_eq!(got_a, got_b, "both see the one holder");
    assert!(got_a == a || got_a == b);
}

pub async fn oauth_state_is_taken_once_and_expires(store: &dyn Store) {
    let t = tenant("tenant-a");
    let s = oauth_state(&t, "state-abc", at_secs(600));
    store.put_oauth_state(&s).await.unwrap();
    assert_eq!(
        store
            .take_oauth_state("state-abc", at_secs(1))
            .await
            .unwrap(),
        Some(s)
    );
    assert_eq!(
        store
            .take_oauth_state("state-abc", at_secs(2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_oauth_state("never-issued", at_secs(2))
            .await
            .unwrap(),
        None
    );

    let late = oauth_state(&t, "state-late", at_secs(600));
    store.put_oauth_state(&late).await.unwrap();
    assert_eq!(
        store
            .take_oauth_state("state-late", at_secs(600))
            .await
            .unwrap(),
        None
    );

    let raced = oauth_state(&t, "state-raced", at_secs(600));
    store.put_oauth_state(&raced).await.unwrap();
    let (a, b) = tokio::join!(
        store.take_oauth_state("state-raced", at_secs(3)),
        store.take_oauth_state("state-raced", at_secs(3)),
    );
    let taken: Vec<OAuthState> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec![raced], "exactly one caller must get the state");
}

// ---------------------------------------------------------------- sync runs

pub async fn sync_runs_are_versioned_and_count_every_concurrent_add(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let run = SyncRun::start(t.clone(), conn.clone(), SyncTrigger::Manual, T0);
    let v1 = store.put_sync_run(&run).await.unwrap();
    assert_eq!(v1.version, 1);
    expect_version_conflict(store.put_sync_run(&run).await);
    let mut next = v1.clone();
    next.invocations = 1;
    next.cursor = Some("after-100".into());
    next.checkpoint = Checkpoint {
        phase: Phase::Check(ObjectKind::Contact),
        vanished_companies: 3,
        ..Checkpoint::default()
    };
    let v2 = store.put_sync_run(&next).await.unwrap();
    assert_eq!(v2.version, 2);
    expect_version_conflict(store.put_sync_run(&next).await);
    assert_eq!(
        store.get_sync_run(&t, &conn, &run.id).await.unwrap(),
        Some(v2.clone())
    );

    // eight workers, five adds each, all at once
    let one = SyncCounters {
        seen: 1,
        applied: 1,
        ..SyncCounters::default()
    };
    let worker = || async {
        for _ in 0..5 {
            store
                .add_sync_counters(&t, &conn, &run.id, &one)
                .await
                .unwrap();
        }
    };
    tokio::join!(
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker()
    );
    let counted = store
        .get_sync_run(&t, &conn, &run.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counted.counters.seen, 40);
    assert_eq!(counted.counters.applied, 40);
    assert_eq!(counted.counters.failed, 0);
    assert_eq!(
        counted.version, 2,
        "adding counters does not touch the version"
    );
    assert_eq!(counted.cursor, v2.cursor);

    // a versioned write still works after the adds, and writes counters as given
    let mut finished = counted.clone();
    finished.status = SyncRunStatus::Completed;
    finished.finished_at = Some(at_secs(100));
    let v3 = store.put_sync_run(&finished).await.unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(v3.counters.seen, 40);

    // newest first, paged
    let mut started = vec![v3];
    for i in 1..=22 {
        let r = SyncRun::start(
            t.clone(),
            conn.clone(),
            SyncTrigger::Scheduled,
            at_secs(i * 86_400),
        );
        started.push(store.put_sync_run(&r).await.unwrap());
    }
    store
        .put_sync_run(&SyncRun::start(
            t.clone(),
            ConnectionId::generate(),
            SyncTrigger::Initial,
            T0,
        ))
        .await
        .unwrap();
    let listed = read_all_pages(
        10,
        |r: &SyncRun| r.id.clone(),
        |page| store.list_sync_runs(&t, &conn, page),
    )
    .await;
    started.reverse();
    assert_eq!(listed, started);
}

pub async fn pending_archives_are_kept_per_run_listed_once_and_expire(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let run = SyncRunId::generate();
    let other_run = SyncRunId::generate();
    let archive = |id: usize, reason| PendingArchive {
        source_id: source(&format!("{id:05}")),
        reason,
    };
    let first: Vec<PendingArchive> = (0..60)
        .map(|i| archive(i, ArchiveReason::SourceDeleted))
        .collect();
    store
        .put_pending_archives(&t, &conn, &run, &first, at_secs(600))
        .await
        .unwrap();
    // a page checked again puts the same ids again: replaced, not doubled
    let again: Vec<PendingArchive> = (50..80)
        .map(|i| archive(i, ArchiveReason::LeftFilter))
        .collect();
    store
        .put_pending_archives(&t, &conn, &run, &again, at_secs(600))
        .await
        .unwrap();
    store
        .put_pending_archives(&t, &conn, &other_run, &first[..5], at_secs(600))
        .await
        .unwrap();
    store
        .put_pending_archives(&tenant("tenant-b"), &conn, &run, &first[..5], at_secs(600))
        .await
        .unwrap();

    let listed = read_all_pages(
        7,
        |a: &PendingArchive| a.source_id.clone(),
        |page| store.list_pending_archives(&t, &conn, &run, page, at_secs(1)),
    )
    .await;
    let mut expected: Vec<PendingArchive> = first[..50].to_vec();
    expected.extend(again);
    assert_eq!(listed, expected, "every archive once, in source-id order");

    let expired = store
        .list_pending_archives(&t, &conn, &run, PageRequest::first(100), at_secs(600))
        .await
        .unwrap();
    assert!(expired.items.is_empty(), "{expired:?}");
    assert!(store.purge_expired(at_secs(600)).await.is_ok());
}

pub async fn listed_ids_are_kept_per_run_and_kind_in_chunk_order_and_expire(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::generate();
    let run = SyncRunId::generate();
    // A full chunk: the largest item this record type writes.
    let full = ListedIds(
        (0..LISTED_CHUNK_IDS as u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect(),
    );
    let second = ListedIds(vec![u64::MAX, 0, 7]);
    let kind = ObjectKind::Company;
    // Written out of order, and the second chunk written twice (a redone hand-over).
    let conn_ref = &conn;
    let put = |k, chunk, ids: ListedIds, r: SyncRunId, tn: TenantId| async move {
        store
            .put_listed_ids(&tn, conn_ref, &r, k, chunk, &ids, at_secs(600))
            .await
            .unwrap()
    };
    put(kind, 1, ListedIds(vec![1, 2]), run.clone(), t.clone()).await;
    put(kind, 0, full.clone(), run.clone(), t.clone()).await;
    put(kind, 1, second.clone(), run.clone(), t.clone()).await;
    put(
        ObjectKind::Contact,
        0,
        ListedIds(vec![9]),
        run.clone(),
        t.clone(),
    )
    .await;
    put(
        kind,
        0,
        ListedIds(vec![5]),
        SyncRunId::generate(),
        t.clone(),
    )
    .await;
    put(kind, 2, ListedIds(vec![6]), run.clone(), tenant("tenant-b")).await;

    let read = store
        .listed_ids(&t, &conn, &run, kind, at_secs(1))
        .await
        .unwrap();
    assert_eq!(
        read,
        vec![full, second],
        "this run's and kind's chunks, in chunk order"
    );
    let contacts = store
        .listed_ids(&t, &conn, &run, ObjectKind::Contact, at_secs(1))
        .await
        .unwrap();
    assert_eq!(contacts, vec![ListedIds(vec![9])]);
    let expired = store
        .listed_ids(&t, &conn, &run, kind, at_secs(600))
        .await
        .unwrap();
    assert!(expired.is_empty(), "{expired:?}");
    assert!(store.purge_expired(at_secs(600)).await.is_ok());
}

pub async fn notifications_are_versioned_listed_per_tenant_and_expire_once_closed(
    store: &dyn Store,
) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::parse("conn-1").unwrap();
    let note = |kind, incident| Notification {
        tenant_id: t.clone(),
        id: NotificationId {
            connection_id: conn.clone(),
            kind,
            incident,
        },
        provider: Provider::Hubspot,
        detail: format!("{kind} #{incident}"),
        opened_at: T0,
        closed_at: None,
        read_at: None,
        version: 0,
    };
    let held = store
        .put_notification(&note(NotificationKind::ArchivesHeld, 1), None, T0)
        .await
        .unwrap();
    assert_eq!(held.version, 1);
    // Two writers opening the same incident: the second is refused.
    let again = store
        .put_notification(&note(NotificationKind::ArchivesHeld, 1), None, T0)
        .await;
    assert!(
        matches!(again, Err(StoreError::VersionConflict { .. })),
        "{again:?}"
    );
    let broken = store
        .put_notification(&note(NotificationKind::ConnectionBroken, 1), None, T0)
        .await
        .unwrap();
    let mut other_tenant = note(NotificationKind::ArchivesHeld, 2);
    other_tenant.tenant_id = tenant("tenant-b");
    store
        .put_notification(&other_tenant, None, T0)
        .await
        .unwrap();

    // Closed, it lives until its expiry; a stale version is refused.
    let mut closed = broken.clone();
    closed.closed_at = Some(at_secs(5));
    let closed = store
        .put_notification(&closed, Some(at_secs(600)), at_secs(5))
        .await
        .unwrap();
    assert_eq!(closed.version, 2);
    let stale = store.put_notification(&broken, None, at_secs(6)).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { .. })),
        "{stale:?}"
    );

    let listed = store.list_notifications(&t, at_secs(10)).await.unwrap();
    assert_eq!(
        listed,
        vec![held.clone(), closed],
        "by connection, kind name, incident"
    );
    let later = store.list_notifications(&t, at_secs(600)).await.unwrap();
    assert_eq!(
        later,
        vec![held],
        "the closed one expired; the open one stays"
    );
    // An expired incident counts as absent: it can be opened anew under its id.
    let reopened = store
        .put_notification(
            &note(NotificationKind::ConnectionBroken, 1),
            None,
            at_secs(600),
        )
        .await
        .unwrap();
    assert_eq!(reopened.version, 1);
    assert!(store.purge_expired(at_secs(700)).await.is_ok());
}

pub async fn conflicts_are_versioned_listed_newest_first_and_expire(store: &dyn Store) {
    let t = tenant("tenant-a");
    let conn = ConnectionId::parse("conn-1").unwrap();
    let conflict = |id: &str, secs: i64| Conflict {
        tenant_id: t.clone(),
        connection_id: conn.clone(),
        id: ConflictId::parse(id).unwrap(),
        provider: Provider::Hubspot,
        at: at_secs(secs),
        contact_id: ContactId::parse("contact-1").unwrap(),
        record_id: source("101"),
        field: TargetField::FirstName,
        property: "firstname".to_owned(),
        ours: SideValue {
            value: Some("Ann".to_owned()),
            written_at: at_secs(secs - 2),
        },
        theirs: SideValue {
            value: Some("Anna".to_owned()),
            written_at: at_secs(secs - 1),
        },
        winner: Side::Theirs,
        restored_at: None,
        expires_at: at_secs(secs + 600),
        version: 0,
    };
    let first = store.put_conflict(&conflict("c-1", 10), T0).await.unwrap();
    assert_eq!(first.version, 1);
    // The same conflict resolved again (a redelivered job) is refused, not doubled.
    let again = store.put_conflict(&conflict("c-1", 10), T0).await;
    assert!(
        matches!(again, Err(StoreError::VersionConflict { .. })),
        "{again:?}"
    );
    let second = store.put_conflict(&conflict("c-2", 20), T0).await.unwrap();
    let mut foreign = conflict("c-3", 30);
    foreign.tenant_id = tenant("tenant-b");
    store.put_conflict(&foreign, T0).await.unwrap();

    let mut restored = first.clone();
    restored.restored_at = Some(at_secs(40));
    let restored = store.put_conflict(&restored, at_secs(40)).await.unwrap();
    assert_eq!(restored.version, 2);
    let stale = store.put_conflict(&first, at_secs(41)).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { .. })),
        "{stale:?}"
    );

    let page = store
        .list_conflicts(&t, &conn, PageRequest::first(1), at_secs(50))
        .await
        .unwrap();
    assert_eq!(page.items, vec![second.clone()], "newest first");
    let rest = store
        .list_conflicts(
            &t,
            &conn,
            PageRequest {
                cursor: page.next.clone(),
                limit: 1,
            },
            at_secs(50),
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![restored.clone()]);
    assert_eq!(
        store
            .get_conflict(&t, &restored.id, at_secs(50))
            .await
            .unwrap(),
        Some(restored.clone())
    );
    assert_eq!(
        store
            .get_conflict(&tenant("tenant-b"), &restored.id, at_secs(50))
            .await
            .unwrap(),
        None,
        "another tenant's id reads nothing"
    );
    // Past its expiry a conflict is gone from every read.
    let later = store
        .list_conflicts(&t, &conn, PageRequest::first(10), at_secs(615))
        .await
        .unwrap();
    assert_eq!(later.items, vec![second], "the first expired at 610 s");
    assert_eq!(
        store
            .get_conflict(&t, &restored.id, at_secs(615))
            .await
            .unwrap(),
        None
    );
    assert!(store.purge_expired(at_secs(700)).await.is_ok());
}

// ---------------------------------------------------------------- tenants and routing

pub async fn no_read_crosses_into_another_tenant(store: &dyn Store) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    let hubspot = Provider::Hubspot;
    let now = at_secs(10);

    let mut conn = Connection::new(a.clone(), hubspot, T0);
    conn.account_id = Some(ProviderAccountId::parse("portal-1").unwrap());
    let conn = store.put_connection(&conn).await.unwrap();
    let c = customer(&a, "Acme", Some("acme.com"));
    let c_link = company_link(&c, &conn.id, "512", 1, "aaaa");
    let mut c = write_customer(store, &c, 0, Some(&c_link)).await.unwrap();
    let person = new_contact(store, &contact_of(&a, &c, "ana@acme.com"), None).await;
    let m = pending_match(&a, &conn.id, "512");
    store.create_pending_match(&m).await.unwrap();
    let entry = LogEntry::new(a.clone(), conn.id.clone(), hubspot, LogStatus::Failed, T0);
    store.append_log(&entry).await.unwrap();
    let run = store
        .put_sync_run(&SyncRun::start(
            a.clone(),
            conn.id.clone(),
            SyncTrigger::Initial,
            T0,
        ))
        .await
        .unwrap();

    // everything is there for its own tenant
    assert!(store.get_connection(&a, &conn.id).await.unwrap().is_some());
    assert!(store.get_customer(&a, &c.id).await.unwrap().is_some());
    assert!(
        store
            .get_log_entry(&a, &entry.id, now)
            .await
            .unwrap()
            .is_some()
    );

    // and nothing for the other
    let first = PageRequest::first(10);
    assert_eq!(store.get_connection(&b, &conn.id).await.unwrap(), None);
    assert!(store.list_connections(&b).await.unwrap().is_empty());
    assert_eq!(store.get_customer(&b, &c.id).await.unwrap(), None);
    let acme = Domain::parse("acme.com").unwrap();
    assert!(
        store
            .find_customers_by_domain(&b, &acme)
            .await
            .unwrap()
            .is_empty()
    );
    let acme_name = NormalizedName::of("Acme").unwrap();
    assert!(
        store
            .find_customers_by_name(&b, &acme_name)
            .await
            .unwrap()
            .is_empty()
    );
    for filter in [
        ArchivedFilter::Active,
        ArchivedFilter::Archived,
        ArchivedFilter::All,
    ] {
        let page = store
            .list_customers(&b, filter, first.clone())
            .await
            .unwrap();
        assert!(page.items.is_empty());
    }
    assert_eq!(store.get_contact(&b, &person.id).await.unwrap(), None);
    let contacts = store
        .list_contacts_of_customer(&b, &c.id, first.clone())
        .await
        .unwrap();
    assert!(contacts.items.is_empty());
    assert_eq!(
        hubspot_link(store, &b, ObjectKind::Company, "512").await,
        None
    );
    let links = store
        .list_links(
            &b,
            Provider::Hubspot,
            &portal(),
            ObjectKind::Company,
            first.clone(),
        )
        .await
        .unwrap();
    assert!(links.items.is_empty());
    assert!(
        store
            .links_to(&b, &LinkTarget::Customer(c.id.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_pending_match(&b, &m.id).await.unwrap(), None);
    assert_eq!(
        store
            .find_pending_match_for_source(&b, hubspot, ObjectKind::Company, &source("512"))
            .await
            .unwrap(),
        None
    );
    let open = store
        .list_pending_matches(&b, PendingMatchStatus::Open, first.clone())
        .await
        .unwrap();
    assert!(open.items.is_empty());
    let log = store
        .list_log(&b, &conn.id, LogFilter::default(), first.clone(), now)
        .await
        .unwrap();
    assert!(log.items.is_empty());
    assert_eq!(store.get_log_entry(&b, &entry.id, now).await.unwrap(), None);
    assert_eq!(
        store.get_sync_run(&b, &conn.id, &run.id).await.unwrap(),
        None
    );
    assert!(
        store
            .list_sync_runs(&b, &conn.id, first.clone())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // nor does a write or a delete through the other tenant reach the first one's items
    let result = store
        .resolve_pending_match(&b, &m.id, MatchResolution::Ignore, now)
        .await;
    assert_err!(result, StoreError::NotFound { .. });
    c.archived = Some(Archival {
        at: T0,
        reason: ArchiveReason::Admin,
    });
    let c = update_customer(store, &c).await;
    let result = store.delete_customer_permanently(&b, &c.id).await;
    assert_err!(result, StoreError::NotFound { .. });
    let mut same_id = customer(&b, "Other tenant's customer", None);
    same_id.id = c.id.clone();
    let theirs = new_customer(store, &same_id).await;
    assert_eq!(theirs.version, 1);
    assert_eq!(store.get_customer(&b, &c.id).await.unwrap(), Some(theirs));
    assert_eq!(store.get_customer(&a, &c.id).await.unwrap(), Some(c));
    assert_eq!(store.get_pending_match(&a, &m.id).await.unwrap(), Some(m));
}

pub async fn connections_are_routed_by_provider_account(store: &dyn Store) {
    let t = tenant("tenant-a");
    let portal = |id: &str| ProviderAccountId::parse(id).unwrap();

    let unbound = store
        .put_connection(&Connection::new(t.clone(), Provider::Hubspot, T0))
        .await
        .unwrap();
    assert_eq!(routed(store, Provider::Hubspot, "portal-1").await, vec![]);

    let mut bound = unbound.clone();
    bound.account_id = Some(portal("portal-1"));
    bound.status = ConnectionStatus::Connected;
    let bound = store.put_connection(&bound).await.unwrap();
    assert_eq!(
        routed(store, Provider::Hubspot, "portal-1").await,
        vec![bound.clone()]
    );
    assert_eq!(routed(store, Provider::Stripe, "portal-1").await, vec![]);

    // a later write of the connection is what the route returns
    let mut flagged = bound.clone();
    flagged.flags.archives_held = true;
    let flagged = store.put_connection(&flagged).await.unwrap();
    assert_eq!(
        routed(store, Provider::Hubspot, "portal-1").await,
        vec![flagged.clone()]
    );

    // re-bound to another account: the old route is gone
    let mut moved = flagged.clone();
    moved.account_id = Some(portal("portal-2"));
    let moved = store.put_connection(&moved).await.unwrap();
    assert_eq!(routed(store, Provider::Hubspot, "portal-1").await, vec![]);
    assert_eq!(
        routed(store, Provider::Hubspot, "portal-2").await,
        vec![moved.clone()]
    );

    // a rejected write leaves the route as it was
    let mut stale = flagged.clone();
    stale.account_id = Some(portal("portal-3"));
    expect_version_conflict(store.put_connection(&stale).await);
    assert_eq!(routed(store, Provider::Hubspot, "portal-3").await, vec![]);

    // the same account id at another provider routes separately
    let mut stripe = Connection::new(tenant("tenant-b"), Provider::Stripe, T0);
    stripe.account_id = Some(portal("portal-2"));
    stripe.status = ConnectionStatus::Connected;
    let stripe = store.put_connection(&stripe).await.unwrap();
    assert_eq!(
        routed(store, Provider::Stripe, "portal-2").await,
        vec![stripe]
    );
    assert_eq!(
        routed(store, Provider::Hubspot, "portal-2").await,
        vec![moved.clone()]
    );
    assert_eq!(
        store.list_connections(&t).await.unwrap(),
        vec![moved.clone()]
    );

    // another tenant connecting the same portal adds its route and takes none away
    let mut other_tenant = Connection::new(tenant("tenant-c"), Provider::Hubspot, T0);
    other_tenant.account_id = Some(portal("portal-2"));
    other_tenant.status = ConnectionStatus::Connected;
    let other_tenant = store.put_connection(&other_tenant).await.unwrap();
    let both = routed(store, Provider::Hubspot, "portal-2").await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&moved) && both.contains(&other_tenant));

    // a newer connection of the tenant claims the portal; the older one, disconnected
    // afterwards, takes nothing with it
    let mut newer = Connection::new(t.clone(), Provider::Hubspot, T0);
    newer.account_id = Some(portal("portal-2"));
    newer.status = ConnectionStatus::Connected;
    let newer = store.put_connection(&newer).await.unwrap();
    let mut older = moved.clone();
    older.status = ConnectionStatus::Disconnected;
    store.put_connection(&older).await.unwrap();
    let routes = routed(store, Provider::Hubspot, "portal-2").await;
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert!(routes.contains(&newer) && routes.contains(&other_tenant));

    // a Disconnected connection is never routed
    let mut gone = other_tenant.clone();
    gone.status = ConnectionStatus::Disconnected;
    store.put_connection(&gone).await.unwrap();
    assert_eq!(
        routed(store, Provider::Hubspot, "portal-2").await,
        vec![newer]
    );
}

pub async fn every_connection_of_every_tenant_is_listed_once(store: &dyn Store) {
    let mut want = BTreeSet::new();
    for i in 0..25 {
        let t = tenant(&format!("tenant-{}", i % 3));
        let provider = Provider::ALL[i % 2];
        let c = store
            .put_connection(&Connection::new(t, provider, T0))
            .await
            .unwrap();
        want.insert((c.tenant_id, c.id));
    }
    let listed = read_all_pages(
        10,
        |c: &Connection| (c.tenant_id.clone(), c.id.clone()),
        |page| store.list_all_connections(page),
    )
    .await;
    assert_eq!(listed.len(), 25);
    let got: BTreeSet<_> = listed.into_iter().map(|c| (c.tenant_id, c.id)).collect();
    assert_eq!(got, want);

    for i in 0..3 {
        let t = tenant(&format!("tenant-{i}"));
        let own = store.list_connections(&t).await.unwrap();
        assert!(own.iter().all(|c| c.tenant_id == t));
        assert_eq!(own.len(), want.iter().filter(|(tid, _)| *tid == t).count());
    }
}
