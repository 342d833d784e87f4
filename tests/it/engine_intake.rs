//! Webhook intake on the real embedded store and queue, with faults injected at each
//! store and queue call: an event is marked seen only once its job is queued, so whatever
//! fails, the provider's redelivery is taken.

use std::sync::Arc;
use std::time::Duration;

use connector::engine::intake::Change;
use connector::engine::{Engine, EngineSettings};
use connector::model::*;
use connector::ports::{JobQueue, Store};
use integration_tests::adapters::{embedded_queue, embedded_store};
use integration_tests::faults::{Faults, FaultyQueue, FaultyStore};

struct Rig {
    engine: Engine,
    faults: Arc<Faults>,
    record_jobs: Arc<dyn JobQueue>,
    _keep: (
        integration_tests::adapters::TempEmbeddedStore,
        integration_tests::adapters::TempEmbeddedQueue,
        integration_tests::adapters::TempEmbeddedQueue,
    ),
}

const PORTAL: &str = "4242";

async fn rig() -> Rig {
    let store_dir = embedded_store();
    let records_dir = embedded_queue(5);
    let reconciles_dir = embedded_queue(5);
    let store: Arc<dyn Store> = Arc::new(store_dir.clone());
    let record_jobs: Arc<dyn JobQueue> = Arc::new(records_dir.clone());
    let reconcile_jobs: Arc<dyn JobQueue> = Arc::new(reconciles_dir.clone());
    let faults = Arc::new(Faults::default());
    let engine = Engine::new(
        Arc::new(FaultyStore {
            inner: store.clone(),
            faults: faults.clone(),
        }),
        Arc::new(FaultyQueue {
            inner: record_jobs.clone(),
            faults: faults.clone(),
        }),
        reconcile_jobs,
        EngineSettings::default(),
    );
    let mut connection = Connection::new(
        TenantId::parse("tenant-a").unwrap(),
        Provider::Hubspot,
        Timestamp::now(),
    );
    connection.status = ConnectionStatus::Connected;
    connection.account_id = Some(ProviderAccountId::parse(PORTAL).unwrap());
    store.put_connection(&connection).await.unwrap();
    Rig {
        engine,
        faults,
        record_jobs,
        _keep: (store_dir, records_dir, reconciles_dir),
    }
}

fn batch(n: usize) -> Vec<Change> {
    (0..n)
        .map(|i| Change {
            provider: Provider::Hubspot,
            account: ProviderAccountId::parse(PORTAL).unwrap(),
            event_id: WebhookEventId::parse(format!("evt-{i}")).unwrap(),
            occurred_at: Timestamp::now(),
            object: ObjectKind::Company,
            source_id: SourceId::parse(format!("{}", 100 + i)).unwrap(),
            change: ChangeKind::Updated,
        })
        .collect()
}

async fn queued(rig: &Rig) -> usize {
    let mut seen = 0;
    loop {
        let got = rig
            .record_jobs
            .receive(10, Duration::from_secs(60))
            .await
            .unwrap();
        if got.is_empty() {
            return seen;
        }
        seen += got.len();
    }
}

#[tokio::test]
async fn a_store_error_mid_batch_keeps_no_event_so_the_redelivery_is_taken() {
    let rig = rig().await;
    rig.faults.fail("event_recorded", 6);
    assert!(rig.engine.intake(batch(10)).await.is_err());
    assert_eq!(rig.faults.injected(), 1);
    assert_eq!(queued(&rig).await, 0, "nothing was queued");
    let again = rig.engine.intake(batch(10)).await.unwrap();
    assert_eq!((again.enqueued, again.duplicates), (10, 0), "{again:?}");
    assert_eq!(queued(&rig).await, 10);
}

#[tokio::test]
async fn a_failed_enqueue_keeps_no_event_so_the_redelivery_is_taken() {
    let rig = rig().await;
    rig.faults.fail("send_batch", 0);
    assert!(rig.engine.intake(batch(10)).await.is_err());
    let again = rig.engine.intake(batch(10)).await.unwrap();
    assert_eq!((again.enqueued, again.duplicates), (10, 0), "{again:?}");
    assert_eq!(queued(&rig).await, 10);
}

#[tokio::test]
async fn a_failure_after_the_enqueue_only_repeats_idempotent_jobs() {
    let rig = rig().await;
    rig.faults.fail("record_event_once", 3);
    assert!(rig.engine.intake(batch(10)).await.is_err());
    let again = rig.engine.intake(batch(10)).await.unwrap();
    assert_eq!(
        again.duplicates, 3,
        "the first three were recorded: {again:?}"
    );
    assert_eq!(again.enqueued, 7);
    // Every event is queued at least once; none is lost.
    assert_eq!(queued(&rig).await, 17);
    let third = rig.engine.intake(batch(10)).await.unwrap();
    assert_eq!((third.enqueued, third.duplicates), (0, 10));
}

#[tokio::test]
async fn one_event_twice_in_a_batch_is_one_job_and_a_duplicate() {
    let rig = rig().await;
    let mut changes = batch(3);
    changes.push(changes[0].clone());
    let report = rig.engine.intake(changes).await.unwrap();
    assert_eq!((report.enqueued, report.duplicates), (3, 1), "{report:?}");
}
