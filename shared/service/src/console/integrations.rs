//! Integrations: one panel per connection, with its banner, account, times, the latest
//! run's counts, and Connect, Reauthorize, Disconnect, Run sync now, and the held
//! archives' Approve and Reject.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use connector::engine::admin::ConnectionView;
use connector::{
    ConnectionId, ConnectionStatus, NightlyTime, Provider, SyncDirection, SyncRunStatus, Timestamp,
};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleError, ConsoleResult, path_id, refusal};
use crate::app::App;
use crate::http::error::ApiError;

/// Past this, a connected account's silence suggests its webhooks stopped arriving.
const REAL_TIME_QUIET: Duration = Duration::from_secs(30 * 60);

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

/// The result of the action that redirected here (a fixed set, so a link cannot put
/// words on the page).
fn done_notice(done: Option<&str>) -> Option<Notice> {
    let text = match done? {
        "sync_started" => "A sync pass started: its counts update on this page while it runs.",
        "disconnected" => {
            "Disconnected. Syncing stopped and the tokens were deleted; the data, field mapping and filter are kept."
        }
        "archives_approved" => "Approved: a pass is archiving the held customers.",
        "archives_rejected" => "Rejected: nothing was archived and the customers stay active.",
        "schedule_saved" => {
            "Saved: the nightly full sync runs at the new time from its next occurrence."
        }
        _ => return None,
    };
    Some(Notice::Done(text.to_owned()))
}

pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> ConsoleResult {
    render(
        &app,
        &session,
        done_notice(q.done.as_deref()),
        StatusCode::OK,
    )
    .await
}

async fn render(
    app: &App,
    session: &Session,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let views = app.engine.list_connection_views(&session.tenant).await?;
    let running = views.iter().any(|v| {
        v.latest_run
            .as_ref()
            .is_some_and(|r| r.status == SyncRunStatus::Running)
    });
    let now = Timestamp::now();
    let body = html! {
        h1 { "Integrations" }
        section.connect aria-label="Connect an account" {
            @for provider in Provider::ALL.into_iter().filter(|p| crate::oauth::can_authorize(app, *p)) {
                (session.post_button(
                    "/console/connections",
                    &[("provider", provider.as_str())],
                    &format!("Connect {}", page::provider_name(provider)),
                ))
            }
        }
        @if views.is_empty() {
            p.empty { "No connection yet. Connect HubSpot to start mirroring companies and contacts; connect Stripe for billing and MRR." }
        }
        @for view in &views {
            (panel(session, view, now))
        }
    };
    let shell = Shell {
        title: "Integrations",
        session: Some(session),
        notice,
        refresh_secs: running.then_some(2),
    };
    Ok((status, page::render(shell, body)).into_response())
}

fn panel(session: &Session, view: &ConnectionView, now: Timestamp) -> Markup {
    let name = page::provider_name(view.provider);
    let base = format!("/console/connections/{}", view.id);
    let status = page::status_name(view.status);
    let quiet = view.status == ConnectionStatus::Connected
        && view
            .last_incremental_update
            .or(view.last_full_sync)
            .is_some_and(|at| at.plus(REAL_TIME_QUIET) < now);
    let action = |action: Action, label: &str| {
        session.post_button(&format!("{base}/{}", action.path()), &[], label)
    };
    let authorize = |label: &str| session.post_button(&format!("{base}/authorize"), &[], label);
    html! {
        section.panel aria-labelledby={ "c-" (view.id) } {
            h2 id={ "c-" (view.id) } { (name) }
            p class={ "banner " (status.to_lowercase()) } role="status" data-status=(status) {
                strong { (status) } @if view.banner != status { " · " (view.banner.trim_start_matches(status).trim_start_matches([':', ',', ' '])) }
            }
            @if !view.flags.missing_scopes.is_empty() {
                p.flag { "Permission lost for: " (view.flags.missing_scopes.join(", ")) }
            }
            dl {
                dt { (account_label(view.provider)) }
                dd { @match &view.account_id { Some(a) => code { (a) }, None => span.muted { "not connected yet" } } }
                dt { "Last full sync" }
                dd { (page::maybe_time(view.last_full_sync, "never")) }
                dt { "Last incremental update" }
                dd {
                    (page::maybe_time(view.last_incremental_update, "none yet"))
                    @if quiet {
                        p.hint { "No real-time update for more than 30 minutes: the webhook channel may be broken. Run sync now catches up; then check the app's webhook subscription." }
                    }
                }
            }
            form.schedule method="post" action={ (base) "/" (Action::Schedule.path()) } {
                (session.csrf_field())
                label for={ "nightly-" (view.id) } { "Nightly full sync at (UTC)" }
                input id={ "nightly-" (view.id) } type="time" name="nightly_at" step="900" required value=(view.nightly_at);
                button type="submit" { "Save time" }
            }
            @if let Some(run) = &view.latest_run {
                (run_counts(run))
            }
            div.actions {
                @match view.status {
                    ConnectionStatus::Connected => {
                        (action(Action::Sync, "Run sync now"))
                        (action(Action::Disconnect, "Disconnect"))
                    }
                    ConnectionStatus::Reauthorize => {
                        (authorize("Reauthorize"))
                        (action(Action::Disconnect, "Disconnect"))
                    }
                    ConnectionStatus::Disconnected => {
                        (authorize("Connect"))
                    }
                }
                a href={ (base) "/log" } { "View log" }
                a href={ (base) "/runs" } { "Runs" }
                @if view.provider == Provider::Hubspot {
                    a href={ (base) "/mapping" } { "Field mapping" }
                    a href={ (base) "/filter" } { "Company filter" }
                    a href={ (base) "/push" } { "Direction and push" }
                    @if view.direction == SyncDirection::TwoWay {
                        a href={ (base) "/conflicts" } { "Conflicts" }
                    }
                }
            }
            @if view.flags.archives_held {
                div.held {
                    p { "A sync wants to archive more customers than the mass-archive guard allows. Nothing was archived yet. " a href={ (base) "/held" } { "See what is held" } }
                    (action(Action::ApproveArchives, "Approve archives"))
                    (action(Action::RejectArchives, "Reject archives"))
                }
            }
        }
    }
}

