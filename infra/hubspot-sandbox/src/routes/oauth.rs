//! OAuth: authorize (consents at once and redirects), the token endpoints (v1, v3 and
//! 2026-03, same semantics), token info, introspection and revocation.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::AppState;
use super::query::Query;
use crate::clock::now_ms;
use crate::config::OAuthAppConfig;
use crate::error::{ApiError, correlation_id};
use crate::oauth::{Grant, OAuthError, parse_scopes};

fn is_loopback(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && matches!(
                u.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            )
    })
}

pub fn redirect_allowed(app: &OAuthAppConfig, uri: &str) -> bool {
    if app.redirect_uris.is_empty() {
        is_loopback(uri)
    } else {
        app.redirect_uris.iter().any(|allowed| allowed == uri)
    }
}

fn oauth_failure(status: StatusCode, message: &str) -> Response {
    let body = json!({ "status": "error", "message": message, "correlationId": correlation_id() });
    (status, Json(body)).into_response()
}

/// `GET /oauth/authorize`: there is no browser, so the portal admin consents at once and
/// the answer is the 302 to `redirect_uri?code=...&state=...`.
pub async fn authorize(State(shared): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw.as_deref());
    let mut world = shared.lock();
    let app = world.config.app.clone();
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return oauth_failure(StatusCode::BAD_REQUEST, "missing redirect_uri");
    };
    if !redirect_allowed(&app, redirect_uri) {
        return oauth_failure(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not registered for this app",
        );
    }
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return oauth_failure(StatusCode::BAD_REQUEST, "redirect_uri is not a URL");
    };
    if q.get("client_id") != Some(app.client_id.as_str()) {
        target
            .query_pairs_mut()
            .append_pair("error", "invalid_client")
            .append_pair("error_description", "unknown client_id");
    } else {
        let mut scopes = parse_scopes(q.get("scope"));
        scopes.extend(parse_scopes(q.get("optional_scope")));
        scopes.dedup();
        let now = now_ms();
        let world = &mut *world;
        let code = world
            .oauth
            .issue_code(&mut world.rng, redirect_uri, scopes, now);
        target.query_pairs_mut().append_pair("code", &code);
    }
    if let Some(state) = q.get("state") {
        target.query_pairs_mut().append_pair("state", state);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

pub async fn authorize_for_portal(
    State(shared): State<AppState>,
    Path(_portal_id): Path<String>,
    raw: RawQuery,
) -> Response {
    authorize(State(shared), raw).await
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn grant_body(grant: &Grant, app: &OAuthAppConfig) -> Value {
    json!({
        "token_type": "bearer",
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "expires_in": grant.expires_in,
        "token_use": "access_token",
        "hub_id": app.portal_id,
        "user_id": app.user_id,
        "scopes": grant.scopes,
    })
}

fn token_error(error: OAuthError) -> Response {
    (StatusCode::BAD_REQUEST, Json(error.body())).into_response()
}

fn client_error(status: &'static str, message: &str) -> Response {
    token_error(OAuthError {
        error: "invalid_client",
        status,
        message: message.to_owned(),
    })
}

/// `POST /oauth/v1/token` (and v3 / 2026-03): form-encoded `authorization_code` and
/// `refresh_token` grants. Client credentials may also come in the query (legacy v1).
pub async fn token(
    State(shared): State<AppState>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let mut fields = form(&body);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned() {
        fields.entry(k).or_insert(v);
    }
    let get = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut world = shared.lock();
    let app = world.config.app.clone();
    let ttl = world.config.access_token_ttl_secs;
    let grant_type = get("grant_type").unwrap_or_default();
    if !matches!(grant_type, "authorization_code" | "refresh_token") {
        return token_error(OAuthError {
            error: "unsupported_grant_type",
            status: "BAD_GRANT_TYPE",
            message: format!(
                "grant_type must be authorization_code or refresh_token, got '{grant_type}'"
            ),
        });
    }
    if get("client_id") != Some(app.client_id.as_str()) {
        return client_error("BAD_CLIENT_ID", "missing or unknown client id");
    }
    if get("client_secret") != Some(app.client_secret.as_str()) {
        return client_error("BAD_CLIENT_SECRET", "missing or invalid client secret");
    }
    let now = now_ms();
    let world = &mut *world;
    let result = if grant_type == "authorization_code" {
        world.oauth.exchange_code(
            &mut world.rng,
            get("code").unwrap_or_default(),
            get("redirect_uri"),
            ttl,
            now,
        )
    } else {
        world.oauth.refresh(
            &mut world.rng,
            get("refresh_token").unwrap_or_default(),
            ttl,
            now,
        )
    };
    match result {
        Ok(grant) => Json(grant_body(&grant, &app)).into_response(),
        Err(error) => token_error(error),
    }
}

fn access_info(shared: &AppState, token: &str) -> Option<Value> {
    let world = shared.lock();
    let stored = world.oauth.access.get(token).filter(|t| !t.revoked)?;
    let app = &world.config.app;
    let now = now_ms();
    let expires_in = ((stored.expires_ms - now) / 1000).max(0);
    Some(json!({
        "token": token,
        "user": app.user_email,
        "hub_domain": app.hub_domain,
        "scopes": world.oauth.effective(&stored.scopes),
        "signed_access_token": {
            "expiresAt": stored.expires_ms,
            "scopes": base64::engine::general_purpose::STANDARD.encode(stored.scopes.join(" ")),
            "hubId": app.portal_id,
            "userId": app.user_id,
            "appId": app.app_id,
            "appInstallId": format!("{}-{}", app.app_id, app.portal_id),
            "audience": app.client_id,
            "installingUserId": app.user_id,
            "signature": "sandbox",
            "newSignature": "sandbox",
            "scopeToScopeGroupPks": "",
            "trialScopes": "",
            "trialScopeToScopeGroupPks": "",
            "hublet": "na1",
            "isUserLevel": false,
            "isPrivateDistribution": false,
            "isServiceAccount": false,
        },
        "hub_id": app.portal_id,
        "app_id": app.app_id,
        "expires_in": expires_in,
        "user_id": app.user_id,
        "token_type": "access",
        "is_private_distribution": false,
    }))
}

fn refresh_info(shared: &AppState, token: &str) -> Option<Value> {
    let world = shared.lock();
    let stored = world.oauth.refresh.get(token).filter(|t| !t.revoked)?;
    let app = &world.config.app;
    Some(json!({
        "token": token,
        "user": app.user_email,
        "hub_domain": app.hub_domain,
        "scopes": world.oauth.effective(&stored.scopes),
        "hub_id": app.portal_id,
        "client_id": app.client_id,
        "user_id": app.user_id,
        "token_type": "refresh",
    }))
}

fn token_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Some("OBJECT_NOT_FOUND"),
        "Token not found",
    )
}

