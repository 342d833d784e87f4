//! Record batches as the record-worker runs them (`sync_service::jobs`), on the real
//! embedded store and queue with faults injected: a job cut off by the deadline is sent
//! again, a panic fails its message alone, and a job failing on its last delivery leaves a
//! log row with a Retry instead of vanishing into the dead-letter queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connector::engine::{Engine, EngineSettings};
use connector::model::*;
use connector::ports::{JobQueue, LogFilter, PageRequest, Store};
use integration_tests::adapters::{embedded_queue, embedded_store};
use integration_tests::faults::{Faults, FaultyStore};
use integration_tests::sim::portal::{Portal, source_id};
use sync_service::App;
use sync_service::jobs::{self, Message, RECORD_MAX_RECEIVES};

struct Rig {
    app: App,
    store: Arc<dyn Store>,
    records: Arc<dyn JobQueue>,
    faults: Arc<Faults>,
    portal: Arc<Portal>,
    tenant: TenantId,
    connection: ConnectionId,
    _keep: Vec<Box<dyn std::any::Any>>,
}

async fn rig() -> Rig {
    let store_dir = embedded_store();
    let (records_dir, reconciles_dir) = (embedded_queue(5), embedded_queue(5));
    let store: Arc<dyn Store> = Arc::new((*store_dir).clone());
    let records: Arc<dyn JobQueue> = Arc::new((*records_dir).clone());
    let faults = Arc::new(Faults::default());
    let portal = Arc::new(Portal::new("62515", 7));
    let engine = Engine::new(
        Arc::new(FaultyStore {
            inner: store.clone(),
            faults: faults.clone(),
        }),
        records.clone(),
        Arc::new((*reconciles_dir).clone()),
        EngineSettings::default(),
    )
    .with_provider(portal.clone());
    let tenant = TenantId::parse("tenant-a").unwrap();
    let connection = portal.connect_new(&engine, &tenant).await.unwrap().id;
    let app = App {
        engine,
        hubspot: None,
        hubspot_client_secret: None,
        stripe: None,
        stripe_webhook_secrets: Vec::new(),
        admin_auth: None,
        public_base_url: None,
    };
    Rig {
        app,
        store,
        records,
        faults,
        portal,
        tenant,
        connection,
        _keep: vec![
            Box::new(store_dir),
            Box::new(records_dir),
            Box::new(reconciles_dir),
        ],
    }
}

fn message(rig: &Rig, company: u64, receive_count: u32) -> Message {
    let job = Job::new(
        rig.tenant.clone(),
        rig.connection.clone(),
        Provider::Hubspot,
        JobKind::SyncRecord {
            object: ObjectKind::Company,
            source_id: source_id(company),
            cause: JobCause::Resync,
        },
        Timestamp::now(),
    );
    Message {
        id: format!("m-{company}-{receive_count}"),
        body: job.to_body(),
        receive_count,
    }
}

async fn failed_rows(rig: &Rig) -> Vec<LogEntry> {
    rig.store
        .list_log(
            &rig.tenant,
            &rig.connection,
            LogFilter { errors_only: true },
            PageRequest::first(50),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_job_failing_on_its_last_delivery_leaves_a_log_row_with_a_retry() {
    let rig = rig().await;
    let company = rig.portal.create();
    for delivery in 1..=RECORD_MAX_RECEIVES {
        // The store fails the job's first read on every delivery.
        rig.faults.fail("get_connection", 0);
        let m = message(&rig, company, delivery);
        let failed = jobs::run_record_batch(&rig.app, vec![m.clone()], None).await;
        if delivery < RECORD_MAX_RECEIVES {
            assert_eq!(
                failed,
                vec![m.id],
                "delivery {delivery} is left for the queue"
            );
            assert!(failed_rows(&rig).await.is_empty());
        } else {
            assert!(
                failed.is_empty(),
                "the last delivery is taken, with its row"
            );
        }
    }
    let rows = failed_rows(&rig).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].error_code, Some(ErrorCode::StoreUnavailable));
    assert_eq!(rows[0].record_id, Some(source_id(company)));
    assert!(rows[0].retry_job.is_some());
}

