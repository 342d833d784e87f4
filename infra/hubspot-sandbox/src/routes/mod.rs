//! The HTTP surface: HubSpot's API paths, OAuth, and the `/_sandbox` control API.

pub mod association_writes;
pub mod associations;
pub mod control;
pub mod crm;
pub mod list_writes;
pub mod lists;
pub mod meta;
pub mod oauth;
pub mod query;
pub mod search;
pub mod validate;
pub mod writes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::clock::{iso, now_ms};
use crate::error::{ApiError, CORRELATION_HEADER, correlation_id};
use crate::oauth::TokenProblem;
use crate::ratelimit::Decision;
use crate::world::Shared;

pub type AppState = Arc<Shared>;

/// The scopes of the token that authorized the request.
#[derive(Clone, Debug)]
pub struct Granted(pub Vec<String>);

impl Granted {
    /// Passes when the token has any one of `accepted`.
    pub fn require(&self, accepted: &[&str]) -> Result<(), ApiError> {
        if accepted.iter().any(|s| self.0.iter().any(|g| g == s)) {
            Ok(())
        } else {
            Err(ApiError::missing_scopes(accepted))
        }
    }
}

pub fn router(shared: AppState) -> Router {
    let api = Router::new()
        .route(
            "/crm/v3/objects/{object_type}",
            get(crm::list).post(writes::create),
        )
        .route(
            "/crm/v3/objects/{object_type}/{id}",
            get(crm::get_one)
                .patch(writes::update)
                .delete(writes::archive),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/read",
            post(crm::batch_read),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/create",
            post(writes::batch_create),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/update",
            post(writes::batch_update),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/upsert",
            post(writes::batch_upsert),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/archive",
            post(writes::batch_archive),
        )
        .route("/crm/v3/objects/{object_type}/search", post(search::search))
        .route("/crm/v3/objects/{object_type}/merge", post(crm::merge))
        .route(
            "/crm/v3/objects/{object_type}/{id}/associations/{to_type}",
            get(associations::v3_list),
        )
        .route(
            "/crm/v4/objects/{object_type}/{id}/associations/{to_type}",
            get(associations::v4_list),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/read",
            post(associations::v4_batch_read),
        )
        .route(
            "/crm/v4/objects/{object_type}/{id}/associations/default/{to_type}/{to_id}",
            put(association_writes::put_default),
        )
        .route(
            "/crm/v4/objects/{object_type}/{id}/associations/{to_type}/{to_id}",
            put(association_writes::put_labeled).delete(association_writes::delete_pair),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/associate/default",
            post(association_writes::batch_associate_default),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/create",
            post(association_writes::batch_create),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/archive",
            post(association_writes::batch_archive),
        )
        .route(
            "/crm/v3/properties/{object_type}",
            get(meta::properties).post(meta::create_property),
        )
        .route(
            "/crm/v3/properties/{object_type}/{name}",
            get(meta::property),
        )
        .route("/crm/v3/owners", get(meta::owners))
        .route("/crm/v3/owners/", get(meta::owners))
        .route("/crm/v3/owners/{owner_id}", get(meta::owner))
        .route("/crm/v3/pipelines/{object_type}", get(meta::pipelines))
        .route(
            "/crm/v3/pipelines/{object_type}/{pipeline_id}",
            get(meta::pipeline),
        )
        .route(
            "/crm/v3/lists",
            get(lists::by_ids).post(list_writes::create),
        )
        .route(
            "/crm/v3/lists/",
            get(lists::by_ids).post(list_writes::create),
        )
        .route("/crm/v3/lists/search", post(lists::search))
        .route("/crm/v3/lists/{list_id}", get(lists::get_one))
        .route(
            "/crm/v3/lists/{list_id}/memberships",
            get(lists::memberships),
        )
        .route(
            "/crm/v3/lists/{list_id}/memberships/add",
            put(list_writes::add),
        )
        .route(
            "/crm/v3/lists/{list_id}/memberships/remove",
            put(list_writes::remove),
        )
        .route(
            "/crm/v3/lists/{list_id}/memberships/add-and-remove",
            put(list_writes::add_and_remove),
        )
        .route(
            "/crm/v3/lists/{list_id}/memberships/join-order",
            get(lists::memberships_join_order),
        )
        .route(
            "/crm/v3/lists/records/{object_type_id}/{record_id}/memberships",
            get(lists::record_memberships),
        )
        .route(
            "/crm/v3/lists/object-type-id/{object_type_id}/name/{list_name}",
            get(lists::by_name),
        )
        // the date-versioned paths (2026-03) with the same bodies
        .route(
            "/crm/objects/2026-03/{object_type}",
            get(crm::list).post(writes::create),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/{id}",
            get(crm::get_one)
                .patch(writes::update)
                .delete(writes::archive),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/batch/create",
            post(writes::batch_create),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/batch/update",
            post(writes::batch_update),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/batch/upsert",
            post(writes::batch_upsert),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/batch/archive",
            post(writes::batch_archive),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/batch/read",
            post(crm::batch_read),
        )
        .route(
            "/crm/objects/2026-03/{object_type}/search",
            post(search::search),
        )
        .route(
            "/crm/properties/2026-03/{object_type}",
            get(meta::properties),
        )
        .route(
            "/crm/properties/2026-03/{object_type}/{name}",
            get(meta::property),
        )
        .route("/crm/lists/2026-03/{list_id}", get(lists::get_one))
        .route(
            "/crm/lists/2026-03/{list_id}/memberships/add",
            put(list_writes::add),
        )
        .route(
            "/crm/lists/2026-03/{list_id}/memberships/remove",
            put(list_writes::remove),
        )
        .route(
            "/crm/lists/2026-03/{list_id}/memberships",
            get(lists::memberships),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), api_gate));

    let oauth = Router::new()
        .route("/oauth/v1/token", post(oauth::token))
        .route("/oauth/v3/token", post(oauth::token))
        .route("/oauth/2026-03/token", post(oauth::token))
        .route(
            "/oauth/v1/access-tokens/{token}",
            get(oauth::access_token_info),
        )
        .route(
            "/oauth/v1/refresh-tokens/{token}",
            get(oauth::refresh_token_info).delete(oauth::delete_refresh_token),
        )
        .route("/oauth/v3/token/introspect", post(oauth::introspect))
        .route("/oauth/2026-03/token/introspect", post(oauth::introspect))
        .route("/oauth/v3/token/revoke", post(oauth::revoke))
        .route("/oauth/2026-03/token/revoke", post(oauth::revoke))
        .route_layer(middleware::from_fn_with_state(shared.clone(), oauth_gate))
        .route("/oauth/authorize", get(oauth::authorize))
        .route(
            "/oauth/{portal_id}/authorize",
            get(oauth::authorize_for_portal),
        );

    Router::new()
        .merge(api)
        .merge(oauth)
        .nest("/_sandbox", control::router())
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, None, "resource not found")
}

