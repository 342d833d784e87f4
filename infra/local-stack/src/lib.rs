//! The local stack: the service's own handlers (`sync_service`) served over HTTP on
//! loopback, with pollers standing in for the SQS triggers and a timer for the 02:00 UTC
//! schedule, against the HubSpot sandbox and (unless turned off) the Stripe sandbox. The
//! same code runs here as on Lambda; only the ports differ (embedded by default, any
//! [`Ports`] in tests).

pub mod bench;
mod stripe;

pub use stripe::{
    BillingFigures, ExpectedMatch, STRIPE_ACCOUNT, SeededStripeCustomer, StripeSeed, StripeSeeding,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use rand::RngCore;
use serde_json::Value;
use tokio::task::JoinHandle;

use connector::ports::{JobQueue, PageRequest, QueueResult, ReceivedMessage, Store};
use connector::{
    ConnectionId, ObjectKind, Provider, Secret, SourceId, SourceRef, SyncRun, SyncRunStatus,
    TenantId, Timestamp,
};
use hubspot_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use sync_service::App;
use sync_service::config::{Config, HubSpotSettings, StripeSettings};
use sync_service::jobs::{self, Message};

/// The three ports the service runs on.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub records: Arc<dyn JobQueue>,
    pub reconciles: Arc<dyn JobQueue>,
}

#[derive(Clone, Debug)]
pub struct StackOptions {
    /// The service's port (0: any free port).
    pub port: u16,
    pub sandbox: SandboxConfig,
    /// The Stripe sandbox (`None`: no Stripe in this stack). Its webhook target and secret
    /// are set by [`start`].
    pub stripe: Option<stripe_sandbox::SandboxConfig>,
    /// The demo tenant the admin token is issued for.
    pub tenant: String,
    /// How long pollers wait when a queue is empty.
    pub idle_poll: Duration,
    /// How long a reconcile invocation may run before it checkpoints and hands over
    /// (Lambda's 15 minutes less a margin, by default).
    pub reconcile_budget: Duration,
    /// Run the nightly reconciliation at 02:00 UTC.
    pub nightly: bool,
    /// Overrides the engine's `webhook_miss_grace` (tests set it to zero to see misses at once).
    pub webhook_miss_grace: Option<Duration>,
    /// Overrides the engine's `schema_ttl` (tests set it to zero to see schema changes at once).
    pub schema_ttl: Option<Duration>,
    /// Record jobs one poll gathers and runs together, like the worker's SQS `BatchSize`
    /// (1: each job alone, as before coalescing; the backlog benchmark compares both).
    pub record_batch: usize,
    /// How long a poll that found jobs keeps gathering more before it runs them, like the
    /// worker's `MaximumBatchingWindowInSeconds`: under a stream of changes, fuller batches
    /// and fewer requests, for at most this much more latency.
    pub record_window: Duration,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            port: 0,
            sandbox: SandboxConfig::default(),
            stripe: Some(stripe_sandbox::SandboxConfig::default()),
            tenant: "demo".into(),
            idle_poll: Duration::from_millis(100),
            reconcile_budget: Duration::from_secs(14 * 60),
            nightly: true,
            webhook_miss_grace: None,
            schema_ttl: None,
            record_batch: RECORD_BATCH,
            record_window: RECORD_WINDOW,
        }
    }
}

