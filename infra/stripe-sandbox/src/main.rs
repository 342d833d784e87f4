//! `stripe-sandbox --port 0 --seed 42 [--customers N] [--webhook-url URL] [--webhook-secret S]
//! [--rate-limit-test N] [--rate-limit-live N] [--no-rate-limit] [--exit-on-stdin-eof]`
//! Prints `listening on http://127.0.0.1:PORT` first, then serves until killed or stdin closes.

use std::io::Write;

use anyhow::{Context, bail};
use stripe_sandbox::{Sandbox, SandboxConfig};

struct Args {
    config: SandboxConfig,
    exit_on_stdin_eof: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut config = SandboxConfig::default();
    let mut exit_on_stdin_eof = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--port" => config.port = value("--port")?.parse().context("--port")?,
            "--seed" => config.seed = value("--seed")?.parse().context("--seed")?,
            "--customers" => {
                config.seed_customers = value("--customers")?.parse().context("--customers")?
            }
            "--webhook-url" => config.webhooks.url = Some(value("--webhook-url")?),
            "--webhook-secret" => config.webhooks.secrets = vec![value("--webhook-secret")?],
            "--api-version" => config.api_version = value("--api-version")?,
            "--rate-limit-test" => {
                config.rate_limits.test_per_sec = value("--rate-limit-test")?
                    .parse()
                    .context("--rate-limit-test")?
            }
            "--rate-limit-live" => {
                config.rate_limits.live_per_sec = value("--rate-limit-live")?
                    .parse()
                    .context("--rate-limit-live")?
            }
            "--no-rate-limit" => config.rate_limits.enabled = false,
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "--help" | "-h" => {
                println!(
                    "stripe-sandbox --port 0 --seed 42 [--customers N] [--webhook-url URL] [--webhook-secret S] \
                     [--api-version V] [--rate-limit-test N] [--rate-limit-live N] [--no-rate-limit] [--exit-on-stdin-eof]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other} (see --help)"),
        }
    }
    Ok(Args {
        config,
        exit_on_stdin_eof,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = parse_args()?;
    let sandbox = Sandbox::start(args.config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", sandbox.base_url())?;
        out.flush()?;
    }
    lifetime::until_stopped(args.exit_on_stdin_eof).await;
    sandbox.shutdown().await;
    Ok(())
}