fn route_name(request: &Request) -> String {
    let path = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    format!("{} {path}", request.method())
}

fn bearer(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn injected_5xx(n: u64) -> ApiError {
    let status = match n % 4 {
        0 => StatusCode::INTERNAL_SERVER_ERROR,
        1 => StatusCode::BAD_GATEWAY,
        2 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::GATEWAY_TIMEOUT,
    };
    ApiError::new(status, None, "internal error")
}

fn with_correlation(mut response: Response) -> Response {
    if !response.headers().contains_key(CORRELATION_HEADER)
        && let Ok(value) = HeaderValue::from_str(&correlation_id())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static(CORRELATION_HEADER), value);
    }
    response
}

fn finish(shared: &Shared, response: Response) -> Response {
    let response = with_correlation(response);
    let status = response.status().as_u16();
    let mut world = shared.lock();
    *world.counters.by_status.entry(status).or_default() += 1;
    match status {
        401 => world.counters.unauthorized += 1,
        403 => world.counters.forbidden += 1,
        429 => world.counters.rate_limited += 1,
        _ => {}
    }
    response
}

/// Every CRM call: count, latency fault, bearer auth, rate limits (+ 429 faults), 5xx fault,
/// then the handler; rate-limit headers on everything but search.
async fn api_gate(State(shared): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = route_name(&request);
    let is_search = request.uri().path().ends_with("/search") && !route.contains("/lists/");
    let token = bearer(&request);
    let now = now_ms();
    let (latency, outcome) = {
        let mut world = shared.lock();
        world.counters.api_requests += 1;
        *world.counters.by_route.entry(route).or_default() += 1;
        let latency = world.config.faults.latency_ms;
        (latency, admit(&mut world, token.as_deref(), is_search, now))
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let headers = match outcome {
        Err(error) => return finish(&shared, error.into_response()),
        Ok((scopes, headers)) => {
            request.extensions_mut().insert(Granted(scopes));
            headers
        }
    };
    let mut response = next.run(request).await;
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    finish(&shared, response)
}

type Admission = (Vec<String>, Vec<(HeaderName, String)>);

fn admit(
    world: &mut crate::world::World,
    token: Option<&str>,
    is_search: bool,
    now: i64,
) -> Result<Admission, ApiError> {
    let scopes = world
        .oauth
        .authenticate(token, now)
        .map_err(|problem| match problem {
            TokenProblem::Missing | TokenProblem::Unknown => ApiError::invalid_authentication(),
            TokenProblem::Expired { expired_ms } => {
                ApiError::expired_authentication((now - expired_ms) / 1000, &iso(expired_ms))
            }
        })?;
    let limits = world.config.rate_limit.clone();
    let retry_after = |ms: u64| limits.send_retry_after.then_some(ms.div_ceil(1000).max(1));
    if world.config.faults.burst_429 > 0 {
        world.config.faults.burst_429 -= 1;
        return Err(ten_secondly(retry_after(limits.interval_ms)));
    }
    if world.roll(world.config.faults.rate_429) {
        return Err(ten_secondly(retry_after(1_000)));
    }
    let mut headers = Vec::new();
    if is_search {
        match world.limiter.check_search(&limits, now) {
            Decision::Limited { retry_after_ms } => {
                return Err(ApiError::rate_limited(
                    "SECONDLY",
                    "You have reached your secondly limit.",
                    retry_after(retry_after_ms),
                ));
            }
            Decision::Allowed { .. } => world.counters.search_admitted_ms.push(now),
        }
    } else {
        match world.limiter.check_general(&limits, now) {
            Decision::Limited { retry_after_ms } => {
                return Err(ten_secondly(retry_after(retry_after_ms))
                    .header(
                        HeaderName::from_static("x-hubspot-ratelimit-max"),
                        limits.max_per_interval.to_string(),
                    )
                    .header(
                        HeaderName::from_static("x-hubspot-ratelimit-remaining"),
                        "0".into(),
                    )
                    .header(
                        HeaderName::from_static("x-hubspot-ratelimit-interval-milliseconds"),
                        limits.interval_ms.to_string(),
                    ));
            }
            Decision::Allowed { remaining } => {
                world.counters.admitted_ms.push(now);
                let secondly =
                    (limits.max_per_interval as u64 * 1000 / limits.interval_ms.max(1)).max(1);
                headers = vec![
                    (
                        HeaderName::from_static("x-hubspot-ratelimit-interval-milliseconds"),
                        limits.interval_ms.to_string(),
                    ),
                    (
                        HeaderName::from_static("x-hubspot-ratelimit-max"),
                        limits.max_per_interval.to_string(),
                    ),
                    (
                        HeaderName::from_static("x-hubspot-ratelimit-remaining"),
                        remaining.to_string(),
                    ),
                    (
                        HeaderName::from_static("x-hubspot-ratelimit-secondly"),
                        secondly.to_string(),
                    ),
                    (
                        HeaderName::from_static("x-hubspot-ratelimit-secondly-remaining"),
                        secondly.to_string(),
                    ),
                ];
            }
        }
    }
    if world.roll(world.config.faults.error_5xx_rate) {
        world.counters.injected_5xx += 1;
        let n = world.counters.injected_5xx;
        return Err(injected_5xx(n));
    }
    Ok((scopes, headers))
}

fn ten_secondly(retry_after_secs: Option<u64>) -> ApiError {
    ApiError::rate_limited(
        "TEN_SECONDLY_ROLLING",
        "You have reached your ten_secondly_rolling limit.",
        retry_after_secs,
    )
}

/// Token endpoints: counted, with the latency and 5xx faults (no bearer auth, no limiter).
async fn oauth_gate(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_name(&request);
    let (latency, fail) = {
        let mut world = shared.lock();
        world.counters.oauth_requests += 1;
        *world.counters.by_route.entry(route).or_default() += 1;
        let rate = world.config.faults.error_5xx_rate;
        let fail = world.roll(rate);
        if fail {
            world.counters.injected_5xx += 1;
        }
        (
            world.config.faults.latency_ms,
            fail.then_some(world.counters.injected_5xx),
        )
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(n) = fail {
        return finish(&shared, injected_5xx(n).into_response());
    }
    let response = next.run(request).await;
    finish(&shared, response)
}
