//! The service as one long-running process: the HTTP router, a poller per job queue in
//! place of the SQS triggers, and a timer in place of the 02:00 UTC schedule. The
//! one-machine server (`sync-server`) and the local stack both run it. A stop takes no new
//! request or job, lets every record batch in hand run to its end, and makes a full pass
//! checkpoint at its next page and queue its continuation, so no job is lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connector::Timestamp;
use connector::engine::reconcile::Budget;
use connector::ports::{JobQueue, QueueResult, ReceivedMessage};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::jobs::{self, Message};

#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// How long pollers wait when a queue is empty.
    pub idle_poll: Duration,
    /// Record jobs one poll gathers and runs together, like the worker's SQS `BatchSize`
    /// (1: each job alone, as before coalescing).
    pub record_batch: usize,
    /// How long a poll that found jobs keeps gathering more before it runs them, like the
    /// worker's `MaximumBatchingWindowInSeconds`: under a stream of changes, fuller batches
    /// and fewer requests, for at most this much more latency.
    pub record_window: Duration,
    /// How long one reconcile step may run before it checkpoints and hands over.
    pub reconcile_budget: Duration,
    /// How often the sweep runs (`engine::schedule`: notifications reviewed, each
    /// connection's nightly pass started at its time), as the template schedules the
    /// reconciler on Lambda; `None`: never.
    pub sweep_every: Option<Duration>,
}

/// The sweep's period, as the template schedules it: each connection's nightly pass starts
/// within this of its time.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

/// Jobs one poll gathers (SQS hands out 10 a receive), like the worker's SQS `BatchSize`.
pub const RECORD_BATCH: usize = 100;
/// Shorter than the worker's 1 s batching window: one machine has no cold starts to spread.
pub const RECORD_WINDOW: Duration = Duration::from_millis(200);
/// Visibility of a record job while it runs (the worker Lambda's timeout, with room).
const RECORD_VISIBILITY: Duration = Duration::from_secs(60);
/// A record batch stops starting jobs this long after it was received, well inside its
/// visibility, so no job runs twice at once.
const RECORD_DEADLINE: Duration = Duration::from_secs(50);

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            idle_poll: Duration::from_millis(100),
            record_batch: RECORD_BATCH,
            record_window: RECORD_WINDOW,
            // A server has no 15-minute limit, but a short step keeps a stop quick.
            reconcile_budget: Duration::from_secs(60),
            sweep_every: Some(SWEEP_EVERY),
        }
    }
}

/// Asks every part of a running server to stop, once.
#[derive(Clone)]
struct StopSignal {
    /// Read by a running pass between pages.
    flag: Arc<AtomicBool>,
    wake: watch::Sender<bool>,
}

impl StopSignal {
    fn new() -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(false)),
            wake: watch::channel(false).0,
        }
    }

    fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.wake.send_replace(true);
    }

    fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Resolves once a stop was requested.
    async fn wait(&self) {
        let mut wake = self.wake.subscribe();
        let _ = wake.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps for `period`; false when woken by a stop instead.
    async fn sleep(&self, period: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(period) => true,
            () = self.wait() => false,
        }
    }
}

/// The tasks of a running server. Dropping it aborts them (tests); [`RunningServer::stop`]
/// stops them cleanly.
pub struct RunningServer {
    stop: StopSignal,
    tasks: Vec<JoinHandle<()>>,
}

