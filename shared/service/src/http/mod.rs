//! The HTTP side: one router per HTTP function, and [`router`] with all of them for the
//! local stack. Errors become JSON `{code, detail}` in exactly one place ([`error`]).

pub mod admin;
pub mod error;
pub mod oauth;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// Every route: what the local stack serves.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(admin::router(app.clone()))
        .merge(webhooks::router(app.clone()))
        .merge(oauth::router(app))
}
