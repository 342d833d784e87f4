//! The five Lambda functions as built binaries, each under a Runtime API emulator, behind an
//! HTTP API that turns requests into API Gateway v2 events, on moto and the HubSpot
//! sandbox: connect through OAuth, the initial pass through the reconciler's SQS jobs, a
//! signed webhook through the intake to the worker to DynamoDB, the nightly EventBridge
//! fan-out, and a bad record job back in `batchItemFailures`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use connector::ports::{ArchivedFilter, JobQueue, OutgoingMessage, PageRequest, Store};
use connector::{NightlyTime, NormalizedName, Secret, TenantId, Timestamp};
use connector_aws::dynamodb::DynamoStore;
use connector_aws::sqs::SqsQueue;
use hubspot_sandbox::{Sandbox, SandboxConfig};
use integration_tests::lambda::{Function, HttpApi, scheduled_event, sqs_event};
use integration_tests::moto::{moto_config, moto_endpoint, unique_name};
use integration_tests::waiting::eventually;
use serde_json::{Value, json};
use sync_service::auth::AdminAuth;

const COMPANIES: usize = 12;

struct Queue {
    queue: SqsQueue,
    arn: String,
}

/// What SQS's event source mapping does: receive, invoke with the batch, delete all but
/// the `batchItemFailures`. Returns how many messages went through.
async fn drain(queue: &Queue, function: &Function) -> usize {
    let mut handled = 0;
    loop {
        let received = queue
            .queue
            .receive(10, Duration::from_secs(300))
            .await
            .expect("receive from SQS");
        if received.is_empty() {
            return handled;
        }
        let answer = function
            .call(sqs_event(&queue.arn, &received))
            .await
            .expect("the function answers its SQS batch");
        let failed = failures(&answer);
        assert!(failed.is_empty(), "{} failed {failed:?}", function.name);
        for m in &received {
            queue.queue.delete(&m.receipt).await.expect("delete");
        }
        handled += received.len();
    }
}

