//! Stripe through the service's HTTP routers (`tower::ServiceExt::oneshot`), on the embedded
//! store and queues, against the Stripe sandbox: Connect OAuth, API-key connect, and both
//! webhook endpoints (signatures, rotation, livemode, deauthorization).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test crate

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use tower::ServiceExt;

use connector::ports::JobQueue;
use connector::{Job, JobKind, ObjectKind, Secret, TenantId, Timestamp};
use connector_stripe::webhook::signature_header;
use stripe_sandbox::config::OAUTH_CLIENT_ID;
use stripe_sandbox::{
    CustomerInput, KeyRequest, RunningSandbox, Sandbox, SandboxConfig, Target, WebhookSettings,
};
use sync_service::App;
use sync_service::config::Config;
use sync_service::embedded::{self, EmbeddedParts};

const PREVIOUS_SECRET: &str = "whsec_previous_platform_secret";
const CURRENT_SECRET: &str = "whsec_current_platform_secret";

struct Harness {
    app: Arc<App>,
    parts: EmbeddedParts,
    token: String,
    sandbox: RunningSandbox,
    _dir: tempfile::TempDir,
}

fn token_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

impl Harness {
    /// The service with Stripe configured from the environment as a deployment would be:
    /// platform key, Connect client, two webhook secrets (a rotation), the sandbox's host.
    async fn start() -> Self {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox starts");
        let env: HashMap<&str, String> = HashMap::from([
            ("TOKEN_ENCRYPTION_KEY", token_key()),
            (
                "ADMIN_TOKEN_SECRET",
                "admin-secret-of-at-least-32-bytes!".to_owned(),
            ),
            ("STRIPE_SECRET_KEY", sandbox.secret_key().to_owned()),
            ("STRIPE_CLIENT_ID", OAUTH_CLIENT_ID.to_owned()),
            (
                "STRIPE_REDIRECT_URI",
                "http://127.0.0.1:9/oauth/stripe/callback".to_owned(),
            ),
            (
                "STRIPE_WEBHOOK_SECRETS",
                format!("{PREVIOUS_SECRET},{CURRENT_SECRET}"),
            ),
            ("STRIPE_BASE_URL", sandbox.base_url()),
        ]);
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
        Self::with_config(config, sandbox)
    }

    fn with_config(config: Config, sandbox: RunningSandbox) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let parts = embedded::open(&dir.path().join("state.db")).expect("embedded store");
        let app = Arc::new(embedded::app(&config, &parts, |h| h).expect("app builds"));
        let tenant = TenantId::parse("acme").expect("tenant");
        let token = app
            .admin_auth
            .as_ref()
            .expect("the test config has an admin secret")
            .issue(&tenant, Timestamp::now().plus(Duration::from_secs(3600)))
            .expose()
            .to_owned();
        Self {
            app,
            parts,
            token,
            sandbox,
            _dir: dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = sync_service::http::router(self.app.clone())
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        self.send(request).await
    }

    async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .uri(path_and_query)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    async fn webhook(
        &self,
        path: &str,
        body: &[u8],
        signature: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        self.send(request.body(Body::from(body.to_vec())).expect("request"))
            .await
    }

