//! The Lambda functions as built artifacts: each bootstrap runs as its own process against
//! a Runtime API emulator on loopback (the `2018-06-01` interface the `lambda_runtime`
//! client speaks), and an HTTP API in front routes requests to them as API Gateway HTTP
//! API (v2) events, as `template.yaml` does. What the functions get and answer is the JSON
//! Lambda would give and take; nothing of ours stands in between.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use connector::ports::ReceivedMessage;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Where the function binaries were built: `SYNC_BIN_DIR`, else beside this test binary
/// (`target/<profile>/deps/..`), so `CARGO_TARGET_DIR` is followed.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SYNC_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// What a function answered one invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    /// The function reported an error (`/invocation/{id}/error`), as Lambda would log it.
    Error(Value),
}

type Pending = HashMap<String, oneshot::Sender<Outcome>>;

struct EmulatorState {
    events: Mutex<mpsc::Receiver<(String, Value)>>,
    pending: Mutex<Pending>,
    function_arn: String,
    /// How long each invocation may run (its `Lambda-Runtime-Deadline-Ms`).
    timeout: Duration,
    /// When the process first asked for an event: the end of its init.
    first_next: Mutex<Option<Instant>>,
    init_error: Mutex<Option<Value>>,
}

/// One function's Runtime API: invocations go in one at a time, as Lambda runs them.
pub struct RuntimeApi {
    pub address: SocketAddr,
    state: Arc<EmulatorState>,
    events: mpsc::Sender<(String, Value)>,
    next_id: std::sync::atomic::AtomicU64,
    _server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start(function_name: &str, timeout: Duration) -> anyhow::Result<Self> {
        let (events, receiver) = mpsc::channel(16);
        let state = Arc::new(EmulatorState {
            events: Mutex::new(receiver),
            pending: Mutex::new(HashMap::new()),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            timeout,
            first_next: Mutex::new(None),
            init_error: Mutex::new(None),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_failed))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            address,
            state,
            events,
            next_id: std::sync::atomic::AtomicU64::new(0),
            _server: server,
        })
    }

    /// Runs one invocation with `event` and waits for what the function answers.
    pub async fn invoke(&self, event: Value) -> anyhow::Result<Outcome> {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        self.state.pending.lock().await.insert(id.clone(), tx);
        self.events.send((id, event)).await?;
        match tokio::time::timeout(self.state.timeout + Duration::from_secs(5), rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => bail!("the invocation was dropped"),
            Err(_) => match self.state.init_error.lock().await.clone() {
                Some(error) => bail!("the function failed its init: {error}"),
                None => bail!(
                    "the function did not answer within {:?}",
                    self.state.timeout
                ),
            },
        }
    }

    /// When the process first asked for an event (its init ended), if it has.
    pub async fn first_next(&self) -> Option<Instant> {
        *self.state.first_next.lock().await
    }

    /// How many invocations were sent so far.
    pub fn invocations(&self) -> u64 {
        self.next_id.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn init_error(&self) -> Option<Value> {
        self.state.init_error.lock().await.clone()
    }
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn next(State(state): State<Arc<EmulatorState>>) -> Response {
    state
        .first_next
        .lock()
        .await
        .get_or_insert_with(Instant::now);
    let Some((id, event)) = state.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = epoch_ms(SystemTime::now() + state.timeout);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    (headers, axum::Json(event)).into_response()
}

async fn settle(state: &EmulatorState, id: &str, outcome: Outcome) -> StatusCode {
    match state.pending.lock().await.remove(id) {
        Some(waiting) => {
            let _ = waiting.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(
    State(state): State<Arc<EmulatorState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&state, &id, Outcome::Response(json_or_text(&body))).await
}

async fn fail(
    State(state): State<Arc<EmulatorState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&state, &id, Outcome::Error(json_or_text(&body))).await
}

async fn init_failed(State(state): State<Arc<EmulatorState>>, body: Bytes) -> StatusCode {
    *state.init_error.lock().await = Some(json_or_text(&body));
    StatusCode::ACCEPTED
}

/// A function's bootstrap running under its own [`RuntimeApi`]; killed when dropped.
pub struct Function {
    pub name: String,
    pub runtime: RuntimeApi,
    pub started: Instant,
    process: Child,
}

impl Function {
    /// Starts `bin_dir()/name` with Lambda's environment plus `env`.
    pub async fn start(
        name: &str,
        env: &[(String, String)],
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::start_binary(&bin_dir().join(name), name, env, timeout).await
    }

    pub async fn start_binary(
        binary: &Path,
        name: &str,
        env: &[(String, String)],
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!(
                "{} is missing: build the functions first (`cargo build --workspace --bins`, as `make test` does)",
                binary.display()
            );
        }
        let runtime = RuntimeApi::start(name, timeout).await?;
        let started = Instant::now();
        let process = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/02/[$LATEST]0")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            name: name.to_owned(),
            runtime,
            started,
            process,
        })
    }

    /// Invokes the function and expects a response (not a reported error).
    pub async fn call(&self, event: Value) -> anyhow::Result<Value> {
        match self.runtime.invoke(event).await? {
            Outcome::Response(response) => Ok(response),
            Outcome::Error(error) => bail!("{} reported an error: {error}", self.name),
        }
    }

    /// How long its init took: from process start to its first `next`.
    pub async fn init_time(&self) -> Option<Duration> {
        self.runtime.first_next().await.map(|at| at - self.started)
    }

    /// The CPU time (user and system) the function's process has used so far.
    pub fn cpu_time(&self) -> Duration {
        self.process
            .id()
            .map(|pid| local_stack::bench::cpu_time(&pid.to_string()))
            .unwrap_or_default()
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.try_wait().ok().flatten()
    }
}

