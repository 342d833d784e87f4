//! Conflicts: a two-way connection's conflict audit (30 days). Each row shows the field,
//! both values with where and when each was written, and the winner, with Restore for the
//! losing value.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use connector::ports::PageRequest;
use connector::{Conflict, ConflictId, ConnectionId, Side};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleResult, path_id, refusal};
use crate::app::App;

const CONFLICTS_PER_PAGE: usize = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let notice = (q.done.as_deref() == Some("restored")).then(|| {
        Notice::Done(
            "Restored: the value is ours again as a new change, and is being pushed to HubSpot."
                .into(),
        )
    });
    render(&app, &session, &id, q.cursor, notice, StatusCode::OK).await
}

async fn render(
    app: &App,
    session: &Session,
    id: &ConnectionId,
    cursor: Option<String>,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let page = app
        .engine
        .conflicts(
            &session.tenant,
            id,
            PageRequest {
                limit: CONFLICTS_PER_PAGE,
                cursor,
            },
        )
        .await?;
    let body = html! {
        p { a href="/console/integrations" { "Back to Integrations" } }
        h1 { "Conflicts" }
        p.muted { "Fields changed both here and in HubSpot since they last agreed. The later change won; the other value is kept here for 30 days." }
        @if page.items.is_empty() {
            p.empty { "No conflict in the last 30 days." }
        } @else {
            table.conflicts {
                thead { tr { th { "When" } th { "Contact" } th { "Field" } th { "Ours" } th { "HubSpot's" } th { "Won" } th {} } }
                tbody {
                    @for c in &page.items { (row(session, c)) }
                }
            }
        }
        (page::next_page(page.next.as_ref(), &[], "More conflicts"))
    };
    let shell = Shell {
        session: Some(session),
        notice,
        ..Shell::bare("Conflicts")
    };
    Ok((status, page::render(shell, body)).into_response())
}

fn row(session: &Session, c: &Conflict) -> Markup {
    let value = |v: &Option<String>| match v {
        Some(v) => html! { (v) },
        None => html! { span.muted { "empty" } },
    };
    html! {
        tr data-conflict=(c.id) {
            td { (page::time(c.at)) }
            td { code { (c.contact_id) } " " span.muted { "HubSpot " (c.record_id) } }
            td { code { (c.field.as_string()) } " " span.muted { (c.property) } }
            td { (value(&c.ours.value)) br; span.muted { "written " (page::time(c.ours.written_at)) } }
            td { (value(&c.theirs.value)) br; span.muted { "written " (page::time(c.theirs.written_at)) } }
            td data-winner=(c.winner.as_str()) { @match c.winner { Side::Ours => "Ours", Side::Theirs => "HubSpot's" } }
            td {
                @match c.restored_at {
                    Some(at) => span.muted { "Restored " (page::time(at)) },
                    None => (session.post_button(
                        &format!("/console/conflicts/{}/restore", c.id),
                        &[("connection", c.connection_id.as_str())],
                        "Restore the losing value",
                    )),
                }
            }
        }
    }
}

pub async fn restore(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<ConflictId>(&id)?;
    let connection = path_id::<ConnectionId>(posted.field("connection").unwrap_or(""))?;
    let session = &posted.session;
    match app.engine.restore_conflict(&session.tenant, &id).await {
        Ok(restored) => Ok(Redirect::to(&format!(
            "/console/connections/{}/conflicts?done=restored",
            restored.conflict.connection_id
        ))
        .into_response()),
        Err(e) => {
            let (status, notice) = refusal(e.into())?;
            render(&app, session, &connection, None, Some(notice), status).await
        }
    }
}
