//! Field mapping: the connection's map (the default one plus custom fields), edited as one
//! form, with Validate against the provider's live schema (a result per field) and Save
//! (validated again; a refused save names each field).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};

use connector::engine::admin::AdminError;
use connector::engine::mapping::FieldProblem;
use connector::{
    ConnectionId, FieldMapping, FieldMappingEntry, ObjectKind, Provider, SyncDirection, TargetField,
};

use super::page::{self, Notice, Shell};
use super::session::{Posted, Session};
use super::{ConsoleResult, path_id, refusal};
use crate::app::App;
use crate::http::error::ApiError;

/// The object kinds a mapping can name (Stripe's fields are fixed by the MRR computation).
const MAPPED_KINDS: [ObjectKind; 2] = [ObjectKind::Company, ObjectKind::Contact];

/// The problems a validation found (`None`: not validated yet); a field without one passed.
type Checked<'a> = Option<&'a [FieldProblem]>;

pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let connection = app.engine.admin_connection(&session.tenant, &id).await?;
    render(
        &session,
        &id,
        connection.provider,
        &connection.field_mapping,
        None,
        None,
        StatusCode::OK,
    )
}

fn render(
    session: &Session,
    id: &ConnectionId,
    provider: Provider,
    mapping: &FieldMapping,
    checked: Checked<'_>,
    notice: Option<Notice>,
    status: StatusCode,
) -> ConsoleResult {
    let name = page::provider_name(provider);
    let body = html! {
        p { a href="/console/integrations" { "Back to Integrations" } }
        h1 { (name) " field mapping" }
        @if provider == Provider::Stripe {
            p.empty { "Stripe's fields are fixed: the billing fields and MRR come from its customers and subscriptions, so there is nothing to map." }
        } @else {
            p.muted { "Only mapped fields are ever written. Validate checks each property against " (name) "'s schema as it is now; Save validates again and pins each property's type." }
            form method="post" action={ "/console/connections/" (id) "/mapping" } {
                (session.csrf_field())
                table.mapping {
                    thead { tr { th { "Record" } th { (name) " property" } th { "Our field" } th { "Check" } th { "Drop" } } }
                    tbody {
                        @for (i, entry) in mapping.entries.iter().enumerate() {
                            (entry_row(i, entry, checked))
                        }
                        tr.new {
                            td { select name="new_object" aria-label="Record of the new field" {
                                @for kind in MAPPED_KINDS { option value=(kind.as_str()) { (page::record_kind(kind)) } }
                            } }
                            td { input name="new_property" aria-label="Property of the new field" placeholder="e.g. industry"; }
                            td { input name="new_target" aria-label="Our field for the new property" placeholder="e.g. custom:industry"; }
                            td.muted { "new field" }
                            td {}
                        }
                    }
                }
                button type="submit" name="do" value="validate" { "Validate against " (name) }
                button type="submit" name="do" value="save" { "Save" }
            }
        }
    };
    let shell = Shell {
        session: Some(session),
        notice,
        ..Shell::bare("Field mapping")
    };
    Ok((status, page::render(shell, body)).into_response())
}

fn entry_row(i: usize, entry: &FieldMappingEntry, checked: Checked<'_>) -> Markup {
    let target = entry.target.as_string();
    let problem = checked.map(|problems| {
        problems
            .iter()
            .find(|p| p.property == entry.source_property && p.target == entry.target)
    });
    html! {
        tr data-property=(entry.source_property) {
            td {
                (page::record_kind(entry.object))
                input type="hidden" name={ "object_" (i) } value=(entry.object.as_str());
            }
            td {
                code { (entry.source_property) }
                input type="hidden" name={ "property_" (i) } value=(entry.source_property);
            }
            td {
                code { (target) }
                input type="hidden" name={ "target_" (i) } value=(target);
                @if let Some(ty) = &entry.source_type {
                    input type="hidden" name={ "type_" (i) } value=(ty);
                }
                @if let Some(direction) = entry.direction {
                    " "
                    span.muted { "(" (direction.as_str()) " only)" }
                    input type="hidden" name={ "direction_" (i) } value=(direction.as_str());
                }
            }
            @match problem {
                None => td.muted { @if let Some(ty) = &entry.source_type { (ty) } @else { "not checked" } },
                Some(None) => td.ok data-check="ok" { "OK" },
                Some(Some(p)) => td.bad data-check="problem" { (p.reason) },
            }
            td { input type="checkbox" name={ "drop_" (i) } aria-label={ "Drop " (entry.source_property) }; }
        }
    }
}

