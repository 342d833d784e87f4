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

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use rand::RngCore;
use serde_json::Value;

use connector::ports::{JobQueue, PageRequest, Store};
use connector::{
    ConnectionId, ObjectKind, Provider, Secret, SourceId, SourceRef, SyncRun, SyncRunStatus,
    TenantId, Timestamp,
};
use hubspot_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use sync_service::App;
use sync_service::config::{Config, HubSpotSettings, StripeSettings};
use sync_service::server::{self, RunningServer};
pub use sync_service::server::{RECORD_BATCH, RECORD_WINDOW, ServerOptions};

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
    /// The pollers, the record gathering, the reconcile step and the nightly timer.
    pub server: ServerOptions,
    /// The service's secrets (`None`: new random ones, as a fresh database needs).
    pub keys: Option<StackKeys>,
    /// Overrides the engine's `webhook_miss_grace` (tests set it to zero to see misses at once).
    pub webhook_miss_grace: Option<Duration>,
    /// Overrides the engine's `schema_ttl` (tests set it to zero to see schema changes at once).
    pub schema_ttl: Option<Duration>,
    /// Overrides the engine's `stuck_pass_after` (tests shorten it to see a stuck pass).
    pub stuck_pass_after: Option<Duration>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            port: 0,
            sandbox: SandboxConfig::default(),
            stripe: Some(stripe_sandbox::SandboxConfig::default()),
            tenant: "demo".into(),
            server: ServerOptions::default(),
            keys: None,
            webhook_miss_grace: None,
            schema_ttl: None,
            stuck_pass_after: None,
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
    server: Option<RunningServer>,
}

fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The service's two secrets: the key its stored tokens are sealed with and the admin
/// token secret. Kept data needs the same ones again.
#[derive(Clone, Debug)]
pub struct StackKeys {
    pub token_key: Secret,
    pub admin_secret: Secret,
}

impl StackKeys {
    pub fn random() -> Self {
        Self {
            token_key: Secret::new(random_key()),
            admin_secret: Secret::new(random_key()),
        }
    }

    /// The keys saved at `path` (two lines), or new ones saved there, readable by the
    /// owner only.
    pub fn kept_in(path: &std::path::Path) -> anyhow::Result<Self> {
        if let Ok(saved) = std::fs::read_to_string(path) {
            let mut lines = saved.lines();
            if let (Some(token_key), Some(admin_secret)) = (lines.next(), lines.next()) {
                return Ok(Self {
                    token_key: Secret::new(token_key),
                    admin_secret: Secret::new(admin_secret),
                });
            }
            bail!(
                "{} is not two lines of keys: delete it with the data",
                path.display()
            );
        }
        let keys = Self::random();
        let text = format!(
            "{}\n{}\n",
            keys.token_key.expose(),
            keys.admin_secret.expose()
        );
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(keys)
    }
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
    let keys = options.keys.clone().unwrap_or_else(StackKeys::random);
    let config = Config {
        hubspot: Some(HubSpotSettings {
            client_id: app_config.client_id.clone(),
            client_secret: Secret::new(app_config.client_secret.clone()),
            redirect_uri: format!("{base_url}/oauth/hubspot/callback"),
            base_url: Some(sandbox.base_url()),
        }),
        token_key: keys.token_key,
        admin_secret: Some(keys.admin_secret),
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
    if let Some(after) = options.stuck_pass_after {
        app.engine.settings.stuck_pass_after = after;
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
    let server = server::start(app.clone(), listener, options.server.clone());
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
        server: Some(server),
    })
}

impl RunningStack {
    /// Stops the service cleanly (see [`RunningServer::stop`]); the sandboxes stop when
    /// the stack is dropped.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

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
        self.call(method, path, body, &self.admin_token).await
    }

    /// Calls the admin API as `tenant` (a token issued for it on the spot).
    pub async fn admin_as(
        &self,
        tenant: &TenantId,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let token = self.admin_token_for(tenant)?;
        self.call(method, path, body, &token).await
    }

    /// An admin API token for `tenant`, valid for a day.
    pub fn admin_token_for(&self, tenant: &TenantId) -> anyhow::Result<Secret> {
        let auth = self
            .app
            .admin_auth
            .as_ref()
            .context("the local stack always has an admin secret")?;
        Ok(auth.issue(tenant, Timestamp::now().plus(Duration::from_secs(86_400))))
    }

    /// Calls the service with a bearer token: the admin API, or the records API with a
    /// records credential.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &Secret,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token.expose());
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

    /// Runs the OAuth consent again for the tenant's live connection to `provider` (kept
    /// data, fresh sandboxes: their old tokens died with the old sandbox), or connects anew
    /// when there is none.
    pub(crate) async fn reconnect(&self, provider: Provider) -> anyhow::Result<ConnectionId> {
        let connections = self.app.engine.store.list_connections(&self.tenant).await?;
        match connections.into_iter().find(|c| {
            c.provider == provider && c.status != connector::ConnectionStatus::Disconnected
        }) {
            Some(existing) => {
                self.authorize(&existing.id).await?;
                Ok(existing.id)
            }
            None => self.connect(provider.as_str()).await,
        }
    }

    /// [`RunningStack::connect_hubspot`], or its reauthorization when the tenant has one.
    pub async fn reconnect_hubspot(&self) -> anyhow::Result<ConnectionId> {
        self.reconnect(Provider::Hubspot).await
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
        self.consent(
            &self.tenant,
            &format!("/admin/connections/{connection}/authorize"),
        )
        .await
    }

    /// [`RunningStack::authorize`] asking for the write scopes too (before pushes are on).
    pub async fn authorize_with_writes(&self, connection: &ConnectionId) -> anyhow::Result<Value> {
        self.consent(
            &self.tenant,
            &format!("/admin/connections/{connection}/authorize?writes=true"),
        )
        .await
    }

    /// Runs the OAuth consent for a connection of `tenant`.
    pub async fn authorize_as(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> anyhow::Result<Value> {
        self.consent(
            tenant,
            &format!("/admin/connections/{connection}/authorize"),
        )
        .await
    }

    async fn consent(&self, tenant: &TenantId, authorize_path: &str) -> anyhow::Result<Value> {
        let (status, auth) = self
            .admin_as(tenant, reqwest::Method::POST, authorize_path, None)
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
