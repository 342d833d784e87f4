//! Full passes on the real embedded store: one pass per connection, by the lease.

use std::sync::Arc;

use connector::engine::reconcile::StartError;
use connector::engine::{Engine, EngineSettings};
use connector::model::*;
use connector::ports::{JobQueue, Store};
use integration_tests::adapters::{embedded_queue, embedded_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sync_now_racing_the_nightly_fan_out_starts_one_pass() {
    let store_dir = embedded_store();
    let (records, reconciles) = (embedded_queue(5), embedded_queue(5));
    let store: Arc<dyn Store> = Arc::new((*store_dir).clone());
    let engine = Engine::new(
        store.clone(),
        Arc::new((*records).clone()) as Arc<dyn JobQueue>,
        Arc::new((*reconciles).clone()) as Arc<dyn JobQueue>,
        EngineSettings::default(),
    );
    let mut connection = Connection::new(
        TenantId::parse("tenant-a").unwrap(),
        Provider::Hubspot,
        Timestamp::now(),
    );
    connection.status = ConnectionStatus::Connected;
    connection.account_id = Some(ProviderAccountId::parse("62515").unwrap());
    let connection = store.put_connection(&connection).await.unwrap();

    let (now, nightly) = tokio::join!(
        engine.start_sync(&connection, SyncTrigger::Manual, false),
        engine.start_nightly(),
    );
    let nightly = nightly.unwrap();
    match now {
        Ok(run) => {
            assert_eq!(
                nightly, 0,
                "the nightly pass must not start beside {}",
                run.id
            );
        }
        Err(StartError::AlreadyRunning(holder)) => {
            assert_eq!(nightly, 1);
            let runs = store
                .list_sync_runs(
                    &connection.tenant_id,
                    &connection.id,
                    connector::ports::PageRequest::first(10),
                )
                .await
                .unwrap();
            assert_eq!(runs.items.len(), 1);
            assert_eq!(runs.items[0].id, holder);
        }
        Err(e) => panic!("{e}"),
    }
    // And a third try while one runs is refused, naming the running pass.
    let again = engine
        .start_sync(&connection, SyncTrigger::Manual, false)
        .await;
    assert!(
        matches!(again, Err(StartError::AlreadyRunning(_))),
        "{again:?}"
    );
    assert_eq!(reconciles.approximate_depth().await.unwrap(), 1);
}

#[tokio::test]
async fn the_nightly_fan_out_purges_what_expired() {
    let store_dir = embedded_store();
    let (records, reconciles) = (embedded_queue(5), embedded_queue(5));
    let store: Arc<dyn Store> = Arc::new((*store_dir).clone());
    let engine = Engine::new(
        store.clone(),
        Arc::new((*records).clone()) as Arc<dyn JobQueue>,
        Arc::new((*reconciles).clone()) as Arc<dyn JobQueue>,
        EngineSettings::default(),
    );
    let long_ago = Timestamp::from_millis(Timestamp::now().as_millis() - 40 * 24 * 3600 * 1000);
    let row = LogEntry::new(
        TenantId::parse("tenant-a").unwrap(),
        ConnectionId::generate(),
        Provider::Hubspot,
        LogStatus::Applied,
        long_ago,
    );
    store.append_log(&row).await.unwrap();
    store
        .record_event_once("hubspot:old", long_ago, long_ago)
        .await
        .unwrap();
    engine.start_nightly().await.unwrap();
    assert_eq!(
        store.purge_expired(Timestamp::now()).await.unwrap(),
        0,
        "the nightly run left nothing expired behind"
    );
}