/// The mapping the form describes: its rows minus the dropped ones, plus the new one.
fn mapping_of(posted: &Posted) -> Result<FieldMapping, ApiError> {
    let mut entries = Vec::new();
    for i in 0.. {
        let Some(property) = posted.field(&format!("property_{i}")) else {
            break;
        };
        if posted.field(&format!("drop_{i}")).is_some() {
            continue;
        }
        let mut kept = entry(
            posted.field(&format!("object_{i}")).unwrap_or(""),
            property,
            posted.field(&format!("target_{i}")).unwrap_or(""),
        )?;
        // The type pinned at the last save: a property that changed type since is caught.
        kept.source_type = posted.field(&format!("type_{i}")).map(str::to_owned);
        kept.direction = posted
            .field(&format!("direction_{i}"))
            .map(SyncDirection::parse)
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        entries.push(kept);
    }
    if let Some(property) = posted.field("new_property") {
        let target = posted.field("new_target").ok_or_else(|| {
            ApiError::bad_request(format!(
                "Say which field of ours {property:?} goes to (e.g. custom:{property})."
            ))
        })?;
        entries.push(entry(
            posted.field("new_object").unwrap_or(""),
            property,
            target,
        )?);
    }
    Ok(FieldMapping { entries })
}

fn entry(object: &str, property: &str, target: &str) -> Result<FieldMappingEntry, ApiError> {
    let object = ObjectKind::parse(object).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !MAPPED_KINDS.contains(&object) {
        return Err(ApiError::bad_request(format!(
            "{object} records take no field mapping"
        )));
    }
    Ok(FieldMappingEntry {
        object,
        source_property: property.to_owned(),
        target: TargetField::parse(target).map_err(|e| ApiError::bad_request(e.to_string()))?,
        source_type: None,
        direction: None,
    })
}

pub async fn submit(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<ConnectionId>(&id)?;
    let session = &posted.session;
    let connection = app.engine.admin_connection(&session.tenant, &id).await?;
    let provider = connection.provider;
    let candidate = match mapping_of(&posted) {
        Ok(candidate) => candidate,
        Err(e) => {
            let (status, notice) = refusal(e)?;
            return render(
                session,
                &id,
                provider,
                &connection.field_mapping,
                None,
                Some(notice),
                status,
            );
        }
    };
    if posted.field("do") == Some("save") {
        return match app
            .engine
            .set_field_mapping(&session.tenant, &id, candidate.clone())
            .await
        {
            Ok(saved) => render(
                session,
                &id,
                provider,
                &saved.field_mapping,
                Some(&[]),
                Some(Notice::Done(
                    "Saved: the next change of each record syncs under this mapping.".into(),
                )),
                StatusCode::OK,
            ),
            Err(AdminError::InvalidMapping(problems)) => render(
                session,
                &id,
                provider,
                &candidate,
                Some(&problems),
                Some(Notice::Failed(
                    "Not saved: fix or drop the fields marked below.".into(),
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Err(e) => {
                let (status, notice) = refusal(e.into())?;
                render(
                    session,
                    &id,
                    provider,
                    &candidate,
                    None,
                    Some(notice),
                    status,
                )
            }
        };
    }
    let problems = app
        .engine
        .validate_field_mapping(&session.tenant, &id, &candidate)
        .await?;
    let notice = if problems.is_empty() {
        Notice::Done(format!(
            "Every field exists at {} with the type it had.",
            page::provider_name(provider)
        ))
    } else {
        Notice::Failed(format!(
            "{} of {} fields do not match {}'s schema any more: remap or drop them.",
            problems.len(),
            candidate.entries.len(),
            page::provider_name(provider)
        ))
    };
    render(
        session,
        &id,
        provider,
        &candidate,
        Some(&problems),
        Some(notice),
        StatusCode::OK,
    )
}
