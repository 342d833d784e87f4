//! End to end: the HubSpot sandbox, the service over HTTP with its pollers, on DynamoDB and
//! SQS (moto). Every test starts its own stack on a fresh table and fresh queues.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use connector::ports::PageRequest;
use connector::{
    ConnectionId, LinkTarget, NightlyTime, ObjectKind, Provider, SyncRun, SyncRunStatus,
    SyncTrigger, TenantId, Timestamp,
};
use hubspot_sandbox::config::Faults;
use hubspot_sandbox::{ControlClient, SandboxConfig};
use integration_tests::adapters::{dynamodb_store, sqs_queue};
use integration_tests::captured_logs::captured_logs;
use integration_tests::waiting::eventually;
use local_stack::{Ports, RunningStack, ServerOptions, StackOptions};

const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
const LAND_TIMEOUT: Duration = Duration::from_secs(30);

fn options(companies: usize, contacts: usize) -> StackOptions {
    StackOptions {
        sandbox: SandboxConfig {
            companies,
            contacts,
            ..SandboxConfig::default()
        },
        server: ServerOptions {
            sweep_every: None,
            ..ServerOptions::default()
        },
        ..StackOptions::default()
    }
}

async fn moto_ports() -> Ports {
    Ports {
        store: Arc::new(dynamodb_store().await),
        records: Arc::new(sqs_queue(5).await),
        reconciles: Arc::new(sqs_queue(5).await),
    }
}

/// Starts the stack, connects through OAuth and waits for the initial sync to finish.
async fn stack_with(options: StackOptions) -> (RunningStack, ConnectionId) {
    let stack = local_stack::start(options, moto_ports().await)
        .await
        .expect("the stack starts");
    let connection = stack.connect_hubspot().await.expect("OAuth connect");
    let run = stack
        .wait_for_sync(&connection, SYNC_TIMEOUT, |_| {})
        .await
        .expect("the initial sync ends");
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    (stack, connection)
}

async fn stack(companies: usize, contacts: usize) -> (RunningStack, ConnectionId) {
    stack_with(options(companies, contacts)).await
}

fn control(stack: &RunningStack) -> ControlClient {
    stack.sandbox.control()
}

async fn get(stack: &RunningStack, path: &str) -> Value {
    let (status, body) = stack
        .admin(Method::GET, path, None)
        .await
        .expect("admin API");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Every customer in one archived state (`false`, `true`, `all`).
async fn customers(stack: &RunningStack, archived: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/admin/customers?archived={archived}&limit=100");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(stack, &path).await;
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
}

/// The customer a HubSpot company is linked to.
async fn customer_of(stack: &RunningStack, company: &str) -> Option<String> {
    let link = stack
        .app
        .engine
        .store
        .get_link(
            &stack.tenant,
            &stack
                .source_ref(Provider::Hubspot, ObjectKind::Company, company)
                .await
                .unwrap(),
        )
        .await
        .unwrap()?;
    match link.target {
        LinkTarget::Customer(id) => Some(id.to_string()),
        LinkTarget::Contact(_) => None,
    }
}

/// The HubSpot ids of every linked record of one kind.
async fn linked_ids(
    stack: &RunningStack,
    connection: &ConnectionId,
    kind: ObjectKind,
) -> Vec<String> {
    let account = stack
        .app
        .engine
        .store
        .get_connection(&stack.tenant, connection)
        .await
        .unwrap()
        .and_then(|c| c.account_id)
        .expect("a connected connection");
    let mut out = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let links = stack
            .app
            .engine
            .store
            .list_links(
                &stack.tenant,
                Provider::Hubspot,
                &account,
                kind,
                page.clone(),
            )
            .await
            .unwrap();
        out.extend(links.items.iter().map(|l| l.source_id.to_string()));
        match links.next {
            Some(next) => page.cursor = Some(next),
            None => return out,
        }
    }
}

async fn customer_json(stack: &RunningStack, customer: &str) -> Value {
    get(stack, &format!("/admin/customers/{customer}")).await
}

