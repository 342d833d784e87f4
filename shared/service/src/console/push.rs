//! Direction and push: whether the connection mirrors HubSpot or pushes the product's
//! contacts into it, how pushes write (dedupe, no-email, company and list steps), and
//! Send test lead with its result per property and per step.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};

use connector::engine::test_lead::TestLeadReport;
use connector::{
    ConnectionId, ConnectionStatus, OnStepFailure, PushSettings, SourceId, SyncDirection,
};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleResult, path_id, refusal};
use crate::app::App;
use crate::http::error::ApiError;

pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let view = app.engine.view_connection(&session.tenant, &id).await?;
    render(
        &session,
        &id,
        Shown {
            direction: view.direction,
            push: &view.push,
            connected: view.status == ConnectionStatus::Connected,
            test: None,
        },
        None,
        StatusCode::OK,
    )
}

/// What the page shows besides its notice.
struct Shown<'a> {
    direction: SyncDirection,
    push: &'a PushSettings,
    connected: bool,
    test: Option<&'a TestLeadReport>,
}

fn render(
    session: &Session,
    id: &ConnectionId,
    shown: Shown<'_>,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let push = shown.push;
    let base = format!("/console/connections/{id}");
    let step = push.company_step;
    let body = html! {
        p { a href="/console/integrations" { "Back to Integrations" } }
        h1 { "Direction and push" }
        @if let Some(test) = shown.test {
            (test_report(session, &base, test))
        }
        p.muted { "Inbound mirrors HubSpot here. Outbound pushes the contacts the product writes through the records API into HubSpot (contact, then its company and a list if you turn them on) and mirrors nothing. Two-way does both: each field takes the later change of the two sides, and the other value is kept 30 days under Conflicts." }
        form method="post" action={ (base) "/push" } {
            (session.csrf_field())
            fieldset {
                legend { "Direction" }
                @for (value, label) in [(SyncDirection::Inbound, "Inbound: mirror HubSpot"), (SyncDirection::Outbound, "Outbound: push the product's contacts"), (SyncDirection::TwoWay, "Two-way: both, the later change wins")] {
                    label.choice { input type="radio" name="direction" value=(value.as_str()) checked[shown.direction == value]; " " (label) }
                }
            }
            fieldset {
                legend { "Contact step" }
                label.choice { input type="checkbox" name="dedupe_by_email" checked[push.dedupe_by_email]; " Dedupe by email (update the contact with the same email; off, an existing email fails as contact_exists)" }
                label.choice { input type="checkbox" name="sync_without_email" checked[push.sync_without_email]; " Sync contacts without an email" }
                label.choice { input type="checkbox" name="phone_fallback" checked[push.phone_fallback]; " … finding them by phone number" }
            }
            fieldset {
                legend { "Company step" }
                select name="company_step" aria-label="Company step" {
                    option value="off" selected[step.is_none()] { "Off" }
                    option value="skip" selected[step == Some(OnStepFailure::Skip)] { "On: if it fails, skip it (the contact still syncs)" }
                    option value="fail_sync" selected[step == Some(OnStepFailure::FailSync)] { "On: if it fails, fail the sync" }
                }
            }
            fieldset {
                legend { "List step" }
                label for="list-id" { "Add to static list (id; empty: off)" }
                input id="list-id" name="list_id" inputmode="numeric" value=(push.list_id.as_deref().unwrap_or(""));
            }
            button type="submit" name="do" value="save" { "Save" }
        }
        @if shown.connected {
            form method="post" action={ (base) "/authorize" } {
                (session.csrf_field())
                input type="hidden" name="writes" value="1";
                button type="submit" { "Reauthorize with write access" }
            }
        }
        @if shown.direction.pushes() && shown.connected {
            form method="post" action={ (base) "/push" } {
                (session.csrf_field())
                button type="submit" name="do" value="test" { "Send test lead" }
            }
        }
    };
    let shell = Shell {
        session: Some(session),
        notice,
        ..Shell::bare("Direction and push")
    };
    Ok((status, page::render(shell, body)).into_response())
}

