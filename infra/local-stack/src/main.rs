//! `make dev`: the whole service on this machine. Seeds the HubSpot sandbox, connects to it
//! through the real OAuth flow, runs the initial sync with a progress bar, then serves the
//! webhook intake, the worker, the nightly reconcile and the admin API until Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use hubspot_sandbox::SandboxConfig;
use local_stack::{Ports, StackOptions};

struct Args {
    port: u16,
    sandbox_port: u16,
    companies: usize,
    contacts: usize,
    seed: u64,
    data: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        port: 8080,
        sandbox_port: 8081,
        companies: 3000,
        contacts: 9000,
        seed: 7,
        data: PathBuf::from(".local/sync.sqlite"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse()?,
            "--sandbox-port" => args.sandbox_port = value()?.parse()?,
            "--companies" => args.companies = value()?.parse()?,
            "--contacts" => args.contacts = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--data" => args.data = PathBuf::from(value()?),
            "--help" | "-h" => {
                println!(
                    "local-stack [--port 8080] [--sandbox-port 8081] [--companies 3000] [--contacts 9000] [--seed 7] [--data .local/sync.sqlite]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown flag {other} (try --help)"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Some(dir) = args.data.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A fresh database each run: the sandbox is seeded anew too.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", args.data.display()));
    }
    let parts = sync_service::embedded::open(&args.data)?;
    let ports = Ports {
        store: parts.store.clone(),
        records: parts.records.clone(),
        reconciles: parts.reconciles.clone(),
    };
    let options = StackOptions {
        port: args.port,
        sandbox: SandboxConfig {
            port: args.sandbox_port,
            seed: args.seed,
            companies: args.companies,
            contacts: args.contacts,
            ..SandboxConfig::default()
        },
        ..StackOptions::default()
    };
    println!(
        "starting the HubSpot sandbox ({} companies, {} contacts) and the service...",
        args.companies, args.contacts
    );
    let stack = local_stack::start(options, ports).await?;
    let started = Instant::now();
    let connection = stack.connect_hubspot().await?;
    println!("connected to the sandbox portal through OAuth; initial sync:");
    let total = (args.companies + args.contacts) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("  [{elapsed_precise}] {bar:40} {pos}/{len} records  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let bar = Arc::new(bar);
    let run = stack
        .wait_for_sync(&connection, Duration::from_secs(3600), |run| {
            bar.set_position(run.counters.seen.min(total));
            bar.set_message(format!(
                "applied {} · unchanged {} · failed/held {}",
                run.counters.applied, run.counters.unchanged, run.counters.failed
            ));
        })
        .await?;
    bar.finish();
    let took = started.elapsed();
    let c = run.counters;
    println!(
        "initial sync {:?} in {:.1} s: seen {}, applied {}, unchanged {}, archived {}, failed/held {} ({} invocations)",
        run.status,
        took.as_secs_f64(),
        c.seen,
        c.applied,
        c.unchanged,
        c.archived,
        c.failed,
        run.invocations
    );
    let base = &stack.base_url;
    let token = stack.admin_token.expose();
    let sandbox = stack.sandbox.base_url();
    println!(
        "
The service is running (Ctrl-C stops it):
  admin API        {base}/admin/...      (tenant `{tenant}`)
  webhook intake   {base}/webhooks/hubspot (the sandbox delivers signed webhooks here)
  OAuth callback   {base}/oauth/hubspot/callback
  HubSpot sandbox  {sandbox}  (control API under {sandbox}/_sandbox/)
  nightly reconcile at 02:00 UTC; data in {data}

Try:
  export TOKEN='{token}'
  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/admin/connections/{connection}
  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/admin/connections/{connection}/log?errors_only=true'
  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/admin/matches
  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/admin/customers?limit=5'
  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {base}/admin/connections/{connection}/sync
  # change a company at the sandbox; its webhook lands here in about a second:
  curl -s -X PATCH -H 'content-type: application/json' {sandbox}/_sandbox/companies/<id> -d '{{\"properties\":{{\"name\":\"Renamed Inc\"}}}}'
",
        tenant = stack.tenant,
        data = args.data.display(),
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}
