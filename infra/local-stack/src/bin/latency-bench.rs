//! Webhook to applied under a sustained stream of changes, against the HubSpot sandbox at
//! its real rate limit (110 requests per 10 s), on the embedded store.
//!
//! Companies of a synced portal are renamed at `--rate` changes per second for
//! `--seconds`, with the sandbox delivering webhooks as HubSpot does (batches of up to 100,
//! gathered for 50 ms). A change's latency runs from just before its rename until the log
//! row of the first apply of that company after it. Afterwards every company must carry
//! its last name (nothing missing).
//!
//!     cargo run --release -p local-stack --bin latency-bench -- \
//!         [--companies 3000] [--rate 200] [--seconds 60]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;

use connector::ports::{LogFilter, PageRequest};
use connector::{LogStatus, SourceId, Timestamp};
use local_stack::RECORD_BATCH;
use local_stack::bench::{BenchStack, numeric_flags};

/// Ten ticks a second, `rate / 10` renames each.
const TICK: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let [companies, rate, seconds] =
        numeric_flags([("--companies", 3_000), ("--rate", 200), ("--seconds", 60)])?;
    let bench = BenchStack::start(companies as usize, 0, RECORD_BATCH).await?;
    let control = bench.control();
    control.reset_request_counts().await?;

    let per_tick = (rate as usize / 10).max(1);
    let ticks = seconds * 10;
    let mut renames: Vec<(SourceId, String, Timestamp)> = Vec::new();
    let mut clock = tokio::time::interval(TICK);
    let started = Instant::now();
    for tick in 0..ticks as usize {
        clock.tick().await;
        let batch: Vec<(SourceId, String)> = (0..per_tick)
            .map(|i| {
                let n = tick * per_tick + i;
                let (id, _) = &bench.companies[n % bench.companies.len()];
                (id.clone(), format!("Live {n} {id}"))
            })
            .collect();
        let at = Timestamp::now();
        let sent = futures::future::join_all(batch.iter().map(|(id, name)| {
            let control = control.clone();
            async move { control.update_company(id.as_str(), &[("name", name)]).await }
        }))
        .await;
        for ((id, name), result) in batch.into_iter().zip(sent) {
            result?;
            renames.push((id, name, at));
        }
    }
    let sending = started.elapsed();
    bench.drained(Duration::from_secs(300)).await?;
    let counts = control.request_counts().await?;

    // When each company was applied, from its log rows.
    let mut applied: HashMap<SourceId, Vec<Timestamp>> = HashMap::new();
    let mut page = PageRequest::first(1_000);
    loop {
        let rows = bench
            .stack
            .app
            .engine
            .store
            .list_log(
                &bench.stack.tenant,
                &bench.connection,
                LogFilter::default(),
                page.clone(),
                Timestamp::now(),
            )
            .await?;
        for row in rows.items {
            if row.status == LogStatus::Applied
                && let Some(id) = row.record_id
            {
                applied.entry(id).or_default().push(row.at);
            }
        }
        match rows.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    for times in applied.values_mut() {
        times.sort();
    }
    let mut latencies = Vec::new();
    let mut unseen = 0;
    for (id, _, at) in &renames {
        let first_after = applied
            .get(id)
            .and_then(|times| times.iter().find(|t| t.as_millis() >= at.as_millis()));
        match first_after {
            Some(t) => latencies.push(t.as_millis() - at.as_millis()),
            None => unseen += 1,
        }
    }
    latencies.sort_unstable();
    let last: HashMap<SourceId, String> = renames
        .iter()
        .map(|(id, name, _)| (id.clone(), name.clone()))
        .collect();
    let last: Vec<(SourceId, String)> = last.into_iter().collect();
    let missing = bench.missing(&last).await?;

    let at = |q: f64| -> i64 {
        let i = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies.get(i).copied().unwrap_or(-1)
    };
    println!(
        "{} changes at {}/s for {:.1} s on a {}-company portal (sandbox limit 110 requests / 10 s)",
        renames.len(),
        rate,
        sending.as_secs_f64(),
        bench.companies.len()
    );
    println!(
        "webhook to applied: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        at(0.50),
        at(0.90),
        at(0.99),
        latencies.last().copied().unwrap_or(-1)
    );
    println!(
        "{} API requests ({:.3} per change), {} answered 429, busiest 10 s: {}",
        counts.api_requests,
        counts.api_requests as f64 / renames.len().max(1) as f64,
        counts.rate_limited,
        counts.max_in_any_10s
    );
    println!(
        "companies not ending with their last name: {missing}; changes with no apply after them: {unseen}"
    );
    if missing > 0 {
        bail!("{missing} companies did not end with their last name");
    }
    Ok(())
}
