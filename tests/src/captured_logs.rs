//! Everything the service's own crates log, at every level, kept in memory for the rest of
//! the test process: tests look in it for what must never be logged (tokens). Installed
//! once, as the process's global subscriber, so the logs of every task and thread count.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

/// The crates whose logs are kept (the SDK's and hyper's are not: they never see a token
/// outside a header, and they are loud).
const OURS: &str = "connector=trace,connector_hubspot=trace,connector_stripe=trace,connector_aws=trace,connector_embedded=trace,sync_service=trace,local_stack=trace";

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// What was logged so far, as text.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The process's captured logs, capturing from the first call on.
pub fn captured_logs() -> CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(OURS))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the test process");
        logs
    })
    .clone()
}
