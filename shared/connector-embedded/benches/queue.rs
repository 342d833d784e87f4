//! Throughput of the embedded queue, one call at a time as a worker makes them:
//! send 10,000 messages in batches of 10, receive them 10 at a time, delete each.
//!
//! `cargo bench -p connector-embedded --bench queue`

use std::error::Error;
use std::time::{Duration, Instant};

use connector::ports::{JobQueue, MAX_BATCH, OutgoingMessage};
use connector_embedded::queue::{EmbeddedQueue, QueueSettings};

const MESSAGES: usize = 10_000;
const VISIBILITY: Duration = Duration::from_secs(600);

fn main() -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(
        dir.path().join("bench.sqlite"),
        "jobs",
        QueueSettings::default(),
    )?;
    let body = format!(
        r#"{{"tenant":"t-1","connection":"c-1","record":"{}"}}"#,
        "x".repeat(64)
    );
    let messages: Vec<OutgoingMessage> = (0..MESSAGES)
        .map(|_| OutgoingMessage::now(body.clone()))
        .collect();

    let started = Instant::now();
    for batch in messages.chunks(MAX_BATCH) {
        queue.send_batch(batch).await?;
    }
    report("send (batches of 10)", MESSAGES, started.elapsed());

    let started = Instant::now();
    let mut receipts = Vec::with_capacity(MESSAGES);
    while receipts.len() < MESSAGES {
        let got = queue.receive(MAX_BATCH, VISIBILITY).await?;
        if got.is_empty() {
            return Err(format!("only {} of {MESSAGES} messages arrived", receipts.len()).into());
        }
        receipts.extend(got.into_iter().map(|m| m.receipt));
    }
    report("receive (10 at a time)", MESSAGES, started.elapsed());

    let started = Instant::now();
    for receipt in &receipts {
        queue.delete(receipt).await?;
    }
    report("delete (one at a time)", MESSAGES, started.elapsed());

    let left = queue.approximate_depth().await?;
    if left != 0 {
        return Err(format!("{left} messages left after deleting all").into());
    }
    Ok(())
}

fn report(what: &str, messages: usize, took: Duration) {
    let rate = messages as f64 / took.as_secs_f64();
    println!("{what:<24} {messages} msgs in {took:>10.3?}  {rate:>9.0} msgs/s");
}