    async fn new_stripe_connection(&self) -> String {
        let (status, view) = self
            .admin(
                "POST",
                "/admin/connections",
                Some(json!({"provider": "stripe"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{view}");
        view["id"].as_str().expect("id").to_owned()
    }

    /// Connect OAuth end to end: our authorize URL, the sandbox's consent redirect, our
    /// callback. Returns the connection id and the connected account.
    async fn connect_with_oauth(&self) -> (String, String) {
        let id = self.new_stripe_connection().await;
        let (status, body) = self
            .admin("POST", &format!("/admin/connections/{id}/authorize"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let authorize_url = body["authorize_url"].as_str().expect("authorize_url");
        assert!(authorize_url.starts_with(&self.sandbox.base_url()));
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let consent = browser.get(authorize_url).send().await.expect("consent");
        assert_eq!(consent.status().as_u16(), 302);
        let location = consent
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("redirect");
        let back = url::Url::parse(location).expect("redirect URL");
        assert_eq!(back.path(), "/oauth/stripe/callback");
        let (status, connected) = self
            .get(&format!(
                "/oauth/stripe/callback?{}",
                back.query().expect("query")
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{connected}");
        assert_eq!(connected["status"], "connected");
        assert_eq!(connected["connection_id"], id.as_str());
        let account = connected["account_id"]
            .as_str()
            .expect("account")
            .to_owned();
        (id, account)
    }

    async fn connection(&self, id: &str) -> Value {
        let (status, view) = self
            .admin("GET", &format!("/admin/connections/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        view
    }

    /// Every record job waiting on the record queue (taken off it).
    async fn record_jobs(&self) -> Vec<Job> {
        let received = self
            .parts
            .records
            .receive(10, Duration::from_secs(60))
            .await
            .expect("receive");
        received
            .iter()
            .map(|m| Job::from_body(&m.body).expect("a job"))
            .collect()
    }
}

fn event(
    id: &str,
    event_type: &str,
    account: Option<&str>,
    livemode: bool,
    object: Value,
) -> Vec<u8> {
    let mut event = json!({
        "id": id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": Timestamp::now().as_secs(),
        "livemode": livemode,
        "type": event_type,
        "data": {"object": object},
    });
    if let Some(account) = account {
        event["account"] = json!(account);
    }
    serde_json::to_vec(&event).expect("serializes")
}

fn customer_event(id: &str, account: Option<&str>, livemode: bool) -> Vec<u8> {
    event(
        id,
        "customer.subscription.updated",
        account,
        livemode,
        json!({"id": "sub_1", "object": "subscription", "customer": "cus_42", "status": "active"}),
    )
}

fn signed(body: &[u8], secrets: &[&str], at: i64) -> Option<String> {
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
    Some(signature_header(body, &secrets, at))
}

fn now() -> i64 {
    Timestamp::now().as_secs()
}

fn billing_customer_of(job: &Job) -> (ObjectKind, String) {
    match &job.kind {
        JobKind::SyncRecord {
            object, source_id, ..
        } => (*object, source_id.as_str().to_owned()),
        other => panic!("not a record job: {other:?}"),
    }
}

#[tokio::test]
async fn the_stripe_oauth_callback_connects_the_account_and_starts_the_initial_sync() {
    let h = Harness::start().await;
    let (id, account) = h.connect_with_oauth().await;
    assert!(account.starts_with("acct_"), "{account}");
    let view = h.connection(&id).await;
    assert_eq!(view["status"], "connected");
    assert_eq!(view["account_id"], account.as_str());
    assert_eq!(view["scopes"], json!(["read_only"]));
    assert_eq!(view["latest_run"]["trigger"], "initial");
    assert!(!view.to_string().contains("sk_") && !view.to_string().contains("rt_"));
    // The state was single-use.
    let (status, body) = h
        .get("/oauth/stripe/callback?code=ac_again&state=used")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_state");
}

#[tokio::test]
async fn a_connect_webhook_signed_with_the_rotated_secret_enqueues_a_billing_customer_job() {
    let h = Harness::start().await;
    let (id, account) = h.connect_with_oauth().await;
    let body = customer_event("evt_rotated_1", Some(&account), false);
    // Only the new secret signs: the one listed second in STRIPE_WEBHOOK_SECRETS.
    let (status, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "enqueued");
    let jobs = h.record_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].connection_id.as_str(), id);
    assert_eq!(
        billing_customer_of(&jobs[0]),
        (ObjectKind::BillingCustomer, "cus_42".to_owned())
    );
    // A redelivery (new signature, same event) is a duplicate: nothing more is enqueued.
    let (status, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[PREVIOUS_SECRET], now()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["outcome"], "duplicate");
    assert!(h.record_jobs().await.is_empty());
}

#[tokio::test]
async fn the_sandboxs_own_deliveries_during_a_secret_rotation_enqueue_and_deauthorize() {
    let h = Harness::start().await;
    let (id, account) = h.connect_with_oauth().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let router = sync_service::http::router(h.app.clone());
    // Stops with the test's runtime.
    tokio::spawn(async move { axum::serve(listener, router).await });
    let control = h.sandbox.control();
    control
        .set_webhooks(&WebhookSettings {
            url: Some(format!("{base}/webhooks/stripe")),
            secrets: Some(vec![CURRENT_SECRET.into(), PREVIOUS_SECRET.into()]),
            auto_deliver: Some(false),
            ..WebhookSettings::default()
        })
        .await
        .expect("webhook settings");
    let target = Target {
        account: Some(account.clone()),
        livemode: false,
    };
    let customer = control
        .create_customer_in(
            target,
            CustomerInput {
                name: Some("Acme".into()),
                ..CustomerInput::default()
            },
        )
        .await
        .expect("customer");
    let delivered = control.flush_webhooks().await.expect("flush");
    let created = delivered
        .iter()
        .find(|d| d.kind == "customer.created")
        .expect("customer.created delivered");
    assert_eq!(created.status, Some(200), "{delivered:?}");
    let jobs = h.record_jobs().await;
    let targets: Vec<(ObjectKind, String)> = jobs.iter().map(billing_customer_of).collect();
    assert_eq!(targets, [(ObjectKind::BillingCustomer, customer)]);
    assert_eq!(jobs[0].connection_id.as_str(), id);

    control.revoke_account(&account).await.expect("revoke");
    let delivered = control.flush_webhooks().await.expect("flush");
    let revoked = delivered
        .iter()
        .find(|d| d.kind == "account.application.deauthorized")
        .expect("deauthorization delivered");
    assert_eq!(revoked.status, Some(200), "{delivered:?}");
    assert_eq!(h.connection(&id).await["status"], "reauthorize");
}

#[tokio::test]
async fn forged_stale_or_unsigned_connect_webhooks_get_401_and_write_nothing() {
    let h = Harness::start().await;
    let (_, account) = h.connect_with_oauth().await;
    let body = customer_event("evt_refused_1", Some(&account), false);
    let cases = [
        (signed(&body, &["whsec_forged"], now()), "bad_signature"),
        (
            signed(&body, &[CURRENT_SECRET], now() - 600),
            "stale_timestamp",
        ),
        (None, "missing_signature_header"),
    ];
    for (signature, code) in cases {
        let (status, answer) = h.webhook("/webhooks/stripe", &body, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["code"], code);
    }
    // A tampered body does not match its signature either.
    let signature = signed(&body, &[CURRENT_SECRET], now());
    let tampered = customer_event("evt_refused_1", Some("acct_someone_else"), false);
    let (status, _) = h.webhook("/webhooks/stripe", &tampered, signature).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.record_jobs().await.is_empty());
    // Nothing was remembered either: the genuine delivery is taken, not a duplicate.
    let (status, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["outcome"], "enqueued");
}

#[tokio::test]
async fn a_live_event_for_a_test_connection_is_answered_2xx_ignored_and_nothing_is_written() {
    let h = Harness::start().await;
    let (id, account) = h.connect_with_oauth().await;
    let body = customer_event("evt_live_1", Some(&account), true);
    let (status, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    // A 4xx would have Stripe retry it for days: it is taken and ignored.
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "ignored");
    assert!(h.record_jobs().await.is_empty());
    // A live deauthorization of a test connection does not touch it either.
    let body = event(
        "evt_live_2",
        "account.application.deauthorized",
        Some(&account),
        true,
        json!({"id": OAUTH_CLIENT_ID, "object": "application", "name": null}),
    );
    let (status, _) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.connection(&id).await["status"], "connected");
}

#[tokio::test]
async fn a_deauthorization_event_sets_the_connection_to_reauthorize_and_logs_oauth_revoked() {
    let h = Harness::start().await;
    let (id, account) = h.connect_with_oauth().await;
    let body = event(
        "evt_deauth_1",
        "account.application.deauthorized",
        Some(&account),
        false,
        json!({"id": OAUTH_CLIENT_ID, "object": "application", "name": null}),
    );
    let (status, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "deauthorized");
    assert_eq!(h.connection(&id).await["status"], "reauthorize");
    let (status, log) = h
        .admin(
            "GET",
            &format!("/admin/connections/{id}/log?errors_only=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<&Value> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["error_code"])
        .collect();
    assert_eq!(codes, [&json!("oauth_revoked")]);
    // Later events of that account are no longer routed to it.
    let body = customer_event("evt_after_deauth", Some(&account), false);
    let (_, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    assert_eq!(answer["outcome"], "unrouted");
    assert!(h.record_jobs().await.is_empty());
}

#[tokio::test]
async fn an_api_key_that_works_connects_and_its_own_webhook_endpoint_takes_its_events() {
    let h = Harness::start().await;
    let id = h.new_stripe_connection().await;
    let key = h.sandbox.config().read_only_restricted_key.clone();
    let (status, view) = h
        .admin(
            "POST",
            &format!("/admin/connections/{id}/api-key"),
            Some(json!({"api_key": key, "webhook_secret": "whsec_account_endpoint"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "connected");
    // The read-only key may read its account: the platform account of the sandbox.
    assert_eq!(
        view["account_id"],
        h.sandbox.config().platform_account.as_str()
    );
    assert_eq!(view["latest_run"]["trigger"], "initial");
    let shown = h.connection(&id).await.to_string();
    assert!(
        !shown.contains(&key) && !shown.contains("whsec_"),
        "{shown}"
    );

    let path = format!("/webhooks/stripe/acme/{id}");
    let body = customer_event("evt_key_1", None, false);
    let (status, answer) = h
        .webhook(&path, &body, signed(&body, &[CURRENT_SECRET], now()))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the platform secret is not this endpoint's"
    );
    assert_eq!(answer["code"], "bad_signature");
    let (status, answer) = h
        .webhook(
            &path,
            &body,
            signed(&body, &["whsec_account_endpoint"], now()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "enqueued");
    let jobs = h.record_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].connection_id.as_str(), id);
    assert_eq!(
        billing_customer_of(&jobs[0]),
        (ObjectKind::BillingCustomer, "cus_42".to_owned())
    );
    // Another tenant's path to the same connection id is not found.
    let (status, _) = h
        .webhook(
            &format!("/webhooks/stripe/other/{id}"),
            &body,
            signed(&body, &["whsec_account_endpoint"], now()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refused_or_underprivileged_api_key_is_a_4xx_and_leaves_the_connection_disconnected() {
    let h = Harness::start().await;
    let id = h.new_stripe_connection().await;
    let path = format!("/admin/connections/{id}/api-key");
    let customers_only = h
        .sandbox
        .control()
        .create_key(&KeyRequest {
            permissions: Some(vec!["customer_read".into()]),
            ..KeyRequest::default()
        })
        .await
        .expect("key");
    let cases = [
        (
            json!({"api_key": "rk_test_not_a_real_key"}),
            "invalid_request",
        ),
        (json!({"api_key": customers_only}), "permission_denied"),
        (json!({"api_key": "pk_test_publishable"}), "invalid_request"),
        (
            json!({"api_key": h.sandbox.secret_key(), "webhook_secret": "not-a-secret"}),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = h.admin("POST", &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
        assert!(!answer.to_string().contains("rk_test_not_a_real_key"));
    }
    let view = h.connection(&id).await;
    assert_eq!(view["status"], "disconnected");
    assert_eq!(view["latest_run"], Value::Null);
}

#[tokio::test]
async fn without_stripe_configured_its_routes_answer_not_configured() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts");
    let env: HashMap<&str, String> = HashMap::from([
        ("TOKEN_ENCRYPTION_KEY", token_key()),
        (
            "ADMIN_TOKEN_SECRET",
            "admin-secret-of-at-least-32-bytes!".to_owned(),
        ),
    ]);
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
    let h = Harness::with_config(config, sandbox);
    let body = customer_event("evt_1", Some("acct_1"), false);
    let (status, answer) = h
        .webhook(
            "/webhooks/stripe",
            &body,
            signed(&body, &[CURRENT_SECRET], now()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["code"], "not_configured");
    let (status, answer) = h
        .admin(
            "POST",
            "/admin/connections",
            Some(json!({"provider": "stripe"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["code"], "not_configured");
}
