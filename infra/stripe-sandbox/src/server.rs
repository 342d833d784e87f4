//! The HTTP server: `/v1/*` (the API), `/oauth/*` (Connect OAuth), `/_sandbox/*` (control),
//! plus the background webhook deliverer. `Sandbox::start` runs it on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::sync::{Mutex, Notify, oneshot};
use tokio::task::JoinHandle;

use crate::client::ControlClient;
use crate::config::SandboxConfig;
use crate::error::ApiError;
use crate::world::World;
use crate::{api, control, oauth, seed, webhooks};

/// State shared by every handler and the webhook worker.
pub struct Shared {
    pub world: Mutex<World>,
    /// Wakes the webhook worker when new events are queued.
    pub notify: Notify,
    /// Serialises delivery rounds (background worker vs. flush).
    pub delivery_lock: Mutex<()>,
    pub http: reqwest::Client,
}

pub type AppState = Arc<Shared>;

async fn v1(
    State(shared): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api::handle(shared, method, uri, headers, body).await
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    let err = ApiError::unrecognized_url(method.as_str(), uri.path());
    let request_id = api::new_request_id();
    let mut response = (err.status, axum::Json(err.body(&request_id, false))).into_response();
    if let Ok(v) = request_id.parse() {
        response.headers_mut().insert("request-id", v);
    }
    response
}

pub fn router(shared: AppState) -> Router {
    Router::new()
        .route("/v1/oauth/token", post(oauth::token))
        .route("/v1/{*rest}", any(v1))
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/deauthorize", post(oauth::deauthorize))
        .nest("/_sandbox", control::router())
        .fallback(unrecognized)
        .with_state(shared)
}

/// Entry point: `Sandbox::start(config).await?`.
pub struct Sandbox;

impl Sandbox {
    pub async fn start(config: SandboxConfig) -> anyhow::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", config.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the webhook HTTP client")?;
        let seed_customers = config.seed_customers;
        let seed_value = config.seed;
        let mut world = World::new(config.clone());
        if seed_customers > 0 {
            let request = seed::SeedRequest {
                seed: Some(seed_value),
                customers: Some(seed_customers),
                ..seed::SeedRequest::default()
            };
            seed::seed(&mut world, &request)
                .map_err(|e| anyhow::anyhow!("seeding at start: {}", e.message))?;
        }
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            notify: Notify::new(),
            delivery_lock: Mutex::new(()),
            http,
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "stripe sandbox server stopped");
            }
        });
        let worker = tokio::spawn(webhooks::run(shared.clone()));
        Ok(RunningSandbox {
            addr,
            config,
            shared,
            stop: Some(stop_tx),
            server: Some(server),
            worker,
        })
    }
}

/// A started sandbox; dropping it stops the server.
pub struct RunningSandbox {
    addr: SocketAddr,
    config: SandboxConfig,
    shared: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    worker: JoinHandle<()>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT` (no trailing slash): the API base, the Connect base and the control base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The platform's test secret key (`Authorization: Bearer ...`).
    pub fn secret_key(&self) -> &str {
        &self.config.test_secret_key
    }

    pub fn control(&self) -> ControlClient {
        ControlClient::new(self.base_url())
    }

    /// Direct access to the state, for tests in this crate.
    pub fn shared(&self) -> &AppState {
        &self.shared
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.worker.abort();
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.stop_now();
    }
}
