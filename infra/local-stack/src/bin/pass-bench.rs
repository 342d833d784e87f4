//! A full pass over a large portal against its floor, against the HubSpot sandbox at its
//! real rate limit (110 requests per rolling 10 s), on the embedded store.
//!
//! The portal is synced first (the initial pass). Then, with the rate window empty again,
//! `--deleted` companies, spread over the portal, are deleted at the sandbox with no
//! webhook sent, and one Run sync now is timed from its start to its end. The floor is
//! the listing alone: one request per 100 companies and per 100 contacts, plus one batch
//! read per 100 companies that vanished from the listing, admitted at the portal's rate
//! (110 at once, then 110 per 10 s). Also printed: the requests by route, requests per 1,000 records, the
//! process's resident memory during the pass (the in-process sandbox included) and the
//! rows the pass wrote to the store.
//!
//!     cargo run --release -p local-stack --bin pass-bench -- \
//!         [--companies 100000] [--contacts 300000] [--deleted 0]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

use connector::SyncRunStatus;
use local_stack::RECORD_BATCH;
use local_stack::bench::{BenchStack, numeric_flags, process_cpu, resident_bytes};

/// Records one listing request returns.
const PAGE: u64 = 100;
/// The sandbox's (and HubSpot's) limit: requests per rolling window.
const LIMIT: u64 = 110;
const WINDOW: Duration = Duration::from_secs(10);

/// How long `requests` take when the first `LIMIT` go at once and each later one waits
/// for a slot of the rolling window.
fn floor(requests: u64) -> Duration {
    WINDOW * (requests.saturating_sub(1) / LIMIT) as u32
}

/// Samples the resident memory every 50 ms until stopped; returns the highest.
fn watch_memory() -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(resident_bytes()));
    let handle = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(resident_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak.load(Ordering::Relaxed)
        })
    };
    (stop, handle)
}

const MIB: f64 = 1024.0 * 1024.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let [companies, contacts, deleted] = numeric_flags([
        ("--companies", 100_000),
        ("--contacts", 300_000),
        ("--deleted", 0),
    ])?;
    println!(
        "full pass over {companies} companies and {contacts} contacts ({deleted} deleted \
         without a webhook), sandbox limit {LIMIT} requests per 10 s, embedded store"
    );
    let started = Instant::now();
    let bench = BenchStack::start(companies as usize, contacts as usize, RECORD_BATCH).await?;
    println!(
        "initial pass: {:.1} s, {} companies mirrored",
        started.elapsed().as_secs_f64(),
        bench.companies.len()
    );
    let control = bench.control();
    if deleted > 0 {
        control
            .set_webhooks(serde_json::json!({"enabled": false}))
            .await?;
        // Spread over the portal, so they fall on many pages of the mirror's links.
        let every = (bench.companies.len() / deleted as usize).max(1);
        for (company, _) in bench.companies.iter().step_by(every).take(deleted as usize) {
            control.delete_company(company.as_str()).await?;
        }
    }
    // An empty rate window, as for a nightly pass after a quiet day.
    tokio::time::sleep(WINDOW).await;
    control.reset_request_counts().await?;
    let rows_before = bench.parts.store.rows_written().await?;
    let idle_memory = resident_bytes();
    let (stop_watch, watcher) = watch_memory();

    let stack = &bench.stack;
    let pass_started = Instant::now();
    let cpu_before = process_cpu();
    let run = stack
        .app
        .engine
        .run_sync_now(&stack.tenant, &bench.connection)
        .await?;
    let ended = stack
        .wait_for_sync(&bench.connection, Duration::from_secs(3600), |_| {})
        .await?;
    let took = pass_started.elapsed();
    let cpu = process_cpu() - cpu_before;
    stop_watch.store(true, Ordering::Relaxed);
    let peak_memory = watcher.await?;
    if ended.id != run.id || ended.status != SyncRunStatus::Completed {
        bail!("the pass ended {:?}", ended.status);
    }
    let rows = bench.parts.store.rows_written().await? - rows_before;
    let counts = control.request_counts().await?;
    let c = ended.counters;
    let floor_requests =
        companies.div_ceil(PAGE) + contacts.div_ceil(PAGE) + deleted.div_ceil(PAGE);
    let floor_time = floor(floor_requests);
    let records = companies + contacts;
    let ratio = if floor_time.is_zero() {
        "no floor: the requests fit in one window".to_owned()
    } else {
        format!("{:.3}x", took.as_secs_f64() / floor_time.as_secs_f64())
    };
    println!(
        "pass: {:.1} s against a floor of {:.1} s ({floor_requests} requests): {ratio}",
        took.as_secs_f64(),
        floor_time.as_secs_f64(),
    );
    println!(
        "requests: {} API ({:.2} per 1,000 records; floor {:.2}), {} answered 429, busiest 10 s {}, invocations {}",
        counts.api_requests,
        counts.api_requests as f64 * 1000.0 / records as f64,
        floor_requests as f64 * 1000.0 / records as f64,
        counts.rate_limited,
        counts.max_in_any_10s,
        ended.invocations
    );
    for (route, n) in &counts.by_route {
        println!("  {n:>7}  {route}");
    }
    println!(
        "CPU: {:.1} s for the pass, {:.1} µs per record (the whole process, the sandbox's serving included)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / records as f64
    );
    println!(
        "ledger: seen {} applied {} unchanged {} archived {} failed {} held {}",
        c.seen, c.applied, c.unchanged, c.archived, c.failed, c.held
    );
    println!(
        "store rows written during the pass: {rows} (records: {}; the rest are the run's checkpoints, lease and ledger rows)",
        c.applied + c.archived
    );
    println!(
        "resident memory: {:.0} MiB before the pass, peak {:.0} MiB during it (+{:.0} MiB; the sandbox's portal is in this process)",
        idle_memory as f64 / MIB,
        peak_memory as f64 / MIB,
        (peak_memory.saturating_sub(idle_memory)) as f64 / MIB
    );
    // A deleted company's contacts leave with it (no other mirrored company holds them).
    if c.archived < deleted {
        bail!("the pass archived {} of the {deleted} deleted", c.archived);
    }

    Ok(())
}
