//! End to end, outbound: the product writes contacts through the records API and the
//! service pushes them into the HubSpot sandbox in steps, on DynamoDB and SQS (moto).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use connector::{ConnectionId, Secret, SyncRunStatus};
use hubspot_sandbox::config::{Faults, RateLimitConfig};
use hubspot_sandbox::model::ObjectKind as SandboxKind;
use hubspot_sandbox::seed::{LIST_CUSTOMERS, LIST_NEWSLETTER};
use hubspot_sandbox::{ControlClient, SandboxConfig};
use integration_tests::adapters::{dynamodb_store, sqs_queue};
use integration_tests::waiting::eventually;
use local_stack::{Ports, RunningStack, ServerOptions, StackOptions};

const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// A stack with a connected HubSpot connection that pushes under `push` (write scopes
/// granted at a Reauthorize that asked for them), and a records credential.
async fn outbound_stack(push: Value) -> (RunningStack, ConnectionId, String) {
    pushing_stack("outbound", push).await
}

/// The same for a connection that pushes in `direction` (`outbound` or `two_way`).
async fn pushing_stack(direction: &str, push: Value) -> (RunningStack, ConnectionId, String) {
    let options = StackOptions {
        sandbox: SandboxConfig {
            companies: 3,
            contacts: 0,
            ..SandboxConfig::default()
        },
        server: ServerOptions {
            sweep_every: None,
            ..ServerOptions::default()
        },
        schema_ttl: Some(Duration::ZERO),
        ..StackOptions::default()
    };
    let ports = Ports {
        store: Arc::new(dynamodb_store().await),
        records: Arc::new(sqs_queue(5).await),
        reconciles: Arc::new(sqs_queue(5).await),
    };
    let stack = local_stack::start(options, ports)
        .await
        .expect("the stack starts");
    let connection = stack.connect_hubspot().await.expect("OAuth connect");
    let run = stack
        .wait_for_sync(&connection, SYNC_TIMEOUT, |_| {})
        .await
        .expect("the initial sync ends");
    assert_eq!(run.status, SyncRunStatus::Completed, "{run:?}");
    let wanted = json!({"direction": direction, "push": push});
    let (status, refused) = set_direction(&stack, &connection, &wanted).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "permission_denied");
    assert!(
        refused["missing_scopes"]
            .as_array()
            .expect("scopes")
            .contains(&json!("crm.objects.contacts.write")),
        "{refused}"
    );
    stack
        .authorize_with_writes(&connection)
        .await
        .expect("reauthorize with write scopes");
    // The reauthorization's pass ends before pushes start: nothing else calls HubSpot.
    stack
        .wait_for_sync(&connection, SYNC_TIMEOUT, |_| {})
        .await
        .expect("the reauthorized pass ends");
    let (status, set) = set_direction(&stack, &connection, &wanted).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["direction"], direction);
    let (status, token) = stack
        .admin(Method::POST, "/admin/records-token", None)
        .await
        .expect("admin API");
    assert_eq!(status, 200, "{token}");
    let token = token["token"].as_str().expect("a token").to_owned();
    (stack, connection, token)
}

async fn set_direction(
    stack: &RunningStack,
    connection: &ConnectionId,
    body: &Value,
) -> (u16, Value) {
    stack
        .admin(
            Method::PUT,
            &format!("/admin/connections/{connection}/direction"),
            Some(body.clone()),
        )
        .await
        .expect("admin API")
}

async fn records(
    stack: &RunningStack,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    stack
        .call(method, path, body, &Secret::new(token))
        .await
        .expect("records API")
}

/// Writes a contact through the records API; returns its id.
async fn write_lead(stack: &RunningStack, token: &str, lead: Value) -> String {
    let (status, written) = records(
        stack,
        token,
        Method::POST,
        "/api/records/contacts",
        Some(lead),
    )
    .await;
    assert_eq!(status, 201, "{written}");
    written["contact"]["id"]
        .as_str()
        .expect("contact id")
        .to_owned()
}

