//! The sandbox driven over HTTP, as a client and our tests see it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on a broken sandbox

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hubspot_sandbox::model::ObjectKind;
use hubspot_sandbox::{
    ControlClient, Faults, RateLimitConfig, RunningSandbox, Sandbox, SandboxConfig,
};
use serde_json::{Value, json};

struct Portal {
    sandbox: RunningSandbox,
    control: ControlClient,
    token: String,
    http: reqwest::Client,
}

impl Portal {
    async fn start(config: SandboxConfig) -> Portal {
        let sandbox = Sandbox::start(config).await.unwrap();
        let control = sandbox.control();
        let token = control.issue_tokens(None).await.unwrap().access_token;
        Portal {
            sandbox,
            control,
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn seeded(companies: usize) -> Portal {
        Portal::start(SandboxConfig {
            companies,
            contacts: companies,
            ..SandboxConfig::default()
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        Self::read(response).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        Self::read(response).await
    }

    async fn read(response: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn listing_pages_through_every_company_once_and_the_last_page_has_no_paging() {
    let portal = Portal::seeded(250).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/crm/v3/objects/companies?limit=100&after={a}"),
            None => "/crm/v3/objects/companies?limit=100".to_owned(),
        };
        let (status, _, page) = portal.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(ids(&page));
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => {
                assert!(page.get("paging").is_none());
                break;
            }
        }
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 250);
    assert_eq!(unique.len(), 250);
}

#[tokio::test]
async fn search_pages_up_to_ten_thousand_results_and_refuses_beyond() {
    let portal = Portal::seeded(10_050).await;
    let body =
        |after: usize| json!({"limit": 200, "after": after.to_string(), "sorts": ["hs_object_id"]});
    let (status, _, page) = portal
        .post("/crm/v3/objects/companies/search", body(9_800))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 10_050);
    assert_eq!(page["results"].as_array().unwrap().len(), 200);
    assert_eq!(page["paging"]["next"]["after"], "10000");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, _, error) = portal
        .post("/crm/v3/objects/companies/search", body(10_000))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn search_filters_on_modified_date_windows_and_excludes_archived_records() {
    let portal = Portal::seeded(50).await;
    let created = portal
        .control
        .create_company(&[("name", "Fresh Co"), ("domain", "fresh.example")])
        .await
        .unwrap();
    let since = json!({"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1767225600000"}]}]});
    let (_, _, found) = portal
        .post("/crm/v3/objects/companies/search", since.clone())
        .await;
    assert_eq!(ids(&found), vec![created.clone()]);
    portal.control.delete_company(&created).await.unwrap();
    let (_, _, after_delete) = portal.post("/crm/v3/objects/companies/search", since).await;
    assert_eq!(after_delete["total"], 0);
    let (_, _, archived) = portal
        .get(&format!(
            "/crm/v3/objects/companies/{created}?archived=true"
        ))
        .await;
    assert_eq!(archived["archived"], true);
    assert_eq!(
        archived["updatedAt"], archived["createdAt"],
        "archiving does not touch the modified date"
    );
}

