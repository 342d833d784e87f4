//! `hubspot-sandbox --port 8081 --seed 42 --companies 2000 [--contacts N] [--webhook-url URL]
//! [--exit-on-stdin-eof] ...`: prints `listening on http://127.0.0.1:PORT` first, then serves.

use std::io::Write;

use anyhow::{Context, bail};
use hubspot_sandbox::{Sandbox, SandboxConfig};

const USAGE: &str = "usage: hubspot-sandbox [--port N] [--seed N] [--companies N] [--contacts N]
  [--webhook-url URL] [--client-id ID] [--client-secret SECRET] [--portal-id N] [--app-id N]
  [--token-ttl SECS] [--rate-limit N] [--rate-interval-ms N] [--search-rate N] [--no-rate-limit]
  [--retry-scale F] [--no-auto-deliver] [--legacy-signature v1|v2|none] [--exit-on-stdin-eof]";

struct Args {
    config: SandboxConfig,
    exit_on_stdin_eof: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut config = SandboxConfig::default();
    let mut contacts = None;
    let mut exit_on_stdin_eof = false;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => config.port = value()?.parse()?,
            "--seed" => config.seed = value()?.parse()?,
            "--companies" => config.companies = value()?.parse()?,
            "--contacts" => contacts = Some(value()?.parse()?),
            "--webhook-url" => config.webhooks.target_url = Some(value()?),
            "--client-id" => config.app.client_id = value()?,
            "--client-secret" => config.app.client_secret = value()?,
            "--portal-id" => config.app.portal_id = value()?.parse()?,
            "--app-id" => config.app.app_id = value()?.parse()?,
            "--token-ttl" => config.access_token_ttl_secs = value()?.parse()?,
            "--rate-limit" => config.rate_limit.max_per_interval = value()?.parse()?,
            "--rate-interval-ms" => config.rate_limit.interval_ms = value()?.parse()?,
            "--search-rate" => config.rate_limit.search_per_second = value()?.parse()?,
            "--no-rate-limit" => config.rate_limit.enabled = false,
            "--retry-scale" => config.webhooks.retry_scale = value()?.parse()?,
            "--no-auto-deliver" => config.webhooks.auto_deliver = false,
            "--legacy-signature" => {
                config.webhooks.legacy_signature =
                    serde_json::from_value(serde_json::Value::String(value()?))
                        .context("--legacy-signature is v1, v2 or none")?;
            }
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    config.contacts = contacts.unwrap_or(config.companies);
    Ok(Args {
        config,
        exit_on_stdin_eof,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args(std::env::args().skip(1))?;
    let sandbox = Sandbox::start(args.config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", sandbox.base_url())?;
        stdout.flush()?;
    }
    lifetime::until_stopped(args.exit_on_stdin_eof).await;
    sandbox.shutdown().await;
    Ok(())
}
