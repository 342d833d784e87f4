//! The service's handlers, with no Lambda types: the same code runs in the five Lambda
//! functions (`functions/`), in the one-machine server (`functions/sync-server`) and in the
//! local stack (`infra/local-stack`).
//!
//! - [`http`]: one axum router per HTTP function (admin API, webhook intake, OAuth callback);
//! - [`console`]: the admin console's HTML screens, served with the admin API;
//! - [`jobs`]: record and reconcile job batches, as the SQS-triggered functions and the
//!   local stack's pollers receive them;
//! - [`app`]: what a handler needs, built once per process; [`config`]: from the environment;
//! - [`server`]: all of it as one long-running process (the one-machine server, the local
//!   stack).

pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod http;
pub mod jobs;
pub mod notifications;
pub mod oauth;
pub mod stripe;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "server")]
pub mod server;

pub use app::App;

/// Tracing for a Lambda function: JSON lines, levels from `RUST_LOG` as `target=level`
/// directives (`info`, `connector=debug,warn`; default and fallback info), no ANSI
/// colours, no time (CloudWatch stamps each line). Target filters rather than `EnvFilter`,
/// whose span and field matching would link a regex engine into every function.
pub fn init_lambda_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .without_time()
        .with_current_span(false);
    tracing_subscriber::registry()
        .with(json)
        .with(filter)
        .init();
}
