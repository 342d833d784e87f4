//! End-to-end tests of the sandbox over HTTP (a real server on 127.0.0.1:0).
// Helpers outside #[test] fns are still test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;
use stripe_sandbox::{
    CustomerInput, Faults, ItemInput, RateLimits, RunningSandbox, Sandbox, SandboxConfig,
    SeedRequest, SubscriptionInput, SubscriptionStatus, SubscriptionUpdate, WebhookSettings,
    v1_signature,
};
use tokio::sync::Mutex;

struct Api {
    sandbox: RunningSandbox,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Self {
        Self::with(SandboxConfig::default()).await
    }

    async fn with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start(config).await.unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { sandbox, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    async fn get_as(
        &self,
        key: &str,
        path: &str,
        extra: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let mut req = self.http.get(self.url(path)).bearer_auth(key);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.get_as(self.sandbox.secret_key(), path, &[]).await;
        (status, body)
    }

    async fn post_form(
        &self,
        key: &str,
        path: &str,
        form: &str,
        extra: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.json().await.unwrap())
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn customers_page_newest_first_across_several_pages_without_gaps() {
    let api = Api::start().await;
    api.sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(23),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut path = "/v1/customers?limit=10".to_owned();
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            (page["object"].as_str(), page["url"].as_str()),
            (Some("list"), Some("/v1/customers"))
        );
        let page_ids = ids(&page);
        seen.extend(page_ids.clone());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        path = format!(
            "/v1/customers?limit=10&starting_after={}",
            page_ids.last().unwrap()
        );
    }
    assert_eq!(seen.len(), 23);
    let (_, all) = api.get("/v1/customers?limit=100").await;
    assert_eq!(ids(&all), seen);
    let created: Vec<i64> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["created"].as_i64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

#[tokio::test]
async fn a_deleted_customer_is_a_stub_on_retrieve_absent_from_lists_and_its_subscriptions_are_canceled()
 {
    let api = Api::start().await;
    let report = api
        .sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(40),
            ..Default::default()
        })
        .await
        .unwrap();
    let victim = report
        .customers
        .iter()
        .find(|c| {
            c.subscriptions
                .iter()
                .any(|s| s.status == SubscriptionStatus::Active)
        })
        .unwrap();
    let (status, _, deleted) = {
        let resp = api
            .http
            .delete(api.url(&format!("/v1/customers/{}", victim.id)))
            .bearer_auth(api.sandbox.secret_key())
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            (),
            resp.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        serde_json::json!({"id": victim.id, "object": "customer", "deleted": true})
    );
    let (status, again) = api.get(&format!("/v1/customers/{}", victim.id)).await;
    assert_eq!((status, &again), (200, &deleted));
    let (status, missing) = api.get("/v1/customers/cus_never").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "resource_missing");
    let (_, all) = api.get("/v1/customers?limit=100").await;
    assert!(!ids(&all).contains(&victim.id));
    let (_, subs) = api
        .get(&format!(
            "/v1/subscriptions?customer={}&status=all",
            victim.id
        ))
        .await;
    assert!(
        subs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "canceled")
    );
    let (_, live) = api
        .get(&format!("/v1/subscriptions?customer={}", victim.id))
        .await;
    assert!(
        live["data"].as_array().unwrap().is_empty(),
        "the default list hides canceled"
    );
    let (_, events) = api.get("/v1/events?type=customer.*&limit=1").await;
    assert_eq!(events["data"][0]["type"], "customer.deleted");
    assert_eq!(
        events["data"][0]["data"]["object"]["id"].as_str(),
        Some(victim.id.as_str())
    );
}

