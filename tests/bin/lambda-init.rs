//! `lambda-init`: each function's bootstrap beside a bare `lambda_http` hello built with the
//! same profile, run under the Runtime API emulator on loopback, interleaved run by run so
//! machine noise hits them alike. Prints each one's size, and the median time from process
//! start to its first `GET /runtime/invocation/next` (init) and to its first answer (an
//! invocation that needs no network), with the ratio to the hello.
//!
//! `cargo build --release -p webhook-intake -p oauth-callback -p admin-api -p record-worker
//! -p reconciler -p lambda-hello && cargo run -p integration-tests --bin lambda-init`
//! (`--from target/lambda` after `cargo lambda build --release`; `--runs N`, default 15).
//!
//! `--store`: instead, what a cold connection to the store costs the first request. The
//! admin function runs against moto (a real table), and each run times its first
//! `GET /admin/connections` (one DynamoDB Query on a connection not yet opened) and the
//! same request again: the difference is what opening the connection during init would
//! move out of the first request.
//!
//! `--intake`: the webhook intake's CPU per event for the whole handler, as it runs on
//! Lambda: the API Gateway event decoded, the v3 signature checked, the batch parsed, the
//! route read, each event's dedupe key checked and recorded in DynamoDB and its record job
//! sent to SQS (moto, in its own process). `--runs` signed batches of 100 fresh events go
//! to one warm `webhook-intake`; the process's CPU time over them (Linux counts it in
//! 10 ms ticks, so the runs should add up to seconds) divided by the events.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use integration_tests::lambda::{ApiRequest, Function, api_gateway_event};
use serde_json::{Value, json};

const FUNCTIONS: [&str; 6] = [
    "lambda-hello",
    "webhook-intake",
    "oauth-callback",
    "admin-api",
    "record-worker",
    "reconciler",
];

struct Args {
    from: PathBuf,
    runs: usize,
    store: bool,
    intake: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        from: PathBuf::from("target/release"),
        runs: 15,
        store: false,
        intake: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--from" => args.from = PathBuf::from(value()?),
            "--runs" => args.runs = value()?.parse()?,
            "--store" => args.store = true,
            "--intake" => args.intake = true,
            other => bail!("unknown flag {other} (--from DIR, --runs N, --store, --intake)"),
        }
    }
    Ok(args)
}

/// `DIR/<name>/bootstrap` (cargo lambda's layout) or `DIR/<name>` (cargo's).
fn bootstrap(dir: &Path, name: &str) -> PathBuf {
    let lambda = dir.join(name).join("bootstrap");
    if lambda.exists() {
        lambda
    } else {
        dir.join(name)
    }
}

