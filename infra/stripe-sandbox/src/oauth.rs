//! Connect OAuth: `/oauth/authorize` consents at once (302 to `redirect_uri?code&scope&state`),
//! `/oauth/token` exchanges codes and ROTATING refresh tokens, `/oauth/deauthorize` disconnects
//! (and sends `account.application.deauthorized`). Errors use OAuth's body:
//! `{"error":"invalid_grant","error_description":"..."}`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::bearer_key;
use crate::form::Params;
use crate::server::AppState;
use crate::world::{ApiKey, KeyAccess, OAuthCode, RefreshGrant, World};

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let body = json!({ "error": error, "error_description": description.into() });
    (status, axum::Json(body)).into_response()
}

fn count(world: &mut World, route: &str) {
    world.counters.total += 1;
    *world.counters.by_route.entry(route.to_owned()).or_default() += 1;
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

/// `GET /oauth/authorize?response_type=code&client_id=ca_...&scope=read_write&state=..&redirect_uri=..`
/// Sandbox extras: `sandbox_account=acct_...` picks the account that "consents";
/// `sandbox_deny=true` redirects with `error=access_denied`.
pub async fn authorize(State(shared): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = match Params::parse(&[query.unwrap_or_default().as_bytes()]) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", e.message),
    };
    let mut world = shared.world.lock().await;
    count(&mut world, "GET /oauth/authorize");
    if params.str("client_id") != Some(world.config.oauth_client_id.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            format!(
                "No such application: '{}'",
                params.str("client_id").unwrap_or_default()
            ),
        );
    }
    if params.str("response_type").is_some_and(|t| t != "code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "Only response_type=code is supported.",
        );
    }
    let Some(redirect_uri) = params.str("redirect_uri").map(str::to_owned) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "No redirect_uri was provided.",
        );
    };
    let scope = params.str("scope").unwrap_or("read_only").to_owned();
    if !matches!(scope.as_str(), "read_only" | "read_write") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("Invalid scope: {scope}"),
        );
    }
    let state = params.str("state").unwrap_or_default().to_owned();
    if params.str("sandbox_deny") == Some("true") {
        let location = with_query(
            &redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied your request"),
                ("state", &state),
            ],
        );
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    let account = match params
        .str("sandbox_account")
        .map(str::to_owned)
        .or_else(|| world.oauth_next_account.clone())
    {
        Some(a) => a,
        None => world.ctx.ids.next("acct_1", 15),
    };
    world.account_mut(&account, false);
    world.connected.insert(account.clone(), true);
    let code = world.ctx.ids.next("ac_", 32);
    world.oauth_codes.insert(
        code.clone(),
        OAuthCode {
            account,
            scope: scope.clone(),
            livemode: false,
            used: false,
        },
    );
    let location = with_query(
        &redirect_uri,
        &[("code", &code), ("scope", &scope), ("state", &state)],
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `POST /oauth/token` (and `/v1/oauth/token`): `authorization_code` and `refresh_token` grants.
pub async fn token(State(shared): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::parse(&[&body]) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", e.message),
    };
    let mut world = shared.world.lock().await;
    count(&mut world, "POST /oauth/token");
    let key = bearer_key(&headers).or_else(|| params.str("client_secret").map(str::to_owned));
    let platform_ok = key
        .as_ref()
        .and_then(|k| world.keys.get(k))
        .is_some_and(|k| k.platform && !k.revoked && k.access == KeyAccess::Full);
    if !platform_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "No valid API key provided: authenticate with your platform's secret key.",
        );
    }
    let (account, scope, livemode) = match params.str("grant_type") {
        Some("authorization_code") => {
            let Some(code) = params.str("code") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "No code was provided.",
                );
            };
            match world.oauth_codes.get_mut(code) {
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        format!("Authorization code does not exist: {code}"),
                    );
                }
                Some(grant) if grant.used => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        format!("Authorization code already used: {code}"),
                    );
                }
                Some(grant) => {
                    grant.used = true;
                    (grant.account.clone(), grant.scope.clone(), grant.livemode)
                }
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = params.str("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "No refresh_token was provided.",
                );
            };
            let Some(grant) = world.refresh_tokens.get_mut(refresh).filter(|g| g.active) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    format!("Invalid refresh token: {refresh}"),
                );
            };
            let scope = match params.str("scope") {
                None => grant.scope.clone(),
                Some(s) if s == grant.scope || s == "read_only" => s.to_owned(),
                Some(s) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        format!(
                            "Scope {s} is wider than the original grant ({}).",
                            grant.scope
                        ),
                    );
                }
            };
            // Rotation: the presented refresh token stops working now.
            grant.active = false;
            (grant.account.clone(), scope, grant.livemode)
        }
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("Unsupported grant type: {other}"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "No grant_type was provided.",
            );
        }
    };
    if world.connected.get(&account) == Some(&false) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            format!("The account {account} has deauthorized this application."),
        );
    }
    let mode = if livemode { "live" } else { "test" };
    let access_token = world.ctx.ids.next(&format!("sk_{mode}_"), 40);
    let refresh_token = world.ctx.ids.next("rt_", 40);
    let publishable = world.ctx.ids.next(&format!("pk_{mode}_"), 40);
    let expires_at = world
        .config
        .oauth_access_token_ttl_secs
        .map(|ttl| world.now() + ttl);
    world.keys.insert(
        access_token.clone(),
        ApiKey {
            account: account.clone(),
            livemode,
            access: if scope == "read_write" {
                KeyAccess::Full
            } else {
                KeyAccess::ReadOnly
            },
            platform: false,
            revoked: false,
            expires_at,
        },
    );
    world.refresh_tokens.insert(
        refresh_token.clone(),
        RefreshGrant {
            account: account.clone(),
            scope: scope.clone(),
            livemode,
            active: true,
        },
    );
    axum::Json(json!({
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "scope": scope,
        "livemode": livemode,
        "stripe_user_id": account,
        "stripe_publishable_key": publishable
    }))
    .into_response()
}