#[tokio::test]
async fn requests_beyond_the_rate_limit_get_stripes_429_and_are_counted() {
    let config = SandboxConfig {
        rate_limits: RateLimits {
            test_per_sec: 3,
            ..RateLimits::default()
        },
        ..SandboxConfig::default()
    };
    let api = Api::with(config).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..8 {
        let (status, headers, body) = api
            .get_as(api.sandbox.secret_key(), "/v1/customers", &[])
            .await;
        statuses.push(status);
        if status == 429 {
            limited = Some((headers, body));
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    let (headers, body) = limited.expect("at least one 429 within one second's worth of requests");
    assert_eq!(body["error"]["code"], "rate_limit");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Testmode request rate limit exceeded")
    );
    assert_eq!(headers["stripe-rate-limited-reason"], "global-rate");
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    let counters = api.sandbox.control().requests().await.unwrap();
    let sent_429 = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(counters.rate_limited, sent_429);
    assert_eq!(counters.by_route["GET /v1/customers"], 8);
}

#[tokio::test]
async fn injected_faults_give_lock_timeouts_and_500s_with_retry_advice() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    control
        .set_faults(&Faults {
            lock_timeout_burst: 1,
            ..Faults::default()
        })
        .await
        .unwrap();
    let (status, headers, body) = api
        .get_as(api.sandbox.secret_key(), "/v1/customers", &[])
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("lock_timeout"))
    );
    assert!(headers.get("stripe-rate-limited-reason").is_none());
    control
        .set_faults(&Faults {
            server_error_rate: 1.0,
            server_error_should_retry: Some(false),
            ..Faults::default()
        })
        .await
        .unwrap();
    let (status, headers, body) = api
        .get_as(api.sandbox.secret_key(), "/v1/customers", &[])
        .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (500, Some("api_error"))
    );
    assert_eq!(headers["stripe-should-retry"], "false");
}

#[tokio::test]
async fn auth_errors_are_401_and_restricted_keys_get_403_permission_errors() {
    let api = Api::start().await;
    let resp = api.http.get(api.url("/v1/customers")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (status, _, body) = api.get_as("sk_test_unknown", "/v1/customers", &[]).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid API Key provided: sk_test_")
    );
    let rk = "rk_test_sandbox_read_only_key";
    let (status, _, _) = api.get_as(rk, "/v1/customers", &[]).await;
    assert_eq!(status, 200);
    let (status, _, body) = api.post_form(rk, "/v1/customers", "name=x", &[]).await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'rak_customer_write' permission")
    );
}

#[tokio::test]
async fn form_bodies_with_brackets_create_subscriptions_with_items_and_discounts() {
    let api = Api::start().await;
    let key = api.sandbox.secret_key().to_owned();
    let (_, _, customer) = api
        .post_form(
            &key,
            "/v1/customers",
            "name=Acme&email=ap%40acme.test&metadata[hubspot_id]=77",
            &[],
        )
        .await;
    assert_eq!(customer["metadata"]["hubspot_id"], "77");
    let (_, _, price) = api
        .post_form(&key, "/v1/prices", "currency=usd&unit_amount=29900&recurring[interval]=month&recurring[interval_count]=3&product_data[name]=Pro", &[])
        .await;
    assert_eq!(price["recurring"]["interval_count"], 3);
    let (_, _, coupon) = api
        .post_form(
            &key,
            "/v1/coupons",
            "id=SAVE25&percent_off=25.5&duration=forever",
            &[],
        )
        .await;
    assert_eq!(coupon["percent_off"], 25.5);
    let form = format!(
        "customer={}&items[0][price]={}&items[0][quantity]=3&discounts[0][coupon]=SAVE25&expand[]=discounts",
        customer["id"].as_str().unwrap(),
        price["id"].as_str().unwrap()
    );
    let (status, _, sub) = api.post_form(&key, "/v1/subscriptions", &form, &[]).await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["items"]["data"][0]["quantity"], 3);
    assert_eq!(sub["discounts"][0]["source"]["coupon"], "SAVE25");
    let (status, _, bad) = api.post_form(&key, "/v1/customers", "nmae=typo", &[]).await;
    assert_eq!(
        (status, bad["error"]["param"].as_str()),
        (400, Some("nmae"))
    );
}