fn account_label(p: Provider) -> &'static str {
    match p {
        Provider::Hubspot => "HubSpot portal",
        Provider::Stripe => "Stripe account",
    }
}

fn run_counts(run: &connector::SyncRun) -> Markup {
    let c = &run.counters;
    html! {
        div.run {
            p {
                "Latest run (" (page::trigger_name(run.trigger)) "): "
                strong data-run-status=(page::run_status_name(run.status)) { (page::run_status_name(run.status)) }
                ", started " (page::time(run.started_at))
            }
            table.counts {
                thead { tr { th { "seen" } th { "applied" } th { "unchanged" } th { "archived" } th { "failed" } th { "held" } } }
                tbody { tr {
                    td data-count="seen" { (c.seen) } td data-count="applied" { (c.applied) }
                    td data-count="unchanged" { (c.unchanged) } td data-count="archived" { (c.archived) }
                    td data-count="failed" { (c.failed) } td data-count="held" { (c.held) }
                } }
            }
        }
    }
}

async fn or_shown(app: &App, session: &Session, outcome: ConsoleResult) -> ConsoleResult {
    match outcome {
        Err(ConsoleError(e)) => {
            let (status, notice) = refusal(e)?;
            render(app, session, Some(notice), status).await
        }
        done => done,
    }
}

pub async fn connect_new(State(app): State<Arc<App>>, posted: Posted) -> ConsoleResult {
    let outcome = async {
        let provider = Provider::parse(posted.field("provider").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let created = app
            .engine
            .create_connection(&posted.session.tenant, provider)
            .await?;
        to_provider(&app, &posted.session, &created.id, false).await
    }
    .await;
    or_shown(&app, &posted.session, outcome).await
}

pub async fn authorize(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let writes = posted.field("writes").is_some();
    let outcome = async {
        to_provider(
            &app,
            &posted.session,
            &path_id::<ConnectionId>(&id)?,
            writes,
        )
        .await
    }
    .await;
    or_shown(&app, &posted.session, outcome).await
}

/// Off to the provider's consent screen (asking for write access too when `writes`); its
/// callback brings the admin back here.
async fn to_provider(
    app: &App,
    session: &Session,
    id: &ConnectionId,
    writes: bool,
) -> ConsoleResult {
    let url = crate::oauth::start(app, &session.tenant, id, writes).await?;
    Ok(Redirect::to(&url).into_response())
}

/// The buttons of a connected panel that act at once and come back here.
#[derive(Clone, Copy)]
pub(super) enum Action {
    Disconnect,
    Sync,
    ApproveArchives,
    RejectArchives,
    Schedule,
}

impl Action {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "disconnect" => Action::Disconnect,
            "sync" => Action::Sync,
            "approve-archives" => Action::ApproveArchives,
            "reject-archives" => Action::RejectArchives,
            "schedule" => Action::Schedule,
            _ => return None,
        })
    }

    pub(super) fn path(self) -> &'static str {
        match self {
            Action::Disconnect => "disconnect",
            Action::Sync => "sync",
            Action::ApproveArchives => "approve-archives",
            Action::RejectArchives => "reject-archives",
            Action::Schedule => "schedule",
        }
    }

    /// The key of [`done_notice`] it leaves on the page.
    fn done(self) -> &'static str {
        match self {
            Action::Disconnect => "disconnected",
            Action::Sync => "sync_started",
            Action::ApproveArchives => "archives_approved",
            Action::RejectArchives => "archives_rejected",
            Action::Schedule => "schedule_saved",
        }
    }
}

pub async fn act(
    State(app): State<Arc<App>>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> ConsoleResult {
    let outcome = async {
        let Some(action) = Action::parse(&action) else {
            return Err(ConsoleError(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "There is no such action.",
            )));
        };
        let (tenant, id) = (&posted.session.tenant, &path_id::<ConnectionId>(&id)?);
        match action {
            Action::Disconnect => drop(app.engine.disconnect(tenant, id).await?),
            Action::Sync => drop(app.engine.run_sync_now(tenant, id).await?),
            Action::ApproveArchives => drop(app.engine.approve_held_archives(tenant, id).await?),
            Action::RejectArchives => drop(app.engine.reject_held_archives(tenant, id).await?),
            Action::Schedule => {
                let at = NightlyTime::parse(posted.field("nightly_at").unwrap_or(""))
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                drop(app.engine.set_nightly_time(tenant, id, at).await?)
            }
        }
        Ok(Redirect::to(&format!("/console/integrations?done={}", action.done())).into_response())
    }
    .await;
    or_shown(&app, &posted.session, outcome).await
}