/// `POST /oauth/deauthorize` with `client_id` and `stripe_user_id`, authenticated with the platform key.
pub async fn deauthorize(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match Params::parse(&[&body]) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", e.message),
    };
    let mut world = shared.world.lock().await;
    count(&mut world, "POST /oauth/deauthorize");
    let platform_ok = bearer_key(&headers)
        .or_else(|| params.str("client_secret").map(str::to_owned))
        .and_then(|k| world.keys.get(&k).cloned())
        .is_some_and(|k| k.platform && !k.revoked);
    if !platform_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "No valid API key provided.",
        );
    }
    if params.str("client_id") != Some(world.config.oauth_client_id.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "No such application.",
        );
    }
    let Some(account) = params.str("stripe_user_id").map(str::to_owned) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "No stripe_user_id was provided.",
        );
    };
    if world.connected.get(&account) != Some(&true) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            format!(
                "This application is not connected to stripe account {account}, or that account does not exist."
            ),
        );
    }
    deauthorize_account(&mut world, &account);
    drop(world);
    shared.notify.notify_one();
    axum::Json(json!({ "stripe_user_id": account })).into_response()
}

/// Disconnects `account`: its tokens and refresh tokens stop working, the platform key may no
/// longer use `Stripe-Account: account`, and `account.application.deauthorized` is sent.
pub fn deauthorize_account(world: &mut World, account: &str) {
    world.connected.insert(account.to_owned(), false);
    for key in world
        .keys
        .values_mut()
        .filter(|k| k.account == account && !k.platform)
    {
        key.revoked = true;
    }
    for grant in world
        .refresh_tokens
        .values_mut()
        .filter(|g| g.account == account)
    {
        grant.active = false;
    }
    world.begin(None);
    let application = json!({
        "id": world.config.oauth_client_id,
        "object": "application",
        "name": "Sandbox Platform"
    });
    let (acct, ctx) = world.account_and_ctx(account, false);
    acct.emit(ctx, "account.application.deauthorized", application, None);
    world.enqueue_outbox();
}
