//! Matches: each open match shows its source record beside every candidate customer (name,
//! domain, source ids) with Link to, Create new and Ignore. Source records that match no
//! customer (Stripe customers, mostly) are listed too, and link to a customer found by its
//! exact name or domain.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use connector::engine::admin::CustomerDetail;
use connector::ports::{ArchivedFilter, PageRequest};
use connector::{CustomerId, MatchResolution, PendingMatch, PendingMatchId, PendingMatchStatus};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleResult, path_id, refusal};
use crate::app::App;
use crate::http::error::ApiError;

const MATCHES_PER_PAGE: usize = 20;

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let notice = match q.done.as_deref() {
        Some("resolved") => Some(Notice::Done(
            "Resolved: the record syncs under your choice in a moment, and the choice sticks."
                .into(),
        )),
        _ => None,
    };
    render(&app, &session, q.cursor, notice, StatusCode::OK).await
}

async fn render(
    app: &App,
    session: &Session,
    cursor: Option<String>,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let page = app
        .engine
        .admin_matches(
            &session.tenant,
            PendingMatchStatus::Open,
            PageRequest {
                limit: MATCHES_PER_PAGE,
                cursor,
            },
        )
        .await?;
    let mut shown = Vec::new();
    for m in page.items {
        let mut candidates = Vec::new();
        for id in &m.candidates {
            match app.engine.admin_customer_detail(&session.tenant, id).await {
                Ok(detail) => candidates.push(detail),
                // Deleted since the match opened: not a candidate any more.
                Err(connector::engine::admin::AdminError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        shown.push((m, candidates));
    }
    let body = html! {
        h1 { "Matches" }
        p.muted { "Records the service would not guess about. Your choice is kept: the record follows it from now on." }
        @if shown.is_empty() {
            p.empty { "No open match. When a HubSpot company or a Stripe customer matches several customers, or none, it waits here for you." }
        }
        @for (m, candidates) in &shown {
            (open_match(session, m, candidates))
        }
        (page::next_page(page.next.as_ref(), &[], "More matches"))
    };
    let shell = Shell {
        session: Some(session),
        notice,
        ..Shell::bare("Matches")
    };
    Ok((status, page::render(shell, body)).into_response())
}

fn open_match(session: &Session, m: &PendingMatch, candidates: &[CustomerDetail]) -> Markup {
    let action = format!("/console/matches/{}/resolve", m.id);
    let button =
        |value: &str, label: &str| session.post_button(&action, &[("action", value)], label);
    html! {
        section.panel.match aria-label={ "Match for " (m.source_name) } {
            div.side-by-side {
                div.source {
                    h2 { (m.source_name) }
                    p.muted { (page::provider_name(m.provider)) " " (page::record_kind(m.object_kind)) " " code { (m.source_id) } }
                    p { "Domain: " @match &m.source_domain { Some(d) => (d), None => span.muted { "none" } } }
                    p.muted { "Waiting since " (page::time(m.created_at)) }
                }
                @if candidates.is_empty() {
                    div.candidate {
                        p { strong { "Matches no customer." } }
                        form method="post" action=(action) {
                            (session.csrf_field())
                            input type="hidden" name="action" value="link_to";
                            label for={ "find-" (m.id) } { "Link to the customer named or at the domain" }
                            input id={ "find-" (m.id) } name="find" required;
                            button type="submit" { "Link to" }
                        }
                    }
                }
                @for c in candidates {
                    div.candidate {
                        h3 { a href={ "/console/customers/" (c.customer.id) } { (c.customer.name) } }
                        p { "Domain: " @match &c.customer.domain { Some(d) => (d), None => span.muted { "none" } } }
                        p.muted {
                            @for s in &c.sources { (page::provider_name(s.provider)) " " code { (s.source_id) } " " }
                        }
                        (session.post_button(
                            &action,
                            &[("action", "link_to"), ("customer_id", c.customer.id.as_str())],
                            &format!("Link to {}", c.customer.name),
                        ))
                    }
                }
            }
            div.actions {
                (button("create_new", "Create new"))
                (button("ignore", "Ignore"))
            }
        }
    }
}

pub async fn resolve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<PendingMatchId>(&id)?;
    let tenant = &posted.session.tenant;
    let outcome = async {
        let resolution = match posted.field("action") {
            Some("create_new") => MatchResolution::CreateNew,
            Some("ignore") => MatchResolution::Ignore,
            Some("link_to") => MatchResolution::LinkTo {
                customer_id: chosen_customer(&app, &posted).await?,
            },
            _ => return Err(ApiError::bad_request("Pick Link to, Create new or Ignore.")),
        };
        app.engine
            .resolve_match(tenant, &id, resolution)
            .await
            .map_err(ApiError::from)
    }
    .await;
    match outcome {
        Ok(_) => Ok(Redirect::to("/console/matches?done=resolved").into_response()),
        Err(e) => {
            let (status, notice) = refusal(e)?;
            render(&app, &posted.session, None, Some(notice), status).await
        }
    }
}

/// A candidate's id, or the one customer whose exact name or domain the admin typed.
async fn chosen_customer(app: &App, posted: &Posted) -> Result<CustomerId, ApiError> {
    if let Some(id) = posted.field("customer_id") {
        return CustomerId::parse(id.to_owned()).map_err(|e| ApiError::bad_request(e.to_string()));
    }
    let find = posted
        .field("find")
        .ok_or_else(|| ApiError::bad_request("Type the customer's name or domain."))?;
    let found = app
        .engine
        .search_customers(&posted.session.tenant, find, ArchivedFilter::All)
        .await?;
    match found.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(ApiError::bad_request(format!(
            "No customer is named {find:?} or has that domain."
        ))),
        several => Err(ApiError::bad_request(format!(
            "{} customers are named {find:?} or have that domain: open Customers to tell them apart.",
            several.len()
        ))),
    }
}