#[tokio::test]
async fn a_panicking_job_fails_its_message_alone() {
    let rig = rig().await;
    let (good, bad) = (rig.portal.create(), rig.portal.create());
    rig.portal.panic_on_read_of(bad);
    let (ok, boom) = (message(&rig, good, 1), message(&rig, bad, 1));
    let failed = jobs::run_record_batch(&rig.app, vec![ok, boom.clone()], None).await;
    assert_eq!(failed, vec![boom.id]);
    assert!(
        customer_linked(&rig, good).await,
        "the good job of the batch was applied"
    );
    // On its last delivery the panicking job leaves its row.
    let last = message(&rig, bad, RECORD_MAX_RECEIVES);
    assert!(
        jobs::run_record_batch(&rig.app, vec![last], None)
            .await
            .is_empty()
    );
    let rows = failed_rows(&rig).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].error_code, Some(ErrorCode::Internal));
}

#[tokio::test]
async fn a_job_cut_off_by_the_deadline_is_sent_again_not_lost() {
    let rig = rig().await;
    let company = rig.portal.create();
    let before = rig.records.approximate_depth().await.unwrap();
    let spent = Instant::now() - Duration::from_millis(1);
    let failed =
        jobs::run_record_batch(&rig.app, vec![message(&rig, company, 1)], Some(spent)).await;
    assert!(
        failed.is_empty(),
        "the message is done: its job went back on the queue"
    );
    assert_eq!(rig.records.approximate_depth().await.unwrap(), before + 1);
}

async fn customer_linked(rig: &Rig, company: u64) -> bool {
    rig.store
        .get_link(
            &rig.tenant,
            &SourceRef {
                provider: Provider::Hubspot,
                account: rig.portal.account.clone(),
                kind: ObjectKind::Company,
                source_id: source_id(company),
            },
        )
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn the_jobs_of_one_connection_share_one_fetch_and_one_filter_read() {
    let rig = rig().await;
    let companies: Vec<u64> = (0..40).map(|_| rig.portal.create()).collect();
    // the same record twice in one batch: fetched once, applied in order
    let mut messages: Vec<Message> = companies.iter().map(|c| message(&rig, *c, 1)).collect();
    messages.push(message(&rig, companies[0], 2));
    let before = rig.portal.reads();
    let failed = jobs::run_record_batch(&rig.app, messages, None).await;
    assert!(failed.is_empty(), "{failed:?}");
    let reads = rig.portal.reads();
    assert_eq!(reads.fetches - before.fetches, 1, "one fetch for 41 jobs");
    assert_eq!(reads.membership - before.membership, 1, "one filter read");
    for company in &companies {
        assert!(customer_linked(&rig, *company).await, "company {company}");
    }
    let counted = rig
        .store
        .list_log(
            &rig.tenant,
            &rig.connection,
            LogFilter::default(),
            PageRequest::first(100),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(
        counted
            .iter()
            .filter(|e| e.status == LogStatus::Applied)
            .count(),
        40,
        "one applied row per record, none for the repeat"
    );
}

#[tokio::test]
async fn a_shared_fetch_that_fails_retries_each_job_on_its_own_schedule() {
    let rig = rig().await;
    let companies: Vec<u64> = (0..5).map(|_| rig.portal.create()).collect();
    rig.portal.set_fault_rate(1.0);
    let before = rig.records.approximate_depth().await.unwrap();
    let messages: Vec<Message> = companies.iter().map(|c| message(&rig, *c, 1)).collect();
    let failed = jobs::run_record_batch(&rig.app, messages, None).await;
    assert!(
        failed.is_empty(),
        "each job was handed to its retry: {failed:?}"
    );
    assert_eq!(
        rig.records.approximate_depth().await.unwrap(),
        before + 5,
        "five retries, one per job"
    );
    assert!(
        failed_rows(&rig).await.is_empty(),
        "no row before the last attempt"
    );
}
