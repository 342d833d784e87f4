//! `make dev`: the whole service on this machine. Seeds the HubSpot sandbox, connects to it
//! through the real OAuth flow and runs the initial sync with a progress bar; then seeds the
//! Stripe sandbox with billing customers for most of the mirrored companies, connects it
//! through Connect OAuth and runs its initial sync; then serves the webhook intake, the
//! worker, the nightly reconcile and the admin API until Ctrl-C.

mod push_demo;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use connector::{ConnectionId, CustomerId};
use hubspot_sandbox::SandboxConfig;
use local_stack::{
    ExpectedMatch, Ports, RunningStack, STRIPE_ACCOUNT, StackOptions, StripeSeeding,
};

struct Args {
    port: u16,
    sandbox_port: u16,
    companies: usize,
    contacts: usize,
    seed: u64,
    data: PathBuf,
    /// `None`: no Stripe.
    stripe_port: Option<u16>,
    unmatched: usize,
    exit_on_stdin_eof: bool,
    /// Keep the database (and its keys) from the last run instead of starting afresh.
    keep_data: bool,
    /// Other tenants to print a console sign-in link for (they start empty).
    sign_in_for: Vec<String>,
    /// Also connect a second tenant outbound and push a lead (`push_demo`).
    push_demo: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        port: 8080,
        sandbox_port: 8081,
        companies: 3000,
        contacts: 9000,
        seed: 7,
        data: PathBuf::from(".local/sync.sqlite"),
        stripe_port: Some(8082),
        unmatched: 25,
        exit_on_stdin_eof: false,
        keep_data: false,
        sign_in_for: Vec::new(),
        push_demo: false,
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
            "--stripe-port" => args.stripe_port = Some(value()?.parse()?),
            "--unmatched" => args.unmatched = value()?.parse()?,
            "--no-stripe" => args.stripe_port = None,
            "--exit-on-stdin-eof" => args.exit_on_stdin_eof = true,
            "--keep-data" => args.keep_data = true,
            "--sign-in-for" => args.sign_in_for.push(value()?),
            "--push-demo" => args.push_demo = true,
            "--help" | "-h" => {
                println!(
                    "local-stack [--port 8080] [--sandbox-port 8081] [--companies 3000] [--contacts 9000] [--seed 7] [--data .local/sync.sqlite]\n            [--stripe-port 8082] [--unmatched 25] [--no-stripe] [--keep-data] [--exit-on-stdin-eof] [--sign-in-for TENANT]... [--push-demo]"
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
    let keys_file = args.data.with_extension("keys");
    // A fresh database each run unless kept: the sandboxes are seeded anew either way.
    if !args.keep_data {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", args.data.display()));
        }
        let _ = std::fs::remove_file(&keys_file);
    }
    let keys = local_stack::StackKeys::kept_in(&keys_file)?;
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
        stripe: args.stripe_port.map(|port| stripe_sandbox::SandboxConfig {
            port,
            seed: args.seed,
            // Stripe's live-mode budget rather than test mode's 25/s, so the demo's initial
            // sync takes seconds, not minutes; the client's limiter follows it.
            rate_limits: stripe_sandbox::RateLimits {
                test_per_sec: 100,
                ..stripe_sandbox::RateLimits::default()
            },
            ..stripe_sandbox::SandboxConfig::default()
        }),
        keys: Some(keys),
        ..StackOptions::default()
    };
    println!(
        "starting the HubSpot sandbox ({} companies, {} contacts){} and the service...",
        args.companies,
        args.contacts,
        if args.stripe_port.is_some() {
            ", the Stripe sandbox"
        } else {
            ""
        }
    );
    let mut stack = local_stack::start(options, ports).await?;
    let started = Instant::now();
    // Kept data: the fresh sandbox forgot the stored tokens, so the connection is
    // reauthorized, and its pass finds the (same-seeded) portal unchanged.
    let connection = stack.reconnect_hubspot().await?;
    println!("connected to the sandbox portal through OAuth; initial sync:");
    let total = (args.companies + args.contacts) as u64;
    let bar = progress_bar(total, "records");
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
    let stripe = match &stack.stripe {
        Some(_) => Some(connect_stripe(&stack, &connection, &args).await?),
        None => None,
    };
    let push = match args.push_demo {
        true => Some(push_demo::run(&stack).await?),
        false => None,
    };
    print_usage(&stack, &connection, stripe.as_ref(), &args)?;
    if let Some(push) = &push {
        push_demo::print_usage(&stack, push)?;
    }
    lifetime::until_stopped(args.exit_on_stdin_eof).await;
    println!("stopping: finishing the jobs in hand");
    stack.stop().await;
    Ok(())
}

/// What the Stripe part of the demo set up, for the examples printed at the end.
struct StripeDemo {
    connection: ConnectionId,
    /// A paying customer matched to a HubSpot company, with its subscription.
    example: Option<(CustomerId, String)>,
}

