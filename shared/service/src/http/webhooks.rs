//! Provider webhooks: verify the signature over the raw body, parse, hand the changes to
//! intake (dedupe + enqueue a record job that re-fetches the object) and answer. Never
//! calls a provider.
//!
//! - `POST /webhooks/hubspot`: the HubSpot app's batches.
//! - `POST /webhooks/stripe`: the platform's Connect endpoint (platform secrets from the
//!   config; routed by the event's `account`).
//! - `POST /webhooks/stripe/{tenant}/{connection}`: an API-key connection's own endpoint
//!   (its own secret, sealed with its credentials).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};

use connector::engine::intake::{Change, IntakeReport, OwnWrite};
use connector::{
    ChangeKind, Connection, ConnectionId, ErrorCode, ObjectKind, Provider, ProviderAccountId,
    SourceId, TenantId, Timestamp,
};
use connector_hubspot::webhook::{self, HubSpotEvent, SignatureHeaders};
use connector_stripe::StripeProvider;
use connector_stripe::webhook::{self as stripe_webhook, StripeEvent};

use super::error::ApiError;
use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/webhooks/hubspot", post(hubspot))
        .route("/webhooks/stripe", post(stripe_connect))
        .route(
            "/webhooks/stripe/{tenant}/{connection}",
            post(stripe_account),
        )
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
    let batch = webhook::parse_events(&body)?;
    for rejected in &batch.rejected {
        tracing::warn!(index = rejected.index, reason = %rejected.reason, "hubspot webhook event unreadable: left out, the rest of the batch is taken");
    }
    let changes: Vec<Change> = batch.events.iter().flat_map(changes_of).collect();
    let report = intake(&app, changes).await?;
    tracing::info!(
        ?report,
        rejected = batch.rejected.len(),
        "hubspot webhook batch accepted"
    );
    let rejected: Vec<Value> = batch
        .rejected
        .iter()
        .map(|r| json!({"index": r.index, "reason": r.reason}))
        .collect();
    let mut answer = json!(report);
    answer["rejected"] = json!(rejected);
    Ok((StatusCode::OK, Json(answer)))
}

/// A 503: the provider redelivers later, and nothing was kept meanwhile.
fn redeliver(cause: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %cause, "webhook intake could not take the events; the provider will redeliver");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StoreUnavailable.as_str(),
        "could not accept the events right now; please redeliver",
    )
}

async fn intake(app: &App, changes: Vec<Change>) -> Result<IntakeReport, ApiError> {
    app.engine.intake(changes).await.map_err(|e| redeliver(&e))
}

// ------------------------------------------------------------------------------ Stripe

/// What became of one Stripe event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// A record job will re-fetch the customer.
    Enqueued,
    /// Seen before (Stripe delivers at least once).
    Duplicate,
    /// No connected connection is bound to the account.
    Unrouted,
    /// Nothing to do for this event.
    Ignored,
    /// The account removed our access: the connection is now Reauthorize.
    Deauthorized,
}

fn answer(event: &StripeEvent, outcome: Outcome, detail: impl Into<String>) -> Json<Value> {
    let detail = detail.into();
    tracing::info!(event = %event.id, event_type = %event.event_type, ?outcome, %detail, "stripe webhook event");
    Json(json!({
        "event_id": event.id,
        "type": event.event_type,
        "outcome": outcome,
        "detail": detail,
    }))
}

fn stripe_of(app: &App) -> Result<&StripeProvider, ApiError> {
    app.stripe.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_configured",
            "Stripe is not configured",
        )
    })
}

fn stripe_signature(headers: &HeaderMap) -> &str {
    headers
        .get(stripe_webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The platform's Connect endpoint: every connected account's events, told apart by
/// `account`.
async fn stripe_connect(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let stripe = stripe_of(&app)?;
    if app.stripe_webhook_secrets.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_configured",
            "no Stripe Connect webhook secret is configured",
        ));
    }
    stripe_webhook::verify(
        &body,
        stripe_signature(&headers),
        &app.stripe_webhook_secrets,
        stripe_webhook::DEFAULT_TOLERANCE,
        Timestamp::now(),
    )?;
    let event = stripe_webhook::parse_event(&body)?;
    let Some(account) = event.account.clone() else {
        return Ok(answer(
            &event,
            Outcome::Ignored,
            "an event of the platform account itself, not of a connected account",
        ));
    };
    let connections = app
        .engine
        .routed_connections(Provider::Stripe, &account)
        .await
        .map_err(|e| redeliver(&e))?;
    // Intake reaches every tenant that connected the account; one of them judges the mode.
    let Some(connection) = connections.first() else {
        return Ok(answer(
            &event,
            Outcome::Unrouted,
            format!("no connected Stripe connection for account {account}"),
        ));
    };
    handle_stripe_event(&app, stripe, event, account, connection).await
}