/// What each function needs to start; nothing listens at the endpoints, and nothing at
/// init or in the first answer calls them.
fn environment() -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "init-bench"),
        ("AWS_SECRET_ACCESS_KEY", "init-bench"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("TABLE_NAME", "sync-state"),
        (
            "RECORD_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/records",
        ),
        (
            "RECORD_DLQ_URL",
            "http://127.0.0.1:9/123456789012/records-dlq",
        ),
        (
            "RECONCILE_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/reconciles",
        ),
        (
            "RECONCILE_DLQ_URL",
            "http://127.0.0.1:9/123456789012/reconciles-dlq",
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
        (
            "ADMIN_TOKEN_SECRET",
            "an-admin-token-secret-of-32-bytes-or-more",
        ),
        ("HUBSPOT_CLIENT_ID", "init-bench"),
        ("HUBSPOT_CLIENT_SECRET", "init-bench"),
        (
            "HUBSPOT_REDIRECT_URI",
            "https://sync.example.com/oauth/hubspot/callback",
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// An invocation each function answers without the network.
fn first_event(name: &str) -> Value {
    let get = |route: &str, path: &str| {
        api_gateway_event(&ApiRequest {
            route: route.to_owned(),
            method: "GET",
            path,
            query: "",
            headers: &[("host".to_owned(), "sync.example.com".to_owned())],
            body: b"",
        })
    };
    match name {
        "webhook-intake" => get("POST /webhooks/hubspot", "/webhooks/hubspot"),
        "oauth-callback" => get("GET /oauth/hubspot/callback", "/oauth/hubspot/callback"),
        "admin-api" => get("ANY /admin/{proxy+}", "/admin/openapi.yaml"),
        "record-worker" | "reconciler" => json!({ "Records": [] }),
        _ => get("$default", "/"),
    }
}

struct Timing {
    init: Duration,
    first_answer: Duration,
}

async fn measure(binary: &Path, name: &str, env: &[(String, String)]) -> anyhow::Result<Timing> {
    let function = started(binary, name, env).await?;
    let init = function.init_time().await.unwrap_or_default();
    function.call(first_event(name)).await?;
    Ok(Timing {
        init,
        first_answer: function.started.elapsed(),
    })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Starts `binary` and waits for its first `next`.
async fn started(binary: &Path, name: &str, env: &[(String, String)]) -> anyhow::Result<Function> {
    // Generous: on moto a 100-event intake batch is 200 DynamoDB calls.
    let function = Function::start_binary(binary, name, env, Duration::from_secs(60)).await?;
    let give_up = Instant::now() + Duration::from_secs(10);
    while function.init_time().await.is_none() {
        if let Some(error) = function.runtime.init_error().await {
            bail!("{name} failed its init: {error}");
        }
        if Instant::now() > give_up {
            bail!("{name} never asked for an event");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(function)
}

/// `--store`: the admin function's first and second store-reading request, per process.
async fn store_first_call(args: &Args) -> anyhow::Result<()> {
    let binary = bootstrap(&args.from, "admin-api");
    let (env, _) = moto_environment("init-store").await?;
    let secret = "an-admin-token-secret-of-32-bytes-or-more";
    let token = sync_service::auth::AdminAuth::new(connector::Secret::new(secret.to_owned()))
        .issue(
            &connector::TenantId::parse("init-bench")?,
            connector::Timestamp::now().plus(Duration::from_secs(3600)),
        );
    let headers = [
        ("host".to_owned(), "sync.example.com".to_owned()),
        (
            "authorization".to_owned(),
            format!("Bearer {}", token.expose()),
        ),
    ];
    let event = api_gateway_event(&ApiRequest {
        route: "ANY /admin/{proxy+}".to_owned(),
        method: "GET",
        path: "/admin/connections",
        query: "",
        headers: &headers,
        body: b"",
    });
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let function = started(&binary, "admin-api", &env).await?;
        for times in [&mut first, &mut second] {
            let at = Instant::now();
            let answer = function.call(event.clone()).await?;
            if answer["statusCode"] != 200 {
                bail!("GET /admin/connections answered {answer}");
            }
            times.push(at.elapsed());
        }
    }
    let (first, second) = (median(first), median(second));
    println!(
        "{} runs of admin-api from {} against moto: GET /admin/connections (one DynamoDB Query), median",
        args.runs,
        args.from.display()
    );
    println!(
        "first request {:.2} ms, second {:.2} ms: a cold store connection costs the first request {:.2} ms",
        ms(first),
        ms(second),
        ms(first.saturating_sub(second))
    );
    Ok(())
}

/// The moto endpoint and a fresh table in place of the environment's placeholders.
async fn moto_environment(table_prefix: &str) -> anyhow::Result<(Vec<(String, String)>, String)> {
    let sdk = integration_tests::moto::moto_config().await;
    let table = integration_tests::moto::unique_name(table_prefix);
    connector_aws::dynamodb::DynamoStore::create_table(
        &aws_sdk_dynamodb::Client::new(&sdk),
        &table,
    )
    .await?;
    let moto = integration_tests::moto::moto_endpoint().await;
    let mut env = environment();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL" && k != "TABLE_NAME");
    env.push(("AWS_ENDPOINT_URL".into(), moto));
    env.push(("TABLE_NAME".into(), table.clone()));
    Ok((env, table))
}

/// A signed HubSpot batch of `events` property changes, event ids from `first_id`.
fn signed_batch(first_id: u64, events: u64) -> anyhow::Result<Value> {
    let changes: Vec<Value> = (0..events)
        .map(|i| {
            json!({
                "eventId": first_id + i,
                "subscriptionId": 4711,
                "portalId": 62515,
                "appId": 54321,
                "occurredAt": connector::Timestamp::now().as_millis(),
                "subscriptionType": "company.propertyChange",
                "attemptNumber": 0,
                "objectId": 2_000_000 + (first_id + i) % 3_000,
                "propertyName": "name",
                "propertyValue": format!("Company {}", first_id + i),
                "changeSource": "CRM_UI"
            })
        })
        .collect();
    let body = serde_json::to_vec(&changes)?;
    let timestamp = connector::Timestamp::now().as_millis().to_string();
    let signature = connector_hubspot::webhook::sign_v3(
        "POST",
        "https://sync.example.com/webhooks/hubspot",
        &body,
        &timestamp,
        &connector::Secret::new("init-bench".to_owned()),
    );
    let headers = [
        ("host".to_owned(), "sync.example.com".to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-hubspot-signature-v3".to_owned(), signature),
        ("x-hubspot-request-timestamp".to_owned(), timestamp),
    ];
    Ok(api_gateway_event(&ApiRequest {
        route: "POST /webhooks/hubspot".to_owned(),
        method: "POST",
        path: "/webhooks/hubspot",
        query: "",
        headers: &headers,
        body: &body,
    }))
}

/// `--intake`: CPU per event of the whole webhook handler on DynamoDB and SQS.
async fn intake_cpu(args: &Args) -> anyhow::Result<()> {
    const EVENTS: u64 = 100;
    let binary = bootstrap(&args.from, "webhook-intake");
    let (mut env, table) = moto_environment("intake-cpu").await?;
    let sdk = integration_tests::moto::moto_config().await;
    let store =
        connector_aws::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let mut connection = connector::Connection::new(
        connector::TenantId::parse("intake-bench")?,
        connector::Provider::Hubspot,
        connector::Timestamp::now(),
    );
    connection.status = connector::ConnectionStatus::Connected;
    connection.account_id = Some(connector::ProviderAccountId::parse("62515")?);
    connector::ports::Store::put_connection(&store, &connection).await?;
    let queue = connector_aws::sqs::SqsQueue::create(
        &aws_sdk_sqs::Client::new(&sdk),
        &integration_tests::moto::unique_name("intake-records"),
        5,
    )
    .await?;
    env.retain(|(k, _)| k != "RECORD_QUEUE_URL" && k != "RECORD_DLQ_URL");
    env.push(("RECORD_QUEUE_URL".into(), queue.queue_url().to_owned()));
    env.push(("RECORD_DLQ_URL".into(), queue.dead_letter_url().to_owned()));

    let function = started(&binary, "webhook-intake", &env).await?;
    let send = |first_id: u64| {
        let function = &function;
        async move {
            let answer = function.call(signed_batch(first_id, EVENTS)?).await?;
            let report: Value = answer["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or_default();
            if answer["statusCode"] != 200 || report["enqueued"] != EVENTS {
                bail!("the intake answered {answer}");
            }
            anyhow::Ok(())
        }
    };
    // Warm: the store and queue connections open, the allocator settles.
    send(1).await?;
    let runs = args.runs as u64;
    let (cpu_before, at) = (function.cpu_time(), Instant::now());
    for run in 1..=runs {
        send(1 + run * EVENTS).await?;
    }
    let (cpu, took) = (function.cpu_time() - cpu_before, at.elapsed());
    let events = (runs * EVENTS) as f64;
    println!(
        "webhook-intake from {} on moto (DynamoDB + SQS): {runs} batches of {EVENTS} fresh events after one warm-up",
        args.from.display()
    );
    println!(
        "CPU {:.0} ms in all: {:.1} µs per event ({:.2} ms per batch); wall {:.0} ms per batch (moto's time included)",
        ms(cpu),
        cpu.as_secs_f64() * 1e6 / events,
        ms(cpu) / runs as f64,
        ms(took) / runs as f64,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.store {
        return store_first_call(&args).await;
    }
    if args.intake {
        return intake_cpu(&args).await;
    }
    let env = environment();
    let binaries: Vec<PathBuf> = FUNCTIONS
        .iter()
        .map(|name| bootstrap(&args.from, name))
        .collect();
    for binary in &binaries {
        if !binary.exists() {
            bail!(
                "{} is missing: build the release functions and lambda-hello first",
                binary.display()
            );
        }
    }
    let mut timings: Vec<Vec<Timing>> = FUNCTIONS.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.runs {
        for (i, name) in FUNCTIONS.iter().enumerate() {
            timings[i].push(measure(&binaries[i], name, &env).await?);
        }
    }
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let hello_size = size(&binaries[0]) as f64;
    let medians: Vec<(Duration, Duration)> = timings
        .into_iter()
        .map(|t| {
            let (init, answer): (Vec<_>, Vec<_>) =
                t.into_iter().map(|t| (t.init, t.first_answer)).unzip();
            (median(init), median(answer))
        })
        .collect();
    let (hello_init, hello_answer) = medians[0];
    println!(
        "{} runs each, interleaved; bootstraps from {}",
        args.runs,
        args.from.display()
    );
    println!(
        "{:<16} {:>9} {:>7} {:>10} {:>7} {:>13} {:>7}",
        "bootstrap", "MB", "x", "init ms", "x", "1st answer ms", "x"
    );
    for (i, name) in FUNCTIONS.iter().enumerate() {
        let bytes = size(&binaries[i]) as f64;
        let (init, answer) = medians[i];
        println!(
            "{:<16} {:>9.2} {:>7.2} {:>10.2} {:>7.2} {:>13.2} {:>7.2}",
            name,
            bytes / 1e6,
            bytes / hello_size,
            ms(init),
            ms(init) / ms(hello_init),
            ms(answer),
            ms(answer) / ms(hello_answer),
        );
    }
    Ok(())
}
