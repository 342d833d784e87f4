//! The page shell every screen shares, and the small pieces screens repeat.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use connector::{
    ArchiveReason, ConnectionStatus, LogStatus, ObjectKind, Provider, PushStep, PushStepKind,
    StepResult, SyncRunStatus, SyncTrigger, Timestamp,
};

use super::session::Session;

/// What a page needs besides its body.
pub struct Shell<'a> {
    pub title: &'a str,
    /// `None` on the sign-in and error pages: no navigation, no sign-out.
    pub session: Option<&'a Session>,
    /// A one-line result of the action that led here.
    pub notice: Option<Notice>,
    /// Reload every this many seconds (a sync pass is running).
    pub refresh_secs: Option<u32>,
}

impl<'a> Shell<'a> {
    /// A page outside a session: sign-in, errors, the OAuth outcome.
    pub fn bare(title: &'a str) -> Self {
        Shell {
            title,
            session: None,
            notice: None,
            refresh_secs: None,
        }
    }
}

pub enum Notice {
    Done(String),
    Failed(String),
}

pub fn render(shell: Shell<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = shell.refresh_secs {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (shell.title) " · Integrations console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "Integrations console" }
                    @if let Some(session) = shell.session {
                        nav aria-label="Console" {
                            a href="/console/integrations" { "Integrations" }
                            a href="/console/customers" { "Customers" }
                            a href="/console/matches" { "Matches" }
                            a.bell href="/console/notifications" aria-label={ "Notifications, " (session.unread_notifications) " unread" } {
                                (bell_icon()) " Notifications"
                                @if session.unread_notifications > 0 {
                                    " " span.count { (session.unread_notifications) }
                                }
                            }
                            a href="/admin/openapi.yaml" { "API reference" }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (session.csrf_field())
                            span { "Tenant " strong { (session.tenant) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    @match shell.notice {
                        Some(Notice::Done(text)) => p.notice.done role="status" { (text) },
                        Some(Notice::Failed(text)) => p.notice.failed role="alert" { (text) },
                        None => {},
                    }
                    (body)
                }
            }
        }
    }
}

/// The link to a listing's next page: the same query (`kept`) with the page's cursor.
pub fn next_page(next: Option<&String>, kept: &[(&str, &str)], label: &str) -> Markup {
    let Some(cursor) = next else {
        return html! {};
    };
    let mut query = kept.to_vec();
    query.push(("cursor", cursor));
    let href = format!(
        "?{}",
        serde_urlencoded::to_string(&query).unwrap_or_default()
    );
    html! { p { a rel="next" href=(href) { (label) } } }
}

/// A time in the admin's own zone (the script rewrites it), UTC on hover and without script.
pub fn time(at: Timestamp) -> Markup {
    let utc = at.to_rfc3339();
    html! { time datetime=(utc) title={ (utc) " UTC" } { (utc) } }
}

pub fn maybe_time(at: Option<Timestamp>, never: &str) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { (never) } },
    }
}

pub fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Hubspot => "HubSpot",
        Provider::Stripe => "Stripe",
    }
}

/// What the provider calls the record.
pub fn record_kind(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Company => "company",
        ObjectKind::Contact => "contact",
        ObjectKind::BillingCustomer => "customer",
        ObjectKind::Subscription => "subscription",
    }
}

pub fn archive_reason(reason: ArchiveReason) -> &'static str {
    match reason {
        ArchiveReason::SourceDeleted => {
            "its source record was deleted at the provider (restoring it there brings the customer back)"
        }
        ArchiveReason::LeftFilter => "its company left the company filter",
        ArchiveReason::Admin => "archived by an admin",
    }
}

pub fn status_name(s: ConnectionStatus) -> &'static str {
    match s {
        ConnectionStatus::Connected => "Connected",
        ConnectionStatus::Reauthorize => "Reauthorize",
        ConnectionStatus::Disconnected => "Disconnected",
    }
}