#[tokio::test]
async fn too_many_filters_are_a_validation_error() {
    let portal = Portal::seeded(5).await;
    let filter = json!({"propertyName": "name", "operator": "HAS_PROPERTY"});
    let group = json!({"filters": vec![filter; 7]});
    let (status, _, error) = portal
        .post(
            "/crm/v3/objects/companies/search",
            json!({"filterGroups": [group]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["status"], "error");
}

#[tokio::test]
async fn the_ten_secondly_limit_answers_429_with_hubspots_body_and_headers() {
    let portal = Portal::start(SandboxConfig {
        companies: 3,
        rate_limit: RateLimitConfig {
            max_per_interval: 4,
            ..RateLimitConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    for expected_remaining in (0..4).rev() {
        let (status, headers, _) = portal.get("/crm/v3/objects/companies").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-hubspot-ratelimit-max"], "4");
        assert_eq!(
            headers["x-hubspot-ratelimit-remaining"],
            expected_remaining.to_string().as_str()
        );
        assert_eq!(
            headers["x-hubspot-ratelimit-interval-milliseconds"],
            "10000"
        );
    }
    let (status, headers, body) = portal.get("/crm/v3/objects/companies").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(
        headers["x-hubspot-correlation-id"].to_str().unwrap(),
        body["correlationId"]
    );
    assert!(headers.contains_key("retry-after"));
    let counts = portal.control.request_counts().await.unwrap();
    assert_eq!(counts.rate_limited, 1);
    assert_eq!(counts.max_in_any_10s, 4);
}

#[tokio::test]
async fn search_has_its_own_five_per_second_bucket_and_no_rate_headers() {
    let portal = Portal::seeded(3).await;
    for _ in 0..5 {
        let (status, headers, _) = portal
            .post("/crm/v3/objects/companies/search", json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(!headers.contains_key("x-hubspot-ratelimit-max"));
    }
    let (status, _, body) = portal
        .post("/crm/v3/objects/companies/search", json!({}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["errorType"], "RATE_LIMIT");
    let (status, _, _) = portal.get("/crm/v3/objects/companies").await;
    assert_eq!(status, StatusCode::OK, "the general bucket is separate");
}

#[tokio::test]
async fn expired_revoked_and_descoped_tokens_get_hubspots_errors() {
    let portal = Portal::seeded(3).await;
    let control = &portal.control;
    let grant = control.issue_tokens(None).await.unwrap();
    control
        .remove_scope("crm.objects.companies.read")
        .await
        .unwrap();
    let (status, _, body) = portal.get("/crm/v3/objects/companies").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["category"], "MISSING_SCOPES");
    control
        .restore_scope("crm.objects.companies.read")
        .await
        .unwrap();

    control.expire_tokens().await.unwrap();
    let (status, _, body) = portal.get("/crm/v3/objects/companies").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["category"], "EXPIRED_AUTHENTICATION");

    let app = portal.sandbox.app().clone();
    let refresh = |token: String| {
        let form = [
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", app.client_id.clone()),
            ("client_secret", app.client_secret.clone()),
            ("refresh_token", token),
        ];
        portal
            .http
            .post(portal.url("/oauth/v1/token"))
            .form(&form)
            .send()
    };
    let refreshed: Value = refresh(grant.refresh_token.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["refresh_token"], grant.refresh_token.as_str());
    assert_eq!(refreshed["expires_in"], 1800);

    control.revoke_tokens().await.unwrap();
    let response = refresh(grant.refresh_token.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["status"], "BAD_REFRESH_TOKEN");
    let response = portal
        .http
        .get(portal.url("/crm/v3/objects/companies"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_authorization_code_is_exchanged_once_for_tokens_and_introspected() {
    let portal = Portal::seeded(1).await;
    let app = portal.sandbox.app().clone();
    let redirect = "http://127.0.0.1:9999/oauth/callback";
    let code = portal
        .control
        .authorize(
            &app.client_id,
            redirect,
            &["oauth", "crm.objects.companies.read"],
            "xyz",
        )
        .await
        .unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
        ("redirect_uri", redirect),
        ("code", code.as_str()),
    ];
    let tokens: Value = portal
        .http
        .post(portal.url("/oauth/v1/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let info: Value = portal
        .http
        .get(portal.url(&format!("/oauth/v1/access-tokens/{access}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["hub_id"], app.portal_id);
    assert_eq!(
        info["scopes"],
        json!(["oauth", "crm.objects.companies.read"])
    );
    let again = portal
        .http
        .post(portal.url("/oauth/v1/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batch_read_reports_missing_ids_with_207_and_refuses_more_than_100() {
    let portal = Portal::seeded(5).await;
    let (status, _, body) = portal
        .post(
            "/crm/v3/objects/companies/batch/read",
            json!({"inputs": [{"id": "1000001"}, {"id": "999"}], "properties": ["name"]}),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(ids(&body), vec!["1000001"]);
    assert_eq!(body["errors"][0]["context"]["ids"], json!(["999"]));
    let inputs: Vec<Value> = (0..101)
        .map(|i| json!({"id": (1_000_001 + i).to_string()}))
        .collect();
    let (status, _, _) = portal
        .post(
            "/crm/v3/objects/companies/batch/read",
            json!({"inputs": inputs}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_merged_away_id_resolves_to_the_survivor() {
    let portal = Portal::seeded(5).await;
    let survivor = portal
        .control
        .merge_companies("1000001", "1000002")
        .await
        .unwrap();
    assert_eq!(survivor, "1000001");
    let (status, _, record) = portal
        .get("/crm/v3/objects/companies/1000002?properties=hs_merged_object_ids")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["id"], "1000001");
    assert_eq!(record["properties"]["hs_merged_object_ids"], "1000002");
    let renumbered = portal
        .control
        .merge(ObjectKind::Companies, "1000003", "1000004", true)
        .await
        .unwrap();
    let (_, _, record) = portal.get("/crm/v3/objects/companies/1000003").await;
    assert_eq!(record["id"], renumbered.as_str());
}

#[tokio::test]
async fn a_deleted_property_leaves_the_schema_and_the_records() {
    let portal = Portal::seeded(5).await;
    portal
        .control
        .delete_property(ObjectKind::Companies, "annualrevenue")
        .await
        .unwrap();
    let (status, _, _) = portal
        .get("/crm/v3/properties/companies/annualrevenue")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, record) = portal
        .get("/crm/v3/objects/companies/1000001?properties=annualrevenue,name")
        .await;
    assert!(record["properties"].get("annualrevenue").is_none());
    portal
        .control
        .retype_property(ObjectKind::Companies, "numberofemployees", "string")
        .await
        .unwrap();
    let (_, _, def) = portal
        .get("/crm/v3/properties/companies/numberofemployees")
        .await;
    assert_eq!(def["type"], "string");
}

#[tokio::test]
async fn list_memberships_page_by_record_id_and_follow_control_changes() {
    let portal = Portal::seeded(300).await;
    let (_, _, list) = portal.get("/crm/v3/lists/1").await;
    let size = list["list"]["size"].as_u64().unwrap() as usize;
    let mut members = Vec::new();
    let mut after = String::new();
    loop {
        let (_, _, page) = portal
            .get(&format!(
                "/crm/v3/lists/1/memberships?limit=25&after={after}"
            ))
            .await;
        members.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["recordId"].as_str().unwrap().to_owned()),
        );
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(members.len(), size);
    let outsider = (1_000_001..1_000_301)
        .map(|i| i.to_string())
        .find(|id| !members.contains(id))
        .unwrap();
    assert!(
        portal
            .control
            .set_list_membership("1", &outsider, true)
            .await
            .unwrap()
    );
    let (_, _, page) = portal
        .get(&format!("/crm/v3/lists/records/0-2/{outsider}/memberships"))
        .await;
    assert_eq!(page["results"][0]["listId"], "1");
}

#[tokio::test]
async fn injected_faults_answer_5xx_and_429_bursts() {
    let portal = Portal::seeded(3).await;
    portal
        .control
        .set_faults(&Faults {
            burst_429: 2,
            ..Faults::default()
        })
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            portal.get("/crm/v3/objects/companies").await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        portal.get("/crm/v3/objects/companies").await.0,
        StatusCode::OK
    );
    portal
        .control
        .set_faults(&Faults {
            error_5xx_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    assert!(
        portal
            .get("/crm/v3/objects/companies")
            .await
            .0
            .is_server_error()
    );
    portal.control.set_faults(&Faults::default()).await.unwrap();
    assert_eq!(
        portal.get("/crm/v3/objects/companies").await.0,
        StatusCode::OK
    );
}

// --- webhooks -----------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.got.lock().unwrap().push((headers, body));
    let mut fail = receiver.fail_first.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver(fail_first: u32) -> (Receiver, String) {
    let receiver = Receiver {
        fail_first: Arc::new(Mutex::new(fail_first)),
        ..Receiver::default()
    };
    let app = Router::new()
        .route("/hooks/hubspot", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/hubspot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

fn manual_delivery() -> SandboxConfig {
    let mut config = SandboxConfig {
        companies: 5,
        contacts: 5,
        ..SandboxConfig::default()
    };
    config.webhooks.auto_deliver = false;
    config.webhooks.retry_scale = 0.0;
    config
}

#[tokio::test]
async fn mutations_deliver_signed_batches_in_hubspots_payload_shape() {
    let portal = Portal::start(manual_delivery()).await;
    let (receiver, url) = start_receiver(0).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    let id = portal
        .control
        .create_company(&[("name", "Café Zürich")])
        .await
        .unwrap();
    portal
        .control
        .update_company(&id, &[("lifecyclestage", "customer")])
        .await
        .unwrap();
    portal.control.delete_company(&id).await.unwrap();
    portal.control.restore_company(&id).await.unwrap();
    let report = portal.control.flush_webhooks().await.unwrap();
    assert_eq!(report.batches, 1);
    let got = receiver.got.lock().unwrap().clone();
    let (headers, body) = &got[0];
    let events: Vec<Value> = serde_json::from_slice(body).unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["subscriptionType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "company.creation",
            "company.propertyChange",
            "company.propertyChange",
            "company.deletion",
            "company.restore"
        ]
    );
    assert_eq!(events[2]["propertyName"], "lifecyclestage");
    assert_eq!(events[2]["propertyValue"], "customer");
    assert_eq!(events[0]["objectId"], id.parse::<u64>().unwrap());
    assert_eq!(events[0]["portalId"], 62515);
    assert_eq!(events[0]["attemptNumber"], 0);
    let secret = &portal.sandbox.app().client_secret;
    let timestamp = headers["x-hubspot-request-timestamp"].to_str().unwrap();
    let expected = hubspot_sandbox::signature::v3(secret, "POST", &url, body, timestamp);
    assert_eq!(
        headers["x-hubspot-signature-v3"].to_str().unwrap(),
        expected
    );
    assert_eq!(
        headers["x-hubspot-signature"].to_str().unwrap(),
        hubspot_sandbox::signature::v1(secret, body)
    );
    assert_eq!(headers["x-hubspot-signature-version"], "v1");
}

#[tokio::test]
async fn batches_hold_at_most_100_events() {
    let portal = Portal::start(manual_delivery()).await;
    let (receiver, url) = start_receiver(0).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    portal
        .control
        .set_webhooks(json!({"property_subscriptions": []}))
        .await
        .unwrap();
    for i in 0..150 {
        portal
            .control
            .create_company(&[("name", &format!("Co {i}"))])
            .await
            .unwrap();
    }
    let report = portal.control.flush_webhooks().await.unwrap();
    assert_eq!((report.batches, report.delivered), (2, 150));
    let sizes: Vec<usize> = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_slice::<Vec<Value>>(b).unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 50]);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_batch_again_with_a_higher_attempt_number() {
    let portal = Portal::start(manual_delivery()).await;
    let (receiver, url) = start_receiver(2).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    portal
        .control
        .associate("1000001", "1000006", false)
        .await
        .unwrap();
    for _ in 0..3 {
        portal.control.flush_webhooks().await.unwrap();
    }
    let got = receiver.got.lock().unwrap().clone();
    let attempts: Vec<u64> = got
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Vec<Value>>(b).unwrap()[0]["attemptNumber"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(attempts, vec![0, 1, 2]);
    let events: Vec<Value> = serde_json::from_slice(&got[2].1).unwrap();
    assert_eq!(events[0]["subscriptionType"], "company.associationChange");
    assert_eq!(events[0]["associationType"], "COMPANY_TO_CONTACT");
    assert_eq!(events[1]["associationType"], "CONTACT_TO_COMPANY");
}

#[tokio::test]
async fn webhook_faults_drop_and_duplicate_events() {
    let portal = Portal::start(manual_delivery()).await;
    let (_receiver, url) = start_receiver(0).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    portal
        .control
        .set_webhooks(json!({"property_subscriptions": []}))
        .await
        .unwrap();
    portal
        .control
        .set_faults(&Faults {
            webhook_duplicate_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    portal
        .control
        .create_company(&[("name", "Twice Ltd")])
        .await
        .unwrap();
    let report = portal.control.flush_webhooks().await.unwrap();
    assert_eq!(report.delivered, 2);
    assert_eq!(report.events[0]["eventId"], report.events[1]["eventId"]);
    portal
        .control
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    portal
        .control
        .create_company(&[("name", "Never Ltd")])
        .await
        .unwrap();
    assert_eq!(portal.control.flush_webhooks().await.unwrap().delivered, 0);
}

#[tokio::test]
async fn the_reorder_fault_delivers_held_back_events_after_newer_ones() {
    let portal = Portal::start(manual_delivery()).await;
    let (_receiver, url) = start_receiver(0).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    portal
        .control
        .set_webhooks(json!({"property_subscriptions": []}))
        .await
        .unwrap();
    portal
        .control
        .set_faults(&Faults {
            webhook_reorder_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    for name in ["First", "Second", "Third"] {
        portal
            .control
            .create_company(&[("name", name)])
            .await
            .unwrap();
    }
    let report = portal.control.flush_webhooks().await.unwrap();
    let ids: Vec<u64> = report
        .events
        .iter()
        .map(|e| e["objectId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
}

#[tokio::test]
async fn a_merge_sends_merge_and_deletion_but_no_property_changes() {
    let portal = Portal::start(manual_delivery()).await;
    let (_receiver, url) = start_receiver(0).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    portal
        .control
        .merge_contacts("1000006", "1000007")
        .await
        .unwrap();
    let report = portal.control.flush_webhooks().await.unwrap();
    let types: Vec<&str> = report
        .events
        .iter()
        .map(|e| e["subscriptionType"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["contact.merge", "contact.deletion"]);
    assert_eq!(report.events[0]["mergedObjectIds"], json!([1_000_007]));
    assert_eq!(report.events[0]["primaryObjectId"], 1_000_006);
    assert_eq!(report.events[0]["newObjectId"], 1_000_006);
    assert_eq!(report.events[1]["objectId"], 1_000_007);
}

#[tokio::test]
async fn the_background_sender_delivers_without_a_flush() {
    let mut config = SandboxConfig {
        companies: 2,
        ..SandboxConfig::default()
    };
    config.webhooks.batch_delay_ms = 10;
    let portal = Portal::start(config).await;
    let (receiver, url) = start_receiver(0).await;
    portal.control.set_webhook_target(&url).await.unwrap();
    portal
        .control
        .update_company("1000001", &[("name", "Renamed")])
        .await
        .unwrap();
    for _ in 0..200 {
        if !receiver.got.lock().unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no webhook delivered in 5 s");
}
