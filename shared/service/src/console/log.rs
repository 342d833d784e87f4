//! The log (View log): a connection's rows newest first, 30 days, filtered to errors only,
//! by error code and by record id; a row's details with what to do and Retry this record.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use connector::engine::admin::LogQuery;
use connector::ports::PageRequest;
use connector::{ConnectionId, ErrorCode, LogEntry, LogEntryId};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleResult, path_id, refusal};
use crate::app::App;

const ROWS_PER_PAGE: usize = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    errors_only: Option<String>,
    code: Option<String>,
    record: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let connection = app.engine.admin_connection(&session.tenant, &id).await?;
    let query = LogQuery::from_text(
        q.errors_only.is_some(),
        q.code.as_deref(),
        q.record.as_deref(),
    )?;
    let rows = app
        .engine
        .admin_log(
            &session.tenant,
            &id,
            &query,
            PageRequest {
                limit: ROWS_PER_PAGE,
                cursor: q.cursor.clone(),
            },
        )
        .await?;
    let name = page::provider_name(connection.provider);
    let mut kept = Vec::new();
    if query.errors_only {
        kept.push(("errors_only", "on"));
    }
    if let Some(code) = query.code {
        kept.push(("code", code.as_str()));
    }
    if let Some(record) = &query.record_id {
        kept.push(("record", record.as_str()));
    }
    let body = html! {
        h1 { (name) " log" }
        p.muted { "Newest first; rows are kept 30 days. " a href="/console/integrations" { "Back to Integrations" } }
        form.filters method="get" {
            label { input type="checkbox" name="errors_only" checked[query.errors_only]; " Errors only" }
            label for="code" { "Error code" }
            select id="code" name="code" {
                option value="" { "any" }
                @for c in ErrorCode::ALL {
                    option value=(c.as_str()) selected[query.code == Some(c)] { (c.as_str()) }
                }
            }
            label for="record" { "Record id" }
            input id="record" name="record" value=(query.record_id.as_deref().unwrap_or(""));
            button type="submit" { "Filter" }
        }
        @if rows.items.is_empty() {
            p.empty {
                @if query == LogQuery::default() {
                    "Nothing logged yet. Rows appear as records sync: Run sync now on Integrations starts a pass."
                } @else {
                    "No row matches these filters in the last 30 days. Clear a filter to see more."
                }
            }
        } @else {
            table.log {
                thead { tr { th { "When" } th { "Status" } th { "Code" } th { "Record" } th { "What happened" } } }
                tbody {
                    @for e in &rows.items { (row(e)) }
                }
            }
        }
        (page::next_page(rows.next.as_ref(), &kept, "Older rows"))
    };
    let shell = Shell {
        title: &format!("{name} log"),
        session: Some(&session),
        notice: None,
        refresh_secs: None,
    };
    Ok(page::render(shell, body).into_response())
}

fn row(e: &LogEntry) -> Markup {
    html! {
        tr class={ "status-" (page::log_status_name(e.status).to_lowercase()) } {
            td { a href={ "/console/log/" (e.id) } { (page::time(e.at)) } }
            td { (page::log_status_name(e.status)) }
            td { @if let Some(code) = e.error_code { code { (code.as_str()) } } }
            td { @if let Some(id) = &e.record_id { code { (id) } } }
            td { (e.message.as_deref().unwrap_or("")) }
        }
    }
}

#[derive(Deserialize)]
pub struct EntryQuery {
    retried: Option<String>,
}

pub async fn entry(
    State(app): State<Arc<App>>,
    session: Session,
    Path(entry): Path<String>,
    Query(q): Query<EntryQuery>,
) -> ConsoleResult {
    let id = path_id::<LogEntryId>(&entry)?;
    let notice = q.retried.is_some().then(|| {
        Notice::Done(
            "Sent again: the record syncs in a moment and a new row appears in the log.".into(),
        )
    });
    render_entry(&app, &session, &id, notice, StatusCode::OK).await
}