pub struct RunningStack {
    pub app: Arc<App>,
    /// `http://127.0.0.1:PORT` of the service (admin API, webhooks, OAuth callback).
    pub base_url: String,
    pub sandbox: RunningSandbox,
    /// The Stripe sandbox, when [`StackOptions::stripe`] asked for one.
    pub stripe: Option<stripe_sandbox::RunningSandbox>,
    pub tenant: TenantId,
    pub admin_token: Secret,
    http: reqwest::Client,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Starts the sandbox, the service and its pollers. Nothing is connected yet: see
/// [`RunningStack::connect_hubspot`].
pub async fn start(options: StackOptions, ports: Ports) -> anyhow::Result<RunningStack> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let mut sandbox_config = options.sandbox.clone();
    sandbox_config.webhooks.target_url = Some(format!("{base_url}/webhooks/hubspot"));
    let sandbox = Sandbox::start(sandbox_config.clone()).await?;
    let app_config = sandbox.app().clone();
    let stripe = match &options.stripe {
        Some(stripe_config) => Some(stripe::start_sandbox(stripe_config, &base_url).await?),
        None => None,
    };
    let config = Config {
        hubspot: Some(HubSpotSettings {
            client_id: app_config.client_id.clone(),
            client_secret: Secret::new(app_config.client_secret.clone()),
            redirect_uri: format!("{base_url}/oauth/hubspot/callback"),
            base_url: Some(sandbox.base_url()),
        }),
        token_key: Secret::new(random_key()),
        admin_secret: Some(Secret::new(random_key())),
        public_base_url: Some(base_url.clone()),
        mass_archive_share: None,
        stripe: stripe
            .as_ref()
            .map(|(sandbox, webhook_secret)| StripeSettings {
                secret_key: Secret::new(sandbox.secret_key()),
                client_id: Some(sandbox.config().oauth_client_id.clone()),
                redirect_uri: Some(format!("{base_url}/oauth/stripe/callback")),
                webhook_secrets: vec![webhook_secret.clone()],
                base_url: Some(sandbox.base_url()),
                mrr_policy: Default::default(),
            }),
    };
    let limits = sandbox_config.rate_limit.clone();
    let stripe_limits = stripe.as_ref().map(|(s, _)| s.config().rate_limits.clone());
    let mut app = config.build_tuned(
        ports.store,
        ports.records,
        ports.reconciles,
        |mut h| {
            // The sandbox may run with lowered limits: the client's limiter follows them.
            h.rate_limit.max_requests = limits.max_per_interval.max(1);
            h.rate_limit.per = Duration::from_millis(limits.interval_ms + limits.interval_ms / 100);
            h
        },
        |s| match &stripe_limits {
            Some(limits) => stripe::follow_rate_limits(s, limits),
            None => s,
        },
    )?;
    if let Some(grace) = options.webhook_miss_grace {
        app.engine.settings.webhook_miss_grace = grace;
    }
    if let Some(ttl) = options.schema_ttl {
        app.engine.settings.schema_ttl = ttl;
    }
    let app = Arc::new(app);
    let tenant = TenantId::parse(options.tenant.clone())?;
    let admin_token = app
        .admin_auth
        .as_ref()
        .context("the local stack always has an admin secret")?
        .issue(
            &tenant,
            Timestamp::now().plus(Duration::from_secs(30 * 24 * 3600)),
        );
    let router = sync_service::http::router(app.clone());
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "local service stopped");
        }
    })];
    tasks.push(tokio::spawn(poll_records(
        app.clone(),
        options.idle_poll,
        Gathering {
            max: options.record_batch.max(1),
            window: options.record_window,
        },
    )));
    tasks.push(tokio::spawn(poll_reconciles(
        app.clone(),
        options.idle_poll,
        options.reconcile_budget,
    )));
    if options.nightly {
        tasks.push(tokio::spawn(nightly(app.clone())));
    }
    Ok(RunningStack {
        app,
        base_url,
        sandbox,
        stripe: stripe.map(|(sandbox, _)| sandbox),
        tenant,
        admin_token,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        tasks,
    })
}

/// Visibility of a record job while it runs (the worker Lambda's timeout, with room).
const RECORD_VISIBILITY: Duration = Duration::from_secs(60);

/// Jobs one poll gathers (SQS hands out 10 a receive), like the worker's SQS `BatchSize`.
pub const RECORD_BATCH: usize = 100;
/// Shorter than the worker's 1 s batching window: one machine has no cold starts to spread.
pub const RECORD_WINDOW: Duration = Duration::from_millis(200);

/// How a poll gathers record jobs.
#[derive(Clone, Copy, Debug)]
struct Gathering {
    max: usize,
    window: Duration,
}

