//! Customers: the list (active, archived or all; search by name or domain) and a page per
//! customer with its fields, sources, billing, contacts, recent log rows, the ⋯ menu
//! (Resync from HubSpot, Resync from Stripe) and, once archived, Delete permanently
//! behind a confirmation.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use connector::engine::admin::{CustomerDetail, LogQuery};
use connector::ports::{ArchivedFilter, PageRequest};
use connector::{Customer, CustomerId, LogEntry, Provider, SourceLink};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleError, ConsoleResult, path_id, refusal};
use crate::app::App;
use crate::http::error::ApiError;

const CUSTOMERS_PER_PAGE: usize = 50;
const LOG_ROWS_PER_SOURCE: usize = 10;

#[derive(Deserialize)]
pub struct ListQuery {
    show: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

fn shown(raw: Option<&str>) -> (ArchivedFilter, &'static str) {
    match raw {
        Some("archived") => (ArchivedFilter::Archived, "archived"),
        Some("all") => (ArchivedFilter::All, "all"),
        _ => (ArchivedFilter::Active, "active"),
    }
}

pub async fn list(
    State(app): State<Arc<App>>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let (filter, show) = shown(q.show.as_deref());
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let (customers, next) = match search {
        Some(query) => (
            app.engine
                .search_customers(&session.tenant, query, filter)
                .await?,
            None,
        ),
        None => {
            let page = app
                .engine
                .admin_customers(
                    &session.tenant,
                    filter,
                    PageRequest {
                        limit: CUSTOMERS_PER_PAGE,
                        cursor: q.cursor.clone(),
                    },
                )
                .await?;
            (page.items, page.next)
        }
    };
    let body = html! {
        h1 { "Customers" }
        form.filters method="get" {
            label for="show" { "Show" }
            select id="show" name="show" {
                @for (value, label) in [("active", "Active"), ("archived", "Archived"), ("all", "All")] {
                    option value=(value) selected[show == value] { (label) }
                }
            }
            label for="q" { "Name or domain" }
            input id="q" name="q" type="search" value=(search.unwrap_or(""));
            button type="submit" { "Show" }
        }
        @if customers.is_empty() {
            p.empty {
                @match (search, show) {
                    (Some(_), _) => "No customer has exactly this name or domain. Check the spelling, or show all customers and browse.",
                    (None, "archived") => "No archived customer. A customer is archived when its HubSpot company is deleted or leaves the company filter.",
                    _ => "No customer yet. Customers arrive from HubSpot: connect it on Integrations, or Run sync now.",
                }
            }
        } @else {
            table.customers {
                thead { tr { th { "Name" } th { "Domain" } th { "Owner" } th { "MRR" } th { "Status" } } }
                tbody {
                    @for c in &customers {
                        tr {
                            td { a href={ "/console/customers/" (c.id) } { (display_name(c)) } }
                            td { @if let Some(d) = &c.domain { (d) } }
                            td { @if let Some(o) = &c.owner { (o) } }
                            td { (mrr(c)) }
                            td { @if c.archived.is_some() { "Archived" } @else { "Active" } }
                        }
                    }
                }
            }
        }
        (page::next_page(next.as_ref(), &[("show", show)], "More customers"))
    };
    let shell = Shell {
        session: Some(&session),
        ..Shell::bare("Customers")
    };
    Ok(page::render(shell, body).into_response())
}

fn display_name(c: &Customer) -> &str {
    if c.name.trim().is_empty() {
        "(no name)"
    } else {
        &c.name
    }
}

fn mrr(c: &Customer) -> Markup {
    match &c.billing {
        Some(b) if !b.mrr.is_empty() => {
            let amounts: Vec<String> = b.mrr.iter().map(ToString::to_string).collect();
            html! { (amounts.join(" + ")) }
        }
        _ => html! { span.muted { "none" } },
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

pub async fn show(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ConsoleResult {
    let id = path_id::<CustomerId>(&id)?;
    let notice = match q.done.as_deref() {
        Some("resynced") => Some(Notice::Done(
            "Resynced: the customer was read from the provider again just now.".into(),
        )),
        _ => None,
    };
    render(&app, &session, &id, notice, StatusCode::OK).await
}

async fn render(
    app: &App,
    session: &Session,
    id: &CustomerId,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let detail = app
        .engine
        .admin_customer_detail(&session.tenant, id)
        .await?;
    let log = recent_log(app, session, &detail.sources).await?;
    let body = customer_page(session, &detail, &log);
    let shell = Shell {
        session: Some(session),
        notice,
        ..Shell::bare(display_name(&detail.customer))
    };
    Ok((status, page::render(shell, body)).into_response())
}

/// The newest rows about the customer's own source records, across their connections.
async fn recent_log(
    app: &App,
    session: &Session,
    sources: &[SourceLink],
) -> Result<Vec<LogEntry>, ConsoleError> {
    let mut rows = Vec::new();
    for link in sources {
        let query = LogQuery {
            record_id: Some(link.source_id.to_string()),
            ..LogQuery::default()
        };
        let found = app
            .engine
            .admin_log(
                &session.tenant,
                &link.connection_id,
                &query,
                PageRequest::first(LOG_ROWS_PER_SOURCE),
            )
            .await;
        match found {
            Ok(page) => rows.extend(page.items),
            // The connection that wrote the link may be gone; the rest still shows.
            Err(connector::engine::admin::AdminError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.at));
    rows.truncate(LOG_ROWS_PER_SOURCE);
    Ok(rows)
}

fn customer_page(session: &Session, detail: &CustomerDetail, log: &[LogEntry]) -> Markup {
    let c = &detail.customer;
    let base = format!("/console/customers/{}", c.id);
    let has = |p: Provider| detail.sources.iter().any(|s| s.provider == p);
    html! {
        p { a href="/console/customers" { "All customers" } }
        h1 { (display_name(c)) }
        @if let Some(archival) = &c.archived {
            p.banner.disconnected role="status" {
                strong { "Archived" } " since " (page::time(archival.at)) " · " (page::archive_reason(archival.reason))
            }
        }
        details.menu {
            summary { "⋯ Actions" }
            @for provider in [Provider::Hubspot, Provider::Stripe] {
                @if has(provider) {
                    (session.post_button(
                        &format!("{base}/resync"),
                        &[("provider", provider.as_str())],
                        &format!("Resync from {}", page::provider_name(provider)),
                    ))
                }
            }
            @if c.archived.is_some() {
                a href={ (base) "/delete" } { "Delete permanently…" }
            }
        }
        h2 { "Fields" }
        dl {
            dt { "Name" } dd { (c.name) }
            dt { "Domain" } dd { @match &c.domain { Some(d) => (d), None => span.muted { "none" } } }
            dt { "Owner" } dd { @match &c.owner { Some(o) => (o), None => span.muted { "none" } } }
            dt { "ARR" } dd { @match &c.arr { Some(a) => (a), None => span.muted { "none" } } }
            @for (key, value) in &c.custom {
                dt { (key) } dd { (value) }
            }
            dt { "Updated" } dd { (page::time(c.updated_at)) }
        }
        h2 { "Sources" }
        @if detail.sources.is_empty() {
            p.empty { "No source record links here any more." }
        } @else {
            table.sources {
                thead { tr { th { "Provider" } th { "Account" } th { "Record" } th { "Id" } th { "State" } } }
                tbody {
                    @for s in &detail.sources {
                        tr {
                            td { (page::provider_name(s.provider)) }
                            td { code { (s.account_id) } }
                            td { (page::record_kind(s.object_kind)) }
                            td { code data-source=(s.provider.as_str()) { (s.source_id) } }
                            td { @if s.source_gone { "gone at the provider" } @else { "linked" } }
                        }
                    }
                }
            }
        }
        h2 { "Billing" }
        @match &c.billing {
            Some(b) => dl {
                dt { "MRR" } dd { (mrr(c)) }
                dt { "Status" } dd { (b.subscription_status.as_deref().unwrap_or("none")) }
                dt { "Plans" } dd { @if b.plan_names.is_empty() { span.muted { "none" } } @else { (b.plan_names.join(", ")) } }
                dt { "Next renewal" } dd { (page::maybe_time(b.next_renewal, "none")) }
            },
            None => p.empty { "No Stripe customer is linked. Stripe customers that match no company wait on Matches." },
        }
        h2 { "Contacts" }
        @if detail.contacts.is_empty() {
            p.empty { "No contact of this customer is mirrored." }
        } @else {
            table.contacts {
                thead { tr { th { "Name" } th { "Email" } th { "Job title" } th { "Phone" } } }
                tbody {
                    @for k in &detail.contacts {
                        tr {
                            td { (k.first_name.as_deref().unwrap_or("")) " " (k.last_name.as_deref().unwrap_or("")) }
                            td { (k.email.as_deref().unwrap_or("")) }
                            td { (k.job_title.as_deref().unwrap_or("")) }
                            td { (k.phone.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        h2 { "Recent log rows" }
        @if log.is_empty() {
            p.empty { "Nothing logged about this customer's records in the last 30 days." }
        } @else {
            table.log {
                thead { tr { th { "When" } th { "Status" } th { "Code" } th { "What happened" } } }
                tbody {
                    @for e in log {
                        tr {
                            td { a href={ "/console/log/" (e.id) } { (page::time(e.at)) } }
                            td { (page::log_status_name(e.status)) }
                            td { @if let Some(code) = e.error_code { code { (code.as_str()) } } }
                            td { (e.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn resync(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<CustomerId>(&id)?;
    let provider = Provider::parse(posted.field("provider").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    match app
        .engine
        .resync_customer(&posted.session.tenant, &id, provider)
        .await
    {
        Ok(_) => {
            Ok(Redirect::to(&format!("/console/customers/{id}?done=resynced")).into_response())
        }
        Err(e) => refused_here(&app, &posted.session, &id, e.into()).await,
    }
}

async fn refused_here(app: &App, session: &Session, id: &CustomerId, e: ApiError) -> ConsoleResult {
    let (status, notice) = refusal(e)?;
    render(app, session, id, Some(notice), status).await
}

pub async fn confirm_delete(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
) -> ConsoleResult {
    let id = path_id::<CustomerId>(&id)?;
    let c = app.engine.admin_customer(&session.tenant, &id).await?;
    let base = format!("/console/customers/{id}");
    let body = html! {
        h1 { "Delete " (display_name(&c)) " permanently?" }
        @if c.archived.is_none() {
            p.notice.failed role="alert" { "Only archived customers can be deleted permanently. This one is active." }
            p { a href=(base) { "Back to the customer" } }
        } @else {
            p { "This removes the customer, its contacts and its source links from the service for good. It cannot be undone, and nothing changes at HubSpot or Stripe." }
            form method="post" action={ (base) "/delete" } {
                (session.csrf_field())
                button.danger type="submit" { "Delete permanently" }
                a href=(base) { "Cancel" }
            }
        }
    };
    let shell = Shell {
        session: Some(&session),
        ..Shell::bare("Delete permanently")
    };
    Ok(page::render(shell, body).into_response())
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<CustomerId>(&id)?;
    match app
        .engine
        .delete_customer_permanently(&posted.session.tenant, &id)
        .await
    {
        Ok(()) => Ok(Redirect::to("/console/customers?show=archived").into_response()),
        Err(e) => refused_here(&app, &posted.session, &id, e.into()).await,
    }
}
