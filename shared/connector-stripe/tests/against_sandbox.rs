//! The client against the stateful Stripe sandbox (`infra/stripe-sandbox`): paging, deleted
//! customers, 429s, OAuth with rotating refresh tokens, revocation, restricted keys and
//! MRR of seeded customers. Every sandbox binds 127.0.0.1:0 and stops when dropped.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test crate

use std::collections::BTreeSet;
use std::time::Duration;

use connector::crypto::TokenCipher;
use connector::provider::{Fetched, SourceProvider};
use connector::{
    Connection, ConnectionStatus, Currency, ErrorCode, Money, ObjectKind, Provider,
    ProviderAccountId, Secret, SourceId, TenantId, Timestamp,
};
use connector_stripe::auth::{StripeAuth, StripeCredentials, StripeSession};
use connector_stripe::client::{
    BILLING_EVENT_TYPES, CustomerBilling, EventFeedError, EventQuery, RetrievedCustomer,
    SubscriptionFilter,
};
use connector_stripe::mrr::{MrrPolicy, compute_customer_mrr};
use connector_stripe::oauth::{OAuthGrant, OAuthScope};
use connector_stripe::{StripeClient, StripeConfig, StripeProvider};
use stripe_sandbox::{
    CouponDuration, CouponRequest, CustomerInput, Faults, Interval, ItemInput, KeyRequest,
    PriceRequest, Recurring, RunningSandbox, Sandbox, SandboxConfig, SeedRequest,
    SubscriptionInput, UsageType,
};

async fn sandbox_with(config: SandboxConfig) -> RunningSandbox {
    Sandbox::start(config).await.expect("sandbox starts")
}

async fn sandbox() -> RunningSandbox {
    sandbox_with(SandboxConfig::default()).await
}

fn config_for(sandbox: &RunningSandbox) -> StripeConfig {
    let mut config =
        StripeConfig::new(Secret::new(sandbox.secret_key())).with_base_url(&sandbox.base_url());
    config.client_id = Some(sandbox.config().oauth_client_id.clone());
    config.redirect_uri = Some("http://127.0.0.1:9/oauth/stripe/callback".into());
    config.backoff.base = Duration::from_millis(20);
    config.backoff.cap = Duration::from_millis(200);
    config.timeout = Duration::from_secs(10);
    config
}

fn client_for(sandbox: &RunningSandbox) -> StripeClient {
    StripeClient::new(config_for(sandbox)).expect("client builds")
}

fn platform_session(sandbox: &RunningSandbox) -> StripeSession {
    StripeSession::new(StripeAuth::ApiKey(Secret::new(sandbox.secret_key())))
}

/// Runs Connect OAuth against the sandbox the way a browser would: follow the authorize
/// URL, take the code from the redirect, exchange it.
async fn connect_with_oauth(sandbox: &RunningSandbox, client: &StripeClient) -> OAuthGrant {
    let url = client
        .authorize_url("state-123", OAuthScope::ReadOnly)
        .expect("authorize url");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let response = browser.get(&url).send().await.expect("authorize answers");
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let redirect = url::Url::parse(&location).expect("redirect url");
    let pairs: Vec<(String, String)> = redirect.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("state".into(), "state-123".into())));
    let code = pairs
        .iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.clone())
        .expect("a code");
    let _ = sandbox;
    client.exchange_code(&code).await.expect("code exchange")
}

fn oauth_tokens(grant: &OAuthGrant) -> connector_stripe::OAuthTokens {
    match &grant.auth {
        StripeAuth::OAuth(tokens) => tokens.clone(),
        other => panic!("expected OAuth credentials, got {other:?}"),
    }
}

