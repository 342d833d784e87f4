//! The company filter, picked from the portal's real lists, lifecycle stages and pipelines,
//! with Preview (how many companies it would keep, counted at HubSpot) before Save.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::html;

use connector::{CompanyFilter, ConnectionId, FilterChoices};

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
    let connection = app.engine.admin_connection(&session.tenant, &id).await?;
    let choices = app
        .engine
        .company_filter_choices(&session.tenant, &id)
        .await?;
    render(
        &session,
        &id,
        &connection.company_filter,
        &choices,
        None,
        StatusCode::OK,
    )
}

fn render(
    session: &Session,
    id: &ConnectionId,
    filter: &CompanyFilter,
    choices: &FilterChoices,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let kind = match filter {
        CompanyFilter::All => "all",
        CompanyFilter::List { .. } => "list",
        CompanyFilter::LifecycleStage { .. } => "lifecycle_stage",
        CompanyFilter::Pipeline { .. } => "pipeline",
    };
    let radio = |value: &str, label: &str| {
        html! {
            label.choice { input type="radio" name="type" value=(value) checked[kind == value]; " " (label) }
        }
    };
    let body = html! {
        p { a href="/console/integrations" { "Back to Integrations" } }
        h1 { "Company filter" }
        p.muted { "Only companies the filter keeps are mirrored; one that leaves it is archived like a deletion (within the mass-archive guard). Saving starts a pass." }
        form method="post" action={ "/console/connections/" (id) "/filter" } {
            (session.csrf_field())
            fieldset {
                legend { "Keep" }
                (radio("all", "Every company"))
                (radio("list", "The members of one list"))
                @if choices.lists.is_empty() {
                    p.muted { "This portal has no company list yet." }
                } @else {
                    select name="list_id" aria-label="List" {
                        @for l in &choices.lists {
                            option value=(l.id) selected[matches!(filter, CompanyFilter::List { list_id } if *list_id == l.id)] { (l.label) }
                        }
                    }
                }
                (radio("lifecycle_stage", "Companies in these lifecycle stages"))
                div.options {
                    @for s in &choices.lifecycle_stages {
                        label.choice {
                            input type="checkbox" name={ "stage:" (s.id) } checked[matches!(filter, CompanyFilter::LifecycleStage { stages } if stages.contains(&s.id))];
                            " " (s.label)
                        }
                    }
                }
                (radio("pipeline", "Companies in one pipeline (optionally some of its stages)"))
                @if choices.pipelines.is_empty() {
                    p.muted { "This portal has no company pipeline." }
                } @else {
                    select name="pipeline_id" aria-label="Pipeline" {
                        @for p in &choices.pipelines {
                            option value=(p.id) selected[matches!(filter, CompanyFilter::Pipeline { pipeline_id, .. } if *pipeline_id == p.id)] { (p.label) }
                        }
                    }
                    div.options {
                        @for p in &choices.pipelines {
                            @for s in &p.stages {
                                label.choice {
                                    input type="checkbox" name={ "pstage:" (s.id) } checked[matches!(filter, CompanyFilter::Pipeline { stage_ids, .. } if stage_ids.contains(&s.id))];
                                    " " (p.label) ": " (s.label)
                                }
                            }
                        }
                    }
                }
            }
            button type="submit" name="do" value="preview" { "Preview" }
            button type="submit" name="do" value="save" { "Save" }
        }
    };
    let shell = Shell {
        session: Some(session),
        notice,
        ..Shell::bare("Company filter")
    };
    Ok((status, page::render(shell, body)).into_response())
}

/// The filter the form describes.
fn filter_of(posted: &Posted) -> Result<CompanyFilter, ApiError> {
    let picked = |prefix: &str| -> Vec<String> {
        let mut ids: Vec<String> = posted
            .fields
            .keys()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    match posted.field("type") {
        Some("all") => Ok(CompanyFilter::All),
        Some("list") => Ok(CompanyFilter::List {
            list_id: posted
                .field("list_id")
                .ok_or_else(|| ApiError::bad_request("Pick a list."))?
                .to_owned(),
        }),
        Some("lifecycle_stage") => Ok(CompanyFilter::LifecycleStage {
            stages: picked("stage:"),
        }),
        Some("pipeline") => Ok(CompanyFilter::Pipeline {
            pipeline_id: posted
                .field("pipeline_id")
                .ok_or_else(|| ApiError::bad_request("Pick a pipeline."))?
                .to_owned(),
            stage_ids: picked("pstage:"),
        }),
        _ => Err(ApiError::bad_request("Pick what the filter keeps.")),
    }
}

pub async fn submit(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let tenant = &posted.session.tenant;
    let connection = app.engine.admin_connection(tenant, &id).await?;
    let choices = app.engine.company_filter_choices(tenant, &id).await?;
    let shown = |filter: &CompanyFilter, outcome: Result<Notice, ApiError>| match outcome {
        Ok(notice) => render(
            &posted.session,
            &id,
            filter,
            &choices,
            Some(notice),
            StatusCode::OK,
        ),
        Err(e) => {
            let (status, notice) = refusal(e)?;
            render(&posted.session, &id, filter, &choices, Some(notice), status)
        }
    };
    let filter = match filter_of(&posted) {
        Ok(filter) => filter,
        Err(e) => return shown(&connection.company_filter, Err(e)),
    };
    let outcome = if posted.field("do") == Some("save") {
        app.engine
            .set_company_filter(tenant, &id, filter.clone())
            .await
            .map(|(_, run)| {
                Notice::Done(match run {
                    Some(_) => "Saved: a pass started, mirroring what the filter now keeps and archiving what left it.".into(),
                    None => "Saved: the next pass applies it.".to_owned(),
                })
            })
            .map_err(ApiError::from)
    } else {
        app.engine
            .preview_company_filter(tenant, &id, filter.clone())
            .await
            .map(|p| Notice::Done(preview_text(p)))
            .map_err(ApiError::from)
    };
    shown(&filter, outcome)
}

fn preview_text(p: connector::engine::admin::FilterPreview) -> String {
    if p.complete {
        format!(
            "This filter would keep {} of the portal's {} companies.",
            p.kept, p.read
        )
    } else {
        format!(
            "This filter keeps {} of the first {} companies read (the portal has more).",
            p.kept, p.read
        )
    }
}
