//! What the benchmark binaries share: their flags, and a stack on a throw-away embedded
//! database with one HubSpot connection synced, and the companies it mirrors.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use connector::ports::PageRequest;
use connector::{
    ConnectionId, CustomerId, LinkTarget, ObjectKind, Provider, SourceId, SyncRunStatus,
};
use hubspot_sandbox::{ControlClient, SandboxConfig};

use sync_service::embedded::EmbeddedParts;

use crate::{Ports, RunningStack, ServerOptions, StackOptions};

/// The bench's `--name N` flags, each given with its default, in the order given. Any
/// other flag, or one without a number, is refused.
pub fn numeric_flags<const K: usize>(mut flags: [(&str, u64); K]) -> anyhow::Result<[u64; K]> {
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(slot) = flags.iter_mut().find(|(name, _)| *name == flag) else {
            let known: Vec<&str> = flags.iter().map(|(name, _)| *name).collect();
            bail!("unknown flag {flag} (known: {})", known.join(", "));
        };
        slot.1 = args
            .next()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{flag} needs a number"))?;
    }
    Ok(flags.map(|(_, value)| value))
}

/// CPU time (user and system, every thread) this process has used; zero off Linux.
pub fn process_cpu() -> Duration {
    cpu_time("self")
}

/// CPU time (user and system, every thread) process `pid` (or `self`) has used, from
/// `/proc/<pid>/stat`, whose clock ticks are Linux's fixed 100 a second; zero where there
/// is none.
pub fn cpu_time(pid: &str) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // After the command name (in parentheses), utime and stime are fields 12 and 13.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The process's resident memory now, from `/proc/self/status` (0 where there is none).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A synced stack on its own database file, removed on drop.
pub struct BenchStack {
    pub stack: RunningStack,
    pub connection: ConnectionId,
    /// Every mirrored company and its customer.
    pub companies: Vec<(SourceId, CustomerId)>,
    /// The store, queues and database file the stack runs on.
    pub parts: EmbeddedParts,
    data: PathBuf,
}

impl BenchStack {
    /// A sandbox portal of `companies` companies and `contacts` contacts (no Stripe),
    /// connected and synced; record jobs are gathered `record_batch` a poll.
    pub async fn start(
        companies: usize,
        contacts: usize,
        record_batch: usize,
    ) -> anyhow::Result<Self> {
        let data = std::env::temp_dir().join(format!(
            "local-stack-bench-{}-{}.sqlite",
            std::process::id(),
            connector::SyncRunId::generate()
        ));
        let parts = sync_service::embedded::open(&data)?;
        let ports = Ports {
            store: parts.store.clone(),
            records: parts.records.clone(),
            reconciles: parts.reconciles.clone(),
        };
        let options = StackOptions {
            sandbox: SandboxConfig {
                companies,
                contacts,
                ..SandboxConfig::default()
            },
            stripe: None,
            server: ServerOptions {
                sweep_every: None,
                record_batch,
                ..ServerOptions::default()
            },
            ..StackOptions::default()
        };
        let stack = crate::start(options, ports).await?;
        let connection = stack.connect_hubspot().await?;
        let run = stack
            .wait_for_sync(&connection, Duration::from_secs(1800), |_| {})
            .await?;
        if run.status != SyncRunStatus::Completed {
            bail!("the initial sync ended {:?}", run.status);
        }
        let mut bench = Self {
            stack,
            connection,
            companies: Vec::new(),
            parts,
            data,
        };
        bench.companies = bench.mirrored_companies().await?;
        if bench.companies.is_empty() {
            bail!("no company was mirrored");
        }
        Ok(bench)
    }

    pub fn control(&self) -> ControlClient {
        self.stack.sandbox.control()
    }

    async fn mirrored_companies(&self) -> anyhow::Result<Vec<(SourceId, CustomerId)>> {
        let account = self
            .stack
            .source_ref(Provider::Hubspot, ObjectKind::Company, "1")
            .await?
            .account;
        let mut found = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let links = self
                .stack
                .app
                .engine
                .store
                .list_links(
                    &self.stack.tenant,
                    Provider::Hubspot,
                    &account,
                    ObjectKind::Company,
                    page.clone(),
                )
                .await?;
            found.extend(links.items.into_iter().filter_map(|l| match l.target {
                LinkTarget::Customer(customer) => Some((l.source_id, customer)),
                LinkTarget::Contact(_) => None,
            }));
            match links.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(found),
            }
        }
    }

    /// Waits until the sandbox holds no webhook and the record queue is empty.
    pub async fn drained(&self, within: Duration) -> anyhow::Result<()> {
        let give_up = std::time::Instant::now() + within;
        let records = self.stack.app.engine.record_jobs.clone();
        loop {
            let report = self.control().flush_webhooks().await?;
            if report.pending == 0 && records.approximate_depth().await? == 0 {
                return Ok(());
            }
            if std::time::Instant::now() > give_up {
                bail!("the queue did not drain within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many of `expected` (company, name) customers do not carry that name.
    pub async fn missing(&self, expected: &[(SourceId, String)]) -> anyhow::Result<usize> {
        let customers: std::collections::HashMap<&SourceId, &CustomerId> =
            self.companies.iter().map(|(s, c)| (s, c)).collect();
        let mut missing = 0;
        for (source, name) in expected {
            let stored = match customers.get(source) {
                Some(customer) => {
                    self.stack
                        .app
                        .engine
                        .store
                        .get_customer(&self.stack.tenant, customer)
                        .await?
                }
                None => None,
            };
            if stored.map(|c| c.name).as_ref() != Some(name) {
                missing += 1;
            }
        }
        Ok(missing)
    }
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.data.display()));
        }
    }
}