#[tokio::test]
async fn customers_page_through_every_seeded_customer_exactly_once() {
    let sandbox = sandbox().await;
    let report = sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(23),
            ..Default::default()
        })
        .await
        .expect("seeded");
    let mut config = config_for(&sandbox);
    config.page_size = 5;
    let client = StripeClient::new(config).expect("client");
    let session = platform_session(&sandbox);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_customers(&session, cursor.as_deref())
            .await
            .expect("page");
        pages += 1;
        assert!(page.data.len() <= 5);
        seen.extend(page.data.iter().map(|c| c.id.clone()));
        match page.next_cursor() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: BTreeSet<String> = report.customers.iter().map(|c| c.id.clone()).collect();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "no customer twice");
    assert_eq!(unique, expected);
    assert!(
        pages >= 5,
        "23 customers at 5 a page take 5 pages, took {pages}"
    );
}

#[tokio::test]
async fn subscriptions_of_every_status_page_through_completely() {
    let sandbox = sandbox().await;
    let report = sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(20),
            ..Default::default()
        })
        .await
        .expect("seeded");
    let mut config = config_for(&sandbox);
    config.page_size = 4;
    let client = StripeClient::new(config).expect("client");
    let session = platform_session(&sandbox);

    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client
            .list_subscriptions(&session, &SubscriptionFilter::default(), cursor.as_deref())
            .await
            .expect("page");
        for s in &page.data {
            assert!(ids.insert(s.id.clone()), "{} listed twice", s.id);
        }
        match page.next_cursor() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: BTreeSet<String> = report
        .customers
        .iter()
        .flat_map(|c| c.subscriptions.iter().map(|s| s.id.clone()))
        .collect();
    assert!(expected.len() > 4, "the seed should span several pages");
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_deleted_customer_is_retrieved_as_deleted_and_fetched_as_gone() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    let id = control
        .create_customer(CustomerInput {
            name: Some("Gone Inc".into()),
            ..Default::default()
        })
        .await
        .expect("customer");
    let client = client_for(&sandbox);
    let session = platform_session(&sandbox);
    assert!(matches!(
        client.retrieve_customer(&session, &id).await,
        Ok(RetrievedCustomer::Found(_))
    ));
    control.delete_customer(&id).await.expect("deleted");
    assert_eq!(
        client.retrieve_customer(&session, &id).await,
        Ok(RetrievedCustomer::Deleted { id: id.clone() })
    );
    assert_eq!(
        client.retrieve_customer(&session, "cus_neverexisted").await,
        Ok(RetrievedCustomer::Missing {
            id: "cus_neverexisted".into()
        })
    );

    let cipher = TokenCipher::from_key_bytes(&[1u8; 32]).expect("key");
    let provider = StripeProvider::new(client, cipher.clone(), MrrPolicy::default());
    let mut connection = Connection::new(
        TenantId::parse("t1").expect("tenant"),
        Provider::Stripe,
        Timestamp::now(),
    );
    connection.status = ConnectionStatus::Connected;
    connection.credentials = Some(
        StripeCredentials::new(StripeAuth::ApiKey(Secret::new(sandbox.secret_key())), None)
            .seal(&cipher, connection.credential_owner())
            .expect("seal"),
    );
    let gone = SourceId::parse(id).expect("id");
    let fetched = provider
        .fetch(
            &connection,
            ObjectKind::BillingCustomer,
            std::slice::from_ref(&gone),
            &[],
        )
        .await
        .expect("fetch");
    assert_eq!(fetched, vec![(gone, Fetched::Gone)]);
}

#[tokio::test]
async fn a_short_burst_of_429s_is_retried_with_backoff_and_succeeds() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    control
        .set_faults(&Faults {
            rate_limit_burst: 2,
            ..Default::default()
        })
        .await
        .expect("faults");
    control.reset_requests().await.expect("reset counters");
    let client = client_for(&sandbox);
    let session = platform_session(&sandbox);
    client
        .list_customers(&session, None)
        .await
        .expect("succeeds after the burst");
    let counters = control.requests().await.expect("counters");
    assert_eq!(counters.rate_limited, 2);
}

