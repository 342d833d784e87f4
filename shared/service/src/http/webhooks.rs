//! `POST /webhooks/hubspot`: verify the signature over the raw body, parse the batch, hand
//! the changes to intake (dedupe + enqueue) and answer. Never calls HubSpot.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use serde_json::{Value, json};

use connector::engine::intake::{Change, IntakeReport};
use connector::{ChangeKind, ErrorCode, ObjectKind, Provider, Timestamp};
use connector_hubspot::webhook::{self, HubSpotEvent, SignatureHeaders};

use super::error::ApiError;
use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/webhooks/hubspot", post(hubspot))
        .with_state(app)
}

/// The URL the provider called, as it signed it.
fn full_uri(app: &App, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(base) = &app.public_base_url {
        return format!("{base}{path}");
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("https");
    let host = header("host").unwrap_or("localhost");
    format!("{scheme}://{host}{path}")
}

async fn hubspot(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let secret = app.hubspot_client_secret.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_configured",
            "HubSpot is not configured",
        )
    })?;
    let signature_headers =
        SignatureHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let url = full_uri(&app, &headers, &uri);
    webhook::verify_request(
        method.as_str(),
        &url,
        &body,
        &signature_headers,
        secret,
        Timestamp::now(),
    )?;
    let events = webhook::parse_events(&body)?;
    let changes: Vec<Change> = events.iter().flat_map(changes_of).collect();
    let report: IntakeReport = app.engine.intake(changes).await.map_err(|e| {
        tracing::error!(error = %e, "webhook intake could not enqueue; the provider will redeliver");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ProviderUnavailable.as_str(),
            "could not accept the events right now; please redeliver",
        )
    })?;
    tracing::info!(?report, "hubspot webhook batch accepted");
    Ok((StatusCode::OK, Json(json!(report))))
}

/// The records one event asks us to look at again. A merge touches the survivor and every
/// merged id; an association change touches the contact on either side.
fn changes_of(event: &HubSpotEvent) -> Vec<Change> {
    let change = |object: ObjectKind, source_id| Change {
        provider: Provider::Hubspot,
        account: event.portal_id.clone(),
        event_id: event.event_id.clone(),
        occurred_at: event.occurred_at,
        object,
        source_id,
        change: event.change,
    };
    match event.change {
        ChangeKind::Merged => {
            let survivor = event
                .primary_object_id
                .clone()
                .unwrap_or_else(|| event.object_id.clone());
            let mut out = vec![change(event.object, survivor)];
            out.extend(
                event
                    .merged_object_ids
                    .iter()
                    .cloned()
                    .map(|id| change(event.object, id)),
            );
            if let Some(new) = &event.new_object_id {
                out.push(change(event.object, new.clone()));
            }
            out
        }
        ChangeKind::AssociationChanged => match &event.association {
            Some(a) if a.association_type.starts_with("CONTACT_TO_") => {
                vec![change(ObjectKind::Contact, a.from_object_id.clone())]
            }
            Some(a) if a.association_type.ends_with("_TO_CONTACT") => {
                vec![change(ObjectKind::Contact, a.to_object_id.clone())]
            }
            _ => vec![change(event.object, event.object_id.clone())],
        },
        _ => vec![change(event.object, event.object_id.clone())],
    }
}
