//! The admin console, under `/console`: server-rendered HTML (maud) over the same engine
//! calls as the JSON API, in the admin API's router. No build step: the stylesheet and the
//! few lines of script are embedded in the binary.
//!
//! - [`session`]: sign-in (a pasted admin token, or a one-time link), the session cookie
//!   and the anti-CSRF token every form carries;
//! - [`page`]: the page shell, times in the admin's zone, the error page;
//! - one module per screen.

mod conflicts;
mod customers;
mod filter;
mod integrations;
mod log;
mod mapping;
mod matches;
mod notifications;
mod page;
mod push;
mod runs;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::app::App;
use crate::http::error::ApiError;

pub use page::{oauth_result_page, provider_name};
pub use session::sign_in_link_path;

/// Everything under `/console` (its own not-found page included).
pub fn router(app: Arc<App>) -> Router {
    let console = Router::new()
        .route("/", get(|| async { Redirect::to(HOME) }))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-in/link", get(session::sign_in_link))
        .route("/sign-out", post(session::sign_out))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route("/integrations", get(integrations::page))
        .route("/connections", post(integrations::connect_new))
        .route("/connections/{id}/authorize", post(integrations::authorize))
        .route("/connections/{id}/{action}", post(integrations::act))
        .route("/connections/{id}/log", get(log::list))
        .route(
            "/connections/{id}/filter",
            get(filter::page).post(filter::submit),
        )
        .route("/connections/{id}/runs", get(runs::runs))
        .route("/connections/{id}/held", get(runs::held))
        .route(
            "/connections/{id}/mapping",
            get(mapping::page).post(mapping::submit),
        )
        .route("/connections/{id}/push", get(push::page).post(push::submit))
        .route("/connections/{id}/conflicts", get(conflicts::list))
        .route("/conflicts/{id}/restore", post(conflicts::restore))
        .route("/customers", get(customers::list))
        .route("/customers/{id}", get(customers::show))
        .route("/customers/{id}/resync", post(customers::resync))
        .route(
            "/customers/{id}/delete",
            get(customers::confirm_delete).post(customers::delete),
        )
        .route("/matches", get(matches::list))
        .route("/matches/{id}/resolve", post(matches::resolve))
        .route("/log/{entry}", get(log::entry))
        .route("/log/{entry}/retry", post(log::retry))
        .route("/log/{entry}/report", get(log::report))
        .route("/notifications", get(notifications::feed))
        .route("/notifications/read", post(notifications::read_all))
        .route("/notifications/{id}/read", post(notifications::read))
        .fallback(not_found);
    Router::new().nest("/console", console).with_state(app)
}

/// Where a signed-in admin starts.
const HOME: &str = "/console/integrations";

async fn not_found() -> ConsoleError {
    ConsoleError(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such page in the console.",
    ))
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A console failure: the API's own error (status, code, detail: mapped once, in
/// [`crate::http::error`]), shown as a page.
pub struct ConsoleError(pub ApiError);

macro_rules! shown_as_a_page {
    ($($error:ty),*) => {$(
        impl From<$error> for ConsoleError {
            fn from(e: $error) -> Self {
                ConsoleError(e.into())
            }
        }
    )*};
}

shown_as_a_page!(
    ApiError,
    connector::engine::admin::AdminError,
    crate::oauth::OAuthError,
    crate::auth::AuthError
);

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let ApiError {
            status,
            code,
            detail,
            ..
        } = self.0;
        if status.is_client_error() {
            tracing::warn!(status = status.as_u16(), code, %detail, "console request refused");
        }
        (status, page::error_page(status, code, &detail)).into_response()
    }
}

pub type ConsoleResult<T = Response> = Result<T, ConsoleError>;

/// An id from the URL: one that cannot be an id names no page (404).
fn path_id<T: std::str::FromStr<Err = connector::ParseError>>(
    raw: &str,
) -> Result<T, ConsoleError> {
    raw.parse().map_err(|e: connector::ParseError| {
        ConsoleError(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            e.to_string(),
        ))
    })
}

/// A refused action is shown on the page it came from: its status and its reason. A
/// missing page (404) or a failure of ours stays an error page.
fn refusal(e: ApiError) -> Result<(StatusCode, page::Notice), ConsoleError> {
    if e.status == StatusCode::NOT_FOUND || !e.status.is_client_error() {
        return Err(ConsoleError(e));
    }
    tracing::warn!(status = e.status.as_u16(), code = e.code, detail = %e.detail, "console action refused");
    Ok((e.status, page::Notice::Failed(e.detail)))
}