#[tokio::test]
async fn a_long_burst_of_429s_ends_as_rate_limited_with_a_retry_after() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    control
        .set_faults(&Faults {
            rate_limit_burst: 100,
            ..Default::default()
        })
        .await
        .expect("faults");
    control.reset_requests().await.expect("reset counters");
    let mut config = config_for(&sandbox);
    config.backoff.max_attempts = 3;
    let client = StripeClient::new(config).expect("client");
    let error = client
        .list_customers(&platform_session(&sandbox), None)
        .await
        .expect_err("throttled");
    assert_eq!(error.code, ErrorCode::RateLimited);
    assert_eq!(error.status, Some(429));
    assert!(error.retry_after.is_some());
    assert!(
        error
            .body
            .as_deref()
            .is_some_and(|b| b.contains("rate_limit"))
    );
    let counters = control.requests().await.expect("counters");
    assert_eq!(counters.rate_limited, 4, "one try and three retries");
}

#[tokio::test]
async fn a_server_error_stripe_says_not_to_retry_is_not_retried() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    control
        .set_faults(&Faults {
            server_error_rate: 1.0,
            server_error_should_retry: Some(false),
            ..Default::default()
        })
        .await
        .expect("faults");
    control.reset_requests().await.expect("reset counters");
    let client = client_for(&sandbox);
    let error = client
        .list_customers(&platform_session(&sandbox), None)
        .await
        .expect_err("500");
    assert_eq!(error.code, ErrorCode::ProviderUnavailable);
    assert_eq!(error.status, Some(500));
    assert_eq!(control.requests().await.expect("counters").server_errors, 1);
}

#[tokio::test]
async fn every_call_pins_our_stripe_version() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    control.reset_requests().await.expect("reset counters");
    let client = client_for(&sandbox);
    client
        .list_customers(&platform_session(&sandbox), None)
        .await
        .expect("list");
    let counters = control.requests().await.expect("counters");
    assert_eq!(
        counters.stripe_versions.keys().collect::<Vec<_>>(),
        vec![connector_stripe::STRIPE_VERSION]
    );
}

#[tokio::test]
async fn oauth_exchange_works_and_the_rotated_refresh_token_is_the_one_kept() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let grant = connect_with_oauth(&sandbox, &client).await;
    assert!(grant.account.as_str().starts_with("acct_"));
    assert!(!grant.livemode);
    let first = oauth_tokens(&grant);

    let session = StripeSession::new(grant.auth.clone());
    client
        .list_customers(&session, None)
        .await
        .expect("the access token works");

    let second = client.refresh_tokens(&first).await.expect("refresh");
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "refresh tokens rotate"
    );
    assert_eq!(second.account, first.account);
    // The old refresh token is dead now: using it is oauth_revoked.
    let stale = client
        .refresh_tokens(&first)
        .await
        .expect_err("rotated out");
    assert_eq!(stale.code, ErrorCode::OauthRevoked);
    // The newest works.
    let third = client
        .refresh_tokens(&second)
        .await
        .expect("newest refresh token works");
    assert_ne!(third.refresh_token, second.refresh_token);
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_new_credentials_are_handed_out() {
    let sandbox = sandbox_with(SandboxConfig {
        oauth_access_token_ttl_secs: Some(3600),
        ..SandboxConfig::default()
    })
    .await;
    let client = client_for(&sandbox);
    let grant = connect_with_oauth(&sandbox, &client).await;
    let first = oauth_tokens(&grant);

    let cipher = TokenCipher::from_key_bytes(&[2u8; 32]).expect("key");
    let provider = StripeProvider::new(client, cipher.clone(), MrrPolicy::default());
    let mut connection = Connection::new(
        TenantId::parse("t1").expect("tenant"),
        Provider::Stripe,
        Timestamp::now(),
    );
    connection.account_id = Some(grant.account.clone());
    connection.credentials = Some(
        StripeCredentials::new(grant.auth.clone(), None)
            .seal(&cipher, connection.credential_owner())
            .expect("seal"),
    );

    sandbox.control().advance_clock(3601).await.expect("clock");
    let page = provider
        .list_page(&connection, ObjectKind::BillingCustomer, &[], None)
        .await
        .expect("listing survives the expiry");
    assert!(page.records.is_empty());

    let sealed = provider
        .take_updated_credentials(&connection)
        .await
        .expect("seal")
        .expect("the refresh changed the credentials");
    let opened = StripeCredentials::open(&sealed, &cipher, connection.credential_owner());
    let StripeAuth::OAuth(fresh) = opened.expect("opens").auth else {
        panic!("still OAuth");
    };
    assert_ne!(fresh.refresh_token, first.refresh_token);
    assert_ne!(fresh.access_token, first.access_token);
    assert_eq!(
        provider.take_updated_credentials(&connection).await,
        Ok(None),
        "handed out once"
    );
    // Stored back, the new credentials keep the same session.
    connection.credentials = Some(sealed);
    provider
        .list_page(&connection, ObjectKind::BillingCustomer, &[], None)
        .await
        .expect("still works");
}

