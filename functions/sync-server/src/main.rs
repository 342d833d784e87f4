//! sync-server: the whole service on one machine, configured from the environment like the
//! Lambda functions, with its state and job queues in one SQLite file that outlives
//! restarts. `sync-server` serves; `sync-server admin-token TENANT` and
//! `sync-server sign-in-link TENANT` print credentials for an admin.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use connector::{TenantId, Timestamp};
use sync_service::auth::AdminAuth;
use sync_service::config::Config;
use sync_service::server::{self, ServerOptions};

const USAGE: &str = "usage:
  sync-server [--exit-on-stdin-eof]        serve until SIGTERM or Ctrl-C
  sync-server admin-token TENANT [DAYS]    print an admin API token (default 30 days)
  sync-server sign-in-link TENANT          print a one-time console sign-in link (1 hour)
environment: SYNC_DATA (default sync-data/sync.sqlite), SYNC_LISTEN (default 127.0.0.1:8080),
  and the functions' variables (TOKEN_ENCRYPTION_KEY, ADMIN_TOKEN_SECRET, HUBSPOT_*, STRIPE_*,
  PUBLIC_BASE_URL, MASS_ARCHIVE_SHARE); see the README";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn listen_address() -> String {
    env_or("SYNC_LISTEN", "127.0.0.1:8080")
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => serve(false).await,
        ["--exit-on-stdin-eof"] => serve(true).await,
        ["admin-token", tenant] => admin_token(tenant, 30),
        ["admin-token", tenant, days] => admin_token(tenant, days.parse()?),
        ["sign-in-link", tenant] => sign_in_link(tenant),
        ["--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown arguments {args:?}\n{USAGE}").into()),
    }
}

fn admin_auth(config: &Config) -> Result<AdminAuth, Error> {
    config
        .admin_secret
        .clone()
        .map(AdminAuth::new)
        .ok_or_else(|| "ADMIN_TOKEN_SECRET is not set: the admin API and console are off".into())
}

fn admin_token(tenant: &str, days: u64) -> Result<(), Error> {
    let config = Config::from_env()?;
    let tenant = TenantId::parse(tenant.to_owned())?;
    let expires = Timestamp::now().plus(Duration::from_secs(days * 24 * 3600));
    println!("{}", admin_auth(&config)?.issue(&tenant, expires).expose());
    Ok(())
}

fn sign_in_link(tenant: &str) -> Result<(), Error> {
    let config = Config::from_env()?;
    let tenant = TenantId::parse(tenant.to_owned())?;
    let (path, _) =
        sync_service::console::sign_in_link_path(&admin_auth(&config)?, &tenant, Timestamp::now());
    let base = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", listen_address()));
    println!("{base}{path}");
    Ok(())
}

async fn serve(exit_on_stdin_eof: bool) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Config::from_env()?;
    let data = PathBuf::from(env_or("SYNC_DATA", "sync-data/sync.sqlite"));
    if let Some(dir) = data.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let parts = sync_service::embedded::open(&data)?;
    let app = Arc::new(sync_service::embedded::app(&config, &parts, |h| h)?);
    let listener = tokio::net::TcpListener::bind(listen_address()).await?;
    let address = listener.local_addr()?;
    let running = server::start(app, listener, ServerOptions::default());
    // The first line of stdout, for whoever started it (a port of 0 picks a free one).
    println!("listening on http://{address}");
    tracing::info!(data = %data.display(), "sync-server started");
    lifetime::until_stopped(exit_on_stdin_eof).await;
    tracing::info!("stopping: finishing the jobs in hand");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}