/// An SQS event as the event source mapping delivers `messages`.
pub fn sqs_event(queue_arn: &str, messages: &[ReceivedMessage]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let (id, body, receive_count) = (&m.message_id, &m.body, m.receive_count);
            json!({
                "messageId": id,
                "receiptHandle": m.receipt,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": receive_count.to_string(),
                    "SentTimestamp": epoch_ms(SystemTime::now()).to_string(),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": epoch_ms(SystemTime::now()).to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The EventBridge event of a schedule rule firing at `at`.
pub fn scheduled_event(rule: &str, at: connector::Timestamp) -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.to_rfc3339(),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")],
        "detail": {},
    })
}

/// API Gateway's HTTP API in front of the functions: each request becomes a v2 event for
/// the function its path routes to, and the function's answer becomes the response.
pub struct HttpApi {
    pub base_url: String,
    _server: tokio::task::JoinHandle<()>,
}

/// Routes by path prefix, the first match winning (`/webhooks` → webhook-intake, ...).
pub type Routes = Vec<(&'static str, Arc<Function>)>;

impl HttpApi {
    /// Binds first, so the functions can be told the URL before they start; serves once
    /// `routes` are given through the returned sender.
    pub async fn bind() -> anyhow::Result<(Self, oneshot::Sender<Routes>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<Routes>();
        let server = tokio::spawn(async move {
            let Ok(routes) = rx.await else { return };
            let routes = Arc::new(routes);
            let router = Router::new().fallback(move |request: Request<Body>| {
                let routes = routes.clone();
                async move { forward(&routes, request).await }
            });
            let _ = axum::serve(listener, router).await;
        });
        Ok((
            Self {
                base_url,
                _server: server,
            },
            tx,
        ))
    }
}

async fn forward(routes: &Routes, request: Request<Body>) -> Response {
    let path = request.uri().path().to_owned();
    let Some((prefix, function)) = routes.iter().find(|(prefix, _)| path.starts_with(prefix))
    else {
        return (StatusCode::NOT_FOUND, "no route").into_response();
    };
    let event = match http_event(prefix, request).await {
        Ok(event) => event,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match function.runtime.invoke(event).await {
        Ok(Outcome::Response(answer)) => http_response(&answer),
        // What API Gateway answers when the integration fails.
        Ok(Outcome::Error(_)) | Err(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
    }
}

/// The v2 event API Gateway builds for `request` (payload format 2.0).
async fn http_event(prefix: &str, request: Request<Body>) -> anyhow::Result<Value> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 10 * 1024 * 1024).await?;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    Ok(api_gateway_event(&ApiRequest {
        route: format!("ANY {prefix}/{{proxy+}}"),
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
    }))
}

/// One request as API Gateway's HTTP API sees it.
pub struct ApiRequest<'a> {
    /// `routeKey`, e.g. `ANY /admin/{proxy+}`.
    pub route: String,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Lower-case names; repeated names are joined with commas, cookies moved to `cookies`.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The v2 event (payload format 2.0) for `request`.
pub fn api_gateway_event(request: &ApiRequest<'_>) -> Value {
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in request.headers {
        if name == "cookie" {
            cookies.extend(value.split("; ").map(|c| Value::String(c.to_owned())));
            continue;
        }
        let joined = match headers.get(name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier},{value}"),
            None => value.clone(),
        };
        headers.insert(name.clone(), Value::String(joined));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (body, encoded) = match std::str::from_utf8(request.body) {
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(request.body)),
            true,
        ),
    };
    let now = epoch_ms(SystemTime::now());
    json!({
        "version": "2.0",
        "routeKey": request.route,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "cookies": cookies,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "domainName": header("host"),
            "domainPrefix": "api1234567",
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": header("user-agent"),
            },
            "requestId": format!("req-{now}"),
            "routeKey": request.route,
            "stage": "$default",
            "time": "02/Dec/2026:02:00:00 +0000",
            "timeEpoch": u64::try_from(now).unwrap_or(u64::MAX),
        },
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
    })
}

/// The HTTP response API Gateway makes of a function's v2 answer.
fn http_response(answer: &Value) -> Response {
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let raw = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_default()
    } else {
        raw.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(map) = answer["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                headers.append(name, value);
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            headers.append("set-cookie", value);
        }
    }
    response
}