#[tokio::test]
async fn a_deauthorized_oauth_connection_is_oauth_revoked() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let grant = connect_with_oauth(&sandbox, &client).await;
    let session = StripeSession::new(grant.auth.clone());
    client
        .list_customers(&session, None)
        .await
        .expect("works before");

    sandbox
        .control()
        .revoke_account(grant.account.as_str())
        .await
        .expect("revoked");
    let error = client
        .list_customers(&session, None)
        .await
        .expect_err("refused after");
    assert_eq!(error.code, ErrorCode::OauthRevoked);

    // The platform key acting on the account is refused too.
    let platform = StripeSession::new(StripeAuth::ConnectedAccount {
        account: grant.account.clone(),
        livemode: false,
    });
    let error = client
        .list_customers(&platform, None)
        .await
        .expect_err("refused");
    assert_eq!(error.code, ErrorCode::OauthRevoked);
    assert_eq!(error.status, Some(403));
}

#[tokio::test]
async fn our_own_deauthorize_disconnects_the_account() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let grant = connect_with_oauth(&sandbox, &client).await;
    client
        .deauthorize(&grant.account)
        .await
        .expect("deauthorized");
    let error = client
        .refresh_tokens(&oauth_tokens(&grant))
        .await
        .expect_err("grant is gone");
    assert_eq!(error.code, ErrorCode::OauthRevoked);
}

#[tokio::test]
async fn the_platform_key_reads_a_connected_account_with_the_stripe_account_header() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let grant = connect_with_oauth(&sandbox, &client).await;
    let control = sandbox.control();
    control
        .create_customer_in(
            stripe_sandbox::Target {
                account: Some(grant.account.as_str().to_owned()),
                livemode: false,
            },
            CustomerInput {
                name: Some("Tenant customer".into()),
                ..Default::default()
            },
        )
        .await
        .expect("customer in the connected account");
    let session = StripeSession::new(StripeAuth::ConnectedAccount {
        account: ProviderAccountId::parse(grant.account.as_str()).expect("id"),
        livemode: false,
    });
    let page = client.list_customers(&session, None).await.expect("list");
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].name.as_deref(), Some("Tenant customer"));
}

#[tokio::test]
async fn a_restricted_key_without_subscription_read_is_permission_denied() {
    let sandbox = sandbox().await;
    let key = sandbox
        .control()
        .create_key(&KeyRequest {
            permissions: Some(vec!["customer_read".into()]),
            ..Default::default()
        })
        .await
        .expect("restricted key");
    assert!(key.starts_with("rk_test_"));
    let client = client_for(&sandbox);
    let session = StripeSession::new(StripeAuth::ApiKey(Secret::new(key)));
    client
        .list_customers(&session, None)
        .await
        .expect("customers are allowed");
    let error = client
        .list_subscriptions(&session, &SubscriptionFilter::default(), None)
        .await
        .expect_err("subscriptions are not");
    assert_eq!(error.code, ErrorCode::PermissionDenied);
    assert_eq!(error.status, Some(403));
}

