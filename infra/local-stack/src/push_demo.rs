//! `make dev ARGS=--push-demo`: a second tenant connects the same sandbox portal
//! outbound (with write access, the company step and the newsletter list), gets a records
//! credential, and writes one lead through the records API; the demo waits for the push
//! and prints its steps. The demo tenant's inbound mirror then sees the new company come
//! back through its webhook.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use connector::{ConnectionId, Secret, TenantId};
use hubspot_sandbox::seed::LIST_NEWSLETTER;
use local_stack::RunningStack;

pub const TENANT: &str = "leads-demo";

pub struct PushDemo {
    pub tenant: TenantId,
    pub connection: ConnectionId,
    pub records_token: Secret,
}

pub async fn run(stack: &RunningStack) -> anyhow::Result<PushDemo> {
    let tenant = TenantId::parse(TENANT)?;
    let (status, created) = stack
        .admin_as(
            &tenant,
            Method::POST,
            "/admin/connections",
            Some(json!({"provider": "hubspot"})),
        )
        .await?;
    if status != 201 {
        bail!("creating the outbound connection answered {status}: {created}");
    }
    let connection = ConnectionId::parse(created["id"].as_str().context("connection id")?)?;
    let push = json!({
        "direction": "outbound",
        "push": {"company_step": "skip", "list_id": LIST_NEWSLETTER.to_string()},
    });
    let (status, set) = stack
        .admin_as(
            &tenant,
            Method::PUT,
            &format!("/admin/connections/{connection}/direction"),
            Some(push),
        )
        .await?;
    if status != 200 {
        bail!("setting the direction answered {status}: {set}");
    }
    // A pushing connection's consent asks for the write scopes.
    stack.authorize_as(&tenant, &connection).await?;
    let (status, token) = stack
        .admin_as(&tenant, Method::POST, "/admin/records-token", None)
        .await?;
    if status != 200 {
        bail!("the records token answered {status}: {token}");
    }
    let records_token = Secret::new(token["token"].as_str().context("a token")?);
    let lead = json!({"email": "ada@lovelace-demo.io", "first_name": "Ada", "last_name": "Lovelace", "job_title": "Analyst"});
    let (status, written) = stack
        .call(
            Method::POST,
            "/api/records/contacts",
            Some(lead),
            &records_token,
        )
        .await?;
    if status != 201 {
        bail!("the records API answered {status}: {written}");
    }
    let contact = written["contact"]["id"].as_str().context("contact id")?;
    let row = pushed_row(stack, &tenant, &connection, contact).await?;
    println!(
        "\npush demo: tenant `{TENANT}` connected the portal outbound and wrote a lead; {} in {} ms:",
        row["status"].as_str().unwrap_or("?"),
        row["duration_ms"]
    );
    for step in row["steps"].as_array().into_iter().flatten() {
        println!(
            "  {:<8} {:<15} {}",
            step["step"].as_str().unwrap_or(""),
            step["result"].as_str().unwrap_or(""),
            step["record_id"].as_str().unwrap_or("")
        );
    }
    Ok(PushDemo {
        tenant,
        connection,
        records_token,
    })
}

/// The push's final log row.
async fn pushed_row(
    stack: &RunningStack,
    tenant: &TenantId,
    connection: &ConnectionId,
    contact: &str,
) -> anyhow::Result<Value> {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, log) = stack
            .admin_as(
                tenant,
                Method::GET,
                &format!("/admin/connections/{connection}/log?limit=20"),
                None,
            )
            .await?;
        let done = log["items"].as_array().into_iter().flatten().find(|row| {
            row["contact_id"] == contact && (row["status"] == "pushed" || row["status"] == "failed")
        });
        if let Some(row) = done {
            return Ok(row.clone());
        }
        if Instant::now() > give_up {
            bail!("the lead's push did not end within a minute");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn print_usage(stack: &RunningStack, demo: &PushDemo) -> anyhow::Result<()> {
    let base = &stack.base_url;
    let connection = &demo.connection;
    let link = stack.console_sign_in_link(&demo.tenant)?;
    let admin = stack.admin_token_for(&demo.tenant)?;
    println!(
        "
Push (tenant `{TENANT}`, outbound; console sign-in {link}):
  export RECORDS_TOKEN='{records}'
  curl -s -X POST -H \"Authorization: Bearer $RECORDS_TOKEN\" -H 'Idempotency-Key: lead-2' -H 'content-type: application/json' {base}/api/records/contacts -d '{{\"email\":\"grace@hopper-demo.io\",\"first_name\":\"Grace\"}}'
  # its push's steps, in the outbound connection's log (the console's Log shows them too):
  curl -s -H \"Authorization: Bearer {admin}\" {base}/admin/connections/{connection}/log",
        records = demo.records_token.expose(),
        admin = admin.expose(),
    );
    Ok(())
}
