//! End to end with Stripe: both sandboxes, the service over HTTP with its pollers, on
//! DynamoDB and SQS (moto). Every test starts its own stack: HubSpot connected and synced,
//! the Stripe account seeded from the mirrored companies, connected through Connect OAuth
//! and synced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use connector::ports::PageRequest;
use connector::{
    ConnectionId, CustomerId, LinkTarget, NightlyTime, ObjectKind, PendingMatchStatus, Provider,
    SourceId, SyncRunStatus, Timestamp,
};
use hubspot_sandbox::SandboxConfig;
use integration_tests::adapters::{dynamodb_store, sqs_queue};
use integration_tests::waiting::eventually;
use local_stack::{
    ExpectedMatch, Ports, RunningStack, STRIPE_ACCOUNT, ServerOptions, StackOptions, StripeSeed,
    StripeSeeding,
};
use stripe_sandbox::{CustomerInput, Faults, ItemInput, SubscriptionInput, Target};

const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
const LAND_TIMEOUT: Duration = Duration::from_secs(30);
/// `pro_monthly` is 99.00 USD a seat a month.
const PRO_MONTHLY_SEAT: i64 = 9_900;

struct StripeStack {
    stack: RunningStack,
    hubspot: ConnectionId,
    stripe: ConnectionId,
    seed: StripeSeed,
}

async fn moto_ports() -> Ports {
    Ports {
        store: Arc::new(dynamodb_store().await),
        records: Arc::new(sqs_queue(5).await),
        reconciles: Arc::new(sqs_queue(5).await),
    }
}

/// Eight companies, six of them with a Stripe customer (three linked by metadata, three by
/// domain), and two Stripe customers matching none.
async fn stripe_stack() -> StripeStack {
    let options = StackOptions {
        sandbox: SandboxConfig {
            companies: 8,
            contacts: 0,
            ..SandboxConfig::default()
        },
        stripe: Some(stripe_sandbox::SandboxConfig::default()),
        server: ServerOptions {
            sweep_every: None,
            ..ServerOptions::default()
        },
        ..StackOptions::default()
    };
    let stack = local_stack::start(options, moto_ports().await)
        .await
        .expect("the stack starts");
    let hubspot = stack
        .connect_hubspot()
        .await
        .expect("HubSpot OAuth connect");
    let run = stack
        .wait_for_sync(&hubspot, SYNC_TIMEOUT, |_| {})
        .await
        .expect("the HubSpot sync ends");
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    let seeding = StripeSeeding {
        matched_share: 0.75,
        unmatched: 2,
        seed: 11,
    };
    let seed = stack
        .seed_stripe_from_hubspot(&hubspot, &seeding)
        .await
        .expect("seeding Stripe");
    let stripe = stack.connect_stripe().await.expect("Stripe Connect OAuth");
    let run = stack
        .wait_for_sync(&stripe, SYNC_TIMEOUT, |_| {})
        .await
        .expect("the Stripe sync ends");
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    assert_eq!(run.counters.seen, seed.customers.len() as u64, "{run:?}");
    StripeStack {
        stack,
        hubspot,
        stripe,
        seed,
    }
}