#[tokio::test]
async fn expansion_is_limited_to_four_levels_and_old_versions_get_subscription_periods() {
    let api = Api::start().await;
    api.sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let (status, ok) = api
        .get("/v1/subscriptions?status=all&limit=100&expand[]=data.discounts.source.coupon&expand[]=data.customer")
        .await;
    assert_eq!(status, 200, "{ok}");
    let with_discount = ok["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| !s["discounts"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(
        with_discount["discounts"][0]["source"]["coupon"]["object"],
        "coupon"
    );
    let (status, deep) = api
        .get("/v1/subscriptions?expand[]=data.items.data.price.product")
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        deep["error"]["message"],
        "You cannot expand more than 4 levels of a property."
    );
    let (_, _, old) = api
        .get_as(
            api.sandbox.secret_key(),
            "/v1/subscriptions?limit=1",
            &[("stripe-version", "2024-06-20")],
        )
        .await;
    let sub = &old["data"][0];
    assert!(
        sub["current_period_end"].as_i64().unwrap() > sub["current_period_start"].as_i64().unwrap()
    );
    assert!(sub.get("discount").is_some());
    let (_, new) = api.get("/v1/subscriptions?limit=1").await;
    assert!(new["data"][0].get("current_period_end").is_none());
    let counters = api.sandbox.control().requests().await.unwrap();
    assert_eq!(counters.stripe_versions.get("2024-06-20"), Some(&1));
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_rejects_other_params() {
    let api = Api::start().await;
    let key = api.sandbox.secret_key().to_owned();
    let idem = [("idempotency-key", "k-1")];
    let (_, _, first) = api
        .post_form(&key, "/v1/customers", "name=Once", &idem)
        .await;
    let (_, headers, second) = api
        .post_form(&key, "/v1/customers", "name=Once", &idem)
        .await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(headers["idempotency-key"], "k-1");
    let (status, _, err) = api
        .post_form(&key, "/v1/customers", "name=Twice", &idem)
        .await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );
    let (_, list) = api.get("/v1/customers").await;
    assert_eq!(ids(&list).len(), 1);
}