pub fn log_status_name(s: LogStatus) -> &'static str {
    match s {
        LogStatus::Applied => "Applied",
        LogStatus::Unchanged => "Unchanged",
        LogStatus::Archived => "Archived",
        LogStatus::Restored => "Restored",
        LogStatus::Held => "Held",
        LogStatus::Failed => "Failed",
        LogStatus::Pushed => "Pushed",
        LogStatus::Retrying => "Retry pending",
    }
}

pub fn run_status_name(s: SyncRunStatus) -> &'static str {
    match s {
        SyncRunStatus::Running => "Running",
        SyncRunStatus::Completed => "Completed",
        SyncRunStatus::Failed => "Failed",
    }
}

pub fn trigger_name(t: SyncTrigger) -> &'static str {
    match t {
        SyncTrigger::Initial => "initial sync",
        SyncTrigger::Scheduled => "nightly reconciliation",
        SyncTrigger::Manual => "Run sync now",
        SyncTrigger::FilterChange => "filter change",
    }
}

pub fn error_page(status: StatusCode, code: &str, detail: &str) -> Markup {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_client_error() => "That did not work",
        _ => "Something went wrong",
    };
    render(
        Shell::bare(title),
        html! {
            h1 { (title) }
            p { (detail) }
            p.muted { "Code " code { (code) } " · HTTP " (status.as_u16()) }
            p { a href="/console/integrations" { "Back to Integrations" } }
        },
    )
}

/// What the OAuth callback shows a browser: the outcome in words and the way back to
/// Integrations (at once after a success). A page of our own origin, so the return trip
/// carries the `SameSite=Strict` session cookie even though the provider sent the admin here.
pub fn oauth_result_page(outcome: Result<String, (StatusCode, &str, String)>) -> Markup {
    let back = "/console/integrations";
    let (title, body) = match &outcome {
        Ok(done) => (
            "Connected",
            html! {
                h1 { "Connected" }
                p.notice.done role="status" { (done) }
                p { a href=(back) { "Back to Integrations" } }
            },
        ),
        Err((status, code, detail)) => (
            "Connection failed",
            html! {
                h1 { "The connection did not complete" }
                p.notice.failed role="alert" { (detail) }
                p.muted { "Code " code { (code) } " · HTTP " (status.as_u16()) }
                p { "Nothing was changed. Start again from Integrations with Connect or Reauthorize." }
                p { a href=(back) { "Back to Integrations" } }
            },
        ),
    };
    render(
        Shell::bare(title),
        html! {
            @if outcome.is_ok() {
                meta http-equiv="refresh" content={ "2; url=" (back) };
            }
            (body)
        },
    )
}

/// A bell, drawn inline: no icon font or image to fetch.
fn bell_icon() -> Markup {
    html! {
        svg.icon aria-hidden="true" viewBox="0 0 24 24" width="16" height="16" {
            path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" {}
        }
    }
}

fn step_name(step: PushStepKind) -> &'static str {
    match step {
        PushStepKind::Contact => "Contact",
        PushStepKind::Company => "Company",
        PushStepKind::List => "List",
    }
}

fn step_result_name(result: StepResult) -> &'static str {
    match result {
        StepResult::Created => "Created",
        StepResult::Updated => "Updated",
        StepResult::Added => "Added",
        StepResult::AlreadyMember => "Already a member",
        StepResult::Skipped => "Skipped",
        StepResult::Failed => "Failed",
    }
}

/// A push's steps, each with its result (nothing for a row that is not a push).
pub fn push_steps(steps: &[PushStep]) -> Markup {
    html! {
        @if !steps.is_empty() {
            h2 { "Steps" }
            table.steps {
                thead { tr { th { "Step" } th { "Result" } th { "Record" } th { "Detail" } } }
                tbody {
                    @for s in steps {
                        tr data-step=(step_name(s.step)) {
                            td { (step_name(s.step)) }
                            td data-result=(step_result_name(s.result)) { (step_result_name(s.result)) }
                            td { @if let Some(id) = &s.record_id { code { (id) } } }
                            td { @if let Some(detail) = &s.detail { (detail) } }
                        }
                    }
                }
            }
        }
    }
}