/// An API-key connection's own endpoint, verified with that connection's secret.
async fn stripe_account(
    State(app): State<Arc<App>>,
    Path((tenant, connection)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let stripe = stripe_of(&app)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such Stripe connection",
        )
    };
    let tenant = TenantId::parse(tenant).map_err(|_| not_found())?;
    let id = ConnectionId::parse(connection).map_err(|_| not_found())?;
    let connection = app
        .engine
        .endpoint_connection(&tenant, &id, Provider::Stripe)
        .await
        .map_err(|e| redeliver(&e))?
        .ok_or_else(not_found)?;
    let secret = stripe
        .open_credentials(&connection)
        .map_err(|e| ApiError::internal(&e))?
        .and_then(|c| c.webhook_secret)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_configured",
                "this connection has no webhook secret: connect it with one",
            )
        })?;
    stripe_webhook::verify(
        &body,
        stripe_signature(&headers),
        std::slice::from_ref(&secret),
        stripe_webhook::DEFAULT_TOLERANCE,
        Timestamp::now(),
    )?;
    let event = stripe_webhook::parse_event(&body)?;
    let Some(account) = connection
        .account_id
        .clone()
        .filter(|_| connection.accepts_jobs())
    else {
        return Ok(answer(
            &event,
            Outcome::Unrouted,
            "the connection is not connected",
        ));
    };
    if let Some(other) = &event.account
        && *other != account
    {
        return Ok(answer(
            &event,
            Outcome::Ignored,
            format!("an event of connected account {other}, not of this connection's account"),
        ));
    }
    // Intake routes by account: make sure the account still leads to this connection.
    let routes = app
        .engine
        .routed_connections(Provider::Stripe, &account)
        .await
        .map_err(|e| redeliver(&e))?;
    if !routes.iter().any(|c| c.id == connection.id) {
        return Ok(answer(
            &event,
            Outcome::Unrouted,
            format!("account {account} is bound to another connection"),
        ));
    }
    handle_stripe_event(&app, stripe, event, account, &connection).await
}

/// A verified event of `connection`'s account: mode check, then deauthorization or one
/// record job for the customer it concerns.
async fn handle_stripe_event(
    app: &App,
    stripe: &StripeProvider,
    event: StripeEvent,
    account: ProviderAccountId,
    connection: &Connection,
) -> Result<Json<Value>, ApiError> {
    let Some(credentials) = stripe
        .open_credentials(connection)
        .map_err(|e| ApiError::internal(&e))?
    else {
        return Ok(answer(
            &event,
            Outcome::Unrouted,
            "the connection holds no credentials",
        ));
    };
    // Connect endpoints receive test and live events alike. A 4xx would only have Stripe
    // retry an event that is never ours for days: it is answered and ignored.
    if let Err(mismatch) = event.check_livemode(credentials.auth.livemode()) {
        tracing::warn!(event = %event.id, %mismatch, "stripe webhook event of the other mode: ignored");
        return Ok(answer(&event, Outcome::Ignored, mismatch.to_string()));
    }
    if event.is_deauthorization() {
        let found = app
            .engine
            .provider_deauthorized(Provider::Stripe, &account)
            .await
            .map_err(|e| redeliver(&e))?;
        let outcome = if found {
            Outcome::Deauthorized
        } else {
            Outcome::Unrouted
        };
        return Ok(answer(
            &event,
            outcome,
            format!("account {account} removed our access"),
        ));
    }
    let Some((object, customer)) = event.record_target() else {
        return Ok(answer(
            &event,
            Outcome::Ignored,
            "the event concerns no customer",
        ));
    };
    let source_id = SourceId::parse(customer).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_payload",
            format!("unusable customer id: {e}"),
        )
    })?;
    let change = Change {
        provider: Provider::Stripe,
        account,
        event_id: event.id.clone(),
        occurred_at: event.created,
        object,
        source_id,
        change: event.change_kind(),
        own_write: None,
    };
    let report = intake(app, vec![change]).await?;
    let outcome = if report.enqueued > 0 {
        Outcome::Enqueued
    } else if report.duplicates > 0 {
        Outcome::Duplicate
    } else {
        Outcome::Unrouted
    };
    Ok(answer(&event, outcome, format!("customer {customer}")))
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
        own_write: event.by_this_app.then(|| OwnWrite {
            property: event.property_name.clone(),
            value: event.property_value.clone(),
        }),
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