async fn get(stack: &RunningStack, path: &str) -> Value {
    let (status, body) = stack
        .admin(Method::GET, path, None)
        .await
        .expect("admin API");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn customer_json(stack: &RunningStack, customer: &CustomerId) -> Value {
    get(stack, &format!("/admin/customers/{customer}")).await
}

/// The customer's USD MRR in cents (0 when it has none), `None` without billing fields.
async fn usd_mrr(stack: &RunningStack, customer: &CustomerId) -> Option<i64> {
    let billing = customer_json(stack, customer).await["billing"].clone();
    if billing.is_null() {
        return None;
    }
    Some(
        billing["mrr"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["currency"] == "USD")
            .filter_map(|m| m["amount_minor"].as_i64())
            .sum(),
    )
}

async fn wait_for_mrr(stack: &RunningStack, customer: &CustomerId, cents: i64) {
    eventually(
        &format!("customer {customer} at {cents} USD cents MRR"),
        LAND_TIMEOUT,
        || async { (usd_mrr(stack, customer).await == Some(cents)).then_some(()) },
    )
    .await;
}

/// The customer a Stripe customer is linked to.
async fn billing_target(stack: &RunningStack, stripe_customer: &str) -> Option<CustomerId> {
    let link = stack
        .app
        .engine
        .store
        .get_link(
            &stack.tenant,
            &stack
                .source_ref(
                    Provider::Stripe,
                    ObjectKind::BillingCustomer,
                    stripe_customer,
                )
                .await
                .unwrap(),
        )
        .await
        .unwrap()?;
    match link.target {
        LinkTarget::Customer(id) => Some(id),
        LinkTarget::Contact(_) => None,
    }
}

/// Mirrored companies without a Stripe customer: (HubSpot company id, customer).
async fn companies_without_stripe(s: &StripeStack) -> Vec<(SourceId, CustomerId)> {
    let links = s
        .stack
        .app
        .engine
        .store
        .list_links(
            &s.stack.tenant,
            Provider::Hubspot,
            &s.stack
                .source_ref(Provider::Hubspot, ObjectKind::Company, "1")
                .await
                .unwrap()
                .account,
            ObjectKind::Company,
            PageRequest::first(100),
        )
        .await
        .unwrap();
    links
        .items
        .into_iter()
        .filter_map(|l| match l.target {
            LinkTarget::Customer(id)
                if !s
                    .seed
                    .customers
                    .iter()
                    .any(|c| c.expected.customer() == Some(&id)) =>
            {
                Some((l.source_id, id))
            }
            _ => None,
        })
        .collect()
}

fn on_account() -> Target {
    Target {
        account: Some(STRIPE_ACCOUNT.to_owned()),
        livemode: false,
    }
}

/// A Stripe customer created now (webhooks bring it in) for a company that had none, with
/// one `pro_monthly` subscription of two seats.
struct Paying {
    customer: CustomerId,
    stripe_customer: String,
    subscription: String,
    item: String,
}

async fn new_paying_customer(s: &StripeStack) -> Paying {
    let (company, customer) = companies_without_stripe(s).await.remove(0);
    let control = s.stack.stripe_sandbox().unwrap().control();
    let stripe_customer = control
        .create_customer_in(
            on_account(),
            CustomerInput {
                name: Some("Paying Customer".into()),
                metadata: Some([("hubspot_company_id".to_owned(), company.to_string())].into()),
                ..CustomerInput::default()
            },
        )
        .await
        .unwrap();
    let subscription = control
        .create_subscription_in(
            on_account(),
            SubscriptionInput {
                customer: stripe_customer.clone(),
                items: vec![ItemInput {
                    price: s.seed.price("pro_monthly").unwrap().to_owned(),
                    quantity: Some(2),
                    coupons: Vec::new(),
                }],
                ..SubscriptionInput::default()
            },
        )
        .await
        .unwrap();
    let rendered = s
        .stack
        .stripe_control(
            Method::GET,
            &format!("/subscriptions/{subscription}?account={STRIPE_ACCOUNT}"),
            None,
        )
        .await
        .unwrap();
    let item = rendered["items"]["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_mrr(&s.stack, &customer, 2 * PRO_MONTHLY_SEAT).await;
    settle(s).await;
    Paying {
        customer,
        stripe_customer,
        subscription,
        item,
    }
}

/// Changes the seat count of the paying customer's subscription at the sandbox.
async fn set_seats(s: &StripeStack, paying: &Paying, seats: u64) {
    s.stack
        .stripe_control(
            Method::POST,
            &format!("/subscriptions/{}", paying.subscription),
            Some(json!({
                "account": STRIPE_ACCOUNT,
                "items": [{"id": paying.item, "quantity": seats}],
            })),
        )
        .await
        .unwrap();
}

/// Every webhook from now on is lost.
async fn drop_webhooks(s: &StripeStack) {
    let control = s.stack.stripe_sandbox().unwrap().control();
    control
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
}

/// Waits until every event so far is delivered (or dropped) and every record job it
/// started has finished, so no job still in flight reads a later change.
async fn settle(s: &StripeStack) {
    let control = s.stack.stripe_sandbox().unwrap().control();
    // The flush waits for a delivery round in progress, then sends what is left; intake
    // has enqueued each job before it answers.
    control.flush_webhooks().await.unwrap();
    let records = s.stack.app.engine.record_jobs.clone();
    eventually("the record jobs to finish", LAND_TIMEOUT, || async {
        (records.approximate_depth().await.unwrap() == 0).then_some(())
    })
    .await;
}

/// The connection's log rows with this error code.
async fn log_rows_with(stack: &RunningStack, connection: &ConnectionId, code: &str) -> Vec<Value> {
    let log = get(
        stack,
        &format!("/admin/connections/{connection}/log?errors_only=true&limit=100"),
    )
    .await;
    log["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row["error_code"] == code)
        .collect()
}

// ---- webhooks -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_in_stripe_shows_in_mrr_within_seconds() {
    let s = stripe_stack().await;
    let paying = new_paying_customer(&s).await;
    let started = Instant::now();
    set_seats(&s, &paying, 5).await;
    wait_for_mrr(&s.stack, &paying.customer, 5 * PRO_MONTHLY_SEAT).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let billing = customer_json(&s.stack, &paying.customer).await["billing"].clone();
    assert_eq!(billing["subscription_status"], "active", "{billing}");
    assert_eq!(billing["plan_names"], json!(["Pro"]), "{billing}");
    assert!(!billing["next_renewal"].is_null(), "{billing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stripe_webhook_is_fixed_by_the_nightly_pass() {
    let s = stripe_stack().await;
    let paying = new_paying_customer(&s).await;
    drop_webhooks(&s).await;
    set_seats(&s, &paying, 7).await;
    settle(&s).await;
    assert_eq!(
        usd_mrr(&s.stack, &paying.customer).await,
        Some(2 * PRO_MONTHLY_SEAT),
        "the dropped webhook changed nothing"
    );

    let before = s.stack.latest_run(&s.stripe).await.unwrap().unwrap().id;
    let tomorrow = Timestamp::now().plus(Duration::from_secs(24 * 3600));
    let swept = s
        .stack
        .app
        .engine
        .sweep(NightlyTime::DEFAULT.on_day_of(tomorrow))
        .await
        .unwrap();
    assert_eq!(swept.started, 2, "HubSpot and Stripe");
    let run = eventually("the nightly Stripe run to end", SYNC_TIMEOUT, || async {
        let run = s.stack.latest_run(&s.stripe).await.unwrap()?;
        (run.id != before && run.status != SyncRunStatus::Running).then_some(run)
    })
    .await;
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    assert!(run.counters.is_balanced(), "{:?}", run.counters);
    assert_eq!(
        usd_mrr(&s.stack, &paying.customer).await,
        Some(7 * PRO_MONTHLY_SEAT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_drops_mrr() {
    let s = stripe_stack().await;
    let paying = new_paying_customer(&s).await;
    s.stack
        .stripe_control(
            Method::DELETE,
            &format!(
                "/subscriptions/{}?account={STRIPE_ACCOUNT}",
                paying.subscription
            ),
            None,
        )
        .await
        .unwrap();
    wait_for_mrr(&s.stack, &paying.customer, 0).await;
    let billing = customer_json(&s.stack, &paying.customer).await["billing"].clone();
    assert_eq!(billing["mrr"], json!([]), "{billing}");
    assert_eq!(billing["subscription_status"], "canceled", "{billing}");
    assert!(billing["next_renewal"].is_null(), "{billing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stripe_customer_clears_mrr_but_keeps_the_customer() {
    let s = stripe_stack().await;
    let paying = new_paying_customer(&s).await;
    let control = s.stack.stripe_sandbox().unwrap().control();
    control
        .delete_customer_in(on_account(), &paying.stripe_customer)
        .await
        .unwrap();
    eventually("the billing fields to be cleared", LAND_TIMEOUT, || async {
        customer_json(&s.stack, &paying.customer).await["billing"]
            .is_null()
            .then_some(())
    })
    .await;
    let customer = customer_json(&s.stack, &paying.customer).await;
    assert!(customer["archived"].is_null(), "{customer}");
    let rows = eventually("a source_deleted log row", LAND_TIMEOUT, || async {
        let rows = log_rows_with(&s.stack, &s.stripe, "source_deleted").await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(
        rows[0]["record_id"],
        paying.stripe_customer.as_str(),
        "{rows:?}"
    );
    let link = s
        .stack
        .app
        .engine
        .store
        .get_link(
            &s.stack.tenant,
            &s.stack
                .source_ref(
                    Provider::Stripe,
                    ObjectKind::BillingCustomer,
                    paying.stripe_customer.as_str(),
                )
                .await
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(link.source_gone, "{link:?}");
}

// ---- authorization --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deauthorization_sets_reauthorize() {
    let s = stripe_stack().await;
    let control = s.stack.stripe_sandbox().unwrap().control();
    control.revoke_account(STRIPE_ACCOUNT).await.unwrap();
    eventually("the reauthorize status", LAND_TIMEOUT, || async {
        (get(&s.stack, &format!("/admin/connections/{}", s.stripe)).await["status"]
            == "reauthorize")
            .then_some(())
    })
    .await;
    eventually("an oauth_revoked log row", LAND_TIMEOUT, || async {
        (!log_rows_with(&s.stack, &s.stripe, "oauth_revoked")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    // HubSpot is not touched.
    assert_eq!(
        get(&s.stack, &format!("/admin/connections/{}", s.hubspot)).await["status"],
        "connected"
    );
}

// ---- matching -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_customer_is_matched_by_metadata_then_domain_and_an_unknown_one_is_listed_unmatched()
 {
    let s = stripe_stack().await;
    let by_metadata = s
        .seed
        .count(|e| matches!(e, ExpectedMatch::Metadata { .. }));
    let by_domain = s.seed.count(|e| matches!(e, ExpectedMatch::Domain { .. }));
    assert!(
        by_metadata >= 1 && by_domain >= 1,
        "{by_metadata} by metadata, {by_domain} by domain"
    );
    let open = get(&s.stack, "/admin/matches?status=open&limit=100").await;
    let open = open["items"].as_array().cloned().unwrap_or_default();
    for seeded in &s.seed.customers {
        let linked = billing_target(&s.stack, &seeded.id).await;
        match &seeded.expected {
            ExpectedMatch::Metadata { customer, .. } | ExpectedMatch::Domain { customer, .. } => {
                assert_eq!(linked.as_ref(), Some(customer), "{seeded:?}");
                assert!(
                    !customer_json(&s.stack, customer).await["billing"].is_null(),
                    "{seeded:?}"
                );
            }
            ExpectedMatch::Unmatched => {
                assert_eq!(linked, None, "{seeded:?}");
                let listed = open
                    .iter()
                    .find(|m| m["source_id"] == seeded.id.as_str())
                    .unwrap_or_else(|| panic!("{} is not listed: {open:?}", seeded.id));
                assert_eq!(listed["provider"], "stripe");
                assert_eq!(listed["candidates"], json!([]), "{listed}");
                assert_eq!(listed["source_name"], seeded.name.as_str());
            }
        }
    }
    let figures = s.stack.billing_figures().await.unwrap();
    assert_eq!(figures.unmatched, 2, "{figures:?}");
    assert_eq!(figures.customers_with_billing, by_metadata + by_domain);

    // Metadata wins over the domain: a customer naming one company, billed at another's
    // domain, goes to the company it names.
    let (named_company, named_customer) = companies_without_stripe(&s).await.remove(0);
    let other_domain = s
        .seed
        .customers
        .iter()
        .find(|c| matches!(c.expected, ExpectedMatch::Domain { .. }))
        .and_then(|c| c.email.clone())
        .unwrap();
    let control = s.stack.stripe_sandbox().unwrap().control();
    let both = control
        .create_customer_in(
            on_account(),
            CustomerInput {
                name: Some("Names One, Billed At Another".into()),
                email: Some(other_domain.replace("billing@", "ap@")),
                metadata: Some(
                    [("hubspot_company_id".to_owned(), named_company.to_string())].into(),
                ),
                ..CustomerInput::default()
            },
        )
        .await
        .unwrap();
    let linked = eventually("the new Stripe customer to be linked", LAND_TIMEOUT, || {
        billing_target(&s.stack, &both)
    })
    .await;
    assert_eq!(linked, named_customer);
    let stored = s
        .stack
        .app
        .engine
        .store
        .find_pending_match_for_source(
            &s.stack.tenant,
            Provider::Stripe,
            ObjectKind::BillingCustomer,
            &SourceId::parse(both.as_str()).unwrap(),
        )
        .await
        .unwrap();
    assert!(
        stored
            .as_ref()
            .is_none_or(|m| m.status != PendingMatchStatus::Open),
        "{stored:?}"
    );
}

// ---- resync ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_from_stripe_refreshes_one_customer() {
    let s = stripe_stack().await;
    let paying = new_paying_customer(&s).await;
    drop_webhooks(&s).await;
    set_seats(&s, &paying, 3).await;
    settle(&s).await;
    assert_eq!(
        usd_mrr(&s.stack, &paying.customer).await,
        Some(2 * PRO_MONTHLY_SEAT)
    );

    let (status, report) = s
        .stack
        .admin(
            Method::POST,
            &format!(
                "/admin/customers/{}/resync?provider=stripe",
                paying.customer
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["records"], 1, "{report}");
    assert_eq!(
        usd_mrr(&s.stack, &paying.customer).await,
        Some(3 * PRO_MONTHLY_SEAT),
        "{report}"
    );
}
