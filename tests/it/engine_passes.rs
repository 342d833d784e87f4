//! Full passes on the real embedded store: one pass per connection, by the lease.

use std::sync::Arc;
use std::time::Duration;

use connector::engine::reconcile::{Budget, StartError, StepResult};
use connector::engine::{Engine, EngineSettings};
use connector::model::*;
use connector::ports::{JobQueue, Store};
use integration_tests::adapters::{embedded_queue, embedded_store};
use integration_tests::bare_rig::BareRig;

/// When every connection made today has its nightly pass due.
fn tomorrow_at_two() -> Timestamp {
    NightlyTime::DEFAULT.on_day_of(Timestamp::now().plus(Duration::from_secs(24 * 3600)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sync_now_racing_the_nightly_fan_out_starts_one_pass() {
    let bare = BareRig::new();
    let (store, reconciles) = (bare.store.clone(), &bare.reconciles);
    let engine = bare.engine(EngineSettings::default());
    let connection = bare.connected().await;

    let (now, nightly) = tokio::join!(
        engine.start_sync(&connection, SyncTrigger::Manual, false),
        engine.sweep(tomorrow_at_two()),
    );
    let nightly = nightly.unwrap().started;
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

/// A start that died between its lease and its run (or a pass that died between its last
/// write and the release) leaves a lease no running pass holds: the next start takes it
/// over instead of answering "already running" for 20 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_no_running_pass_holds_is_taken_over() {
    let bare = BareRig::new();
    let store = bare.store.clone();
    let engine_with = |grace: Duration| {
        bare.engine(EngineSettings {
            unwritten_run_grace: grace,
            ..EngineSettings::default()
        })
    };
    let connection = bare.connected().await;
    let (tenant, id) = (&connection.tenant_id, &connection.id);
    let lapses = Timestamp::now().plus(Duration::from_secs(1200));

    // never written, just now: a racing start may be about to write it
    let ghost = SyncRunId::generate();
    store
        .claim_pass(tenant, id, &ghost, lapses, Timestamp::now())
        .await
        .unwrap();
    let patient = engine_with(Duration::from_secs(60));
    let refused = patient
        .start_sync(&connection, SyncTrigger::Manual, false)
        .await;
    assert!(
        matches!(&refused, Err(StartError::AlreadyRunning(h)) if *h == ghost),
        "{refused:?}"
    );
    // past the grace, it is taken over
    let started = engine_with(Duration::ZERO)
        .start_sync(&connection, SyncTrigger::Manual, false)
        .await
        .unwrap();

    // a run that ended but never released its lease
    let mut ended = started.clone();
    ended.status = SyncRunStatus::Completed;
    store.put_sync_run(&ended).await.unwrap();
    let next = patient
        .start_sync(&connection, SyncTrigger::Manual, false)
        .await
        .unwrap();
    assert_ne!(next.id, started.id);
    let holder = store
        .claim_pass(tenant, id, &SyncRunId::generate(), lapses, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(holder, next.id, "the new pass holds the lease");
}

#[tokio::test]
async fn the_nightly_fan_out_purges_what_expired() {
    let bare = BareRig::new();
    let store = bare.store.clone();
    let engine = bare.engine(EngineSettings::default());
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
    engine.sweep(Timestamp::now()).await.unwrap();
    assert_eq!(
        store.purge_expired(Timestamp::now()).await.unwrap(),
        0,
        "the nightly run left nothing expired behind"
    );
}

/// An engine on the embedded store against the simulated portal, with one connection.
struct PortalRig {
    engine: Engine,
    store: Arc<dyn Store>,
    portal: Arc<integration_tests::sim::portal::Portal>,
    connection: Connection,
    _keep: Vec<Box<dyn std::any::Any>>,
}

async fn portal_rig(companies: usize) -> PortalRig {
    let store_dir = embedded_store();
    let (records, reconciles) = (embedded_queue(5), embedded_queue(5));
    let store: Arc<dyn Store> = Arc::new((*store_dir).clone());
    let portal = Arc::new(integration_tests::sim::portal::Portal::new("62515", 3));
    for _ in 0..companies {
        portal.create();
    }
    let engine = Engine::new(
        store.clone(),
        Arc::new((*records).clone()) as Arc<dyn JobQueue>,
        Arc::new((*reconciles).clone()) as Arc<dyn JobQueue>,
        EngineSettings {
            page_size: 7,
            ..EngineSettings::default()
        },
    )
    .with_provider(portal.clone());
    let tenant = TenantId::parse("tenant-a").unwrap();
    let connection = portal.connect_new(&engine, &tenant).await.unwrap();
    let rig = PortalRig {
        engine,
        store,
        portal,
        connection,
        _keep: vec![Box::new(store_dir), Box::new(records), Box::new(reconciles)],
    };
    let run = rig.latest_run().await;
    rig.step(&run.id, connector::engine::reconcile::Budget::unbounded())
        .await;
    rig
}

impl PortalRig {
    async fn latest_run(&self) -> SyncRun {
        self.store
            .list_sync_runs(
                &self.connection.tenant_id,
                &self.connection.id,
                connector::ports::PageRequest::first(1),
            )
            .await
            .unwrap()
            .items
            .remove(0)
    }

    async fn step(
        &self,
        run: &SyncRunId,
        budget: connector::engine::reconcile::Budget,
    ) -> connector::engine::reconcile::StepResult {
        self.engine
            .reconcile_step(&self.connection.tenant_id, &self.connection.id, run, budget)
            .await
            .unwrap()
    }

    async fn customer_of(&self, company: u64) -> Customer {
        let source = SourceRef {
            provider: Provider::Hubspot,
            account: self.portal.account.clone(),
            kind: ObjectKind::Company,
            source_id: integration_tests::sim::portal::source_id(company),
        };
        let link = self
            .store
            .get_link(&self.connection.tenant_id, &source)
            .await
            .unwrap()
            .expect("mirrored");
        let LinkTarget::Customer(id) = link.target else {
            panic!("a company links to a customer")
        };
        self.store
            .get_customer(&self.connection.tenant_id, &id)
            .await
            .unwrap()
            .unwrap()
    }
}

#[tokio::test]
async fn a_read_from_before_a_deletion_cannot_restore_the_archived_customer() {
    use connector::engine::apply::{ApplyContext, apply_record};
    use connector::provider::{Fetched, SourceProvider};
    let rig = portal_rig(3).await;
    let company = *rig.portal.companies().keys().next().unwrap();
    let id = integration_tests::sim::portal::source_id(company);
    // A worker reads the company ...
    let stale = match rig
        .portal
        .fetch(
            &rig.connection,
            ObjectKind::Company,
            std::slice::from_ref(&id),
            &[],
        )
        .await
        .unwrap()
        .remove(0)
        .1
    {
        Fetched::Found(record) => record,
        Fetched::Gone => panic!("the company exists"),
    };
    // ... it is deleted and the deletion's job archives it ...
    rig.portal.delete(company);
    let job = Job::new(
        rig.connection.tenant_id.clone(),
        rig.connection.id.clone(),
        Provider::Hubspot,
        JobKind::SyncRecord {
            object: ObjectKind::Company,
            source_id: id.clone(),
            cause: JobCause::Resync,
        },
        Timestamp::now(),
    );
    rig.engine.run_job(job).await.unwrap();
    assert!(rig.customer_of(company).await.is_archived());
    // ... and then the first worker applies what it read before the deletion.
    let schema = rig
        .engine
        .schema(&rig.connection, ObjectKind::Company)
        .await
        .unwrap();
    let ctx = ApplyContext {
        store: rig.store.as_ref(),
        connection: &rig.connection,
        schema: &schema,
        currency: Currency::parse("USD").unwrap(),
        now: Timestamp::now(),
    };
    let _ = apply_record(&ctx, &stale, true).await;
    assert!(
        rig.customer_of(company).await.is_archived(),
        "an older read restored a deleted company"
    );
}

#[tokio::test]
async fn a_company_restored_while_its_archive_waits_is_not_archived() {
    let rig = portal_rig(10).await;
    let company = *rig.portal.companies().keys().next().unwrap();
    rig.portal.delete(company);
    let run = rig
        .engine
        .run_sync_now(&rig.connection.tenant_id, &rig.connection.id)
        .await
        .unwrap();
    // Page by page until the pass holds the archive for its last phase.
    loop {
        let current = rig
            .store
            .get_sync_run(&rig.connection.tenant_id, &rig.connection.id, &run.id)
            .await
            .unwrap()
            .unwrap();
        if current.checkpoint.phase == Phase::ArchiveCompanies {
            break;
        }
        let step = rig.step(&run.id, Budget::pages(1)).await;
        assert!(
            !matches!(step, StepResult::Completed(_)),
            "no archive phase"
        );
    }
    rig.portal.restore(company);
    let step = rig.step(&run.id, Budget::unbounded()).await;
    assert!(matches!(step, StepResult::Completed(_)), "{step:?}");
    assert!(
        !rig.customer_of(company).await.is_archived(),
        "a company restored before its archive ran was archived"
    );
}

/// The guard's arithmetic on `companies` mirrored companies of which `deleted` vanish:
/// (how many the pass archived, whether it held them).
async fn guard_verdict(companies: usize, deleted: usize) -> (u64, bool) {
    let rig = portal_rig(companies).await;
    let ids: Vec<u64> = rig.portal.companies().keys().copied().collect();
    for id in ids.iter().take(deleted) {
        rig.portal.delete(*id);
    }
    let run = rig
        .engine
        .run_sync_now(&rig.connection.tenant_id, &rig.connection.id)
        .await
        .unwrap();
    let StepResult::Completed(counters) = rig.step(&run.id, Budget::unbounded()).await else {
        panic!("the pass did not complete");
    };
    let held = rig
        .store
        .get_connection(&rig.connection.tenant_id, &rig.connection.id)
        .await
        .unwrap()
        .unwrap()
        .flags
        .archives_held;
    (counters.archived, held)
}

#[tokio::test]
async fn the_mass_archive_guard_holds_past_its_share_and_never_below_its_floor() {
    // 10% of 60 is 6: six pass, seven are held.
    assert_eq!(guard_verdict(60, 6).await, (6, false));
    assert_eq!(guard_verdict(60, 7).await, (0, true));
    // Small tenants: never held for five or fewer, whatever the share.
    assert_eq!(guard_verdict(20, 5).await, (5, false));
    assert_eq!(guard_verdict(20, 6).await, (0, true));
}

/// A pass walks its phases in order, one page at a time, and never goes back: every kind
/// listed (companies before the contacts that attach to them), then every kind re-checked,
/// then the guarded company archives, then done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_walks_its_phases_in_order() {
    let rig = portal_rig(30).await;
    let gone = *rig.portal.companies().keys().next().unwrap();
    rig.portal.delete(gone);
    let run = rig
        .engine
        .run_sync_now(&rig.connection.tenant_id, &rig.connection.id)
        .await
        .unwrap();
    let order = [
        Phase::List(ObjectKind::Company),
        Phase::List(ObjectKind::Contact),
        Phase::Check(ObjectKind::Company),
        Phase::Check(ObjectKind::Contact),
        Phase::ArchiveCompanies,
        Phase::Done,
    ];
    let rank = |phase: Phase| order.iter().position(|p| *p == phase).unwrap();
    let mut seen = vec![run.checkpoint.phase];
    loop {
        let step = rig.step(&run.id, Budget::pages(1)).await;
        let current = rig
            .store
            .get_sync_run(&rig.connection.tenant_id, &rig.connection.id, &run.id)
            .await
            .unwrap()
            .unwrap();
        if seen.last() != Some(&current.checkpoint.phase) {
            seen.push(current.checkpoint.phase);
        }
        if matches!(step, StepResult::Completed(_)) {
            assert_eq!(current.status, SyncRunStatus::Completed);
            break;
        }
        assert!(seen.len() <= order.len(), "{seen:?}");
    }
    let ranks: Vec<usize> = seen.iter().map(|p| rank(*p)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "phases out of order: {seen:?}"
    );
    assert_eq!(seen.first(), Some(&Phase::List(ObjectKind::Company)));
    assert!(
        seen.contains(&Phase::Check(ObjectKind::Company))
            && seen.contains(&Phase::ArchiveCompanies),
        "{seen:?}"
    );
    assert!(
        rig.customer_of(gone).await.is_archived(),
        "the deleted company was archived in the last phase"
    );
}

/// The check phase reads again only what the listing no longer showed: nothing for an
/// unchanged portal; for a deleted company, its id (and once more before its archive),
/// gathered across link pages into one batch read. A pass handed over after every page
/// keeps what its listing saw across invocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_re_reads_only_what_its_listing_did_not_show() {
    let rig = portal_rig(30).await;
    let (rig, tenant) = (&rig, rig.connection.tenant_id.clone());
    let tenant = &tenant;
    let pass = |budget: fn() -> Budget| async move {
        let run = rig
            .engine
            .run_sync_now(tenant, &rig.connection.id)
            .await
            .unwrap();
        let before = rig.portal.reads();
        loop {
            if let StepResult::Completed(counters) = rig.step(&run.id, budget()).await {
                let after = rig.portal.reads();
                let read = (
                    after.fetches - before.fetches,
                    after.fetched_ids - before.fetched_ids,
                );
                return (counters, read);
            }
        }
    };
    let (unchanged, read) = pass(Budget::unbounded).await;
    assert_eq!(
        (unchanged.unchanged, unchanged.applied),
        (30, 0),
        "{unchanged:?}"
    );
    assert_eq!(read, (0, 0), "an unchanged pass read records again");

    // The first and the last: on link pages far apart (7 links a page).
    let ids: Vec<u64> = rig.portal.companies().keys().copied().collect();
    let gone = [ids[0], ids[ids.len() - 1]];
    for id in &gone {
        rig.portal.delete(*id);
    }
    let (counters, read) = pass(|| Budget::pages(1)).await;
    assert_eq!(counters.archived, 2, "{counters:?}");
    assert_eq!(
        read,
        (2, 4),
        "the two deleted companies, checked in one read and read again before the archive"
    );
    for id in gone {
        assert!(rig.customer_of(id).await.is_archived());
    }
}