/// Updates a contact through the records API; returns the answer.
async fn update_lead(stack: &RunningStack, token: &str, id: &str, change: Value) -> Value {
    let (status, updated) = records(
        stack,
        token,
        Method::PATCH,
        &format!("/api/records/contacts/{id}"),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    updated
}

/// The final log row of a contact's latest push (`pushed` or `failed`), newest first.
async fn push_row(
    stack: &RunningStack,
    connection: &ConnectionId,
    contact: &str,
    nth: usize,
) -> Value {
    eventually("the push's log row", PUSH_TIMEOUT, || async {
        let (_, log) = stack
            .admin(
                Method::GET,
                &format!("/admin/connections/{connection}/log?limit=100"),
                None,
            )
            .await
            .ok()?;
        let finals: Vec<Value> = log["items"]
            .as_array()?
            .iter()
            .filter(|row| row["contact_id"] == contact)
            .filter(|row| row["status"] == "pushed" || row["status"] == "failed")
            .cloned()
            .collect();
        (finals.len() > nth).then(|| finals[0].clone())
    })
    .await
}

fn step<'a>(row: &'a Value, name: &str) -> &'a Value {
    row["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["step"] == name))
        .unwrap_or_else(|| panic!("no {name} step in {row}"))
}

/// An admin GET that must answer 200.
async fn admin_get(stack: &RunningStack, path: &str) -> Value {
    let (status, body) = stack
        .admin(Method::GET, path, None)
        .await
        .expect("admin API");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn mapping_entries(stack: &RunningStack, connection: &ConnectionId) -> Vec<Value> {
    let mapping = admin_get(stack, &format!("/admin/connections/{connection}/mapping")).await;
    mapping["entries"].as_array().expect("entries").clone()
}

async fn set_mapping(
    stack: &RunningStack,
    connection: &ConnectionId,
    entries: &[Value],
) -> (u16, Value) {
    stack
        .admin(
            Method::PUT,
            &format!("/admin/connections/{connection}/mapping"),
            Some(json!({ "entries": entries })),
        )
        .await
        .expect("admin API")
}

fn control(stack: &RunningStack) -> ControlClient {
    stack.sandbox.control()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_pushed_with_its_contact_company_and_list_steps() {
    let push = json!({"company_step": "skip", "list_id": LIST_NEWSLETTER.to_string()});
    let (stack, connection, token) = outbound_stack(push).await;

    // Each credential works only where it belongs.
    let (status, _) = records(
        &stack,
        stack.admin_token.expose(),
        Method::POST,
        "/api/records/contacts",
        Some(json!({"email": "a@b.io"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = records(&stack, &token, Method::GET, "/admin/connections", None).await;
    assert_eq!(status, 401);
    let (status, refused) = records(
        &stack,
        &token,
        Method::POST,
        "/api/records/contacts",
        Some(json!({"email": "nope", "emial": 1})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = records(
        &stack,
        &token,
        Method::POST,
        "/api/records/contacts",
        Some(json!({"email": "not-an-email"})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");

    let lea = write_lead(
        &stack,
        &token,
        json!({"email": "Lea@NewCo.io", "first_name": "Lea", "last_name": "Lane"}),
    )
    .await;
    let row = push_row(&stack, &connection, &lea, 0).await;
    assert_eq!(row["status"], "pushed", "{row}");
    assert_eq!(step(&row, "contact")["result"], "created", "{row}");
    assert_eq!(step(&row, "company")["result"], "created", "{row}");
    assert_eq!(step(&row, "list")["result"], "added", "{row}");
    let hubspot_contact = row["record_id"]
        .as_str()
        .expect("the HubSpot contact")
        .to_owned();
    let contact = control(&stack)
        .record(SandboxKind::Contacts, &hubspot_contact)
        .await
        .unwrap();
    assert_eq!(contact["properties"]["email"], "lea@newco.io", "{contact}");
    assert_eq!(contact["properties"]["firstname"], "Lea", "{contact}");
    let company_id = step(&row, "company")["record_id"]
        .as_str()
        .expect("company")
        .to_owned();
    let company = control(&stack)
        .record(SandboxKind::Companies, &company_id)
        .await
        .unwrap();
    assert_eq!(
        company["properties"]["sync_company_key"], "newco.io",
        "{company}"
    );
    assert_eq!(company["properties"]["domain"], "newco.io", "{company}");

    // A create retried with its Idempotency-Key finds the contact it stored.
    let keyed = || {
        reqwest::Client::new()
            .post(format!("{}/api/records/contacts", stack.base_url))
            .bearer_auth(&token)
            .header("Idempotency-Key", "order-77")
            .json(&json!({"email": "kim@newco.io"}))
            .send()
    };
    let first = keyed().await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let again = keyed().await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["contact"]["id"], again["contact"]["id"], "{again}");
    assert_eq!(again["created"], false);

    // A second lead of the same domain finds the company; an update finds the contact.
    let max = write_lead(&stack, &token, json!({"email": "max@newco.io"})).await;
    let row = push_row(&stack, &connection, &max, 0).await;
    assert_eq!(step(&row, "company")["result"], "updated", "{row}");
    assert_eq!(step(&row, "company")["record_id"], company_id.as_str());
    let updated = update_lead(&stack, &token, &lea, json!({"job_title": "CTO"})).await;
    assert_eq!(updated["contact"]["first_name"], "Lea");
    let row = push_row(&stack, &connection, &lea, 1).await;
    assert_eq!(step(&row, "contact")["result"], "updated", "{row}");
    assert_eq!(row["record_id"], hubspot_contact.as_str());
    assert_eq!(step(&row, "list")["result"], "already_member", "{row}");
    let contact = control(&stack)
        .record(SandboxKind::Contacts, &hubspot_contact)
        .await
        .unwrap();
    assert_eq!(contact["properties"]["jobtitle"], "CTO", "{contact}");

    // A read-only property can never be pushed.
    let mut entries = mapping_entries(&stack, &connection).await;
    entries.push(json!({"object": "contact", "source_property": "associatedcompanyid", "target": "custom:company_id"}));
    let (status, refused) = set_mapping(&stack, &connection, &entries).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("read-only"), "{refused}");

    // An outbound connection mirrors nothing: it has no pass to run.
    let (status, refused) = stack
        .admin(
            Method::POST,
            &format!("/admin/connections/{connection}/sync"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_errors_are_typed_and_a_revoked_push_retries_after_reauthorize() {
    let (stack, connection, token) = outbound_stack(json!({"dedupe_by_email": false})).await;
    let sandbox = control(&stack);
    let failed = |lead: Value| {
        let stack = &stack;
        let token = token.clone();
        let connection = connection.clone();
        async move {
            let id = write_lead(stack, &token, lead).await;
            let row = push_row(stack, &connection, &id, 0).await;
            assert_eq!(row["status"], "failed", "{row}");
            row
        }
    };

    let row = failed(json!({"first_name": "No mail"})).await;
    assert_eq!(row["error_code"], "missing_email", "{row}");
    let row = failed(json!({"custom": {"unmapped": "x"}})).await;
    assert_eq!(row["error_code"], "nothing_to_sync", "{row}");

    let taken = sandbox
        .create_contact(&[("email", "taken@acme.io")])
        .await
        .unwrap();
    let row = failed(json!({"email": "taken@acme.io"})).await;
    assert_eq!(row["error_code"], "contact_exists", "{row}");
    assert_eq!(step(&row, "contact")["result"], "failed", "{row}");
    assert!(row["message"].as_str().unwrap().contains(&taken), "{row}");
    let entry = row["id"].as_str().unwrap();
    let (status, shown) = stack
        .admin(Method::GET, &format!("/admin/log/{entry}"), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["error"]["code"], "contact_exists", "{shown}");
    assert!(
        shown["error"]["fix"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "{shown}"
    );
    let (status, report) = stack
        .admin(Method::GET, &format!("/admin/log/{entry}/report"), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["entry"]["id"], entry, "{report}");
    assert!(
        report["entry"]["provider_response"].as_str().is_some(),
        "{report}"
    );

    // An enumeration refuses a value: the row names the property, the value and options.
    let mut entries = mapping_entries(&stack, &connection).await;
    entries.push(
        json!({"object": "contact", "source_property": "lifecyclestage", "target": "custom:stage"}),
    );
    let (status, body) = set_mapping(&stack, &connection, &entries).await;
    assert_eq!(status, 200, "{body}");
    let row = failed(json!({"email": "stage@acme.io", "custom": {"stage": "nope"}})).await;
    assert_eq!(row["error_code"], "invalid_property_value", "{row}");
    let message = row["message"].as_str().unwrap();
    assert!(
        message.contains("lifecyclestage") && message.contains("nope"),
        "{row}"
    );
    assert!(message.contains("lead"), "the options are listed: {row}");
    assert!(
        row["provider_response"]
            .as_str()
            .unwrap()
            .contains("INVALID_OPTION"),
        "{row}"
    );

    // A mapped property deleted at HubSpot is named.
    sandbox
        .delete_property(SandboxKind::Contacts, "jobtitle")
        .await
        .unwrap();
    let row = failed(json!({"email": "gone@acme.io", "job_title": "CEO"})).await;
    assert_eq!(row["error_code"], "field_mapping_invalid", "{row}");
    assert!(
        row["message"].as_str().unwrap().contains("jobtitle"),
        "{row}"
    );
    entries.retain(|e| e["source_property"] != "jobtitle");
    let (status, body) = set_mapping(&stack, &connection, &entries).await;
    assert_eq!(status, 200, "{body}");

    sandbox
        .remove_scope("crm.objects.contacts.write")
        .await
        .unwrap();
    let row = failed(json!({"email": "scope@acme.io"})).await;
    assert_eq!(row["error_code"], "permission_denied", "{row}");
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .contains("crm.objects.contacts.write"),
        "{row}"
    );
    sandbox
        .restore_scope("crm.objects.contacts.write")
        .await
        .unwrap();

    // Revoked: the push ends oauth_revoked with a Retry that works after Reauthorize.
    sandbox.revoke_tokens().await.unwrap();
    let revoked = write_lead(&stack, &token, json!({"email": "late@acme.io"})).await;
    let row = push_row(&stack, &connection, &revoked, 0).await;
    assert_eq!(row["error_code"], "oauth_revoked", "{row}");
    let (_, view) = stack
        .admin(
            Method::GET,
            &format!("/admin/connections/{connection}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(view["status"], "reauthorize", "{view}");
    stack.authorize(&connection).await.expect("reauthorize");
    let (status, retried) = stack
        .admin(
            Method::POST,
            &format!("/admin/log/{}/retry", row["id"].as_str().unwrap()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{retried}");
    let row = push_row(&stack, &connection, &revoked, 1).await;
    assert_eq!(row["status"], "pushed", "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_company_step_skips_or_fails_the_sync_as_set_and_a_dynamic_list_is_skipped() {
    let push = json!({"company_step": "skip", "list_id": LIST_CUSTOMERS.to_string()});
    let (stack, connection, token) = outbound_stack(push).await;
    let sandbox = control(&stack);
    let first = write_lead(&stack, &token, json!({"email": "ada@dyn.io"})).await;
    let row = push_row(&stack, &connection, &first, 0).await;
    assert_eq!(row["status"], "pushed", "{row}");
    assert_eq!(step(&row, "list")["result"], "skipped", "{row}");
    assert!(
        step(&row, "list")["detail"]
            .as_str()
            .unwrap()
            .contains("dynamic"),
        "{row}"
    );

    sandbox
        .remove_scope("crm.objects.companies.write")
        .await
        .unwrap();
    let skipped = write_lead(&stack, &token, json!({"email": "bo@other.io"})).await;
    let row = push_row(&stack, &connection, &skipped, 0).await;
    assert_eq!(row["status"], "pushed", "{row}");
    assert_eq!(step(&row, "contact")["result"], "created", "{row}");
    assert_eq!(step(&row, "company")["result"], "failed", "{row}");
    assert_eq!(row["error_code"], "permission_denied", "{row}");

    let fail_sync = json!({"direction": "outbound", "push": {"company_step": "fail_sync"}});
    let (status, body) = set_direction(&stack, &connection, &fail_sync).await;
    assert_eq!(status, 200, "{body}");
    let failing = write_lead(&stack, &token, json!({"email": "cy@third.io"})).await;
    let row = push_row(&stack, &connection, &failing, 0).await;
    assert_eq!(row["status"], "failed", "{row}");
    assert_eq!(row["error_code"], "permission_denied", "{row}");
    assert_eq!(step(&row, "contact")["result"], "created", "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_leaves_a_retrying_row_with_its_due_time_then_the_push_lands() {
    let (stack, connection, token) = outbound_stack(json!({})).await;
    let sandbox = control(&stack);
    sandbox
        .set_rate_limits(&RateLimitConfig {
            send_retry_after: false,
            ..RateLimitConfig::default()
        })
        .await
        .unwrap();
    // More 429s than one attempt's tries: the first attempt fails, the next one lands.
    sandbox
        .set_faults(&Faults {
            burst_429: 6,
            ..Faults::default()
        })
        .await
        .unwrap();
    let stormy = write_lead(&stack, &token, json!({"email": "storm@acme.io"})).await;
    let row = push_row(&stack, &connection, &stormy, 0).await;
    assert_eq!(row["status"], "pushed", "{row}");
    let (_, log) = stack
        .admin(
            Method::GET,
            &format!("/admin/connections/{connection}/log?limit=100"),
            None,
        )
        .await
        .unwrap();
    let retrying: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["contact_id"] == stormy.as_str() && r["status"] == "retrying")
        .collect();
    assert_eq!(retrying.len(), 1, "{log}");
    assert_eq!(retrying[0]["error_code"], "rate_limited");
    assert!(
        retrying[0]["next_attempt_at"].is_string(),
        "{}",
        retrying[0]
    );
    assert_eq!(row["retry_count"], 1, "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_lead_checks_each_property_pushes_a_disposable_contact_and_deletes_it() {
    let push = json!({"company_step": "skip", "list_id": LIST_NEWSLETTER.to_string()});
    let (stack, connection, _) = outbound_stack(push).await;
    let sandbox = control(&stack);
    let test_lead = format!("/admin/connections/{connection}/test-lead");
    let (status, report) = stack.admin(Method::POST, &test_lead, None).await.unwrap();
    assert_eq!(status, 200, "{report}");
    let checks = report["properties"].as_array().expect("checks");
    assert!(checks.len() >= 5, "{report}");
    assert!(checks.iter().all(|c| c["problem"].is_null()), "{report}");
    assert!(report["error"].is_null(), "{report}");
    assert_eq!(step(&report, "contact")["result"], "created", "{report}");
    assert_eq!(step(&report, "list")["result"], "added", "{report}");
    let email = report["email"].as_str().unwrap();
    assert!(
        email.starts_with("sync-test+") && email.ends_with("@example.com"),
        "{report}"
    );
    let contact = report["contact"]
        .as_str()
        .expect("the test contact")
        .to_owned();
    let at_hubspot = sandbox
        .record(SandboxKind::Contacts, &contact)
        .await
        .unwrap();
    assert_eq!(at_hubspot["properties"]["email"], email, "{at_hubspot}");

    // Only a test lead can be deleted this way.
    let real = sandbox
        .create_contact(&[("email", "real@acme.io")])
        .await
        .unwrap();
    let (status, refused) = stack
        .admin(Method::DELETE, &format!("{test_lead}/{real}"), None)
        .await
        .unwrap();
    assert_eq!(status, 409, "{refused}");
    let (status, body) = stack
        .admin(Method::DELETE, &format!("{test_lead}/{contact}"), None)
        .await
        .unwrap();
    assert_eq!(status, 204, "{body}");
    let at_hubspot = sandbox
        .record(SandboxKind::Contacts, &contact)
        .await
        .unwrap();
    assert_eq!(at_hubspot["archived"], true, "{at_hubspot}");

    // A mapped property deleted at HubSpot is named, and nothing is pushed.
    sandbox
        .delete_property(SandboxKind::Contacts, "jobtitle")
        .await
        .unwrap();
    let (status, report) = stack.admin(Method::POST, &test_lead, None).await.unwrap();
    assert_eq!(status, 200, "{report}");
    let jobtitle = report["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["property"] == "jobtitle")
        .cloned()
        .expect("jobtitle is checked");
    assert!(jobtitle["problem"].as_str().is_some(), "{report}");
    assert_eq!(report["error"]["code"], "field_mapping_invalid", "{report}");
    assert!(report["contact"].is_null(), "{report}");
}

async fn our_contact(stack: &RunningStack, token: &str, id: &str) -> Value {
    let (status, body) = records(
        stack,
        token,
        Method::GET,
        &format!("/api/records/contacts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn conflicts(stack: &RunningStack, connection: &ConnectionId) -> Vec<Value> {
    let page = admin_get(stack, &format!("/admin/connections/{connection}/conflicts")).await;
    page["items"].as_array().expect("items").clone()
}

/// The log rows a record's applies left (what came in from HubSpot).
async fn applied_rows(stack: &RunningStack, connection: &ConnectionId, record: &str) -> usize {
    let log = admin_get(
        stack,
        &format!("/admin/connections/{connection}/log?limit=200&record_id={record}"),
    )
    .await;
    log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|row| row["status"] == "applied")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_edits_resolve_last_write_wins_with_an_audit_a_restore_and_no_echo() {
    let (stack, connection, token) = pushing_stack("two_way", json!({})).await;
    let sandbox = control(&stack);
    let lea = write_lead(
        &stack,
        &token,
        json!({"email": "lea@newco.io", "first_name": "Lea", "last_name": "Lane"}),
    )
    .await;
    let row = push_row(&stack, &connection, &lea, 0).await;
    assert_eq!(row["status"], "pushed", "{row}");
    assert_eq!(step(&row, "contact")["result"], "created", "{row}");
    let hubspot = row["record_id"].as_str().expect("record").to_owned();
    let record = sandbox
        .record(SandboxKind::Contacts, &hubspot)
        .await
        .unwrap();
    assert_eq!(record["properties"]["sync_contact_key"], lea, "{record}");

    // Changed in HubSpot only: the change comes in.
    sandbox
        .update_contact(&hubspot, &[("firstname", "Leah")])
        .await
        .unwrap();
    eventually("HubSpot's first name here", PUSH_TIMEOUT, || async {
        (our_contact(&stack, &token, &lea).await["first_name"] == "Leah").then_some(())
    })
    .await;

    // Changed on both sides, ours later: ours wins and HubSpot's value is kept.
    sandbox
        .set_webhooks(json!({"auto_deliver": false}))
        .await
        .unwrap();
    sandbox
        .update_contact(&hubspot, &[("lastname", "Lane-HubSpot")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    update_lead(&stack, &token, &lea, json!({"last_name": "Lane-Ours"})).await;
    let row = push_row(&stack, &connection, &lea, 1).await;
    assert_eq!(row["status"], "pushed", "{row}");
    let record = sandbox
        .record(SandboxKind::Contacts, &hubspot)
        .await
        .unwrap();
    assert_eq!(record["properties"]["lastname"], "Lane-Ours", "{record}");
    assert_eq!(record["properties"]["firstname"], "Leah", "{record}");
    let audit = conflicts(&stack, &connection).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["field"], "last_name");
    assert_eq!(audit[0]["winner"], "ours");
    assert_eq!(audit[0]["theirs"]["value"], "Lane-HubSpot");
    assert_eq!(audit[0]["ours"]["value"], "Lane-Ours");

    // Changed on both sides, HubSpot later (our push could not write meanwhile): HubSpot
    // wins, here too, and our value is kept.
    sandbox
        .remove_scope("crm.objects.contacts.write")
        .await
        .unwrap();
    update_lead(&stack, &token, &lea, json!({"job_title": "CTO"})).await;
    let row = push_row(&stack, &connection, &lea, 2).await;
    assert_eq!(row["error_code"], "permission_denied", "{row}");
    sandbox
        .update_contact(&hubspot, &[("jobtitle", "CEO")])
        .await
        .unwrap();
    sandbox
        .restore_scope("crm.objects.contacts.write")
        .await
        .unwrap();
    sandbox
        .set_webhooks(json!({"auto_deliver": true}))
        .await
        .unwrap();
    let flushed = sandbox.flush_webhooks().await.unwrap();
    assert!(
        flushed
            .events
            .iter()
            .any(|e| e["changeSource"] == "INTEGRATION"
                && e["propertyName"] == "lastname"
                && e["propertyValue"] == "Lane-Ours"),
        "our push's own webhook came back: {:?}",
        flushed.events
    );
    eventually("HubSpot's later job title here", PUSH_TIMEOUT, || async {
        (our_contact(&stack, &token, &lea).await["job_title"] == "CEO").then_some(())
    })
    .await;
    let audit = conflicts(&stack, &connection).await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    let lost = &audit[0];
    assert_eq!(lost["field"], "job_title", "{lost}");
    assert_eq!(lost["winner"], "theirs");
    assert_eq!(lost["ours"]["value"], "CTO");
    assert_eq!(lost["theirs"]["value"], "CEO");

    // Restore writes the losing value back as a new change, pushed to HubSpot.
    let restore = format!("/admin/conflicts/{}/restore", lost["id"].as_str().unwrap());
    let (status, restored) = stack.admin(Method::POST, &restore, None).await.unwrap();
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["contact"]["job_title"], "CTO", "{restored}");
    assert!(
        restored["conflict"]["restored_at"].is_string(),
        "{restored}"
    );
    eventually("the restored value in HubSpot", PUSH_TIMEOUT, || async {
        let record = control(&stack)
            .record(SandboxKind::Contacts, &hubspot)
            .await
            .ok()?;
        (record["properties"]["jobtitle"] == "CTO").then_some(())
    })
    .await;
    let (status, again) = stack.admin(Method::POST, &restore, None).await.unwrap();
    assert_eq!(status, 409, "{again}");
    let (status, _) = stack
        .admin(
            Method::POST,
            "/admin/conflicts/not-a-conflict/restore",
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 404);

    // Our own writes came back as webhooks marked as ours: none was applied again. The
    // only applies are HubSpot's two edits (the stale last-name event found nothing new).
    sandbox.flush_webhooks().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(applied_rows(&stack, &connection, &hubspot).await, 2);
    assert_eq!(conflicts(&stack, &connection).await.len(), 2);
}
