//! The HTTP side: one router per HTTP function, and [`router`] with all of them for the
//! local stack. Errors become JSON `{code, detail}` in exactly one place ([`error`]).

pub mod admin;
pub mod error;
pub mod oauth;
pub mod records;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// A log row's support report as a JSON file download.
pub fn report_download(
    report: &connector::engine::admin::SupportReport,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let name = format!("sync-report-{}.json", report.entry.id);
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        axum::Json(report),
    )
        .into_response()
}

/// Every route: what the local stack serves.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(admin::router(app.clone()))
        .merge(webhooks::router(app.clone()))
        .merge(oauth::router(app))
}