#[tokio::test]
async fn a_revoked_api_key_is_oauth_revoked() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    let key = control
        .create_key(&KeyRequest {
            permissions: Some(vec!["customer_read".into()]),
            ..Default::default()
        })
        .await
        .expect("key");
    control.revoke_key(&key).await.expect("revoked");
    let error = client_for(&sandbox)
        .list_customers(
            &StripeSession::new(StripeAuth::ApiKey(Secret::new(key))),
            None,
        )
        .await
        .expect_err("refused");
    assert_eq!(error.code, ErrorCode::OauthRevoked);
    assert_eq!(error.status, Some(401));
}

fn target() -> stripe_sandbox::Target {
    stripe_sandbox::Target::default()
}

#[tokio::test]
async fn the_mrr_of_a_customer_built_in_the_sandbox_is_the_contracts_figure() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    let monthly = control
        .create_price(&PriceRequest {
            target: target(),
            product_name: "Pro".into(),
            currency: "usd".into(),
            unit_amount: 10_000,
            recurring: Some(Recurring {
                interval: Interval::Month,
                interval_count: 1,
                usage_type: UsageType::Licensed,
            }),
            lookup_key: None,
        })
        .await
        .expect("price");
    let annual = control
        .create_price(&PriceRequest {
            target: target(),
            product_name: "Support".into(),
            currency: "usd".into(),
            unit_amount: 120_000,
            recurring: Some(Recurring {
                interval: Interval::Year,
                interval_count: 1,
                usage_type: UsageType::Licensed,
            }),
            lookup_key: None,
        })
        .await
        .expect("price");
    let forever = control
        .create_coupon(&CouponRequest {
            target: target(),
            id: None,
            percent_off: Some(25.5),
            amount_off: None,
            currency: None,
            duration: CouponDuration::Forever,
            duration_in_months: None,
        })
        .await
        .expect("coupon");
    let item_amount_off = control
        .create_coupon(&CouponRequest {
            target: target(),
            id: None,
            percent_off: None,
            amount_off: Some(500),
            currency: Some("usd".into()),
            duration: CouponDuration::Forever,
            duration_in_months: None,
        })
        .await
        .expect("coupon");
    let customer = control
        .create_customer(CustomerInput {
            name: Some("Acme".into()),
            email: Some("billing@acme.test".into()),
            ..Default::default()
        })
        .await
        .expect("customer");
    control
        .create_subscription(SubscriptionInput {
            customer: customer.clone(),
            items: vec![ItemInput {
                price: monthly,
                quantity: Some(1),
                coupons: vec![],
            }],
            coupons: vec![forever],
            ..Default::default()
        })
        .await
        .expect("subscription");
    control
        .create_subscription(SubscriptionInput {
            customer: customer.clone(),
            items: vec![ItemInput {
                price: annual,
                quantity: Some(1),
                coupons: vec![item_amount_off],
            }],
            ..Default::default()
        })
        .await
        .expect("subscription");

    let client = client_for(&sandbox);
    let session = platform_session(&sandbox);
    let now = Timestamp::now();
    let billing = client
        .customer_billing(&session, &customer, now, &MrrPolicy::default())
        .await
        .expect("billing");
    let CustomerBilling::Found {
        customer: stripe_customer,
        subscriptions,
        summary,
    } = billing
    else {
        panic!("customer exists");
    };
    let usd = Currency::parse("usd").expect("usd");
    // Contract §3.3: percent forever 10000 × 0.745 = 7450; amount_off forever on annual
    // 10000 − 500/12 = 9958.
    assert_eq!(summary.mrr, vec![Money::new(7450 + 9958, usd)]);
    assert_eq!(summary.subscription_status.as_deref(), Some("active"));
    let mut plans = summary.plan_names.clone();
    plans.sort();
    assert_eq!(plans, vec!["Pro", "Support"]);
    assert!(summary.next_renewal.is_some());
    assert!(
        summary
            .mrr_detail
            .subscriptions
            .iter()
            .all(|s| s.flags.is_empty()),
        "every coupon resolved: {:?}",
        summary.mrr_detail
    );
    let recomputed = compute_customer_mrr(
        &subscriptions,
        stripe_customer.discount.as_ref(),
        now,
        &MrrPolicy::default(),
    );
    assert_eq!(recomputed.money(), summary.mrr);
}

