//! The deterministic simulation of the whole engine: the real engine on the embedded store
//! and queue, against a simulated HubSpot portal ([`portal::Portal`]). One seed drives the
//! schedule of provider changes, webhook deliveries (dropped, duplicated, reordered,
//! delayed), admin actions (filters valid and not, Run sync now, approvals, resyncs, log
//! retries, a second connection, disconnect and reconnect) and faults (provider 5xx and
//! 429s, a store or queue error at any call, and a crash: a record batch, a pass's step or
//! a webhook delivery stopped dead at one of its store or queue awaits, then redelivered).
//! After the schedule the simulation settles
//! (faults off, webhooks delivered, jobs drained, one full pass) and checks the
//! invariants of ARCHITECTURE.md. A failing seed replays exactly and prints its schedule.
//!
//! The sim plays the queue's runtime: it takes each record job off the embedded queue and
//! runs it, sending a retried or failed job round again (delays are collapsed: order is
//! the seed's), and it runs reconcile passes page by page through the engine's own step.

mod outbound;
pub mod portal;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use connector::engine::admin::AdminError;
use connector::engine::intake::Change;
use connector::engine::reconcile::{Budget, StepResult};
use connector::engine::worker::Disposition;
use connector::engine::{Engine, EngineSettings};
use connector::model::*;
use connector::ports::{ArchivedFilter, JobQueue, PageRequest, Store};
use futures::FutureExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::adapters::{TempEmbeddedQueue, TempEmbeddedStore, embedded_queue, embedded_store};
use crate::faults::{Faults, FaultyQueue, FaultyStore, InjectedCrash, quiet_injected_crashes};
use outbound::SimOutbound;
use portal::{Portal, STAGES, source_id};

/// What one or many seeds did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scorecard {
    pub seeds: u64,
    pub steps: u64,
    pub provider_faults: u64,
    pub store_faults: u64,
    /// Jobs, pass steps and webhook deliveries stopped dead at an await point.
    pub crashes: u64,
    pub webhooks_dropped: u64,
    pub checks: u64,
    pub failures: u64,
}

impl Scorecard {
    pub fn add(&mut self, other: &Scorecard) {
        self.seeds += other.seeds;
        self.steps += other.steps;
        self.provider_faults += other.provider_faults;
        self.store_faults += other.store_faults;
        self.crashes += other.crashes;
        self.webhooks_dropped += other.webhooks_dropped;
        self.checks += other.checks;
        self.failures += other.failures;
    }
}

impl fmt::Display for Scorecard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds {} | steps {} | provider faults {} | store/queue faults {} | crashes {} | webhooks dropped {} | checks {} | failures {}",
            self.seeds,
            self.steps,
            self.provider_faults,
            self.store_faults,
            self.crashes,
            self.webhooks_dropped,
            self.checks,
            self.failures
        )
    }
}

/// A seed whose invariants did not hold: what broke and the schedule that led there.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub broken: String,
    pub schedule: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} broke: {}", self.seed, self.broken)?;
        writeln!(f, "schedule ({} steps):", self.schedule.len())?;
        for (n, step) in self.schedule.iter().enumerate() {
            writeln!(f, "  {n:>4} {step}")?;
        }
        Ok(())
    }
}

struct SimTenant {
    id: TenantId,
    connection: ConnectionId,
}

struct Sim {
    rng: StdRng,
    portal: Arc<Portal>,
    engine: Engine,
    faults: Arc<Faults>,
    /// The store and queue without faults, for the checks.
    store: Arc<dyn Store>,
    records: Arc<dyn JobQueue>,
    tenants: Vec<SimTenant>,
    /// The tenant whose connection pushes the product's leads.
    outbound: SimOutbound,
    /// Webhook changes the portal sent and the network still holds.
    in_flight: Vec<Change>,
    /// Record jobs the queue holds.
    pending: Vec<Job>,
    events: u64,
    revisions: u64,
    score: Scorecard,
    schedule: Vec<String>,
    _keep: (TempEmbeddedStore, TempEmbeddedQueue, TempEmbeddedQueue),
}

type Checked = Result<(), String>;

const PORTAL: &str = "62515";

/// Runs one seed of `steps` steps, then settles and checks.
pub async fn run_seed(seed: u64, steps: usize) -> Result<Scorecard, Box<Failure>> {
    let mut sim = Sim::new(seed).await;
    let outcome = sim.play(steps).await;
    sim.score.provider_faults = sim.portal.faults_injected();
    sim.score.store_faults = sim.faults.injected() as u64;
    sim.score.crashes = sim.faults.crashed() as u64;
    match outcome {
        Ok(()) => Ok(sim.score),
        Err(broken) => Err(Box::new(Failure {
            seed,
            broken,
            schedule: sim.schedule,
        })),
    }
}

