//! One `moto_server` per test process, serving DynamoDB and SQS on a free loopback port.
//!
//! moto is started through `moto_one_request_at_a_time.py`, which answers one request at
//! a time: DynamoDB's and SQS's per-request atomicity is what the conformance suites
//! check, and threaded moto does not keep it.
//!
//! The server is started on first use and shared by every test in the process. Statics
//! are never dropped, so it is not killed by a destructor: it runs under a small `sh`
//! watchdog whose stdin is a pipe held by this process. When the test process exits (in
//! any way, even killed), the kernel closes the pipe, the watchdog reads EOF and kills
//! moto.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_types::SdkConfig;
use connector_aws::AwsSettings;
use tokio::sync::OnceCell;

/// How long a freshly started moto may take to answer (python start-up on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;

struct MotoServer {
    endpoint: String,
    /// Held open for the life of the process; its EOF tells the watchdog to kill moto.
    _lifeline: ChildStdin,
}

static SERVER: OnceCell<MotoServer> = OnceCell::const_new();

/// The endpoint of this process's moto_server (`http://127.0.0.1:<port>`), started on first call.
pub async fn moto_endpoint() -> String {
    let server = SERVER
        .get_or_init(|| async {
            tokio::task::spawn_blocking(start_moto)
                .await
                .expect("the moto start-up task panicked")
                .unwrap_or_else(|e| panic!("could not start moto_server: {e}"))
        })
        .await;
    server.endpoint.clone()
}

/// SDK config pointing at this process's moto_server: region us-east-1, dummy credentials.
pub async fn moto_config() -> SdkConfig {
    let endpoint = moto_endpoint().await;
    connector_aws::sdk_config(&AwsSettings {
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
        endpoint_url: Some(endpoint),
    })
    .expect("the AWS HTTP client builds")
}

/// A name unique per call within this process (and this process has its own moto), valid
/// as a DynamoDB table or SQS queue name even with a `-dlq` suffix: `[A-Za-z0-9_-]`, short.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let clean = if clean.is_empty() {
        "t".to_owned()
    } else {
        clean
    };
    format!("{clean}-{}-{n}", std::process::id())
}

fn start_moto() -> io::Result<MotoServer> {
    let python = python_of(&moto_binary()?)?;
    let mut last_error = None;
    for _ in 0..START_ATTEMPTS {
        // The port is freed before moto binds it; if something else takes it meanwhile,
        // moto exits and we try another.
        let port = free_port()?;
        match spawn_watched(&python, port) {
            Ok(server) => return Ok(server),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("moto_server did not start")))
}

fn spawn_watched(python: &Path, port: u16) -> io::Result<MotoServer> {
    // $0 = python, $1 = the launcher, $2 = port. The watcher subshell kills moto on EOF of the lifeline;
    // the outer shell exits when moto does, so an early death is visible to `try_wait`.
    // A background job's stdin is /dev/null unless redirected, hence the copy on fd 3.
    let script = r#"exec 3<&0
"$0" "$1" -H 127.0.0.1 -p "$2" </dev/null >/dev/null 2>&1 &
m=$!
(cat <&3 >/dev/null; kill "$m" 2>/dev/null) &
exec 3<&-
wait "$m""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(python)
        .arg(launcher())
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let lifeline = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin pipe to the moto watchdog"))?;
    wait_until_listening(&mut child, port)?;
    Ok(MotoServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        _lifeline: lifeline,
    })
}

fn wait_until_listening(child: &mut Child, port: u16) -> io::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "moto_server exited before listening on port {port} ({status})"
            )));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "moto_server did not listen on port {port} within {START_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/moto_one_request_at_a_time.py")
}

/// The interpreter a `moto_server` console script runs on, from its `#!` line (an
/// absolute path, or `/usr/bin/env python3`), so the launcher imports the same moto.
fn python_of(moto_script: &Path) -> io::Result<PathBuf> {
    let text = std::fs::read_to_string(moto_script)?;
    let shebang = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("#!"))
        .ok_or_else(|| io::Error::other(format!("{} has no #! line", moto_script.display())))?;
    let mut words = shebang.split_whitespace();
    let first = words.next().unwrap_or_default();
    let interpreter = if first.ends_with("/env") {
        words.next().and_then(find_on_path)
    } else {
        Some(PathBuf::from(first))
    };
    interpreter.ok_or_else(|| {
        io::Error::other(format!(
            "no python found from the #! line of {}",
            moto_script.display()
        ))
    })
}

/// `$MOTO_SERVER`, else the repo's `.venv`, else `moto_server` on PATH, else install the
/// venv with `infra/scripts/python-env.sh` and use it.
fn moto_binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let root = repo_root();
    let venv_binary = root.join(".venv/bin/moto_server");
    if venv_binary.is_file() {
        return Ok(venv_binary);
    }
    if let Some(on_path) = find_on_path("moto_server") {
        return Ok(on_path);
    }
    let status = Command::new("bash")
        .arg(root.join("infra/scripts/python-env.sh"))
        .status()?;
    if !status.success() || !venv_binary.is_file() {
        return Err(io::Error::other(format!(
            "no moto_server: set MOTO_SERVER or run infra/scripts/python-env.sh ({status})"
        )));
    }
    Ok(venv_binary)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
