//! A stateful fake HubSpot on loopback, close enough to the real API that the official
//! clients work against it: OAuth, CRM objects (companies, contacts: reads and writes),
//! search, associations, properties, owners, lists, pipelines, rate limits with HubSpot's
//! headers, signed webhooks with retries, and fault switches. Driven from tests through `/_sandbox/` ([`ControlClient`]).

pub mod clock;
pub mod config;
pub mod control_client;
pub mod counters;
pub mod error;
pub mod model;
pub mod oauth;
pub mod props;
pub mod ratelimit;
pub mod routes;
pub mod seed;
pub mod signature;
pub mod store;
pub mod webhooks;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    Faults, LegacySignature, OAuthAppConfig, RateLimitConfig, SandboxConfig, WebhookConfig,
};
pub use control_client::{ControlClient, SeedSummary, TokenGrant};
pub use counters::CountersReport;
pub use model::ObjectKind;
pub use webhooks::FlushReport;
use world::Shared;

pub struct Sandbox;

impl Sandbox {
    /// Binds 127.0.0.1:`config.port` (0 = any free port), seeds the data and serves.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
        let addr = listener.local_addr()?;
        let app = config.app.clone();
        let shared = Arc::new(Shared::new(config));
        let router = routes::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "hubspot sandbox server stopped");
            }
        });
        let sender = tokio::spawn(webhooks::run_sender(shared.clone()));
        Ok(RunningSandbox {
            addr,
            app,
            shared,
            stop: Some(stop),
            server: Some(server),
            sender,
        })
    }
}

/// A started sandbox; dropping it (or [`RunningSandbox::shutdown`]) stops the server.
pub struct RunningSandbox {
    addr: SocketAddr,
    app: OAuthAppConfig,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    sender: JoinHandle<()>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT`, no trailing slash: the API host and the control API's.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The installed app (client id and secret, portal id, app id).
    pub fn app(&self) -> &OAuthAppConfig {
        &self.app
    }

    /// Every access and refresh token this sandbox has issued and still knows: tests look
    /// for them where tokens must never appear (logs, API answers).
    pub fn issued_tokens(&self) -> Vec<String> {
        let world = self.shared.lock();
        world
            .oauth
            .access
            .keys()
            .chain(world.oauth.refresh.keys())
            .cloned()
            .collect()
    }

    pub fn control(&self) -> ControlClient {
        ControlClient::new(self.base_url())
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.sender.abort();
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(std::time::Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.sender.abort();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
