//! The HubSpot client against the HubSpot sandbox (`infra/hubspot-sandbox`), with the
//! embedded store holding the connection.

// The helpers below are test code too: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use connector::provider::{Fetched, SourceProvider};
use connector::rate_limit::RateLimit;
use connector::{CompanyFilter, ErrorCode, ObjectKind, SourceId, Timestamp};
use connector_hubspot::{HubSpotProvider, StoredTokens};
use hubspot_sandbox::SandboxConfig;
use serde_json::json;

mod support;

use support::{found, harness, harness_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_exchange_finds_the_portal_and_seals_the_tokens() {
    let h = harness(0, 0).await;
    let url = h.provider.authorize_url("state-123", &[]);
    assert!(url.starts_with(&format!(
        "{}/oauth/authorize?client_id=",
        h.sandbox.base_url()
    )));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = browser.get(&url).send().await.expect("authorize answers");
    assert_eq!(redirect.status(), 302);
    let location =
        url::Url::parse(redirect.headers()["location"].to_str().expect("text")).expect("url");
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "state-123");

    let account = h
        .provider
        .exchange_code(&query["code"], h.connection.credential_owner())
        .await
        .expect("exchange");
    assert_eq!(
        account.account_id.as_str(),
        h.sandbox.app().portal_id.to_string()
    );
    for scope in &h.config.scopes {
        assert!(account.scopes.contains(scope), "{scope} granted");
    }
    let tokens: StoredTokens = h
        .cipher
        .open(&account.credentials, h.connection.credential_owner())
        .expect("opens with our key, for this connection");
    assert!(tokens.expires_at > Timestamp::now().plus(Duration::from_secs(20 * 60)));
    assert!(!account.credentials.0.contains(tokens.access_token.expose()));

    let again = h
        .provider
        .exchange_code(&query["code"], h.connection.credential_owner())
        .await
        .expect_err("codes are single use");
    assert_eq!(again.code, ErrorCode::OauthRevoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh() {
    let mut h = harness(3, 0).await;
    h.expire_tokens_locally().await;
    let before = h.stored_tokens().await;
    h.control.delete("/requests").await;

    let (a, b) = tokio::join!(
        h.provider.access_token(&h.connection),
        h.provider.access_token(&h.connection)
    );
    let (a, b) = (a.expect("token"), b.expect("token"));
    assert_eq!(a, b);
    assert_ne!(a, before.access_token);
    assert_eq!(h.control.route_count("POST /oauth/v1/token").await, 1);

    let stored = h.stored_tokens().await;
    assert_eq!(stored.access_token, a);
    assert!(stored.expires_at > Timestamp::now().plus(Duration::from_secs(20 * 60)));

    // A caller still holding the old connection gets the new token without a refresh.
    h.provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect("works with the stale connection");
    assert_eq!(h.control.route_count("POST /oauth/v1/token").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refreshing_at_once_agree_on_the_stored_tokens() {
    let mut h = harness(0, 0).await;
    h.expire_tokens_locally().await;
    let other_process = HubSpotProvider::new(h.config.clone(), h.store.clone(), h.cipher.clone())
        .expect("a client");
    // Slow token answers: both processes are sure to refresh at HubSpot before either
    // writes, so one of them loses the store's version check.
    h.control.put("/faults", json!({ "latency_ms": 300 })).await;
    h.control.delete("/requests").await;
    let (a, b) = tokio::join!(
        h.provider.access_token(&h.connection),
        other_process.access_token(&h.connection)
    );
    let (a, b) = (a.expect("token"), b.expect("token"));
    assert_eq!(
        a, b,
        "the loser of the store write uses the winner's tokens"
    );
    assert_eq!(h.stored_tokens().await.access_token, a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_visits_every_company_once() {
    let h = harness(250, 0).await;
    let ids = h.all_company_ids().await;
    assert_eq!(ids.len(), 250);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 250);

    let page = h
        .provider
        .list_page(
            &h.connection,
            ObjectKind::Company,
            &["name", "domain"],
            None,
        )
        .await
        .expect("page");
    assert_eq!(page.records.len(), 100);
    for record in &page.records {
        assert_eq!(
            record.properties.keys().collect::<Vec<_>>(),
            ["domain", "name"]
        );
        assert!(
            record.version.0 > 1_500_000_000_000,
            "versioned by updatedAt"
        );
        assert!(!record.archived);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_tells_live_archived_and_gone_records_apart() {
    let h = harness(150, 0).await;
    let ids = h.all_company_ids().await;
    let deleted = ids[1].clone();
    h.control
        .delete(&format!("/objects/companies/{deleted}"))
        .await;
    let unknown = SourceId::parse("987654321").expect("id");

    let wanted = [ids[0].clone(), deleted.clone(), unknown.clone()];
    let fetched = h
        .provider
        .fetch(&h.connection, ObjectKind::Company, &wanted, &["name"])
        .await
        .expect("fetch");
    assert_eq!(
        fetched.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        wanted
    );
    assert!(!found(&fetched[0].1).archived);
    let archived = found(&fetched[1].1);
    assert!(archived.archived);
    assert_eq!(archived.id, deleted);
    assert_eq!(fetched[2].1, Fetched::Gone);

    // More ids than one batch read holds, returned in the order asked.
    let mut many: Vec<SourceId> = ids.iter().rev().cloned().collect();
    many.truncate(140);
    let fetched = h
        .provider
        .fetch(&h.connection, ObjectKind::Company, &many, &["name"])
        .await
        .expect("fetch");
    assert_eq!(
        fetched.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        many
    );
    assert!(
        fetched
            .iter()
            .all(|(id, f)| matches!(f, Fetched::Found(r) if &r.id == id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_away_id_fetches_its_survivor() {
    let h = harness(0, 0).await;
    let keep = h
        .control
        .create("companies", json!({ "name": "Keep Inc" }))
        .await;
    let gone = h
        .control
        .create("companies", json!({ "name": "Gone Inc" }))
        .await;
    let merged = h
        .control
        .post(
            "/objects/companies/merge",
            json!({ "primary_id": keep.as_str().parse::<u64>().expect("n"), "merged_id": gone.as_str().parse::<u64>().expect("n") }),
        )
        .await;
    let survivor = merged["id"].as_str().expect("survivor id").to_owned();
    let fetched = h
        .provider
        .fetch(
            &h.connection,
            ObjectKind::Company,
            std::slice::from_ref(&gone),
            &["name"],
        )
        .await
        .expect("fetch");
    let record = found(&fetched[0].1);
    assert_eq!(record.id.as_str(), survivor);
    assert!(
        record.merged_from.contains(&gone),
        "{:?}",
        record.merged_from
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_carry_their_companies_primary_first() {
    let h = harness(0, 0).await;
    let other = h
        .control
        .create("companies", json!({ "name": "Other" }))
        .await;
    let primary = h
        .control
        .create("companies", json!({ "name": "Primary" }))
        .await;
    let contact = h
        .control
        .create("contacts", json!({ "email": "ada@example.com" }))
        .await;
    let n = |id: &SourceId| id.as_str().parse::<u64>().expect("numeric");
    for (company, is_primary) in [(&other, false), (&primary, true)] {
        h.control
            .post(
                "/associations",
                json!({ "company_id": n(company), "contact_id": n(&contact), "primary": is_primary }),
            )
            .await;
    }
    let fetched = h
        .provider
        .fetch(
            &h.connection,
            ObjectKind::Contact,
            std::slice::from_ref(&contact),
            &["email"],
        )
        .await
        .expect("fetch");
    let record = found(&fetched[0].1);
    assert_eq!(
        record.properties["email"].as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(
        record.associated_companies,
        vec![primary.clone(), other.clone()]
    );

    let page = h
        .provider
        .list_page(&h.connection, ObjectKind::Contact, &["email"], None)
        .await
        .expect("page");
    assert_eq!(
        page.records[0].associated_companies,
        vec![primary.clone(), other]
    );

    assert_eq!(
        h.provider
            .associations(&h.connection, &primary)
            .await
            .expect("associations"),
        vec![contact]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modified_since_pages_past_the_search_cap() {
    let h = harness_with(
        SandboxConfig {
            companies: 230,
            ..SandboxConfig::default()
        },
        |c| c.search_result_cap = 40,
    )
    .await;
    let everything: BTreeSet<SourceId> = h.all_company_ids().await.into_iter().collect();
    h.control.delete("/requests").await;
    let modified = h
        .provider
        .modified_since(
            &h.connection,
            ObjectKind::Company,
            Timestamp::from_millis(0),
            Timestamp::now().plus(Duration::from_secs(3600)),
        )
        .await
        .expect("search");
    assert_eq!(
        modified.len(),
        everything.len(),
        "no duplicates, none missing"
    );
    assert_eq!(modified.into_iter().collect::<BTreeSet<_>>(), everything);
    let searches = h
        .control
        .route_count("POST /crm/v3/objects/{object_type}/search")
        .await;
    assert!(searches >= 230 / 40, "{searches} searches");
    assert_eq!(h.control.counters().await["rate_limited"], 0);

    // An empty window finds nothing.
    let none = h
        .provider
        .modified_since(
            &h.connection,
            ObjectKind::Company,
            Timestamp::from_millis(0),
            Timestamp::from_millis(1),
        )
        .await
        .expect("search");
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_call_waits_for_retry_after_and_succeeds() {
    let h = harness(5, 0).await;
    h.control
        .put("/rate-limits", json!({ "interval_ms": 1000 }))
        .await;
    h.control.put("/faults", json!({ "burst_429": 2 })).await;
    let started = Instant::now();
    let page = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect("retried through the 429s");
    assert_eq!(page.records.len(), 5);
    assert_eq!(h.control.counters().await["rate_limited"], 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 honoured twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_throttling_is_rate_limited_with_its_retry_after() {
    let h = harness_with(SandboxConfig::default(), |c| c.retry.max_attempts = 1).await;
    h.control
        .put("/rate-limits", json!({ "interval_ms": 1000 }))
        .await;
    h.control.put("/faults", json!({ "burst_429": 10 })).await;
    let err = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect_err("throttled");
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
    assert!(
        err.body
            .as_deref()
            .unwrap_or("")
            .contains("TEN_SECONDLY_ROLLING")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_oauth_revoked() {
    let h = harness(3, 0).await;
    h.control.post("/tokens/revoke", json!({})).await;
    let err = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect_err("revoked");
    assert_eq!(err.code, ErrorCode::OauthRevoked);
    assert_eq!(
        h.control.route_count("POST /oauth/v1/token").await,
        1,
        "one refresh attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_at_hubspot_is_refreshed_once_and_the_call_retried() {
    let h = harness(3, 0).await;
    // HubSpot considers the token expired though our clock says it is fine.
    h.control.post("/tokens/expire", json!({})).await;
    let page = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect("refreshed and retried");
    assert_eq!(page.records.len(), 3);
    assert_eq!(h.control.route_count("POST /oauth/v1/token").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_scope_is_permission_denied() {
    let h = harness(3, 3).await;
    h.control
        .post(
            "/scopes/remove",
            json!({ "scope": "crm.objects.companies.read" }),
        )
        .await;
    let err = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect_err("no scope");
    assert_eq!(err.code, ErrorCode::PermissionDenied);
    assert_eq!(err.status, Some(403));
    assert!(err.body.as_deref().unwrap_or("").contains("MISSING_SCOPES"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_become_provider_unavailable_after_bounded_retries() {
    let h = harness(3, 0).await;
    h.control
        .put("/faults", json!({ "error_5xx_rate": 1.0 }))
        .await;
    let err = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect_err("5xx");
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert!(err.status.is_some_and(|s| s >= 500), "{err:?}");
    let tries = h.control.counters().await["injected_5xx"]
        .as_u64()
        .expect("count");
    assert_eq!(tries, u64::from(h.config.retry.max_attempts) + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_describe_the_schema_and_follow_deletions() {
    let h = harness(0, 0).await;
    let schema = h
        .provider
        .properties(&h.connection, ObjectKind::Company)
        .await
        .expect("properties");
    let type_of = |name: &str| {
        schema
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.property_type.clone())
    };
    assert_eq!(type_of("name").as_deref(), Some("string"));
    assert_eq!(type_of("lifecyclestage").as_deref(), Some("enumeration"));
    assert!(type_of("domain").is_some());

    h.control.delete("/properties/companies/domain").await;
    let schema = h
        .provider
        .properties(&h.connection, ObjectKind::Company)
        .await
        .expect("properties");
    assert!(schema.iter().all(|p| p.name != "domain"));
    let contacts = h
        .provider
        .properties(&h.connection, ObjectKind::Contact)
        .await
        .expect("properties");
    assert!(contacts.iter().any(|p| p.name == "email"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_filter_admits_exactly_the_lists_members() {
    let mut h = harness(20, 0).await;
    let ids = h.all_company_ids().await;
    let list = h
        .control
        .post(
            "/lists",
            json!({ "name": "Customers", "object_type": "companies" }),
        )
        .await;
    let list_id = list["id"].as_str().expect("list id").to_owned();
    for member in &ids[..3] {
        h.control
            .put(&format!("/lists/{list_id}/members/{member}"), json!({}))
            .await;
    }
    h.connection.company_filter = CompanyFilter::List {
        list_id: list_id.clone(),
    };

    // Few ids: asked per record.
    let few = h
        .provider
        .filter_members(&h.connection, &[ids[0].clone(), ids[10].clone()])
        .await
        .expect("filter");
    assert!(few[&ids[0]]);
    assert!(!few[&ids[10]]);

    // Many ids: the list's membership read once.
    let all = h
        .provider
        .filter_members(&h.connection, &ids)
        .await
        .expect("filter");
    let members: Vec<&SourceId> = all.iter().filter(|(_, m)| **m).map(|(id, _)| id).collect();
    assert_eq!(members, ids[..3].iter().collect::<Vec<_>>());

    // A removal is seen at once on the per-record path.
    h.control
        .delete(&format!("/lists/{list_id}/members/{}", ids[0]))
        .await;
    let few = h
        .provider
        .filter_members(&h.connection, std::slice::from_ref(&ids[0]))
        .await
        .expect("filter");
    assert!(!few[&ids[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_and_all_filters_read_the_company() {
    let mut h = harness(6, 0).await;
    let ids = h.all_company_ids().await;
    for (i, id) in ids.iter().enumerate() {
        let stage = if i < 2 { "customer" } else { "lead" };
        h.control
            .patch(
                &format!("/objects/companies/{id}"),
                json!({ "properties": { "lifecyclestage": stage } }),
            )
            .await;
    }
    let everyone = h
        .provider
        .filter_members(&h.connection, &ids)
        .await
        .expect("filter");
    assert!(everyone.values().all(|m| *m));

    h.connection.company_filter = CompanyFilter::LifecycleStage {
        stages: vec!["customer".into()],
    };
    let filtered = h
        .provider
        .filter_members(&h.connection, &ids)
        .await
        .expect("filter");
    let members: Vec<&SourceId> = filtered
        .iter()
        .filter(|(_, m)| **m)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(members, ids[..2].iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_stay_under_the_portal_limit() {
    let h = harness_with(
        SandboxConfig {
            companies: 2,
            ..SandboxConfig::default()
        },
        |c| {
            c.rate_limit = RateLimit {
                max_requests: 10,
                per: Duration::from_millis(1050),
            }
        },
    )
    .await;
    h.control
        .put(
            "/rate-limits",
            json!({ "max_per_interval": 10, "interval_ms": 1000 }),
        )
        .await;
    h.control.delete("/requests").await;
    let calls = (0..30).map(|_| {
        h.provider
            .list_page(&h.connection, ObjectKind::Company, &["name"], None)
    });
    for result in futures::future::join_all(calls).await {
        result.expect("no call fails");
    }
    let counters = h.control.counters().await;
    assert_eq!(counters["rate_limited"], 0, "{counters}");
    assert_eq!(counters["api_requests"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_listed() {
    let h = harness(0, 0).await;
    let expected: BTreeSet<String> = h.control.get("/state").await["owners"]
        .as_array()
        .expect("owner ids")
        .iter()
        .map(|v| v.as_str().expect("text").to_owned())
        .collect();
    assert!(!expected.is_empty());
    let owners = h.provider.owners(&h.connection).await.expect("owners");
    assert_eq!(
        owners.iter().map(|o| o.id.clone()).collect::<BTreeSet<_>>(),
        expected
    );
    assert!(owners.iter().all(|o| o.email.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_timeout_is_provider_unavailable() {
    let h = harness_with(SandboxConfig::default(), |c| {
        c.request_timeout = Duration::from_millis(200);
        c.retry.max_attempts = 1;
    })
    .await;
    h.control
        .put("/faults", json!({ "latency_ms": 1000 }))
        .await;
    let err = h
        .provider
        .list_page(&h.connection, ObjectKind::Company, &["name"], None)
        .await
        .expect_err("times out");
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert_eq!(err.status, None);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(
        !err.message.contains(&h.sandbox.base_url()),
        "no URL in the message"
    );
}