impl Sim {
    async fn new(seed: u64) -> Self {
        quiet_injected_crashes();
        let store_dir = embedded_store();
        let records_dir = embedded_queue(1_000);
        let reconciles_dir = embedded_queue(1_000);
        let store: Arc<dyn Store> = Arc::new((*store_dir).clone());
        let records: Arc<dyn JobQueue> = Arc::new((*records_dir).clone());
        let faults = Arc::new(Faults::default());
        let portal = Arc::new(Portal::new(PORTAL, seed));
        let settings = EngineSettings {
            page_size: 7,
            // The sim's clock does not move: a dead lease is taken over at once.
            unwritten_run_grace: Duration::ZERO,
            ..EngineSettings::default()
        };
        let engine = Engine::new(
            Arc::new(FaultyStore {
                inner: store.clone(),
                faults: faults.clone(),
            }),
            Arc::new(FaultyQueue {
                inner: records.clone(),
                faults: faults.clone(),
            }),
            Arc::new((*reconciles_dir).clone()),
            settings,
        )
        .with_provider(portal.clone())
        .with_writer(Provider::Hubspot, portal.clone());
        let outbound = SimOutbound::connect(&engine, &portal, seed % 2 == 1, seed % 4 == 2).await;
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            portal,
            engine,
            faults,
            store,
            records,
            tenants: Vec::new(),
            outbound,
            in_flight: Vec::new(),
            pending: Vec::new(),
            events: 0,
            revisions: 0,
            score: Scorecard {
                seeds: 1,
                ..Scorecard::default()
            },
            schedule: Vec::new(),
            _keep: (store_dir, records_dir, reconciles_dir),
        };
        for _ in 0..12 {
            sim.portal.create();
        }
        // Two tenants connect the same portal: each must get every change, and neither
        // may be touched by the other's admin.
        for name in ["tenant-a", "tenant-b"] {
            let id = TenantId::parse(name).expect("a tenant id");
            let connection = sim.new_connection(&id).await;
            sim.tenants.push(SimTenant { id, connection });
        }
        sim
    }

    fn note(&mut self, step: impl Into<String>) {
        self.schedule.push(step.into());
    }

    /// Runs `work` as the Lambda runtime would: a planned crash stops it dead at that await
    /// point (`None`); nothing after it runs, and the caller redelivers.
    async fn crashable<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        self.faults.arm_crashes(true);
        let ran = AssertUnwindSafe(work).catch_unwind().await;
        self.faults.arm_crashes(false);
        match ran {
            Ok(done) => Some(done),
            Err(payload) if payload.downcast_ref::<InjectedCrash>().is_some() => None,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    async fn new_connection(&self, tenant: &TenantId) -> ConnectionId {
        self.portal
            .connect_new(&self.engine, tenant)
            .await
            .expect("a connection connects before faults start")
            .id
    }

    async fn connect(&self, tenant: &TenantId, id: &ConnectionId) -> Result<(), AdminError> {
        self.engine
            .connect(tenant, id, self.portal.authorized())
            .await
            .map(|_| ())
    }

    fn alive_ids(&self) -> Vec<u64> {
        self.portal
            .companies()
            .into_iter()
            .filter(|(_, c)| c.alive())
            .map(|(id, _)| id)
            .collect()
    }

    fn pick(&mut self, ids: &[u64]) -> Option<u64> {
        ids.choose(&mut self.rng).copied()
    }

    // ------------------------------------------------------------------ the schedule

    async fn play(&mut self, steps: usize) -> Checked {
        for _ in 0..steps {
            self.score.steps += 1;
            match self.rng.gen_range(0..100) {
                0..=25 => self.provider_change(),
                26..=29 => self.product_write().await,
                30..=49 => self.deliver_some().await,
                50..=77 => self.work_some().await,
                78..=85 => self.reconcile_some().await,
                86..=93 => self.admin_action().await?,
                94..=97 => self.toggle_faults(),
                98 => self.connection_flow().await?,
                _ => self.sweep().await,
            }
        }
        self.settle().await
    }

    fn provider_change(&mut self) {
        let alive = self.alive_ids();
        let all: Vec<u64> = self.portal.companies().keys().copied().collect();
        let kind = self.rng.gen_range(0..100);
        let (changes, what): (Vec<(u64, ChangeKind)>, String) = match kind {
            0..=14 => {
                let id = self.portal.create();
                (vec![(id, ChangeKind::Created)], format!("create {id}"))
            }
            15..=54 => match self.pick(&alive) {
                Some(id) => {
                    self.revisions += 1;
                    self.portal.rename(id, self.revisions);
                    (vec![(id, ChangeKind::Updated)], format!("rename {id}"))
                }
                None => (Vec::new(), "rename: nothing alive".into()),
            },
            55..=66 => match self.pick(&alive) {
                Some(id) => {
                    self.portal.delete(id);
                    (vec![(id, ChangeKind::Deleted)], format!("delete {id}"))
                }
                None => (Vec::new(), "delete: nothing alive".into()),
            },
            67..=76 => match self.pick(&all) {
                Some(id) if self.portal.restore(id) => {
                    (vec![(id, ChangeKind::Restored)], format!("restore {id}"))
                }
                _ => (Vec::new(), "restore: nothing deleted".into()),
            },
            77..=81 => {
                let (a, b) = (self.pick(&alive), self.pick(&alive));
                match (a, b) {
                    (Some(w), Some(l)) if self.portal.merge(w, l) => (
                        vec![(w, ChangeKind::Merged), (l, ChangeKind::Merged)],
                        format!("merge {l} into {w}"),
                    ),
                    _ => (Vec::new(), "merge: not two alive".into()),
                }
            }
            82..=91 => match self.pick(&alive) {
                Some(id) => {
                    let stage = STAGES[self.rng.gen_range(0..STAGES.len())];
                    self.portal.set_stage(id, stage);
                    (
                        vec![(id, ChangeKind::Updated)],
                        format!("stage {id} -> {stage}"),
                    )
                }
                None => (Vec::new(), "stage: nothing alive".into()),
            },
            _ => {
                // List moves fire no webhook at HubSpot; only a pass sees them.
                let lists: Vec<String> = self.portal.lists().keys().cloned().collect();
                match (lists.choose(&mut self.rng).cloned(), self.pick(&alive)) {
                    (Some(list), Some(id)) => {
                        let member = self.rng.gen_bool(0.5);
                        self.portal.move_in_list(&list, id, member);
                        (Vec::new(), format!("list {list}: {id} member={member}"))
                    }
                    _ => (Vec::new(), "list move: no list".into()),
                }
            }
        };
        self.note(format!("portal: {what}"));
        if changes.is_empty() {
            return;
        }
        self.events += 1;
        let event = WebhookEventId::parse(format!("evt-{}", self.events)).expect("an event id");
        let batch: Vec<Change> = changes
            .into_iter()
            .map(|(id, change)| Change {
                provider: Provider::Hubspot,
                account: self.portal.account.clone(),
                event_id: event.clone(),
                occurred_at: Timestamp::now(),
                object: ObjectKind::Company,
                source_id: source_id(id),
                change,
                own_write: None,
            })
            .collect();
        match self.rng.gen_range(0..100) {
            0..=9 => {
                self.score.webhooks_dropped += 1;
                self.note("  webhook dropped");
            }
            10..=19 => {
                self.in_flight.extend(batch.clone());
                self.in_flight.extend(batch);
                self.note("  webhook duplicated");
            }
            _ => self.in_flight.extend(batch),
        }
    }

    /// Delivers a few in-flight webhooks in the seed's order (reordered and delayed).
    async fn deliver_some(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        self.in_flight.shuffle(&mut self.rng);
        let take = self.rng.gen_range(1..=self.in_flight.len().min(4));
        let batch: Vec<Change> = self.in_flight.drain(..take).collect();
        self.intake(batch).await;
    }

    async fn intake(&mut self, batch: Vec<Change>) {
        let what: Vec<String> = batch.iter().map(|c| c.source_id.to_string()).collect();
        let Some(answered) = self.crashable(self.engine.intake(batch.clone())).await else {
            self.note(format!(
                "webhook [{}]: crashed; redelivered later",
                what.join(",")
            ));
            self.in_flight.extend(batch);
            self.take_queued().await;
            return;
        };
        match answered {
            Ok(report) => self.note(format!(
                "webhook [{}]: enqueued {} duplicates {} unrouted {}",
                what.join(","),
                report.enqueued,
                report.duplicates,
                report.unrouted
            )),
            Err(e) => {
                // Answered 5xx: HubSpot delivers the batch again later.
                self.note(format!(
                    "webhook [{}]: refused ({e}); redelivered later",
                    what.join(",")
                ));
                self.in_flight.extend(batch);
            }
        }
        self.take_queued().await;
    }

    /// Moves what the engine queued into the sim's hands (the queue's runtime).
    async fn take_queued(&mut self) {
        self.take_contact_webhooks();
        loop {
            let Ok(messages) = self.records.receive(10, Duration::from_secs(600)).await else {
                return;
            };
            if messages.is_empty() {
                return;
            }
            for message in messages {
                if let Ok(job) = Job::from_body(&message.body) {
                    self.pending.push(job);
                }
                let _ = self.records.delete(&message.receipt).await;
            }
        }
    }

    /// Runs a batch of queued jobs, picked at random, together: the jobs of one connection
    /// and kind share their fetch, as on the worker.
    async fn work_some(&mut self) {
        let size = self.rng.gen_range(1..=12).min(self.pending.len());
        let mut batch = Vec::new();
        for _ in 0..size {
            let at = self.rng.gen_range(0..self.pending.len());
            batch.push(self.pending.swap_remove(at));
        }
        self.run_batch(batch).await;
    }

    async fn run_batch(&mut self, batch: Vec<Job>) {
        if batch.is_empty() {
            return;
        }
        let Some(results) = self.crashable(self.engine.run_jobs(&batch)).await else {
            // The messages stay on the queue: delivered again.
            self.note(format!("{} jobs: crashed; redelivered", batch.len()));
            self.pending.extend(batch);
            self.take_queued().await;
            return;
        };
        for (job, result) in batch.into_iter().zip(results) {
            let label = match &job.kind {
                JobKind::SyncRecord { source_id, .. } => {
                    format!("job {source_id} (attempt {})", job.attempt)
                }
                JobKind::Reconcile { run_id } => format!("reconcile job {run_id}"),
                JobKind::PushContact { contact_id, .. } => {
                    format!("push {contact_id} (attempt {})", job.attempt)
                }
            };
            match result {
                Ok(Disposition::Done) => self.note(format!("{label}: done")),
                Ok(Disposition::Retry { job, delay }) => {
                    self.note(format!("{label}: retry after {delay:?}"));
                    self.pending.push(job);
                }
                Err(e) => {
                    // The message stays on the queue: delivered again.
                    self.note(format!("{label}: failed ({e}); redelivered"));
                    self.pending.push(job);
                }
            }
        }
        self.take_queued().await;
    }

    async fn latest_run(&self, tenant: &SimTenant) -> Option<SyncRun> {
        self.store
            .list_sync_runs(&tenant.id, &tenant.connection, PageRequest::first(1))
            .await
            .ok()?
            .items
            .into_iter()
            .next()
    }

    async fn reconcile_some(&mut self) {
        let which = self.rng.gen_range(0..self.tenants.len());
        let pages = self.rng.gen_range(1..=3);
        let (tenant, connection) = {
            let t = &self.tenants[which];
            (t.id.clone(), t.connection.clone())
        };
        let running = self
            .latest_run(&self.tenants[which])
            .await
            .filter(|r| r.status == SyncRunStatus::Running);
        match running {
            Some(run) => {
                let step = self
                    .crashable(self.engine.reconcile_step(
                        &tenant,
                        &connection,
                        &run.id,
                        Budget::pages(pages),
                    ))
                    .await;
                match step {
                    Some(step) => {
                        self.note(format!("{tenant}: pass {} x{pages}: {step:?}", run.id))
                    }
                    None => self.note(format!("{tenant}: pass {} x{pages}: crashed", run.id)),
                }
            }
            None => {
                let started = self
                    .crashable(self.engine.run_sync_now(&tenant, &connection))
                    .await;
                self.note(format!(
                    "{tenant}: run sync now: {}",
                    match started {
                        Some(started) =>
                            started.map_or_else(|e| e.to_string(), |r| r.id.to_string()),
                        None => "crashed".into(),
                    }
                ));
            }
        }
        self.take_queued().await;
    }

    fn toggle_faults(&mut self) {
        match self.rng.gen_range(0..5) {
            0 => {
                self.portal.set_fault_rate(0.0);
                self.note("faults: provider healthy");
            }
            1 => {
                let rate = self.rng.gen_range(0.05..0.3);
                self.portal.set_fault_rate(rate);
                self.note(format!(
                    "faults: provider fails {:.0}% of calls",
                    rate * 100.0
                ));
            }
            2 | 3 => {
                const CALLS: [&str; 10] = [
                    "write_customer",
                    "put_notification",
                    "list_notifications",
                    "put_link",
                    "append_log",
                    "put_sync_run",
                    "add_sync_counters",
                    "events_recorded",
                    "record_events",
                    "send_batch",
                ];
                let call = CALLS[self.rng.gen_range(0..CALLS.len())];
                let skip = self.rng.gen_range(0..12);
                self.faults.fail(call, skip);
                self.note(format!("faults: {call} fails after {skip} more calls"));
            }
            _ => {
                const AWAITS: [&str; 17] = [
                    "get_connection",
                    "put_notification",
                    "get_link",
                    "write_customer",
                    "put_link",
                    "append_log",
                    "put_connection",
                    "put_sync_run",
                    "claim_pass",
                    "release_pass",
                    "list_links",
                    "put_pending_archives",
                    "list_pending_archives",
                    "put_listed_ids",
                    "listed_ids",
                    "record_events",
                    "send_batch",
                ];
                let call = AWAITS[self.rng.gen_range(0..AWAITS.len())];
                let skip = self.rng.gen_range(0..12);
                self.faults.crash(call, skip);
                self.note(format!("crash: at {call} after {skip} more calls"));
            }
        }
    }

    async fn admin_action(&mut self) -> Checked {
        let tenant = self.tenants[0].id.clone();
        let connection = self.tenants[0].connection.clone();
        match self.rng.gen_range(0..100) {
            0..=24 => {
                let filter = self.some_filter();
                let result = self
                    .engine
                    .set_company_filter(&tenant, &connection, filter.clone())
                    .await;
                self.note(format!("admin: filter {filter:?}: {}", outcome(&result)));
                self.take_queued().await;
            }
            25..=34 => {
                // A filter naming what the portal lacks is refused and changes nothing.
                let before = self.store.get_connection(&tenant, &connection).await;
                let bad = CompanyFilter::List {
                    list_id: "987654".into(),
                };
                let result = self
                    .engine
                    .set_company_filter(&tenant, &connection, bad)
                    .await;
                self.note(format!(
                    "admin: filter naming no list: {}",
                    outcome(&result)
                ));
                self.score.checks += 1;
                let refused = matches!(result, Err(AdminError::InvalidFilter(_)))
                    || matches!(&result, Err(AdminError::Engine(e)) if e.code() == ErrorCode::StoreUnavailable);
                if !refused {
                    return Err(format!(
                        "a filter naming no list was not refused: {result:?}"
                    ));
                }
                let after = self.store.get_connection(&tenant, &connection).await;
                let filter_of = |c: &Result<Option<Connection>, _>| {
                    c.as_ref()
                        .ok()
                        .and_then(Option::as_ref)
                        .map(|c| c.company_filter.clone())
                };
                if filter_of(&before) != filter_of(&after) {
                    return Err("a refused filter changed the stored filter".into());
                }
            }
            35..=49 => {
                let members: BTreeSet<u64> = self
                    .alive_ids()
                    .into_iter()
                    .filter(|_| self.rng.gen_bool(0.6))
                    .collect();
                let list = self.portal.create_list(members.clone());
                self.note(format!("portal: list {list} created with {members:?}"));
            }
            50..=54 => {
                let lists: Vec<String> = self.portal.lists().keys().cloned().collect();
                if let Some(list) = lists.choose(&mut self.rng) {
                    self.portal.delete_list(list);
                    self.note(format!("portal: list {list} deleted"));
                }
            }
            55..=69 => {
                let approve = self.rng.gen_bool(0.5);
                let result = if approve {
                    self.engine
                        .approve_held_archives(&tenant, &connection)
                        .await
                        .map(|_| ())
                } else {
                    self.engine
                        .reject_held_archives(&tenant, &connection)
                        .await
                        .map(|_| ())
                };
                self.note(format!(
                    "admin: approve={approve} held archives: {}",
                    outcome(&result)
                ));
                self.take_queued().await;
            }
            70..=84 => {
                let customers = self
                    .store
                    .list_customers(&tenant, ArchivedFilter::All, PageRequest::first(50))
                    .await
                    .map(|p| p.items)
                    .unwrap_or_default();
                if let Some(customer) = customers.choose(&mut self.rng) {
                    let result = self
                        .engine
                        .resync_customer(&tenant, &customer.id, Provider::Hubspot)
                        .await;
                    self.note(format!(
                        "admin: resync {}: {}",
                        customer.id,
                        outcome(&result)
                    ));
                    self.take_queued().await;
                }
            }
            _ => {
                let failed = self
                    .store
                    .list_log(
                        &tenant,
                        &connection,
                        connector::ports::LogFilter { errors_only: true },
                        PageRequest::first(20),
                        Timestamp::now(),
                    )
                    .await
                    .map(|p| p.items)
                    .unwrap_or_default();
                let retryable: Vec<&LogEntry> =
                    failed.iter().filter(|e| e.retry_job.is_some()).collect();
                if let Some(entry) = retryable.choose(&mut self.rng) {
                    let id = entry.id.clone();
                    let result = self.engine.retry_log_entry(&tenant, &id).await;
                    self.note(format!("admin: retry log row {id}: {}", outcome(&result)));
                    self.take_queued().await;
                }
            }
        }
        Ok(())
    }

    fn some_filter(&mut self) -> CompanyFilter {
        let lists: Vec<String> = self.portal.lists().keys().cloned().collect();
        match self.rng.gen_range(0..3) {
            0 => CompanyFilter::All,
            1 => match lists.choose(&mut self.rng) {
                Some(list) => CompanyFilter::List {
                    list_id: list.clone(),
                },
                None => CompanyFilter::All,
            },
            _ => {
                let stages: Vec<String> = STAGES
                    .iter()
                    .filter(|_| self.rng.gen_bool(0.6))
                    .map(|s| (*s).to_owned())
                    .collect();
                if stages.is_empty() {
                    CompanyFilter::All
                } else {
                    CompanyFilter::LifecycleStage { stages }
                }
            }
        }
    }

    async fn connection_flow(&mut self) -> Checked {
        let tenant = self.tenants[0].id.clone();
        let current = self.tenants[0].connection.clone();
        match self.rng.gen_range(0..4) {
            0 => {
                // A second connection to the same portal takes over.
                let created = self
                    .engine
                    .create_connection(&tenant, Provider::Hubspot)
                    .await;
                match created {
                    Ok(view) => match self.connect(&tenant, &view.id).await {
                        Ok(()) => {
                            self.note(format!("admin: second connection {} connected", view.id));
                            self.tenants[0].connection = view.id;
                        }
                        Err(e) => self.note(format!("admin: second connection: {e}")),
                    },
                    Err(e) => self.note(format!("admin: create connection: {e}")),
                }
            }
            1 => {
                let result = self.engine.disconnect(&tenant, &current).await;
                self.note(format!("admin: disconnect {current}: {}", outcome(&result)));
            }
            2 => self.reauthorize_into_another_portal().await?,
            _ => {
                let result = self.connect(&tenant, &current).await;
                self.note(format!("admin: reconnect {current}: {}", outcome(&result)));
            }
        }
        self.take_queued().await;
        Ok(())
    }

    /// The admin consents as a user of another portal: refused, and the connection keeps
    /// its account, status and tokens.
    async fn reauthorize_into_another_portal(&mut self) -> Checked {
        let before = self.connection_of(0).await?;
        let mut elsewhere = self.portal.authorized();
        elsewhere.account_id =
            ProviderAccountId::parse("another-portal").map_err(|e| e.to_string())?;
        let result = self
            .engine
            .connect(&before.tenant_id, &before.id, elsewhere)
            .await;
        self.note(format!(
            "admin: reauthorize {} into another portal: {}",
            before.id,
            outcome(&result)
        ));
        let after = self.connection_of(0).await?;
        let moved = (after.account_id != before.account_id)
            || (after.status != before.status)
            || (after.credentials != before.credentials);
        match (&before.account_id, result) {
            (Some(_), Ok(_)) => Err(format!(
                "connection {} was moved to another portal",
                before.id
            )),
            (Some(_), Err(_)) if moved => Err(format!(
                "a refused reauthorization changed connection {}",
                before.id
            )),
            _ => Ok(()),
        }
    }

    // ------------------------------------------------------------------ settle and check

    async fn settle(&mut self) -> Checked {
        self.note("--- settle: faults off, deliver, drain, one full pass");
        self.portal.set_fault_rate(0.0);
        self.faults.clear();
        while !self.in_flight.is_empty() {
            let batch: Vec<Change> = self.in_flight.drain(..).collect();
            self.intake(batch).await;
        }
        self.drain().await?;
        for which in 0..self.tenants.len() {
            self.admin_repairs(which).await?;
            self.full_pass(which).await?;
            let held = self.connection_of(which).await?.flags.archives_held;
            if held {
                let (t, c) = self.ids(which);
                self.engine
                    .approve_held_archives(&t, &c)
                    .await
                    .map_err(|e| format!("approve at settle: {e}"))?;
                self.note(format!("{t}: settle approves the held archives"));
                self.finish_runs(which).await?;
            }
            self.drain().await?;
        }
        self.settle_outbound().await?;
        self.engine
            .sweep(Timestamp::now())
            .await
            .map_err(|e| format!("the sweep failed with faults off: {e}"))?;
        for which in 0..self.tenants.len() {
            self.check_mirror(which).await?;
            self.check_ledgers(which).await?;
            self.check_notifications(which).await?;
        }
        self.check_pushes().await
    }

    /// The scheduled sweep, crashable like any other invocation.
    async fn sweep(&mut self) {
        self.note("sweep");
        let _ = self.crashable(self.engine.sweep(Timestamp::now())).await;
    }

    /// After the sweep, each connection's open notifications are exactly the
    /// conditions it is in, one incident each: none lost to a crash or a failed write,
    /// none left open by a condition that cleared, none opened twice.
    async fn check_notifications(&mut self, which: usize) -> Checked {
        let t = self.tenants[which].id.clone();
        let now = Timestamp::now();
        let feed = self
            .store
            .list_notifications(&t, now)
            .await
            .map_err(|e| e.to_string())?;
        let connections = self
            .store
            .list_connections(&t)
            .await
            .map_err(|e| e.to_string())?;
        for connection in connections {
            self.score.checks += 1;
            let runs = self
                .store
                .list_sync_runs(
                    &t,
                    &connection.id,
                    PageRequest::first(connector::engine::notifications::RUNS_REVIEWED),
                )
                .await
                .map_err(|e| e.to_string())?
                .items;
            let expected: Vec<NotificationKind> = connector::engine::notifications::conditions(
                &connection,
                &runs,
                now,
                self.engine.settings.stuck_pass_after,
            )
            .into_keys()
            .collect();
            let mut open: Vec<NotificationKind> = feed
                .iter()
                .filter(|n| n.id.connection_id == connection.id && n.is_open())
                .map(|n| n.id.kind)
                .collect();
            open.sort();
            if open != expected {
                return Err(format!(
                    "{t}: connection {} has open notifications {open:?}, but its conditions are {expected:?}",
                    connection.id
                ));
            }
        }
        Ok(())
    }

    fn ids(&self, which: usize) -> (TenantId, ConnectionId) {
        let t = &self.tenants[which];
        (t.id.clone(), t.connection.clone())
    }

    async fn connection_of(&self, which: usize) -> Result<Connection, String> {
        let (t, c) = self.ids(which);
        self.store
            .get_connection(&t, &c)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{t}'s connection {c} is gone"))
    }

    /// What an admin does on seeing the connection: connect it again when it is not
    /// Connected, pick a valid filter when the current one names a deleted list.
    async fn admin_repairs(&mut self, which: usize) -> Checked {
        let (t, c) = self.ids(which);
        let connection = self.connection_of(which).await?;
        if connection.status != ConnectionStatus::Connected {
            self.connect(&t, &c)
                .await
                .map_err(|e| format!("reconnect at settle: {e}"))?;
            self.note(format!("{t}: settle reconnects {c}"));
        }
        let broken_list = match &connection.company_filter {
            CompanyFilter::List { list_id } => !self.portal.lists().contains_key(list_id),
            _ => false,
        };
        if broken_list {
            self.engine
                .set_company_filter(&t, &c, CompanyFilter::All)
                .await
                .map_err(|e| format!("filter reset at settle: {e}"))?;
            self.note(format!("{t}: settle resets the filter of a deleted list"));
        }
        self.finish_runs(which).await?;
        self.drain().await
    }

    /// Runs every job the queue holds until none is left.
    async fn drain(&mut self) -> Checked {
        self.take_queued().await;
        let mut rounds = 0;
        while !self.pending.is_empty() {
            rounds += 1;
            if rounds > 20_000 {
                return Err("record jobs never drained".into());
            }
            let keep = self.pending.len().saturating_sub(10);
            let batch = self.pending.split_off(keep);
            self.run_batch(batch).await;
        }
        Ok(())
    }

    async fn finish_runs(&mut self, which: usize) -> Checked {
        let (t, c) = self.ids(which);
        for _ in 0..10_000 {
            let Some(run) = self
                .latest_run(&self.tenants[which])
                .await
                .filter(|r| r.status == SyncRunStatus::Running)
            else {
                return Ok(());
            };
            let step = self
                .engine
                .reconcile_step(&t, &c, &run.id, Budget::unbounded())
                .await
                .map_err(|e| format!("a pass failed with faults off: {e}"))?;
            if let StepResult::Stopped(why) = &step {
                return Err(format!("pass {} stopped at settle: {why}", run.id));
            }
        }
        Err("a pass never finished".into())
    }

    async fn full_pass(&mut self, which: usize) -> Checked {
        let (t, c) = self.ids(which);
        self.finish_runs(which).await?;
        let run = self
            .engine
            .run_sync_now(&t, &c)
            .await
            .map_err(|e| format!("run sync now at settle: {e}"))?;
        self.note(format!("{t}: settle pass {}", run.id));
        self.finish_runs(which).await?;
        let done = self
            .store
            .get_sync_run(&t, &c, &run.id)
            .await
            .map_err(|e| e.to_string())?;
        match done {
            Some(r) if r.status == SyncRunStatus::Completed => Ok(()),
            other => Err(format!("the settle pass did not complete: {other:?}")),
        }
    }

    /// The mirror equals the portal's filtered state: every company alive and in the
    /// filter is one active customer with its name and domain; nothing else is active.
    async fn check_mirror(&mut self, which: usize) -> Checked {
        let (t, _) = self.ids(which);
        let filter = self.connection_of(which).await?.company_filter;
        let companies = self.portal.companies();
        let mut expected = BTreeMap::new();
        for (id, company) in &companies {
            if company.alive() && self.portal.passes(&filter, *id) == Some(true) {
                expected.insert(*id, company.clone());
            }
        }
        let mut active = BTreeSet::new();
        let mut page = PageRequest::first(200);
        loop {
            let listed = self
                .store
                .list_customers(&t, ArchivedFilter::Active, page.clone())
                .await
                .map_err(|e| e.to_string())?;
            active.extend(listed.items.into_iter().map(|c| c.id));
            match listed.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        for (id, company) in &expected {
            self.score.checks += 1;
            let source = SourceRef {
                provider: Provider::Hubspot,
                account: self.portal.account.clone(),
                kind: ObjectKind::Company,
                source_id: source_id(*id),
            };
            let link = self
                .store
                .get_link(&t, &source)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{t}: company {id} is in the filter but not mirrored"))?;
            let LinkTarget::Customer(customer_id) = &link.target else {
                return Err(format!("{t}: company {id} links to a contact"));
            };
            let customer = self
                .store
                .get_customer(&t, customer_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{t}: company {id}'s customer is missing"))?;
            if customer.is_archived() || link.source_gone {
                return Err(format!(
                    "{t}: company {id} is alive and in the filter but archived"
                ));
            }
            if customer.name != company.name
                || customer.domain.as_ref().map(|d| d.as_str()) != Some(company.domain.as_str())
            {
                return Err(format!(
                    "{t}: company {id} is {:?} / {} at the portal but {:?} / {:?} here",
                    company.name, company.domain, customer.name, customer.domain
                ));
            }
        }
        self.score.checks += 1;
        if active.len() != expected.len() {
            let mut extra = Vec::new();
            for customer in &active {
                let links = self
                    .store
                    .links_to(&t, &LinkTarget::Customer(customer.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
                let sources: Vec<String> = links
                    .iter()
                    .map(|l| {
                        format!(
                            "{}{}",
                            l.source_id,
                            if l.source_gone { " (gone)" } else { "" }
                        )
                    })
                    .collect();
                let wanted = links.iter().any(|l| {
                    !l.source_gone
                        && l.source_id
                            .as_str()
                            .parse::<u64>()
                            .is_ok_and(|n| expected.contains_key(&n))
                });
                if !wanted {
                    extra.push(format!("{customer} <- [{}]", sources.join(", ")));
                }
            }
            return Err(format!(
                "{t}: {} customers are active but {} companies are alive and in the filter {filter:?}; not wanted: {}",
                active.len(),
                expected.len(),
                extra.join("; ")
            ));
        }
        Ok(())
    }

    /// Every run's ledger balances: seen = applied + unchanged + archived + failed + held.
    async fn check_ledgers(&mut self, which: usize) -> Checked {
        let t = self.tenants[which].id.clone();
        let connections = self
            .store
            .list_connections(&t)
            .await
            .map_err(|e| e.to_string())?;
        for connection in connections {
            let mut page = PageRequest::first(100);
            loop {
                let runs = self
                    .store
                    .list_sync_runs(&t, &connection.id, page.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                for run in &runs.items {
                    self.score.checks += 1;
                    let c = run.counters;
                    if !c.is_balanced() {
                        return Err(format!("{t}: run {} does not balance: {c:?}", run.id));
                    }
                }
                match runs.next {
                    Some(next) => page.cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(())
    }
}

fn outcome<T, E: fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("refused: {e}"),
    }
}

/// Runs `seeds` seeds (from `first`) of `steps` steps each; every failure is returned.
pub async fn run_seeds(first: u64, seeds: u64, steps: usize) -> (Scorecard, Vec<Box<Failure>>) {
    let mut total = Scorecard::default();
    let mut failures = Vec::new();
    for seed in first..first + seeds {
        match run_seed(seed, steps).await {
            Ok(score) => total.add(&score),
            Err(failure) => {
                total.seeds += 1;
                total.failures += 1;
                failures.push(failure);
            }
        }
    }
    (total, failures)
}