fn failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_functions_sync_a_portal_under_the_lambda_runtime_api() {
    // The deployment: one table and two queue pairs, as the template makes them.
    let sdk = moto_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique_name("artifacts");
    DynamoStore::create_table(&dynamo, &table)
        .await
        .expect("create the table");
    let store = DynamoStore::new(dynamo, table.clone());
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut queues = Vec::new();
    for name in ["records", "reconciles"] {
        let name = unique_name(name);
        let queue = SqsQueue::create(&sqs, &name, 5)
            .await
            .expect("create queues");
        queues.push(Queue {
            queue,
            arn: format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
        });
    }
    let reconciles = queues.pop().expect("two queues");
    let records = queues.pop().expect("two queues");

    let (api, serve) = HttpApi::bind().await.expect("bind the HTTP API");
    let mut config = SandboxConfig {
        companies: COMPANIES,
        contacts: 0,
        ..SandboxConfig::default()
    };
    config.webhooks.target_url = Some(format!("{}/webhooks/hubspot", api.base_url));
    config.webhooks.batch_delay_ms = 50;
    let sandbox = Sandbox::start(config).await.expect("start the sandbox");
    let hubspot_app = sandbox.app().clone();

    let admin_secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let moto = moto_endpoint().await;
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("TABLE_NAME", table.as_str()),
        ("RECORD_QUEUE_URL", records.queue.queue_url()),
        ("RECORD_DLQ_URL", records.queue.dead_letter_url()),
        ("RECONCILE_QUEUE_URL", reconciles.queue.queue_url()),
        ("RECONCILE_DLQ_URL", reconciles.queue.dead_letter_url()),
        ("TOKEN_ENCRYPTION_KEY", key.as_str()),
        ("HUBSPOT_CLIENT_ID", hubspot_app.client_id.as_str()),
        ("HUBSPOT_CLIENT_SECRET", hubspot_app.client_secret.as_str()),
        (
            "HUBSPOT_REDIRECT_URI",
            &format!("{}/oauth/hubspot/callback", api.base_url),
        ),
        ("HUBSPOT_BASE_URL", &sandbox.base_url()),
        ("PUBLIC_BASE_URL", api.base_url.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut admin_env = env.clone();
    admin_env.push(("ADMIN_TOKEN_SECRET".into(), admin_secret.clone()));
    let start = |name: &'static str, env: Vec<(String, String)>, timeout: u64| async move {
        Arc::new(
            Function::start(name, &env, Duration::from_secs(timeout))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:#}")),
        )
    };
    let intake = start("webhook-intake", env.clone(), 30).await;
    let callback = start("oauth-callback", env.clone(), 30).await;
    let admin = start("admin-api", admin_env, 30).await;
    let worker = start("record-worker", env.clone(), 60).await;
    // More than the reconciler's one-minute hand-over margin.
    let reconciler = start("reconciler", env.clone(), 180).await;
    serve
        .send(vec![
            ("/webhooks", intake.clone()),
            ("/oauth", callback.clone()),
            ("/admin", admin.clone()),
            ("/console", admin.clone()),
        ])
        .unwrap_or_else(|_| panic!("the HTTP API stopped"));

    let tenant = TenantId::parse("artifacts".to_owned()).expect("tenant");
    let token = AdminAuth::new(Secret::new(admin_secret))
        .issue(&tenant, Timestamp::now().plus(Duration::from_secs(3600)));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let admin_call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{}{path}", api.base_url))
            .bearer_auth(token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("the HTTP API answers");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };

    // Connect through OAuth: admin-api, the sandbox's consent, oauth-callback.
    let (status, created) = admin_call(
        reqwest::Method::POST,
        "/admin/connections",
        Some(json!({"provider": "hubspot"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let connection = created["id"].as_str().expect("id").to_owned();
    let (status, authorize) = admin_call(
        reqwest::Method::POST,
        &format!("/admin/connections/{connection}/authorize"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{authorize}");
    let consent = http
        .get(authorize["authorize_url"].as_str().expect("authorize_url"))
        .send()
        .await
        .expect("consent");
    let redirect = consent.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(redirect.starts_with(&api.base_url), "{redirect}");
    let done = http.get(&redirect).send().await.expect("callback");
    assert_eq!(done.status().as_u16(), 200);

    // The initial pass: the reconcile job the callback queued, run by the reconciler.
    assert!(drain(&reconciles, &reconciler).await >= 1);
    let (_, runs) = admin_call(
        reqwest::Method::GET,
        &format!("/admin/connections/{connection}/runs"),
        None,
    )
    .await;
    assert_eq!(runs["items"][0]["status"], "completed", "{runs}");
    assert_eq!(runs["items"][0]["counters"]["seen"], COMPANIES, "{runs}");
    let mirrored = store
        .list_customers(&tenant, ArchivedFilter::Active, PageRequest::first(100))
        .await
        .expect("list customers in DynamoDB");
    assert!(!mirrored.items.is_empty());

    // A new company at HubSpot: its signed webhook through the intake, its record job
    // through the worker, its customer in DynamoDB.
    sandbox
        .control()
        .create_company(&[
            ("name", "Artifact Works"),
            ("domain", "artifact-works.example"),
        ])
        .await
        .expect("create a company");
    let name = NormalizedName::of("Artifact Works").expect("a name");
    eventually(
        "the webhook's company mirrored",
        Duration::from_secs(30),
        || {
            let (records, worker, store, tenant, name) =
                (&records, &worker, &store, &tenant, &name);
            async move {
                drain(records, worker).await;
                store
                    .find_customers_by_name(tenant, name)
                    .await
                    .ok()
                    .filter(|found| found.len() == 1)
            }
        },
    )
    .await;

    // A forged webhook: refused by the intake through the HTTP API.
    let forged = http
        .post(format!("{}/webhooks/hubspot", api.base_url))
        .header("x-hubspot-signature-v3", "bm9wZQ==")
        .header(
            "x-hubspot-request-timestamp",
            Timestamp::now().as_millis().to_string(),
        )
        .body("[]")
        .send()
        .await
        .expect("forged webhook");
    assert_eq!(forged.status().as_u16(), 401);

    // The schedule's sweep at tomorrow's 02:00 starts the connection's nightly pass.
    let tomorrow = Timestamp::now().plus(Duration::from_secs(24 * 3600));
    let at_two = NightlyTime::DEFAULT.on_day_of(tomorrow);
    let swept = reconciler
        .call(scheduled_event("sync-sweep", at_two))
        .await
        .expect("the scheduled event");
    assert_eq!(swept, json!({"reviewed": 1, "started": 1}));
    assert!(drain(&reconciles, &reconciler).await >= 1);
    let (_, runs) = admin_call(
        reqwest::Method::GET,
        &format!("/admin/connections/{connection}/runs"),
        None,
    )
    .await;
    assert_eq!(runs["items"][0]["trigger"], "scheduled", "{runs}");
    assert_eq!(runs["items"][0]["status"], "completed", "{runs}");

    // A record job that does not parse comes back as a partial batch failure.
    records
        .queue
        .send_batch(&[OutgoingMessage::now("not a job")])
        .await
        .expect("send");
    let received = records
        .queue
        .receive(10, Duration::from_secs(30))
        .await
        .expect("receive");
    let answer = worker
        .call(sqs_event(&records.arn, &received))
        .await
        .expect("the worker answers");
    assert_eq!(failures(&answer), vec![received[0].message_id.clone()]);

    for function in [&intake, &callback, &admin, &worker, &reconciler] {
        assert!(
            function.runtime.init_error().await.is_none(),
            "{}",
            function.name
        );
        eprintln!(
            "{}: init {:?}, {} invocations",
            function.name,
            function.init_time().await,
            function.runtime.invocations()
        );
    }
}
