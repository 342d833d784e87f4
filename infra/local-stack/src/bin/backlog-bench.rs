//! How fast a backlog of webhook changes drains, against the HubSpot sandbox at its real
//! rate limit (110 requests per 10 s), on the embedded store.
//!
//! The portal is synced first; then `--changes` renames are made with webhook delivery
//! held, and all of them are released at once (one flush). The clock runs from the flush
//! until the record queue is empty; then every company's customer must carry its last
//! name (nothing missing). Also printed: the CPU the process used per change. The same is
//! done with jobs gathered 100 a poll (coalesced) and, for comparison, one a poll (each
//! job fetches its own record, as before coalescing), on a smaller backlog so the slow
//! side ends in about a minute.
//!
//!     cargo run --release -p local-stack --bin backlog-bench -- \
//!         [--companies 3000] [--changes 10000] [--one-at-a-time 500]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use serde_json::json;

use connector::SourceId;
use local_stack::RECORD_BATCH;
use local_stack::bench::{BenchStack, numeric_flags, process_cpu};

struct Drained {
    changes: usize,
    took: Duration,
    /// The whole process's: the webhooks' intake, the worker, the store and the sandbox.
    cpu: Duration,
    api_requests: u64,
    rate_limited: u64,
}

impl Drained {
    fn per_second(&self) -> f64 {
        self.changes as f64 / self.took.as_secs_f64()
    }
}

async fn drain(companies: usize, changes: usize, record_batch: usize) -> anyhow::Result<Drained> {
    let bench = BenchStack::start(companies, 0, record_batch).await?;
    let control = bench.control();
    control.set_webhooks(json!({"auto_deliver": false})).await?;
    let renames: Vec<(SourceId, String)> = (0..changes)
        .map(|i| {
            let (id, _) = &bench.companies[i % bench.companies.len()];
            (id.clone(), format!("Backlog {i} {id}"))
        })
        .collect();
    let made: Vec<anyhow::Result<()>> = futures::stream::iter(renames.clone())
        .map(|(id, name)| {
            let control = control.clone();
            async move {
                control
                    .update_company(id.as_str(), &[("name", &name)])
                    .await?;
                Ok(())
            }
        })
        .buffered(16)
        .collect()
        .await;
    made.into_iter().collect::<anyhow::Result<Vec<()>>>()?;

    control.reset_request_counts().await?;
    let started = Instant::now();
    let cpu_before = process_cpu();
    bench.drained(Duration::from_secs(1800)).await?;
    let took = started.elapsed();
    let cpu = process_cpu() - cpu_before;
    let counts = control.request_counts().await?;
    let last: HashMap<SourceId, String> = renames.into_iter().collect();
    let last: Vec<(SourceId, String)> = last.into_iter().collect();
    let missing = bench.missing(&last).await?;
    if missing > 0 {
        bail!("{missing} companies did not end with their last name");
    }
    Ok(Drained {
        changes,
        took,
        cpu,
        api_requests: counts.api_requests,
        rate_limited: counts.rate_limited,
    })
}

fn report(label: &str, d: &Drained) {
    println!(
        "{label:<28} {:>6} changes in {:>7.1} s = {:>7.1} records/s, CPU {:.0} µs per change, {:>5} API requests ({:.3} per change), {} answered 429",
        d.changes,
        d.took.as_secs_f64(),
        d.per_second(),
        d.cpu.as_secs_f64() * 1e6 / d.changes as f64,
        d.api_requests,
        d.api_requests as f64 / d.changes as f64,
        d.rate_limited
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let [companies, changes, one_at_a_time] = numeric_flags([
        ("--companies", 3_000),
        ("--changes", 10_000),
        ("--one-at-a-time", 500),
    ])?;
    let (companies, changes, one_at_a_time) =
        (companies as usize, changes as usize, one_at_a_time as usize);
    println!(
        "backlog drain on a {}-company portal, sandbox limit 110 requests per 10 s, embedded store",
        companies
    );
    let coalesced = drain(companies, changes, RECORD_BATCH).await?;
    report(&format!("{RECORD_BATCH} jobs a poll"), &coalesced);
    if one_at_a_time > 0 {
        let alone = drain(companies, one_at_a_time, 1).await?;
        report("1 job a poll (before)", &alone);
        println!(
            "coalesced / one at a time: {:.1}x the records per second",
            coalesced.per_second() / alone.per_second()
        );
    }
    Ok(())
}