/// Seeds Stripe from the mirrored companies, connects through Connect OAuth, runs the
/// initial sync with a progress bar and prints the MRR figures.
async fn connect_stripe(
    stack: &RunningStack,
    hubspot: &ConnectionId,
    args: &Args,
) -> anyhow::Result<StripeDemo> {
    let seeding = StripeSeeding {
        unmatched: args.unmatched,
        seed: args.seed,
        ..StripeSeeding::default()
    };
    let seed = stack.seed_stripe_from_hubspot(hubspot, &seeding).await?;
    let metadata = seed.count(|e| matches!(e, ExpectedMatch::Metadata { .. }));
    let domain = seed.count(|e| matches!(e, ExpectedMatch::Domain { .. }));
    let unmatched = seed.count(|e| *e == ExpectedMatch::Unmatched);
    let subscriptions: usize = seed.customers.iter().map(|c| c.subscriptions.len()).sum();
    println!(
        "\nseeded Stripe account {} with {} customers ({metadata} naming their HubSpot company in metadata, {domain} with a billing email at its domain, {unmatched} matching no company) and {subscriptions} subscriptions",
        seed.account,
        seed.customers.len(),
    );
    let started = Instant::now();
    let connection = stack.reconnect_stripe().await?;
    println!("connected to Stripe through Connect OAuth; initial sync:");
    let total = seed.customers.len() as u64;
    let bar = progress_bar(total, "customers");
    let run = stack
        .wait_for_sync(&connection, Duration::from_secs(3600), |run| {
            bar.set_position(run.counters.seen.min(total));
            bar.set_message(format!(
                "applied {} · unchanged {} · unmatched/held/failed {}",
                run.counters.applied, run.counters.unchanged, run.counters.failed
            ));
        })
        .await?;
    bar.finish();
    let c = run.counters;
    println!(
        "Stripe initial sync {:?} in {:.1} s: seen {}, applied {}, unchanged {}, unmatched/held/failed {} ({} invocations)",
        run.status,
        started.elapsed().as_secs_f64(),
        c.seen,
        c.applied,
        c.unchanged,
        c.failed,
        run.invocations,
    );
    let figures = stack.billing_figures().await?;
    let mrr: Vec<String> = figures
        .mrr
        .iter()
        .map(|(currency, amount)| connector::Money::new(*amount, *currency).to_string())
        .collect();
    println!(
        "billing: {} customers carry Stripe billing ({} paying), {} Stripe customers unmatched, {} ambiguous\ntotal MRR: {}",
        figures.customers_with_billing,
        figures.paying,
        figures.unmatched,
        figures.ambiguous,
        if mrr.is_empty() {
            "none".to_owned()
        } else {
            mrr.join(" + ")
        }
    );
    let mut example = None;
    for seeded in &seed.customers {
        let Some(customer) = seeded.expected.customer() else {
            continue;
        };
        let Some(subscription) = seeded
            .subscriptions
            .iter()
            .find(|s| s.status == stripe_sandbox::SubscriptionStatus::Active)
        else {
            continue;
        };
        example = Some((customer.clone(), subscription.id.clone()));
        break;
    }
    Ok(StripeDemo {
        connection,
        example,
    })
}

fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "  [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {unit}  {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn print_usage(
    stack: &RunningStack,
    connection: &ConnectionId,
    stripe: Option<&StripeDemo>,
    args: &Args,
) -> anyhow::Result<()> {
    let base = &stack.base_url;
    let token = stack.admin_token.expose();
    let sandbox = stack.sandbox.base_url();
    let sign_in = stack.console_sign_in_link(&stack.tenant)?;
    println!(
        "
The service is running (Ctrl-C stops it):
  console          {base}/console/
  sign-in link     {sign_in}
                   (one use, valid 1 hour; or paste the admin token below on the sign-in page)
  admin API        {base}/admin/...      (tenant `{tenant}`; reference {base}/admin/openapi.yaml)
  webhook intake   {base}/webhooks/hubspot (the sandbox delivers signed webhooks here)
  OAuth callback   {base}/oauth/hubspot/callback
  HubSpot sandbox  {sandbox}  (control API under {sandbox}/_sandbox/)
  nightly reconcile at 02:00 UTC; data in {data}
                   ({kept})

Try:
  export TOKEN='{token}'
  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/admin/connections/{connection}
  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/admin/connections/{connection}/log?errors_only=true'
  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/admin/matches
  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/admin/customers?limit=5'
  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {base}/admin/connections/{connection}/sync
  # change a company at the sandbox; its webhook lands here in about a second:
  curl -s -X PATCH -H 'content-type: application/json' {sandbox}/_sandbox/companies/<id> -d '{{\"properties\":{{\"name\":\"Renamed Inc\"}}}}'",
        tenant = stack.tenant,
        data = args.data.display(),
        kept = if args.keep_data {
            "kept from the last run; without --keep-data the next start resets it"
        } else {
            "reset at each start; `make dev ARGS=--keep-data` keeps it"
        },
    );
    for other in &args.sign_in_for {
        let link = stack.console_sign_in_link(&connector::TenantId::parse(other.clone())?)?;
        println!("  sign-in link for tenant `{other}`: {link}");
    }
    if let (Some(demo), Some(stripe)) = (stripe, &stack.stripe) {
        let stripe_url = stripe.base_url();
        let stripe_connection = &demo.connection;
        println!(
            "
Stripe (sandbox {stripe_url}, control API under {stripe_url}/_sandbox/; webhooks to {base}/webhooks/stripe):
  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/admin/connections/{stripe_connection}
  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/admin/matches?limit=100'   # Stripe customers matching no company
  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {base}/admin/connections/{stripe_connection}/sync"
        );
        if let Some((customer, subscription)) = &demo.example {
            println!(
                "  # the customer's billing (MRR per currency, status, plans, next renewal):
  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/admin/customers/{customer}
  # re-read it from Stripe now:
  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" '{base}/admin/customers/{customer}/resync?provider=stripe'
  # upgrade its subscription at the sandbox (see the item id with the GET); the webhook updates MRR in about a second:
  curl -s '{stripe_url}/_sandbox/subscriptions/{subscription}?account={account}'
  curl -s -X POST -H 'content-type: application/json' {stripe_url}/_sandbox/subscriptions/{subscription} -d '{{\"account\":\"{account}\",\"items\":[{{\"id\":\"<si_...>\",\"quantity\":40}}]}}'",
                account = STRIPE_ACCOUNT,
            );
        }
    }
    Ok(())
}