#[tokio::test]
async fn seeded_customers_list_as_billing_records_whose_mrr_matches_the_pure_function() {
    let sandbox = sandbox().await;
    let report = sandbox
        .control()
        .seed(&SeedRequest {
            customers: Some(12),
            ..Default::default()
        })
        .await
        .expect("seeded");
    let client = client_for(&sandbox);
    let session = platform_session(&sandbox);
    let cipher = TokenCipher::from_key_bytes(&[3u8; 32]).expect("key");
    let provider = StripeProvider::new(client.clone(), cipher.clone(), MrrPolicy::default());
    let mut connection = Connection::new(
        TenantId::parse("t1").expect("tenant"),
        Provider::Stripe,
        Timestamp::now(),
    );
    connection.credentials = Some(
        StripeCredentials::new(StripeAuth::ApiKey(Secret::new(sandbox.secret_key())), None)
            .seal(&cipher, connection.credential_owner())
            .expect("seal"),
    );
    let page = provider
        .list_page(&connection, ObjectKind::BillingCustomer, &[], None)
        .await
        .expect("page");
    assert_eq!(page.records.len(), report.customers.len());
    let mut nonzero = 0;
    for record in &page.records {
        let billing: connector::Billing =
            serde_json::from_str(record.properties["billing"].as_deref().expect("billing"))
                .expect("billing JSON");
        let subscriptions = client
            .customer_subscriptions(&session, record.id.as_str())
            .await
            .expect("subscriptions");
        let expected = compute_customer_mrr(
            &subscriptions,
            None,
            billing.updated_at.expect("stamped"),
            &MrrPolicy::default(),
        );
        if !expected.money().is_empty() {
            nonzero += 1;
        }
        let detail = record.properties["mrr_detail"].as_deref().expect("detail");
        for unresolved in ["unresolved_coupon", "tiers_missing"] {
            assert!(!detail.contains(unresolved), "{unresolved} in {detail}");
        }
        let customer = client
            .retrieve_customer(&session, record.id.as_str())
            .await
            .expect("customer");
        if let RetrievedCustomer::Found(c) = customer
            && c.discount.is_none()
        {
            assert_eq!(billing.mrr, expected.money(), "customer {}", record.id);
        }
    }
    assert!(nonzero > 0, "the seed should give some customers MRR");
}

#[tokio::test]
async fn the_events_feed_lists_recent_billing_events_and_refuses_beyond_thirty_days() {
    let sandbox = sandbox().await;
    let control = sandbox.control();
    let id = control
        .create_customer(CustomerInput {
            name: Some("Evented".into()),
            ..Default::default()
        })
        .await
        .expect("customer");
    let client = client_for(&sandbox);
    let session = platform_session(&sandbox);
    let now = Timestamp::now();
    let page = client
        .list_events(
            &session,
            &EventQuery {
                created_gte: now.minus(Duration::from_secs(3600)),
                types: BILLING_EVENT_TYPES
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect(),
                starting_after: None,
            },
            now,
        )
        .await
        .expect("events");
    assert!(
        page.events
            .iter()
            .any(|e| e.event_type == "customer.created"
                && e.customer_id.as_deref() == Some(id.as_str())),
        "{:?}",
        page.events
    );
    let too_old = client
        .list_events(
            &session,
            &EventQuery {
                created_gte: now.minus(Duration::from_secs(31 * 24 * 3600)),
                types: vec![],
                starting_after: None,
            },
            now,
        )
        .await;
    assert!(matches!(
        too_old,
        Err(EventFeedError::BeyondRetention { .. })
    ));
}