#[tokio::test]
async fn events_older_than_thirty_days_drop_out_of_the_events_list() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let old = control
        .create_customer(CustomerInput {
            name: Some("Old".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    control.advance_clock(31 * 86_400).await.unwrap();
    let new = control
        .create_customer(CustomerInput {
            name: Some("New".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, events) = api.get("/v1/events?types[]=customer.created").await;
    let objects: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["object"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(objects, [new.as_str()]);
    let (status, _) = api.get("/v1/customers?limit=100").await;
    assert_eq!(status, 200);
    assert_ne!(old, new);
}

/// A loopback receiver that records each webhook's `Stripe-Signature` and raw body.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let got: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let sink = got.clone();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let sig = headers["stripe-signature"].to_str().unwrap().to_owned();
                sink.lock().await.push((sig, body));
                if n < fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn parse_signature(header: &str) -> (i64, Vec<String>) {
    let mut t = 0;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse().unwrap(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    (t, v1)
}

#[tokio::test]
async fn webhooks_are_signed_with_every_active_secret_and_failed_deliveries_are_retried() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let (url, got) = receiver(1).await;
    control
        .set_webhooks(&WebhookSettings {
            url: Some(url),
            secrets: Some(vec!["whsec_new".into(), "whsec_old".into()]),
            auto_deliver: Some(false),
            retry_schedule_ms: Some(vec![0]),
            ..Default::default()
        })
        .await
        .unwrap();
    let customer = control
        .create_customer(CustomerInput {
            name: Some("Hooked".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let first = control.flush_webhooks().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].outcome.as_str(), first[0].status),
        ("failed", Some(500))
    );
    let second = control.flush_webhooks().await.unwrap();
    assert_eq!(
        (second[0].outcome.as_str(), second[0].attempt),
        ("delivered", 1)
    );
    let got = got.lock().await;
    assert_eq!(got.len(), 2);
    for (header, body) in got.iter() {
        let (t, v1) = parse_signature(header);
        assert_eq!(
            v1,
            vec![
                v1_signature("whsec_new", t, body),
                v1_signature("whsec_old", t, body)
            ]
        );
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["type"], "customer.created");
        assert_eq!(
            event["data"]["object"]["id"].as_str(),
            Some(customer.as_str())
        );
        assert_eq!(event["livemode"], false);
        assert!(
            event.get("account").is_none(),
            "platform events carry no account"
        );
    }
    let (_, events) = api.get("/v1/events?delivery_success=true").await;
    assert_eq!(events["data"][0]["pending_webhooks"], 0);
}

#[tokio::test]
async fn duplicate_and_drop_faults_change_what_the_receiver_sees() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let (url, got) = receiver(0).await;
    control
        .set_webhooks(&WebhookSettings {
            url: Some(url),
            auto_deliver: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    control
        .set_faults(&Faults {
            webhook_duplicate_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    control
        .create_customer(CustomerInput::default())
        .await
        .unwrap();
    control.flush_webhooks().await.unwrap();
    control
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    control
        .create_customer(CustomerInput::default())
        .await
        .unwrap();
    control.flush_webhooks().await.unwrap();
    let got = got.lock().await;
    assert_eq!(got.len(), 2, "one event twice, the other dropped");
    assert_eq!(got[0].1, got[1].1);
}

#[tokio::test]
async fn connect_oauth_rotates_refresh_tokens_and_deauthorization_revokes_access() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let (url, got) = receiver(0).await;
    control
        .set_webhooks(&WebhookSettings {
            url: Some(url),
            auto_deliver: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    let resp = api
        .http
        .get(api.url("/oauth/authorize?response_type=code&client_id=ca_SandboxPlatformClient0&scope=read_write&state=xyz&redirect_uri=http://app.test/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    let param = |k: &str| query.iter().find(|(key, _)| key == k).unwrap().1.clone();
    assert_eq!(param("state"), "xyz");
    let platform = api.sandbox.secret_key().to_owned();
    let (status, _, token) = api
        .post_form(
            &platform,
            "/oauth/token",
            &format!("grant_type=authorization_code&code={}", param("code")),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{token}");
    let account = token["stripe_user_id"].as_str().unwrap().to_owned();
    let (status, _, reused) = api
        .post_form(
            &platform,
            "/oauth/token",
            &format!("grant_type=authorization_code&code={}", param("code")),
            &[],
        )
        .await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let refresh = token["refresh_token"].as_str().unwrap().to_owned();
    let (_, _, rotated) = api
        .post_form(
            &platform,
            "/oauth/token",
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            &[],
        )
        .await;
    assert_ne!(rotated["refresh_token"], token["refresh_token"]);
    let (status, _, stale) = api
        .post_form(
            &platform,
            "/oauth/token",
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            &[],
        )
        .await;
    assert_eq!(
        (status, stale["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let (_, _, created) = api
        .post_form(&access, "/v1/customers", "name=Tenant", &[])
        .await;
    let (status, _, seen) = api
        .get_as(
            &platform,
            &format!("/v1/customers/{}", created["id"].as_str().unwrap()),
            &[("stripe-account", account.as_str())],
        )
        .await;
    assert_eq!((status, seen["name"].as_str()), (200, Some("Tenant")));
    let (status, _, gone) = api
        .post_form(
            &platform,
            "/oauth/deauthorize",
            &format!("client_id=ca_SandboxPlatformClient0&stripe_user_id={account}"),
            &[],
        )
        .await;
    assert_eq!(
        (status, gone["stripe_user_id"].as_str()),
        (200, Some(account.as_str()))
    );
    let (status, _, _) = api.get_as(&access, "/v1/customers", &[]).await;
    assert_eq!(status, 401);
    let (status, _, err) = api
        .get_as(
            &platform,
            "/v1/customers",
            &[("stripe-account", account.as_str())],
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("account_invalid"))
    );
    control.flush_webhooks().await.unwrap();
    let got = got.lock().await;
    let kinds: Vec<Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
        .collect();
    let deauth = kinds
        .iter()
        .find(|e| e["type"] == "account.application.deauthorized")
        .unwrap();
    assert_eq!(deauth["account"].as_str(), Some(account.as_str()));
    assert_eq!(deauth["data"]["object"]["object"], "application");
    assert!(
        kinds
            .iter()
            .any(|e| e["type"] == "customer.created" && e["account"] == account.as_str())
    );
}

#[tokio::test]
async fn control_mutations_record_the_events_stripe_sends() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let report = control
        .seed(&SeedRequest {
            customers: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let monthly = report
        .prices
        .iter()
        .find(|p| p.lookup_key == "pro_monthly")
        .unwrap()
        .id
        .clone();
    let yearly = report
        .prices
        .iter()
        .find(|p| p.lookup_key == "pro_yearly")
        .unwrap()
        .id
        .clone();
    let customer = control
        .create_customer(CustomerInput {
            name: Some("Up".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let sub = control
        .create_subscription(SubscriptionInput {
            customer: customer.clone(),
            items: vec![ItemInput {
                price: monthly,
                quantity: Some(2),
                coupons: vec![],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let item = control.subscription(&sub).await.unwrap()["items"]["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    control
        .update_subscription(
            &sub,
            SubscriptionUpdate {
                items: Some(vec![stripe_sandbox::ItemUpdate {
                    id: Some(item),
                    price: Some(yearly),
                    quantity: Some(5),
                    deleted: false,
                }]),
                cancel_at_period_end: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    control
        .set_subscription_status(&sub, SubscriptionStatus::PastDue)
        .await
        .unwrap();
    control.cancel_subscription(&sub).await.unwrap();
    let (_, events) = api
        .get("/v1/events?type=customer.subscription.*&limit=10")
        .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..4],
        [
            "customer.subscription.deleted",
            "customer.subscription.updated",
            "customer.subscription.updated",
            "customer.subscription.created"
        ]
    );
    let upgrade = &events["data"][2]["data"];
    assert_eq!(
        upgrade["previous_attributes"]["cancel_at_period_end"],
        false
    );
    assert_eq!(
        upgrade["previous_attributes"]["items"]["data"][0]["quantity"],
        2
    );
    assert_eq!(
        upgrade["object"]["items"]["data"][0]["price"]["recurring"]["interval"],
        "year"
    );
    assert_eq!(
        events["data"][1]["data"]["previous_attributes"]["status"],
        "active"
    );
}

#[tokio::test]
async fn a_reordered_event_is_overtaken_by_the_next_one() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let (url, got) = receiver(0).await;
    control
        .set_webhooks(&WebhookSettings {
            url: Some(url),
            auto_deliver: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    control
        .set_faults(&Faults {
            webhook_reorder_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    let first = control
        .create_customer(CustomerInput {
            name: Some("First".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    control.set_faults(&Faults::default()).await.unwrap();
    let second = control
        .create_customer(CustomerInput {
            name: Some("Second".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    control.flush_webhooks().await.unwrap();
    let got = got.lock().await;
    let order: Vec<String> = got
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["data"]["object"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(order, [second, first]);
}

#[tokio::test]
async fn webhooks_are_delivered_in_the_background_without_a_flush() {
    let api = Api::start().await;
    let control = api.sandbox.control();
    let (url, got) = receiver(0).await;
    control
        .set_webhooks(&WebhookSettings {
            url: Some(url),
            ..Default::default()
        })
        .await
        .unwrap();
    let key = api.sandbox.secret_key().to_owned();
    api.post_form(&key, "/v1/customers", "name=Background", &[])
        .await;
    // The worker is woken by the request; allow a generous bound on a busy machine.
    for _ in 0..200 {
        if !got.lock().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = got.lock().await;
    assert_eq!(got.len(), 1);
    let event: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(event["type"], "customer.created");
    assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn the_platform_key_reads_a_seeded_connected_account_with_stripe_account() {
    let api = Api::start().await;
    let report = api
        .sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(5),
            account: Some("acct_1TenantA".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (status, _, list) = api
        .get_as(
            api.sandbox.secret_key(),
            "/v1/customers",
            &[("stripe-account", "acct_1TenantA")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list).len(), 5);
    assert_eq!(report.account, "acct_1TenantA");
    let (_, own) = api.get("/v1/customers").await;
    assert!(ids(&own).is_empty(), "the platform's own data is separate");
    let (status, _, _) = api
        .get_as(
            api.sandbox.secret_key(),
            "/v1/customers",
            &[("stripe-account", "acct_1Unknown")],
        )
        .await;
    assert_eq!(status, 403);
}