fn test_report(session: &Session, base: &str, test: &TestLeadReport) -> Markup {
    html! {
        section.test-lead aria-label="Test lead" {
            h2 { "Test lead " code { (test.email) } }
            table.properties {
                thead { tr { th { "Property" } th { "Our field" } th { "Pushed" } th { "Check" } } }
                tbody {
                    @for c in &test.properties {
                        tr data-property=(c.property) {
                            td { code { (c.property) } }
                            td { code { (c.target.as_string()) } }
                            td { @if c.pushed { "yes" } @else { "no" } }
                            @match &c.problem {
                                None => td.ok data-check="ok" { "OK" },
                                Some(p) => td.bad data-check="problem" { (p) },
                            }
                        }
                    }
                }
            }
            (page::push_steps(&test.steps))
            @if let Some(error) = &test.error {
                section.fix {
                    h3 { (error.title) " " code { (error.code.as_str()) } }
                    @if let Some(message) = &test.message { p { (message) } }
                    p { (error.meaning) }
                    p { (error.fix) }
                }
            }
            @if let Some(contact) = &test.contact {
                form method="post" action={ (base) "/push" } {
                    (session.csrf_field())
                    input type="hidden" name="contact" value=(contact);
                    button type="submit" name="do" value="delete_test" { "Delete the test contact " (contact) }
                }
            }
        }
    }
}

/// The settings the form describes.
fn settings_of(posted: &Posted) -> Result<(SyncDirection, PushSettings), ApiError> {
    let direction = SyncDirection::parse(posted.field("direction").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let company_step = match posted.field("company_step").unwrap_or("off") {
        "off" => None,
        "skip" => Some(OnStepFailure::Skip),
        "fail_sync" => Some(OnStepFailure::FailSync),
        other => {
            return Err(ApiError::bad_request(format!(
                "{other:?} is not a company step setting"
            )));
        }
    };
    let list_id = posted
        .field("list_id")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    Ok((
        direction,
        PushSettings {
            dedupe_by_email: posted.field("dedupe_by_email").is_some(),
            sync_without_email: posted.field("sync_without_email").is_some(),
            phone_fallback: posted.field("phone_fallback").is_some(),
            company_step,
            list_id,
        },
    ))
}

pub async fn submit(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let session = &posted.session;
    let tenant = &session.tenant;
    let view = app.engine.view_connection(tenant, &id).await?;
    let connected = view.status == ConnectionStatus::Connected;
    let mut shown = Shown {
        direction: view.direction,
        push: &view.push,
        connected,
        test: None,
    };
    let refused = |shown: Shown<'_>, e: ApiError| -> ConsoleResult {
        let (status, notice) = refusal(e)?;
        render(session, &id, shown, Some(notice), status)
    };
    match posted.field("do") {
        Some("save") => {
            let (direction, push) = match settings_of(&posted) {
                Ok(settings) => settings,
                Err(e) => return refused(shown, e),
            };
            match app.engine.set_direction(tenant, &id, direction, push).await {
                Ok(saved) => {
                    let shown = Shown {
                        direction: saved.direction,
                        push: &saved.push,
                        connected,
                        test: None,
                    };
                    render(
                        session,
                        &id,
                        shown,
                        Some(Notice::Done("Saved.".into())),
                        StatusCode::OK,
                    )
                }
                Err(e) => refused(shown, e.into()),
            }
        }
        Some("test") => match app.engine.send_test_lead(tenant, &id).await {
            Ok(report) => {
                let notice = match &report.error {
                    None => Notice::Done("The test lead went through every step.".into()),
                    Some(e) => Notice::Failed(format!("The test lead failed: {}.", e.title)),
                };
                shown.test = Some(&report);
                render(session, &id, shown, Some(notice), StatusCode::OK)
            }
            Err(e) => refused(shown, e.into()),
        },
        Some("delete_test") => {
            let contact = posted
                .field("contact")
                .map(SourceId::parse)
                .transpose()
                .map_err(|e| ApiError::bad_request(e.to_string()));
            let outcome = match contact {
                Ok(Some(contact)) => app
                    .engine
                    .delete_test_lead(tenant, &id, &contact)
                    .await
                    .map(|()| contact)
                    .map_err(ApiError::from),
                Ok(None) => Err(ApiError::bad_request("Say which test contact to delete.")),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(contact) => render(
                    session,
                    &id,
                    shown,
                    Some(Notice::Done(format!(
                        "Deleted the test contact {contact} at HubSpot."
                    ))),
                    StatusCode::OK,
                ),
                Err(e) => refused(shown, e),
            }
        }
        _ => refused(shown, ApiError::bad_request("Pick Save or Send test lead.")),
    }
}