async fn sandbox_name(stack: &RunningStack, company: &str) -> String {
    let record = control(stack)
        .record(hubspot_sandbox::model::ObjectKind::Companies, company)
        .await
        .unwrap();
    record["properties"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the customer of `company` carries `name`.
async fn wait_for_name(stack: &RunningStack, company: &str, name: &str) {
    wait_for_name_within(stack, company, name, LAND_TIMEOUT).await;
}

async fn wait_for_name_within(stack: &RunningStack, company: &str, name: &str, timeout: Duration) {
    eventually(
        &format!("company {company} to be named {name:?}"),
        timeout,
        || async {
            let customer = customer_of(stack, company).await?;
            (customer_json(stack, &customer).await["name"] == name).then_some(())
        },
    )
    .await;
}

async fn is_archived(stack: &RunningStack, customer: &str) -> bool {
    !customer_json(stack, customer).await["archived"].is_null()
}

/// Starts "Run sync now" and waits for that run to end.
/// Run sync now: the run it started.
async fn start_sync(stack: &RunningStack, connection: &ConnectionId) -> Value {
    let (status, run) = stack
        .admin(
            Method::POST,
            &format!("/admin/connections/{connection}/sync"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{run}");
    run
}

async fn sync_now(stack: &RunningStack, connection: &ConnectionId) -> SyncRun {
    let run = start_sync(stack, connection).await;
    wait_for_run(stack, connection, run["id"].as_str().unwrap()).await
}

async fn wait_for_run(stack: &RunningStack, connection: &ConnectionId, run_id: &str) -> SyncRun {
    eventually("the sync run to end", SYNC_TIMEOUT, || async {
        let run = stack.latest_run(connection).await.unwrap()?;
        (run.id.to_string() == run_id && run.status != SyncRunStatus::Running).then_some(run)
    })
    .await
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

async fn connection_json(stack: &RunningStack, connection: &ConnectionId) -> Value {
    get(stack, &format!("/admin/connections/{connection}")).await
}

/// The connection's notifications of `kind` in the tenant's feed, newest first.
async fn notifications_of(
    stack: &RunningStack,
    connection: &ConnectionId,
    kind: &str,
) -> Vec<Value> {
    get(stack, "/admin/notifications").await["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["connection_id"] == connection.as_str() && n["kind"] == kind)
        .collect()
}

/// Waits until the newest notification of `kind` on the connection is open (or closed),
/// and returns it.
async fn wait_for_notification(
    stack: &RunningStack,
    connection: &ConnectionId,
    kind: &str,
    open: bool,
) -> Value {
    let what = format!(
        "a{} {kind} notification",
        if open { "n open" } else { " closed" }
    );
    eventually(&what, LAND_TIMEOUT, || async {
        notifications_of(stack, connection, kind)
            .await
            .into_iter()
            .next()
            .filter(|n| n["open"] == open)
    })
    .await
}

/// Makes a new list of `members` the connection's company filter; returns the list's id
/// and the answer to the `PUT` (which names the pass it started).
async fn filter_to_new_list(
    stack: &RunningStack,
    connection: &ConnectionId,
    name: &str,
    members: &[String],
) -> (String, Value) {
    let sandbox = control(stack);
    let list = sandbox
        .create_list(name, hubspot_sandbox::model::ObjectKind::Companies)
        .await
        .unwrap();
    for company in members {
        sandbox
            .set_list_membership(&list, company, true)
            .await
            .unwrap();
    }
    let (status, body) = stack
        .admin(
            Method::PUT,
            &format!("/admin/connections/{connection}/filter"),
            Some(json!({"type": "list", "list_id": list})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    (list, body)
}

// ---- 1. initial sync ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_mirrors_every_company_and_contact() {
    let (stack, connection) = stack(20, 6).await;
    let run = stack.latest_run(&connection).await.unwrap().unwrap();
    assert!(run.counters.is_balanced(), "{:?}", run.counters);
    assert_eq!(run.counters.seen, 26, "{:?}", run.counters);
    assert_eq!(run.counters.failed, 0, "{:?}", run.counters);

    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    assert_eq!(companies.len(), 20);
    // Contacts without a mirrored company are skipped, the others mirrored.
    let contacts = linked_ids(&stack, &connection, ObjectKind::Contact)
        .await
        .len();
    assert!((1..=6).contains(&contacts), "{contacts} contacts mirrored");
    let active = customers(&stack, "false").await;
    assert_eq!(active.len(), 20);
    for company in &companies {
        let customer = customer_of(&stack, company).await.unwrap();
        let mirrored = active
            .iter()
            .find(|c| c["id"] == customer.as_str())
            .unwrap();
        assert_eq!(
            mirrored["name"],
            sandbox_name(&stack, company).await.as_str()
        );
    }
}

// ---- 2. webhooks ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_update_lands_in_seconds() {
    let (stack, connection) = stack(10, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let started = Instant::now();
    control(&stack)
        .update_company(&company, &[("name", "Renamed By Webhook")])
        .await
        .unwrap();
    wait_for_name(&stack, &company, "Renamed By Webhook").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

// ---- 3. dropped webhooks --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_webhook_is_caught_by_the_next_reconcile_and_counted_as_a_miss() {
    let (stack, connection) = stack_with(StackOptions {
        webhook_miss_grace: Some(Duration::ZERO),
        ..options(10, 0)
    })
    .await;
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    sandbox
        .update_company(&company, &[("name", "Changed Unseen")])
        .await
        .unwrap();
    sandbox.flush_webhooks().await.unwrap();
    // Dropped: nothing arrives on its own.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let customer = customer_of(&stack, &company).await.unwrap();
    assert_ne!(
        customer_json(&stack, &customer).await["name"],
        "Changed Unseen"
    );

    let run = sync_now(&stack, &connection).await;
    assert_eq!(run.status, SyncRunStatus::Completed);
    assert_eq!(
        customer_json(&stack, &customer).await["name"],
        "Changed Unseen"
    );
    assert!(run.counters.webhook_misses >= 1, "{:?}", run.counters);
    assert!(run.counters.is_balanced(), "{:?}", run.counters);
}

// ---- 4. duplicates and reordering -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_out_of_order_webhooks_change_nothing() {
    let (stack, connection) = stack(10, 0).await;
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            webhook_duplicate_rate: 1.0,
            webhook_reorder_rate: 0.5,
            ..Faults::default()
        })
        .await
        .unwrap();
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    for round in 0..3 {
        for company in companies.iter().take(3) {
            sandbox
                .update_company(company, &[("name", &format!("Round {round} of {company}"))])
                .await
                .unwrap();
        }
    }
    sandbox.flush_webhooks().await.unwrap();
    for company in companies.iter().take(3) {
        wait_for_name(&stack, company, &format!("Round 2 of {company}")).await;
    }
    // Late copies and held-back events arrive after: the mirror must not move.
    sandbox.flush_webhooks().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for company in &companies {
        let customer = customer_of(&stack, company).await.unwrap();
        assert_eq!(
            customer_json(&stack, &customer).await["name"],
            sandbox_name(&stack, company).await.as_str()
        );
    }
    assert_eq!(customers(&stack, "all").await.len(), 10);
}

// ---- 5, 6. archive, restore, delete ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_company_is_archived_and_a_restore_unarchives_it() {
    let (stack, connection) = stack(10, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let customer = customer_of(&stack, &company).await.unwrap();
    control(&stack).delete_company(&company).await.unwrap();
    eventually("the archive", LAND_TIMEOUT, || async {
        is_archived(&stack, &customer).await.then_some(())
    })
    .await;
    assert_eq!(
        customer_json(&stack, &customer).await["archived"]["reason"],
        "source_deleted"
    );
    control(&stack).restore_company(&company).await.unwrap();
    eventually("the restore", LAND_TIMEOUT, || async {
        (!is_archived(&stack, &customer).await).then_some(())
    })
    .await;
    assert_eq!(customer_of(&stack, &company).await.unwrap(), customer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_keeps_the_survivor_and_archives_the_merged_companys_customer() {
    let (stack, connection) = stack(10, 0).await;
    let ids = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let (survivor, merged) = (ids[0].clone(), ids[1].clone());
    let survivor_customer = customer_of(&stack, &survivor).await.unwrap();
    let merged_customer = customer_of(&stack, &merged).await.unwrap();
    let kept = control(&stack)
        .merge_companies(&survivor, &merged)
        .await
        .unwrap();
    eventually("the merged company's archive", LAND_TIMEOUT, || async {
        is_archived(&stack, &merged_customer).await.then_some(())
    })
    .await;
    assert!(!is_archived(&stack, &survivor_customer).await);
    assert_eq!(
        customer_of(&stack, &kept).await.as_deref(),
        Some(survivor_customer.as_str()),
        "the surviving HubSpot company stays linked to its customer"
    );
    // A full pass afterwards agrees: nothing more to archive, the survivor untouched.
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/connections/{connection}/sync"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let run = stack
        .wait_for_sync(&connection, SYNC_TIMEOUT, |_| {})
        .await
        .unwrap();
    assert_eq!(run.status, SyncRunStatus::Completed);
    assert!(!is_archived(&stack, &survivor_customer).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_customer_can_be_deleted_permanently_and_an_active_one_cannot() {
    let (stack, connection) = stack(10, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let customer = customer_of(&stack, &company).await.unwrap();
    let path = format!("/admin/customers/{customer}");
    let (status, body) = stack.admin(Method::DELETE, &path, None).await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(!is_archived(&stack, &customer).await);

    control(&stack).delete_company(&company).await.unwrap();
    eventually("the archive", LAND_TIMEOUT, || async {
        is_archived(&stack, &customer).await.then_some(())
    })
    .await;
    let (status, body) = stack.admin(Method::DELETE, &path, None).await.unwrap();
    assert_eq!(status, 204, "{body}");
    let (status, _) = stack.admin(Method::GET, &path, None).await.unwrap();
    assert_eq!(status, 404);
}

// ---- 7, 8, 9. auth, scopes, schema ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_sets_reauthorize_logs_oauth_revoked_and_reconnect_resumes_with_the_mapping_kept()
 {
    let logs = captured_logs();
    let (stack, connection) = stack(10, 0).await;
    let mapping = get(&stack, &format!("/admin/connections/{connection}/mapping")).await;
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let sandbox = control(&stack);
    sandbox.revoke_tokens().await.unwrap();
    sandbox
        .update_company(&companies[0], &[("name", "After Revoke")])
        .await
        .unwrap();
    eventually("the reauthorize status", LAND_TIMEOUT, || async {
        (connection_json(&stack, &connection).await["status"] == "reauthorize").then_some(())
    })
    .await;
    eventually("an oauth_revoked log row", LAND_TIMEOUT, || async {
        (!log_rows_with(&stack, &connection, "oauth_revoked")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    let broken = wait_for_notification(&stack, &connection, "connection_broken", true).await;
    assert_eq!(
        broken["link"],
        format!("/console/integrations#c-{connection}"),
        "{broken}"
    );
    assert!(
        broken["title"].as_str().unwrap().contains("reauthorize"),
        "{broken}"
    );
    assert!(broken["read_at"].is_null(), "{broken}");
    // More refused work is the same incident, not another notification.
    sandbox
        .update_company(&companies[2], &[("name", "Also After Revoke")])
        .await
        .unwrap();
    let id = broken["id"].as_str().unwrap();
    let (status, read) = stack
        .admin(
            Method::POST,
            &format!("/admin/notifications/{id}/read"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{read}");
    assert!(read["read_at"].is_string(), "{read}");

    // No token the sandbox issued shows in what the admin API answers, nor in anything
    // the service logged, at any level.
    let tokens = stack.sandbox.issued_tokens();
    assert!(!tokens.is_empty());
    let logged = logs.text();
    assert!(
        logged.contains(connection.as_str()),
        "the service's logs are captured"
    );
    for token in &tokens {
        assert!(
            !logged.contains(token.as_str()),
            "a token was logged: {}",
            logged
                .lines()
                .find(|l| l.contains(token.as_str()))
                .unwrap_or_default()
        );
    }
    let log = get(
        &stack,
        &format!("/admin/connections/{connection}/log?limit=100"),
    )
    .await;
    let mut answers = vec![
        log.to_string(),
        connection_json(&stack, &connection).await.to_string(),
    ];
    for row in log["items"].as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        answers.push(get(&stack, &format!("/admin/log/{id}")).await.to_string());
    }
    for token in &tokens {
        for answer in &answers {
            assert!(
                !answer.contains(token.as_str()),
                "a token leaked into {answer}"
            );
        }
    }

    stack.authorize(&connection).await.unwrap();
    assert_eq!(
        connection_json(&stack, &connection).await["status"],
        "connected"
    );
    let closed = wait_for_notification(&stack, &connection, "connection_broken", false).await;
    assert_eq!(closed["id"], broken["id"], "one incident, closed: {closed}");
    assert_eq!(
        notifications_of(&stack, &connection, "connection_broken")
            .await
            .len(),
        1
    );
    assert_eq!(
        get(&stack, &format!("/admin/connections/{connection}/mapping")).await,
        mapping
    );
    sandbox
        .update_company(&companies[1], &[("name", "After Reconnect")])
        .await
        .unwrap();
    wait_for_name(&stack, &companies[1], "After Reconnect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_scope_is_logged_as_permission_denied() {
    let (stack, connection) = stack(10, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let sandbox = control(&stack);
    sandbox
        .remove_scope("crm.objects.companies.read")
        .await
        .unwrap();
    sandbox
        .update_company(&company, &[("name", "Unreadable")])
        .await
        .unwrap();
    eventually("a permission_denied log row", LAND_TIMEOUT, || async {
        (!log_rows_with(&stack, &connection, "permission_denied")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    let customer = customer_of(&stack, &company).await.unwrap();
    assert_ne!(customer_json(&stack, &customer).await["name"], "Unreadable");
    // The connection names what HubSpot said is missing, for the admin to grant.
    let view = connection_json(&stack, &connection).await;
    assert_eq!(
        view["flags"]["missing_scopes"],
        json!(["crm.objects.companies.read"]),
        "{view}"
    );
    let denied = wait_for_notification(&stack, &connection, "permission_denied", true).await;
    assert!(
        denied["detail"]
            .as_str()
            .unwrap()
            .contains("crm.objects.companies.read"),
        "{denied}"
    );
    // Granted again and reauthorized: the condition clears, and so does the notification.
    sandbox
        .restore_scope("crm.objects.companies.read")
        .await
        .unwrap();
    stack.authorize(&connection).await.unwrap();
    wait_for_notification(&stack, &connection, "permission_denied", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_property_is_logged_as_field_mapping_invalid_while_other_fields_sync() {
    let (stack, connection) = stack_with(StackOptions {
        schema_ttl: Some(Duration::ZERO),
        ..options(10, 0)
    })
    .await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let sandbox = control(&stack);
    sandbox
        .delete_property(
            hubspot_sandbox::model::ObjectKind::Companies,
            "annualrevenue",
        )
        .await
        .unwrap();
    sandbox
        .update_company(&company, &[("name", "Still Syncing")])
        .await
        .unwrap();
    wait_for_name(&stack, &company, "Still Syncing").await;
    eventually("a field_mapping_invalid log row", LAND_TIMEOUT, || async {
        (!log_rows_with(&stack, &connection, "field_mapping_invalid")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
}

// ---- 10. ambiguous matches ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_match_waits_for_the_admin_and_the_resolution_sticks() {
    let (stack, connection) = stack(5, 0).await;
    let sandbox = control(&stack);
    let first = sandbox
        .create_company(&[("name", "Twin One"), ("domain", "twins.example")])
        .await
        .unwrap();
    wait_for_name(&stack, &first, "Twin One").await;
    let second = sandbox
        .create_company(&[("name", "Twin Two"), ("domain", "twins.example")])
        .await
        .unwrap();
    let pending = eventually("a pending match", LAND_TIMEOUT, || async {
        let open = get(&stack, "/admin/matches?status=open").await;
        open["items"]
            .as_array()?
            .iter()
            .find(|m| m["source_id"] == second.as_str())
            .cloned()
    })
    .await;
    assert!(
        customer_of(&stack, &second).await.is_none(),
        "linked before the admin chose"
    );
    // Passes while it waits count it held and log nothing more: one row for the match.
    for _ in 0..2 {
        let run = sync_now(&stack, &connection).await;
        assert_eq!(run.counters.held, 1, "{:?}", run.counters);
        assert_eq!(run.counters.failed, 0, "{:?}", run.counters);
        assert!(run.counters.is_balanced(), "{:?}", run.counters);
    }
    let rows = log_rows_with(&stack, &connection, "match_ambiguous").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let first_customer = customer_of(&stack, &first).await.unwrap();
    assert_eq!(pending["candidates"], json!([first_customer]));

    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/matches/{}/resolve", pending["id"].as_str().unwrap()),
            Some(json!({"action": "create_new"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for_name(&stack, &second, "Twin Two").await;
    let second_customer = customer_of(&stack, &second).await.unwrap();
    assert_ne!(second_customer, first_customer);

    // The choice sticks: a later change follows it without asking again.
    sandbox
        .update_company(&second, &[("name", "Twin Two Renamed")])
        .await
        .unwrap();
    wait_for_name(&stack, &second, "Twin Two Renamed").await;
    assert_eq!(customer_of(&stack, &second).await.unwrap(), second_customer);
    let open = get(&stack, "/admin/matches?status=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 0, "{open}");
}

// ---- 11. rate limits ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_resolves_without_admin_action() {
    let (stack, connection) = stack(10, 0).await;
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            burst_429: 3,
            ..Faults::default()
        })
        .await
        .unwrap();
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    for company in companies.iter().take(4) {
        sandbox
            .update_company(company, &[("name", &format!("Stormy {company}"))])
            .await
            .unwrap();
    }
    let started = Instant::now();
    for company in companies.iter().take(4) {
        wait_for_name_within(&stack, company, &format!("Stormy {company}"), SYNC_TIMEOUT).await;
    }
    eprintln!("429 storm resolved in {:?}", started.elapsed());
    let run = sync_now(&stack, &connection).await;
    assert_eq!(run.status, SyncRunStatus::Completed);
    assert_eq!(run.counters.failed, 0, "{:?}", run.counters);
    assert_eq!(
        connection_json(&stack, &connection).await["status"],
        "connected"
    );
}

// ---- 12. list filter ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_leaving_the_list_filter_is_archived() {
    // Four companies: small enough that membership is asked per record, not read from the
    // provider's list cache, and under the mass-archive floor.
    let (stack, connection) = stack(4, 0).await;
    let sandbox = control(&stack);
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let (list, body) = filter_to_new_list(&stack, &connection, "Customers", &companies).await;
    if let Some(run_id) = body["sync_run"]["id"].as_str() {
        wait_for_run(&stack, &connection, run_id).await;
    }
    assert_eq!(customers(&stack, "false").await.len(), 4);

    let leaver = &companies[0];
    sandbox
        .set_list_membership(&list, leaver, false)
        .await
        .unwrap();
    let run = sync_now(&stack, &connection).await;
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    let customer = customer_of(&stack, leaver).await.unwrap();
    assert_eq!(
        customer_json(&stack, &customer).await["archived"]["reason"],
        "left_filter"
    );
    assert_eq!(customers(&stack, "false").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_moving_out_of_the_lifecycle_stage_filter_is_archived_by_its_webhook() {
    let (stack, connection) = stack(10, 0).await;
    // Every stage the portal uses but one: nothing leaves when the filter is set.
    let kept_stages = [
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ];
    let (status, body) = stack
        .admin(
            Method::PUT,
            &format!("/admin/connections/{connection}/filter"),
            Some(json!({"type": "lifecycle_stage", "stages": kept_stages})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    if let Some(run_id) = body["sync_run"]["id"].as_str() {
        wait_for_run(&stack, &connection, run_id).await;
    }
    let active = customers(&stack, "false").await.len();
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let customer = customer_of(&stack, &company).await.unwrap();
    assert!(!is_archived(&stack, &customer).await);

    control(&stack)
        .update_company(&company, &[("lifecyclestage", "churned")])
        .await
        .unwrap();
    eventually("the archive", LAND_TIMEOUT, || async {
        is_archived(&stack, &customer).await.then_some(())
    })
    .await;
    assert_eq!(
        customer_json(&stack, &customer).await["archived"]["reason"],
        "left_filter"
    );
    assert_eq!(customers(&stack, "false").await.len(), active - 1);
}

// ---- 13. mass-archive guard -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mass_archive_guard_holds_and_the_admin_can_approve() {
    let (stack, connection) = stack(30, 0).await;
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let doomed: Vec<String> = companies.iter().take(8).cloned().collect();
    for company in &doomed {
        sandbox.delete_company(company).await.unwrap();
    }
    sync_now(&stack, &connection).await;
    let view = connection_json(&stack, &connection).await;
    assert_eq!(view["flags"]["archives_held"], true, "{view}");
    for company in &doomed {
        let customer = customer_of(&stack, company).await.unwrap();
        assert!(!is_archived(&stack, &customer).await);
    }
    wait_for_notification(&stack, &connection, "archives_held", true).await;

    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/connections/{connection}/archives/approve"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    if let Some(run_id) = body["sync_run"]["id"].as_str() {
        wait_for_run(&stack, &connection, run_id).await;
    }
    for company in &doomed {
        let customer = customer_of(&stack, company).await.unwrap();
        eventually("the approved archive", LAND_TIMEOUT, || async {
            is_archived(&stack, &customer).await.then_some(())
        })
        .await;
    }
    assert_eq!(customers(&stack, "false").await.len(), 22);
    assert_eq!(
        connection_json(&stack, &connection).await["flags"]["archives_held"],
        false
    );
    wait_for_notification(&stack, &connection, "archives_held", false).await;
}

// ---- 14, 15. admin actions ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_from_a_log_row_runs_the_job_again() {
    let (stack, connection) = stack(10, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let sandbox = control(&stack);
    sandbox
        .remove_scope("crm.objects.companies.read")
        .await
        .unwrap();
    sandbox
        .update_company(&company, &[("name", "Retried In")])
        .await
        .unwrap();
    let row = eventually("a failed log row", LAND_TIMEOUT, || async {
        log_rows_with(&stack, &connection, "permission_denied")
            .await
            .into_iter()
            .next()
    })
    .await;
    sandbox
        .restore_scope("crm.objects.companies.read")
        .await
        .unwrap();
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/log/{}/retry", row["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    wait_for_name(&stack, &company, "Retried In").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_one_customer_fetches_it_fresh() {
    let (stack, connection) = stack(10, 0).await;
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let customer = customer_of(&stack, &company).await.unwrap();
    sandbox
        .update_company(&company, &[("name", "Fetched Fresh")])
        .await
        .unwrap();
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/customers/{customer}/resync"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"], 1, "{body}");
    assert_eq!(
        customer_json(&stack, &customer).await["name"],
        "Fetched Fresh"
    );
}

// ---- 16. long reconciles --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_forced_to_span_several_invocations_loses_nothing() {
    let base = options(25, 5);
    let (split_stack, connection) = stack_with(StackOptions {
        server: ServerOptions {
            reconcile_budget: Duration::from_millis(20),
            ..base.server.clone()
        },
        ..base
    })
    .await;
    let run = split_stack.latest_run(&connection).await.unwrap().unwrap();
    assert!(run.invocations > 1, "{run:?}");
    assert!(run.counters.is_balanced(), "{:?}", run.counters);
    assert_eq!(run.counters.seen, 30, "{:?}", run.counters);

    // The same data synced in one invocation is the reference.
    let (whole, whole_connection) = stack(25, 5).await;
    assert_eq!(
        whole
            .latest_run(&whole_connection)
            .await
            .unwrap()
            .unwrap()
            .invocations,
        1
    );
    let names = |customers: Vec<Value>| {
        let mut names: Vec<String> = customers.iter().map(|c| c["name"].to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(customers(&split_stack, "all").await),
        names(customers(&whole, "all").await)
    );
    for kind in [ObjectKind::Company, ObjectKind::Contact] {
        let mut split = linked_ids(&split_stack, &connection, kind).await;
        let mut reference = linked_ids(&whole, &whole_connection, kind).await;
        split.sort();
        reference.sort();
        assert_eq!(split, reference, "{kind:?}");
    }
    let open = |body: Value| body["items"].as_array().unwrap().len();
    assert_eq!(
        open(get(&split_stack, "/admin/matches?status=open&limit=100").await),
        open(get(&whole, "/admin/matches?status=open&limit=100").await)
    );
}

// ---- 17, 18. security -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_tenants_id_gets_404_never_data() {
    let (stack, connection) = stack(3, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let customer = customer_of(&stack, &company).await.unwrap();
    let other = stack.app.admin_auth.as_ref().unwrap().issue(
        &TenantId::parse("other").unwrap(),
        Timestamp::now().plus(Duration::from_secs(3600)),
    );
    let http = reqwest::Client::new();
    for path in [
        format!("/admin/connections/{connection}"),
        format!("/admin/customers/{customer}"),
        format!("/admin/connections/{connection}/log"),
    ] {
        let response = http
            .get(format!("{}{path}", stack.base_url))
            .bearer_auth(other.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(&company) && !text.contains("\"name\""),
            "{path}: {text}"
        );
    }
    let response = http
        .delete(format!("{}/admin/customers/{customer}", stack.base_url))
        .bearer_auth(other.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(!customer_json(&stack, &customer).await["name"].is_null());

    // An id that is not one is refused before any lookup, with the reason.
    for path in [
        "/admin/connections/not%20an%20id/sync",
        "/admin/log/..%2F..%2Fx/retry",
        "/admin/matches/%24%7Bid%7D/resolve",
    ] {
        let response = http
            .post(format!("{}{path}", stack.base_url))
            .bearer_auth(other.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_request", "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_webhook_gets_401_and_writes_nothing() {
    let (stack, connection) = stack(3, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let before = customers(&stack, "all").await;
    let url = format!("{}/webhooks/hubspot", stack.base_url);
    let body = json!([{
        "eventId": 1, "subscriptionId": 1, "portalId": 62515, "appId": 54321,
        "occurredAt": Timestamp::now().as_millis(), "subscriptionType": "company.deletion",
        "attemptNumber": 0, "objectId": company.parse::<u64>().unwrap(), "changeSource": "CRM",
    }])
    .to_string();
    let now_ms = Timestamp::now().as_millis().to_string();
    let http = reqwest::Client::new();
    let send = |signature: Option<String>, body: String| {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request
                .header("X-HubSpot-Signature-v3", signature)
                .header("X-HubSpot-Request-Timestamp", now_ms.clone());
        }
        request.send()
    };

    let forged = send(Some("bm90IGEgc2lnbmF0dXJl".into()), body.clone())
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let answer: Value = forged.json().await.unwrap();
    assert_eq!(answer["code"], "bad_signature", "{answer}");

    let unsigned = send(None, body.clone()).await.unwrap();
    assert_eq!(unsigned.status(), 401);

    let secret = stack.sandbox.app().client_secret.clone();
    let malformed = "{not json".to_owned();
    let signature = hubspot_sandbox::signature::v3(
        &secret,
        "POST",
        &hubspot_sandbox::signature::v3_uri(&url),
        malformed.as_bytes(),
        &now_ms,
    );
    let bad_body = send(Some(signature), malformed).await.unwrap();
    assert_eq!(bad_body.status(), 400);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let customer = customer_of(&stack, &company).await.unwrap();
    assert!(!is_archived(&stack, &customer).await);
    assert_eq!(customers(&stack, "all").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_event_in_a_batch_costs_only_itself() {
    let (stack, connection) = stack(3, 0).await;
    let company = linked_ids(&stack, &connection, ObjectKind::Company).await[0].clone();
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    sandbox
        .update_company(&company, &[("name", "Renamed Beside A Bad Event")])
        .await
        .unwrap();
    let url = format!("{}/webhooks/hubspot", stack.base_url);
    let now = Timestamp::now().as_millis();
    let body = json!([
        {"eventId": "not-a-number", "portalId": 62515, "occurredAt": now,
         "subscriptionType": "company.propertyChange", "objectId": 1},
        {"eventId": 77, "subscriptionId": 1, "portalId": 62515, "appId": 54321,
         "occurredAt": now, "subscriptionType": "company.propertyChange",
         "propertyName": "name", "propertyValue": "Renamed Beside A Bad Event",
         "attemptNumber": 0, "objectId": company.parse::<u64>().unwrap()},
    ])
    .to_string();
    let now_ms = now.to_string();
    let signature = hubspot_sandbox::signature::v3(
        &stack.sandbox.app().client_secret,
        "POST",
        &hubspot_sandbox::signature::v3_uri(&url),
        body.as_bytes(),
        &now_ms,
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", signature)
        .header("X-HubSpot-Request-Timestamp", now_ms)
        .body(body)
        .send()
        .await
        .unwrap();
    // HubSpot never redelivers a batch answered with a 4xx: the good event must be taken.
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["enqueued"], 1, "{answer}");
    assert_eq!(answer["rejected"][0]["index"], 0, "{answer}");
    wait_for_name(&stack, &company, "Renamed Beside A Bad Event").await;
}

// ---- filters that name nothing -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_naming_what_the_portal_lacks_is_refused_with_422_and_nothing_changes() {
    let (stack, connection) = stack(6, 0).await;
    let before = customers(&stack, "all").await;
    let path = format!("/admin/connections/{connection}/filter");
    for (filter, named) in [
        (
            json!({"type": "lifecycle_stage", "stages": ["Nope"]}),
            "Nope",
        ),
        (json!({"type": "list", "list_id": "987654"}), "987654"),
        (
            json!({"type": "list", "list_id": "../../oauth/v1/access-tokens/x"}),
            "access-tokens",
        ),
        (
            json!({"type": "pipeline", "pipeline_id": "default"}),
            "default",
        ),
        (
            json!({"type": "lifecycle_stage", "stages": []}),
            "at least one",
        ),
    ] {
        let (status, body) = stack
            .admin(Method::PUT, &path, Some(filter.clone()))
            .await
            .unwrap();
        assert_eq!(status, 422, "{filter}: {body}");
        assert_eq!(body["code"], "filter_invalid", "{body}");
        assert!(body["detail"].as_str().unwrap().contains(named), "{body}");
    }
    let (_, stored) = stack.admin(Method::GET, &path, None).await.unwrap();
    assert_eq!(stored, json!({"type": "all"}));
    assert_eq!(customers(&stack, "all").await, before);

    // What the portal does offer, and a filter naming it is taken.
    let (status, choices) = stack
        .admin(Method::GET, &format!("{path}/choices"), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{choices}");
    let stages: Vec<&str> = choices["lifecycle_stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(stages.contains(&"customer"), "{choices}");
    let (status, body) = stack
        .admin(
            Method::PUT,
            &path,
            Some(json!({"type": "lifecycle_stage", "stages": stages})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_change_that_would_archive_past_the_guard_is_held_for_the_admin() {
    let (stack, connection) = stack(30, 0).await;
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let (_, body) = filter_to_new_list(&stack, &connection, "Two of thirty", &companies[..2]).await;
    let run_id = body["sync_run"]["id"].as_str().expect("a pass started");
    let run = wait_for_run(&stack, &connection, run_id).await;
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    assert_eq!(run.counters.archived, 0, "{run:?}");
    assert_eq!(customers(&stack, "false").await.len(), 30);
    let view = connection_json(&stack, &connection).await;
    assert_eq!(view["flags"]["archives_held"], true, "{view}");

    // Approved, the 28 leavers are archived.
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/connections/{connection}/archives/approve"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let run_id = body["sync_run"]["id"].as_str().unwrap();
    wait_for_run(&stack, &connection, run_id).await;
    assert_eq!(customers(&stack, "false").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_list_deleted_later_flags_the_connection_and_archives_nothing() {
    let (stack, connection) = stack(4, 0).await;
    let sandbox = control(&stack);
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let (list, body) = filter_to_new_list(&stack, &connection, "Soon gone", &companies).await;
    if let Some(run_id) = body["sync_run"]["id"].as_str() {
        wait_for_run(&stack, &connection, run_id).await;
    }
    sandbox.delete_list(&list).await.unwrap();

    // A webhook for a company of the vanished list: a log row, never a silent skip.
    sandbox
        .update_company(&companies[0], &[("name", "Renamed After The List Went")])
        .await
        .unwrap();
    let rows = eventually("a filter_invalid row", Duration::from_secs(20), || async {
        let rows = log_rows_with(&stack, &connection, "filter_invalid").await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(rows[0]["record_id"], companies[0].as_str(), "{rows:?}");
    assert!(rows[0]["retry_job"].is_object(), "{rows:?}");

    let run = sync_now(&stack, &connection).await;
    assert_eq!(run.status, SyncRunStatus::Failed, "{run:?}");
    assert_eq!(customers(&stack, "false").await.len(), 4);
    let view = connection_json(&stack, &connection).await;
    assert!(view["flags"]["filter_invalid_at"].is_string(), "{view}");
    assert!(
        view["banner"].as_str().unwrap().contains("filter"),
        "{view}"
    );
    wait_for_notification(&stack, &connection, "filter_invalid", true).await;
    // A valid filter clears the flag, and its notification closes.
    let (status, body) = stack
        .admin(
            Method::PUT,
            &format!("/admin/connections/{connection}/filter"),
            Some(json!({"type": "all"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for_notification(&stack, &connection, "filter_invalid", false).await;
    if let Some(run_id) = body["sync_run"]["id"].as_str() {
        wait_for_run(&stack, &connection, run_id).await;
    }
    // The failed pass was the filter's doing, told once: no sync_interrupted as well.
    assert!(
        notifications_of(&stack, &connection, "sync_interrupted")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_that_stops_moving_is_reported_interrupted_until_it_completes() {
    let mut options = options(5, 0);
    options.stuck_pass_after = Some(Duration::from_secs(2));
    options.server.sweep_every = Some(Duration::from_millis(500));
    let (stack, connection) = stack_with(options).await;
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            error_5xx_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    let run = start_sync(&stack, &connection).await;
    let stuck = wait_for_notification(&stack, &connection, "sync_interrupted", true).await;
    assert!(
        stuck["detail"].as_str().unwrap().contains("has not moved"),
        "{stuck}"
    );
    assert_eq!(get(&stack, "/admin/notifications").await["unread"], 1);

    sandbox.set_faults(&Faults::default()).await.unwrap();
    wait_for_run(&stack, &connection, run["id"].as_str().unwrap()).await;
    let closed = wait_for_notification(&stack, &connection, "sync_interrupted", false).await;
    assert_eq!(closed["id"], stuck["id"], "{closed}");
}

// ---- a second connection to the same portal ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_to_the_portal_takes_over_and_disconnecting_the_first_loses_nothing() {
    let (stack, first) = stack(5, 0).await;
    let companies = linked_ids(&stack, &first, ObjectKind::Company).await;
    let second = stack.connect_hubspot().await.unwrap();
    stack
        .wait_for_sync(&second, SYNC_TIMEOUT, |_| {})
        .await
        .unwrap();
    // One active connection per portal in a tenant: the older one stepped down.
    assert_eq!(
        connection_json(&stack, &first).await["status"],
        "disconnected"
    );
    assert_eq!(
        connection_json(&stack, &second).await["status"],
        "connected"
    );
    let (status, body) = stack
        .admin(
            Method::POST,
            &format!("/admin/connections/{first}/disconnect"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // Real time still reaches the active connection.
    control(&stack)
        .update_company(&companies[0], &[("name", "Renamed After The Takeover")])
        .await
        .unwrap();
    wait_for_name(&stack, &companies[0], "Renamed After The Takeover").await;

    // Its passes still see the records the first connection mirrored: a deletion archives.
    let sandbox = control(&stack);
    sandbox
        .set_faults(&Faults {
            webhook_drop_rate: 1.0,
            ..Faults::default()
        })
        .await
        .unwrap();
    sandbox.delete_company(&companies[1]).await.unwrap();
    let run = sync_now(&stack, &second).await;
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    let customer = customer_of(&stack, &companies[1]).await.unwrap();
    assert!(is_archived(&stack, &customer).await);
    assert_eq!(customers(&stack, "false").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_filter_change_moves_is_not_counted_as_webhook_misses() {
    let (stack, connection) = stack(4, 0).await;
    let companies = linked_ids(&stack, &connection, ObjectKind::Company).await;
    let (_, body) = filter_to_new_list(&stack, &connection, "Half", &companies[..2]).await;
    let run_id = body["sync_run"]["id"].as_str().expect("a pass started");
    let run = wait_for_run(&stack, &connection, run_id).await;
    assert_eq!(run.trigger, SyncTrigger::FilterChange);
    assert_eq!(run.counters.archived, 2, "{:?}", run.counters);
    assert_eq!(run.counters.webhook_misses, 0, "{:?}", run.counters);
}

// ---- schedules ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_starts_its_nightly_pass_at_its_own_time_once_a_day() {
    let (stack, connection) = stack(5, 0).await;
    let path = format!("/admin/connections/{connection}/schedule");
    for bad in ["02:07", "25:00", "noon"] {
        let (status, body) = stack
            .admin(Method::PUT, &path, Some(json!({"nightly_at": bad})))
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(bad), "{body}");
    }
    assert_eq!(
        connection_json(&stack, &connection).await["nightly_at"],
        "02:00"
    );
    let (status, view) = stack
        .admin(Method::PUT, &path, Some(json!({"nightly_at": "16:45"})))
        .await
        .unwrap();
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["nightly_at"], "16:45");

    let engine = &stack.app.engine;
    let tomorrow = Timestamp::now().plus(Duration::from_secs(24 * 3600));
    let time = |t: &str| NightlyTime::parse(t).unwrap().on_day_of(tomorrow);
    let initial = stack.latest_run(&connection).await.unwrap().unwrap();
    engine.sweep(time("16:30")).await.unwrap();
    assert_eq!(
        stack.latest_run(&connection).await.unwrap().unwrap().id,
        initial.id,
        "not yet its time (02:00 is another connection's)"
    );
    engine.sweep(time("16:45")).await.unwrap();
    let nightly = stack.latest_run(&connection).await.unwrap().unwrap();
    assert_ne!(nightly.id, initial.id);
    assert_eq!(nightly.trigger, SyncTrigger::Scheduled);
    let done = wait_for_run(&stack, &connection, nightly.id.as_str()).await;
    assert_eq!(done.status, SyncRunStatus::Completed, "{done:?}");
    // The next sweeps of the day start nothing more.
    engine.sweep(time("17:00")).await.unwrap();
    engine.sweep(time("23:45")).await.unwrap();
    assert_eq!(
        stack.latest_run(&connection).await.unwrap().unwrap().id,
        nightly.id
    );
}
