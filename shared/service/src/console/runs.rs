//! Runs: each pass's ledger (seen = applied + unchanged + archived + failed + held), its
//! webhook misses and duration; and Held archives: what the mass-archive guard holds back,
//! with Approve and Reject.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Deserialize;

use connector::ports::PageRequest;
use connector::{ConnectionId, ObjectKind, SyncRun, SyncRunStatus};

use super::integrations::Action;
use super::page::{self, Shell};
use super::session::Session;
use super::{ConsoleResult, path_id};
use crate::app::App;

const ROWS_PER_PAGE: usize = 50;

#[derive(Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
}

pub async fn runs(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let connection = app.engine.admin_connection(&session.tenant, &id).await?;
    let page = app
        .engine
        .admin_runs(
            &session.tenant,
            &id,
            PageRequest {
                limit: ROWS_PER_PAGE,
                cursor: q.cursor,
            },
        )
        .await?;
    let name = page::provider_name(connection.provider);
    let running = page
        .items
        .iter()
        .any(|r| r.status == SyncRunStatus::Running);
    let body = html! {
        p { a href="/console/integrations" { "Back to Integrations" } }
        h1 { (name) " runs" }
        p.muted { "Each full pass's ledger: once a run completes, seen = applied + unchanged + archived + failed + held. Webhook misses are changes the pass found that no webhook had delivered." }
        @if page.items.is_empty() {
            p.empty { "No run yet. Run sync now on Integrations starts one; the nightly reconciliation runs at 02:00 UTC." }
        } @else {
            table.runs {
                thead { tr {
                    th { "Started" } th { "Trigger" } th { "Status" } th { "Duration" }
                    th { "seen" } th { "applied" } th { "pushed" } th { "unchanged" } th { "archived" } th { "failed" } th { "held" }
                    th { "webhook misses" } th { "Ledger" }
                } }
                tbody { @for run in &page.items { (run_row(run)) } }
            }
        }
        (page::next_page(page.next.as_ref(), &[], "Older runs"))
    };
    let shell = Shell {
        session: Some(&session),
        refresh_secs: running.then_some(2),
        ..Shell::bare("Runs")
    };
    Ok(page::render(shell, body).into_response())
}

fn run_row(run: &SyncRun) -> Markup {
    let c = &run.counters;
    let accounted = c.accounted();
    let duration = run
        .finished_at
        .map(|end| format!("{:.1} s", end.since(run.started_at).as_secs_f64()));
    html! {
        tr data-run=(run.id) {
            td { (page::time(run.started_at)) }
            td { (page::trigger_name(run.trigger)) }
            td { (page::run_status_name(run.status)) }
            td { @match &duration { Some(d) => (d), None => span.muted { "running" } } }
            td { (c.seen) } td { (c.applied) } td { (c.pushed) } td { (c.unchanged) } td { (c.archived) }
            td { (c.failed) } td { (c.held) } td { (c.webhook_misses) }
            @match run.status {
                SyncRunStatus::Running => td.muted { "counting" },
                _ if c.is_balanced() => td.ok data-ledger="balanced" { "balanced" },
                _ => td.bad data-ledger="off" { (c.seen - accounted.min(c.seen)) " unaccounted" },
            }
        }
    }
}

pub async fn held(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let connection = app.engine.admin_connection(&session.tenant, &id).await?;
    let held = app
        .engine
        .held_archives(
            &session.tenant,
            &id,
            PageRequest {
                limit: ROWS_PER_PAGE,
                cursor: q.cursor,
            },
        )
        .await?;
    let mut rows = Vec::new();
    for archive in &held.archives.items {
        let customer = app
            .engine
            .customer_of_record(&connection, ObjectKind::Company, &archive.source_id)
            .await?;
        let customer = match customer {
            Some(id) => app.engine.admin_customer(&session.tenant, &id).await.ok(),
            None => None,
        };
        rows.push((archive, customer));
    }
    let base = format!("/console/connections/{id}");
    let body = html! {
        p { a href="/console/integrations" { "Back to Integrations" } }
        h1 { "Held archives" }
        @if rows.is_empty() {
            p.empty { "Nothing is held. When one pass would archive more customers than the mass-archive guard allows, they wait here for you instead." }
        } @else {
            p { "The last pass would archive these customers and stopped before it. Approve archives them all; Reject keeps them active." }
            table.held {
                thead { tr { th { "Customer" } th { "HubSpot company" } th { "Why" } } }
                tbody {
                    @for (archive, customer) in &rows {
                        tr {
                            td { @match customer {
                                Some(c) => a href={ "/console/customers/" (c.id) } { (c.name) },
                                None => span.muted { "not mirrored" },
                            } }
                            td { code { (archive.source_id) } }
                            td { (page::archive_reason(archive.reason)) }
                        }
                    }
                }
            }
            (page::next_page(held.archives.next.as_ref(), &[], "More held archives"))
            div.actions {
                (session.post_button(&format!("{base}/{}", Action::ApproveArchives.path()), &[], "Approve archives"))
                (session.post_button(&format!("{base}/{}", Action::RejectArchives.path()), &[], "Reject archives"))
            }
        }
    };
    let shell = Shell {
        session: Some(&session),
        ..Shell::bare("Held archives")
    };
    Ok(page::render(shell, body).into_response())
}