async fn render_entry(
    app: &App,
    session: &Session,
    id: &LogEntryId,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let e = app.engine.admin_log_entry(&session.tenant, id).await?;
    let customer = app.engine.customer_of_log_entry(&e).await?;
    let log = format!("/console/connections/{}/log", e.connection_id);
    let body = html! {
        h1 { "Log row" }
        p { a href=(log) { "Back to the log" } }
        dl.entry {
            dt { "When" } dd { (page::time(e.at)) }
            dt { "Provider" } dd { (page::provider_name(e.provider)) }
            dt { "Status" } dd { (page::log_status_name(e.status)) }
            dt { "Record id" } dd {
                @match &e.record_id { Some(id) => code { (id) }, None => span.muted { "none (a whole-connection event)" } }
                @if let Some(customer) = &customer { " · " a href={ "/console/customers/" (customer) } { "Open the customer" } }
            }
            @if let Some(kind) = e.object_kind { dt { "Object" } dd { (page::record_kind(kind)) } }
            @if let Some(contact) = &e.contact_id { dt { "Our contact" } dd { code { (contact) } } }
            @if let Some(message) = &e.message { dt { "What happened" } dd { (message) } }
            @if e.retry_count > 0 { dt { "Attempts" } dd { (e.retry_count + 1) } }
            @if let Some(due) = e.next_attempt_at { dt { "Next attempt" } dd { (page::time(due)) } }
            @if let Some(correlation) = &e.correlation_id { dt { "Correlation id" } dd { code { (correlation) } } }
        }
        (page::push_steps(&e.steps))
        @if let Some(code) = e.error_code {
            section.fix aria-label="What to do" {
                h2 { (code.title()) " " code { (code.as_str()) } }
                p { (code.meaning()) }
                p { (code.admin_action()) }
                @if let Some((href, label)) = fix_link(code, &e) {
                    p { a href=(href) { (label) } }
                }
            }
        }
        @if let Some(body) = &e.provider_response {
            h2 { "The provider's response" }
            pre.response { (body) }
        }
        @if e.retry_job.is_some() {
            (session.post_button(&format!("/console/log/{}/retry", e.id), &[], "Retry this record"))
        }
        @if e.error_code == Some(ErrorCode::Internal) {
            p { a href={ "/console/log/" (e.id) "/report" } download { "Download the report for support" } }
        }
    };
    let shell = Shell {
        title: "Log row",
        session: Some(session),
        notice,
        refresh_secs: None,
    };
    Ok((status, page::render(shell, body)).into_response())
}

/// The console screen an error code's fix happens on, where there is one yet.
fn fix_link(code: ErrorCode, e: &LogEntry) -> Option<(String, &'static str)> {
    let connection = format!("/console/connections/{}", e.connection_id);
    match code {
        ErrorCode::OauthRevoked | ErrorCode::PermissionDenied => Some((
            "/console/integrations".into(),
            "Reauthorize on Integrations",
        )),
        ErrorCode::FieldMappingInvalid => {
            Some((format!("{connection}/mapping"), "Open Field mapping"))
        }
        ErrorCode::MatchAmbiguous => Some(("/console/matches".into(), "Open Matches")),
        ErrorCode::FilterInvalid => {
            Some((format!("{connection}/filter"), "Open the company filter"))
        }
        _ => None,
    }
}

/// The row bundled for support, as a file to download.
pub async fn report(
    State(app): State<Arc<App>>,
    session: Session,
    Path(entry): Path<String>,
) -> ConsoleResult {
    let id = path_id::<LogEntryId>(&entry)?;
    let report = app.engine.support_report(&session.tenant, &id).await?;
    Ok(crate::http::report_download(&report))
}

pub async fn retry(
    State(app): State<Arc<App>>,
    Path(entry): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<LogEntryId>(&entry)?;
    let tenant = &posted.session.tenant;
    match app.engine.retry_log_entry(tenant, &id).await {
        Ok(_) => Ok(Redirect::to(&format!("/console/log/{id}?retried=1")).into_response()),
        Err(e) => {
            let (status, notice) = refusal(e.into())?;
            render_entry(&app, &posted.session, &id, Some(notice), status).await
        }
    }
}