/// Serves `app` on `listener` and starts the pollers and, if asked, the sweep's timer.
pub fn start(app: Arc<App>, listener: TcpListener, options: ServerOptions) -> RunningServer {
    let stop = StopSignal::new();
    let router = crate::http::router(app.clone());
    let http_stop = stop.clone();
    let mut tasks = vec![tokio::spawn(async move {
        let serving = axum::serve(listener, router)
            .with_graceful_shutdown(async move { http_stop.wait().await });
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    })];
    tasks.push(tokio::spawn(poll_records(
        app.clone(),
        options.clone(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(poll_reconciles(
        app.clone(),
        options.clone(),
        stop.clone(),
    )));
    if let Some(every) = options.sweep_every {
        tasks.push(tokio::spawn(sweep(app, every, stop.clone())));
    }
    RunningServer { stop, tasks }
}

impl RunningServer {
    /// Stops cleanly: no new request or job is taken, open requests are answered, record
    /// batches in hand run to their end, and a running pass checkpoints and queues its
    /// continuation. Returns once everything has stopped.
    pub async fn stop(mut self) {
        self.stop.request();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a server task ended abnormally");
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn poll_records(app: Arc<App>, options: ServerOptions, stop: StopSignal) {
    let queue = app.engine.record_jobs.clone();
    let gathering = Gathering {
        max: options.record_batch.max(1),
        window: options.record_window,
    };
    while !stop.requested() {
        match receive_batch(queue.as_ref(), gathering).await {
            Ok(received) if !received.is_empty() => {
                let deadline = Instant::now() + RECORD_DEADLINE;
                let receipts: HashMap<String, String> = received
                    .iter()
                    .map(|m| (m.message_id.clone(), m.receipt.clone()))
                    .collect();
                let messages = received.into_iter().map(message).collect();
                let failed = jobs::run_record_batch(&app, messages, Some(deadline)).await;
                for (id, receipt) in receipts {
                    if !failed.contains(&id)
                        && let Err(e) = queue.delete(&receipt).await
                    {
                        tracing::warn!(error = %e, "could not delete a finished record job");
                    }
                }
            }
            Ok(_) => {
                stop.sleep(options.idle_poll).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "record queue receive failed");
                stop.sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn message(m: ReceivedMessage) -> Message {
    Message {
        id: m.message_id,
        body: m.body,
        receive_count: m.receive_count,
    }
}

/// How a poll gathers record jobs.
#[derive(Clone, Copy, Debug)]
struct Gathering {
    max: usize,
    window: Duration,
}

/// Receives until `max` messages, or until the window after the first one closes; nothing
/// due: an empty batch at once.
async fn receive_batch(
    queue: &dyn JobQueue,
    gathering: Gathering,
) -> QueueResult<Vec<ReceivedMessage>> {
    let mut batch = Vec::new();
    let mut closes = None;
    while batch.len() < gathering.max {
        let want = (gathering.max - batch.len()).min(10);
        let received = match queue.receive(want, RECORD_VISIBILITY).await {
            Ok(received) => received,
            // What was already received is run; its visibility covers it.
            Err(_) if !batch.is_empty() => break,
            Err(e) => return Err(e),
        };
        let short = received.len() < want;
        batch.extend(received);
        if batch.is_empty() {
            break;
        }
        let closes = *closes.get_or_insert_with(|| Instant::now() + gathering.window);
        if short {
            if Instant::now() >= closes {
                break;
            }
            tokio::time::sleep(
                Duration::from_millis(20).min(closes.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }
    Ok(batch)
}

async fn poll_reconciles(app: Arc<App>, options: ServerOptions, stop: StopSignal) {
    let queue = app.engine.reconcile_jobs.clone();
    let budget = options.reconcile_budget;
    while !stop.requested() {
        match queue.receive(1, budget + Duration::from_secs(60)).await {
            Ok(received) if !received.is_empty() => {
                for m in received {
                    let receipt = m.receipt.clone();
                    let step =
                        Budget::until(Instant::now() + budget).or_when_set(stop.flag.clone());
                    let failed = jobs::run_reconcile_batch(&app, vec![message(m)], step).await;
                    if failed.is_empty()
                        && let Err(e) = queue.delete(&receipt).await
                    {
                        tracing::warn!(error = %e, "could not delete a finished reconcile job");
                    }
                }
            }
            Ok(_) => {
                stop.sleep(options.idle_poll).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile queue receive failed");
                stop.sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn sweep(app: Arc<App>, every: Duration, stop: StopSignal) {
    while stop.sleep(every).await {
        match app.engine.sweep(Timestamp::now()).await {
            Ok(report) => tracing::info!(?report, "sweep done"),
            Err(e) => tracing::error!(error = %e, "the sweep failed"),
        }
    }
}