pub async fn access_token_info(
    State(shared): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    access_info(&shared, &token)
        .map(Json)
        .ok_or_else(token_not_found)
}

pub async fn refresh_token_info(
    State(shared): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    refresh_info(&shared, &token)
        .map(Json)
        .ok_or_else(token_not_found)
}

/// Deletes a refresh token; access tokens already minted stay valid until they expire.
pub async fn delete_refresh_token(
    State(shared): State<AppState>,
    Path(token): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut world = shared.lock();
    match world.oauth.refresh.get_mut(&token).filter(|t| !t.revoked) {
        Some(stored) => {
            stored.revoked = true;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(token_not_found()),
    }
}

fn client_ok(shared: &AppState, fields: &HashMap<String, String>) -> bool {
    let world = shared.lock();
    fields.get("client_id") == Some(&world.config.app.client_id)
        && fields.get("client_secret") == Some(&world.config.app.client_secret)
}

/// `POST /oauth/v3/token/introspect`: RFC 7662 style, `active: false` for unknown tokens.
pub async fn introspect(State(shared): State<AppState>, body: Bytes) -> Response {
    let fields = form(&body);
    if !client_ok(&shared, &fields) {
        return client_error("BAD_CLIENT_ID", "missing or invalid client credentials");
    }
    let token = fields.get("token").cloned().unwrap_or_default();
    let hint = fields.get("token_type_hint").map(String::as_str);
    let info = if hint == Some("refresh_token") {
        refresh_info(&shared, &token)
    } else {
        access_info(&shared, &token).or_else(|| refresh_info(&shared, &token))
    };
    let client_id = shared.lock().config.app.client_id.clone();
    match info {
        Some(mut info) => {
            info["active"] = json!(true);
            info["client_id"] = json!(client_id);
            if info["token_type"] == "access" {
                info["token_use"] = json!("access_token");
            }
            Json(info).into_response()
        }
        None => Json(json!({ "active": false })).into_response(),
    }
}

/// `POST /oauth/v3/token/revoke`: revokes a refresh token (or one access token).
pub async fn revoke(State(shared): State<AppState>, body: Bytes) -> Response {
    let fields = form(&body);
    if !client_ok(&shared, &fields) {
        return client_error("BAD_CLIENT_ID", "missing or invalid client credentials");
    }
    let token = fields.get("token").cloned().unwrap_or_default();
    let mut world = shared.lock();
    if world.oauth.refresh.contains_key(&token) {
        world.oauth.revoke(Some(&token));
    } else if let Some(access) = world.oauth.access.get_mut(&token) {
        access.revoked = true;
    }
    StatusCode::OK.into_response()
}
