//! The harness both sandbox test files share: a HubSpot sandbox, its control API, the
//! embedded store holding one Connected connection, and the client under test.

// Each test file uses part of the harness.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use connector::crypto::TokenCipher;
use connector::ports::Store;
use connector::provider::{Fetched, SourceProvider};
use connector::{
    Connection, ConnectionStatus, ObjectKind, Provider, ProviderAccountId, Secret, SourceId,
    TenantId, Timestamp,
};
use connector_embedded::store::EmbeddedStore;
use connector_hubspot::{HubSpotConfig, HubSpotProvider, StoredTokens};
use hubspot_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// The sandbox's control API, spoken directly.
pub struct Control {
    pub http: reqwest::Client,
    pub base: String,
}

impl Control {
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.expect("control API answers");
        let status = response.status();
        let text = response.text().await.expect("control body");
        assert!(status.is_success(), "control {path}: {status} {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("control JSON")
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn counters(&self) -> Value {
        self.get("/requests").await
    }

    pub async fn route_count(&self, route: &str) -> u64 {
        self.counters().await["by_route"][route]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn create(&self, object: &str, properties: Value) -> SourceId {
        let record = self
            .post(
                &format!("/objects/{object}"),
                json!({ "properties": properties }),
            )
            .await;
        SourceId::parse(record["id"].as_str().expect("id")).expect("valid id")
    }
}

pub struct Harness {
    pub sandbox: RunningSandbox,
    pub control: Control,
    pub store: Arc<EmbeddedStore>,
    pub cipher: TokenCipher,
    pub config: HubSpotConfig,
    pub provider: HubSpotProvider,
    pub connection: Connection,
    pub _dir: tempfile::TempDir,
}

pub fn fast_retries(config: &mut HubSpotConfig) {
    config.retry.base = Duration::from_millis(20);
    config.retry.cap = Duration::from_secs(3);
    config.request_timeout = Duration::from_secs(10);
}

pub async fn harness_with(
    sandbox_config: SandboxConfig,
    tune: impl FnOnce(&mut HubSpotConfig),
) -> Harness {
    let sandbox = Sandbox::start(sandbox_config)
        .await
        .expect("sandbox starts");
    let app = sandbox.app().clone();
    let mut config = HubSpotConfig::production(
        app.client_id.clone(),
        Secret::new(app.client_secret.clone()),
        "http://127.0.0.1:9/oauth/hubspot/callback",
    )
    .with_base_url(&sandbox.base_url());
    fast_retries(&mut config);
    tune(&mut config);
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Arc::new(EmbeddedStore::open(dir.path().join("store.sqlite")).expect("store opens"));
    let cipher = TokenCipher::from_base64_key(&TokenCipher::generate_key_base64()).expect("key");
    let provider =
        HubSpotProvider::new(config.clone(), store.clone(), cipher.clone()).expect("a client");
    let control = Control {
        http: reqwest::Client::new(),
        base: sandbox.base_url(),
    };

    let tokens = mint(&control, json!({})).await;
    let mut connection = Connection::new(
        TenantId::parse("acme").expect("tenant"),
        Provider::Hubspot,
        Timestamp::now(),
    );
    connection.status = ConnectionStatus::Connected;
    connection.account_id =
        Some(ProviderAccountId::parse(app.portal_id.to_string()).expect("portal"));
    connection.credentials = Some(
        cipher
            .seal(&tokens, connection.credential_owner())
            .expect("seals"),
    );
    let connection = store.put_connection(&connection).await.expect("stored");

    Harness {
        sandbox,
        control,
        store,
        cipher,
        config,
        provider,
        connection,
        _dir: dir,
    }
}

pub async fn harness(companies: usize, contacts: usize) -> Harness {
    harness_with(
        SandboxConfig {
            companies,
            contacts,
            ..SandboxConfig::default()
        },
        |_| {},
    )
    .await
}

/// A token pair from the sandbox (`request`: `{}` for its default scopes, or `{"scopes": [...]}`).
pub async fn mint(control: &Control, request: Value) -> StoredTokens {
    let minted = control.post("/tokens", request).await;
    StoredTokens {
        access_token: Secret::new(minted["access_token"].as_str().expect("access token")),
        refresh_token: Secret::new(minted["refresh_token"].as_str().expect("refresh token")),
        expires_at: Timestamp::now().plus(Duration::from_secs(
            minted["expires_in"].as_u64().expect("ttl"),
        )),
    }
}

impl Harness {
    /// Seals `tokens` onto the connection and stores it.
    pub async fn install(&mut self, tokens: &StoredTokens) {
        let sealed = self
            .cipher
            .seal(tokens, self.connection.credential_owner())
            .expect("seals");
        self.connection.credentials = Some(sealed);
        self.connection = self
            .store
            .put_connection(&self.connection)
            .await
            .expect("stored");
    }

    /// Reconnects with a token holding exactly `scopes`.
    pub async fn grant(&mut self, scopes: &[&str]) {
        let tokens = mint(&self.control, json!({ "scopes": scopes })).await;
        self.install(&tokens).await;
    }

    /// Stores the connection's tokens as already expired (at our side).
    pub async fn expire_tokens_locally(&mut self) {
        let mut tokens: StoredTokens = self
            .cipher
            .open(
                self.connection.credentials.as_ref().expect("sealed"),
                self.connection.credential_owner(),
            )
            .expect("opens");
        tokens.expires_at = Timestamp::now().minus(Duration::from_secs(1));
        self.install(&tokens).await;
    }

    pub async fn stored_tokens(&self) -> StoredTokens {
        let stored = self
            .store
            .get_connection(&self.connection.tenant_id, &self.connection.id)
            .await
            .expect("reads")
            .expect("exists");
        self.cipher
            .open(
                stored.credentials.as_ref().expect("sealed"),
                stored.credential_owner(),
            )
            .expect("opens")
    }

    pub async fn all_company_ids(&self) -> Vec<SourceId> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .provider
                .list_page(
                    &self.connection,
                    ObjectKind::Company,
                    &["name"],
                    cursor.as_deref(),
                )
                .await
                .expect("page");
            ids.extend(page.records.into_iter().map(|r| r.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                return ids;
            }
        }
    }
}

pub fn found(outcome: &Fetched) -> &connector::provider::SourceRecord {
    match outcome {
        Fetched::Found(record) => record,
        Fetched::Gone => panic!("expected a record, got Gone"),
    }
}
