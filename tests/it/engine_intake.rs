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
    store: Arc<dyn Store>,
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
    connect(store.as_ref(), "tenant-a").await;
    Rig {
        engine,
        faults,
        store,
        record_jobs,
        _keep: (store_dir, records_dir, reconciles_dir),
    }
}

async fn connect(store: &dyn Store, tenant: &str) -> Connection {
    let mut connection = Connection::new(
        TenantId::parse(tenant).unwrap(),
        Provider::Hubspot,
        Timestamp::now(),
    );
    connection.status = ConnectionStatus::Connected;
    connection.account_id = Some(ProviderAccountId::parse(PORTAL).unwrap());
    store.put_connection(&connection).await.unwrap()
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
            own_write: None,
        })
        .collect()
}

async fn queued_jobs(rig: &Rig) -> Vec<Job> {
    let mut jobs = Vec::new();
    loop {
        let got = rig
            .record_jobs
            .receive(10, Duration::from_secs(60))
            .await
            .unwrap();
        if got.is_empty() {
            return jobs;
        }
        jobs.extend(got.iter().map(|m| serde_json::from_str(&m.body).unwrap()));
    }
}

async fn queued(rig: &Rig) -> usize {
    queued_jobs(rig).await.len()
}

#[tokio::test]
async fn a_store_error_checking_the_batch_keeps_no_event_so_the_redelivery_is_taken() {
    let rig = rig().await;
    rig.faults.fail("events_recorded", 0);
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
    rig.faults.fail("record_events", 0);
    assert!(rig.engine.intake(batch(10)).await.is_err());
    let again = rig.engine.intake(batch(10)).await.unwrap();
    assert_eq!(
        (again.enqueued, again.duplicates),
        (10, 0),
        "none was recorded: {again:?}"
    );
    // Every event is queued at least once; none is lost.
    assert_eq!(queued(&rig).await, 20);
    let third = rig.engine.intake(batch(10)).await.unwrap();
    assert_eq!((third.enqueued, third.duplicates), (0, 10));
}

#[tokio::test]
async fn every_record_one_event_names_is_queued_once() {
    let rig = rig().await;
    let mut changes = batch(3);
    // A merge: one event id, two records; and the same change twice in one batch.
    let mut merged = changes[0].clone();
    merged.source_id = SourceId::parse("999").unwrap();
    changes.push(merged);
    changes.push(changes[1].clone());
    let report = rig.engine.intake(changes).await.unwrap();
    assert_eq!((report.enqueued, report.duplicates), (4, 0), "{report:?}");
    assert_eq!(queued(&rig).await, 4);
}

#[tokio::test]
async fn every_tenant_that_connected_the_portal_gets_the_change() {
    let rig = rig().await;
    let other = connect(rig.store.as_ref(), "tenant-b").await;
    let report = rig.engine.intake(batch(2)).await.unwrap();
    assert_eq!((report.enqueued, report.unrouted), (4, 0), "{report:?}");
    let jobs = queued_jobs(&rig).await;
    let tenants: std::collections::BTreeSet<_> =
        jobs.iter().map(|j| j.tenant_id.to_string()).collect();
    assert_eq!(tenants.len(), 2, "{jobs:?}");
    // Tenant b disconnecting leaves tenant a's real time alone.
    let mut gone = other;
    gone.status = ConnectionStatus::Disconnected;
    rig.store.put_connection(&gone).await.unwrap();
    let mut later = batch(3);
    later.drain(..2);
    let report = rig.engine.intake(later).await.unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    assert_eq!(queued_jobs(&rig).await[0].tenant_id.as_str(), "tenant-a");
}