async fn poll_records(app: Arc<App>, idle: Duration, gathering: Gathering) {
    let queue = app.engine.record_jobs.clone();
    loop {
        match receive_batch(queue.as_ref(), gathering).await {
            Ok(received) if !received.is_empty() => {
                let receipts: HashMap<String, String> = received
                    .iter()
                    .map(|m| (m.message_id.clone(), m.receipt.clone()))
                    .collect();
                let messages = received
                    .into_iter()
                    .map(|m| Message {
                        id: m.message_id,
                        body: m.body,
                        receive_count: m.receive_count,
                    })
                    .collect();
                let failed = jobs::run_record_batch(&app, messages, None).await;
                for (id, receipt) in receipts {
                    if !failed.contains(&id)
                        && let Err(e) = queue.delete(&receipt).await
                    {
                        tracing::warn!(error = %e, "could not delete a finished record job");
                    }
                }
            }
            Ok(_) => tokio::time::sleep(idle).await,
            Err(e) => {
                tracing::error!(error = %e, "record queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
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

async fn poll_reconciles(app: Arc<App>, idle: Duration, budget: Duration) {
    let queue = app.engine.reconcile_jobs.clone();
    loop {
        match queue.receive(1, budget + Duration::from_secs(60)).await {
            Ok(received) if !received.is_empty() => {
                for m in received {
                    let deadline = Instant::now() + budget;
                    let failed = jobs::run_reconcile_batch(
                        &app,
                        vec![Message {
                            id: m.message_id.clone(),
                            body: m.body,
                            receive_count: m.receive_count,
                        }],
                        Some(deadline),
                    )
                    .await;
                    if failed.is_empty()
                        && let Err(e) = queue.delete(&m.receipt).await
                    {
                        tracing::warn!(error = %e, "could not delete a finished reconcile job");
                    }
                }
            }
            Ok(_) => tokio::time::sleep(idle).await,
            Err(e) => {
                tracing::error!(error = %e, "reconcile queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Time until the next 02:00 UTC.
pub fn until_next_nightly(now: time::OffsetDateTime) -> Duration {
    let today = now.replace_time(time::Time::from_hms(2, 0, 0).unwrap_or(time::Time::MIDNIGHT));
    let next = if today > now {
        today
    } else {
        today + time::Duration::days(1)
    };
    Duration::from_secs((next - now).whole_seconds().max(0) as u64)
}

async fn nightly(app: Arc<App>) {
    loop {
        tokio::time::sleep(until_next_nightly(time::OffsetDateTime::now_utc())).await;
        match app.engine.start_nightly().await {
            Ok(n) => tracing::info!(connections = n, "nightly reconciliation started"),
            Err(e) => tracing::error!(error = %e, "nightly reconciliation could not start"),
        }
    }
}

impl RunningStack {
    /// A one-time console sign-in link for `tenant`.
    pub fn console_sign_in_link(&self, tenant: &TenantId) -> anyhow::Result<String> {
        let auth = self
            .app
            .admin_auth
            .as_ref()
            .context("the local stack always has an admin secret")?;
        let (path, _) = sync_service::console::sign_in_link_path(auth, tenant, Timestamp::now());
        Ok(format!("{}{path}", self.base_url))
    }

    /// Calls the admin API as the demo tenant.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.admin_token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, json))
    }

    /// The admin's connect flow, as a browser would do it: create the connection, ask for
    /// the authorize URL, follow the sandbox's consent redirect to our callback.
    pub async fn connect_hubspot(&self) -> anyhow::Result<ConnectionId> {
        self.connect("hubspot").await
    }

    /// Creates a connection to `provider` and runs its OAuth consent.
    pub(crate) async fn connect(&self, provider: &str) -> anyhow::Result<ConnectionId> {
        let (status, created) = self
            .admin(
                reqwest::Method::POST,
                "/admin/connections",
                Some(serde_json::json!({ "provider": provider })),
            )
            .await?;
        if status != 201 {
            bail!("creating the {provider} connection answered {status}: {created}");
        }
        let id = created["id"].as_str().context("connection id")?.to_owned();
        let connection = ConnectionId::parse(id.clone())?;
        self.authorize(&connection).await?;
        Ok(connection)
    }

    /// Runs the OAuth consent for an existing connection (connect again after Reauthorize).
    pub async fn authorize(&self, connection: &ConnectionId) -> anyhow::Result<Value> {
        let (status, auth) = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/connections/{connection}/authorize"),
                None,
            )
            .await?;
        if status != 200 {
            bail!("authorize answered {status}: {auth}");
        }
        let url = auth["authorize_url"].as_str().context("authorize_url")?;
        let consent = self.http.get(url).send().await?;
        let callback = consent
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("the sandbox's consent did not redirect")?
            .to_owned();
        let done = self.http.get(&callback).send().await?;
        let status = done.status();
        let body: Value = done.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("the OAuth callback answered {status}: {body}");
        }
        Ok(body)
    }

    /// A record of the tenant's connected account of `provider`, as links are keyed.
    pub async fn source_ref(
        &self,
        provider: Provider,
        kind: ObjectKind,
        source_id: &str,
    ) -> anyhow::Result<SourceRef> {
        let connections = self.app.engine.store.list_connections(&self.tenant).await?;
        let connection = connections
            .iter()
            .find(|c| c.provider == provider && c.account_id.is_some())
            .with_context(|| format!("no connected {provider} connection"))?;
        connection
            .source_ref(kind, &SourceId::parse(source_id)?)
            .context("the connection has no account")
    }

    /// The connection's newest sync run.
    pub async fn latest_run(&self, connection: &ConnectionId) -> anyhow::Result<Option<SyncRun>> {
        let runs = self
            .app
            .engine
            .store
            .list_sync_runs(&self.tenant, connection, PageRequest::first(1))
            .await?;
        Ok(runs.items.into_iter().next())
    }

    /// Waits until the newest run has ended, reporting its counters as they move.
    pub async fn wait_for_sync(
        &self,
        connection: &ConnectionId,
        timeout: Duration,
        mut progress: impl FnMut(&SyncRun),
    ) -> anyhow::Result<SyncRun> {
        let give_up = Instant::now() + timeout;
        loop {
            if let Some(run) = self.latest_run(connection).await? {
                progress(&run);
                if run.status != SyncRunStatus::Running {
                    return Ok(run);
                }
            }
            if Instant::now() > give_up {
                bail!("the sync did not finish within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nightly_run_is_at_two_utc() {
        let at = |h, m| {
            time::OffsetDateTime::UNIX_EPOCH.replace_time(time::Time::from_hms(h, m, 0).unwrap())
        };
        assert_eq!(until_next_nightly(at(1, 0)), Duration::from_secs(3600));
        assert_eq!(until_next_nightly(at(2, 0)), Duration::from_secs(24 * 3600));
        assert_eq!(until_next_nightly(at(3, 0)), Duration::from_secs(23 * 3600));
    }
}
