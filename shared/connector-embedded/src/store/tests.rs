//! What only the embedded adapter promises; the port's contract itself is checked by
//! the conformance suite in `tests/src/conformance/store.rs`.

use connector::model::*;
use connector::ports::*;
use tempfile::TempDir;

use super::EmbeddedStore;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn tenant() -> TenantId {
    TenantId::parse("tenant-a").unwrap()
}

fn temp_file() -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    (dir, path)
}

async fn new_customer(store: &EmbeddedStore, name: &str) -> Customer {
    let mut c = Customer::new(tenant(), name, T0);
    c.domain = Some(Domain::parse("acme.com").unwrap());
    store
        .write_customer(CustomerWrite {
            customer: &c,
            expected_version: 0,
            link: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_corrupt_stored_body_is_an_error_not_a_panic() {
    let (_dir, path) = temp_file();
    let store = EmbeddedStore::open(&path).unwrap();
    let c = new_customer(&store, "Acme").await;

    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE store_customers SET body = '{\"name\": 12'", [])
        .unwrap();

    let got = store.get_customer(&tenant(), &c.id).await;
    assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
    let acme = Domain::parse("acme.com").unwrap();
    let found = store.find_customers_by_domain(&tenant(), &acme).await;
    assert!(matches!(found, Err(StoreError::Corrupt(_))), "{found:?}");
    let listed = store
        .list_customers(&tenant(), ArchivedFilter::All, PageRequest::first(10))
        .await;
    assert!(matches!(listed, Err(StoreError::Corrupt(_))), "{listed:?}");
}

#[tokio::test]
async fn data_survives_closing_and_reopening_the_file() {
    let (_dir, path) = temp_file();
    let written = {
        let store = EmbeddedStore::open(&path).unwrap();
        new_customer(&store, "Acme").await
    };
    let reopened = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        reopened.get_customer(&tenant(), &written.id).await.unwrap(),
        Some(written)
    );
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let (_dir, path) = temp_file();
    let _store = EmbeddedStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_still_have_one_winner_per_version() {
    let (_dir, path) = temp_file();
    let one = EmbeddedStore::open(&path).unwrap();
    let two = EmbeddedStore::open(&path).unwrap();
    let c = new_customer(&one, "Acme").await;
    for round in 0..20u64 {
        let current = one.get_customer(&tenant(), &c.id).await.unwrap().unwrap();
        let mut left = current.clone();
        left.name = format!("left {round}");
        let mut right = current.clone();
        right.name = format!("right {round}");
        fn write(c: &Customer, expected_version: u64) -> CustomerWrite<'_> {
            CustomerWrite {
                customer: c,
                expected_version,
                link: None,
            }
        }
        let (l, r) = tokio::join!(
            one.write_customer(write(&left, current.version)),
            two.write_customer(write(&right, current.version))
        );
        let wins = [l.is_ok(), r.is_ok()].into_iter().filter(|ok| *ok).count();
        assert_eq!(wins, 1, "round {round}: {l:?} {r:?}");
    }
    let last = two.get_customer(&tenant(), &c.id).await.unwrap().unwrap();
    assert_eq!(last.version, 21);
}

#[tokio::test]
async fn a_cursor_that_does_not_parse_is_a_bad_cursor() {
    let (_dir, path) = temp_file();
    let store = EmbeddedStore::open(&path).unwrap();
    let page = PageRequest {
        limit: 10,
        cursor: Some("not a cursor".into()),
    };
    let listed = store
        .list_log(
            &tenant(),
            &ConnectionId::generate(),
            LogFilter::default(),
            page,
            T0,
        )
        .await;
    assert!(matches!(listed, Err(StoreError::BadCursor)), "{listed:?}");
}

#[tokio::test]
async fn purge_deletes_only_expired_items_and_counts_them() {
    let (_dir, path) = temp_file();
    let store = EmbeddedStore::open(&path).unwrap();
    let conn = ConnectionId::generate();
    let mut old = LogEntry::new(
        tenant(),
        conn.clone(),
        Provider::Hubspot,
        LogStatus::Applied,
        T0,
    );
    old.expires_at = T0.plus(std::time::Duration::from_secs(10));
    let kept = LogEntry::new(
        tenant(),
        conn.clone(),
        Provider::Hubspot,
        LogStatus::Applied,
        T0,
    );
    store.append_log(&old).await.unwrap();
    store.append_log(&kept).await.unwrap();
    let at = |secs| T0.plus(std::time::Duration::from_secs(secs));
    assert!(store.record_event_once("e1", at(5), T0).await.unwrap());
    assert!(store.record_event_once("e2", at(500), T0).await.unwrap());

    assert_eq!(store.purge_expired(at(10)).await.unwrap(), 2);
    assert_eq!(store.purge_expired(at(10)).await.unwrap(), 0);
    assert_eq!(
        store
            .get_log_entry(&tenant(), &kept.id, at(10))
            .await
            .unwrap(),
        Some(kept)
    );
    assert!(
        !store
            .record_event_once("e2", at(600), at(10))
            .await
            .unwrap()
    );
}
