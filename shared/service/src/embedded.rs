//! Wiring on one machine: the state store and both job queues in one SQLite file.

use std::path::Path;
use std::sync::Arc;

use connector_embedded::queue::{EmbeddedQueue, QueueSettings};
use connector_embedded::store::EmbeddedStore;
use connector_hubspot::HubSpotConfig;

use crate::app::App;
use crate::config::{Config, ConfigError};

/// The queue names inside the SQLite file.
pub const RECORD_QUEUE: &str = "record-jobs";
pub const RECONCILE_QUEUE: &str = "reconcile-jobs";

pub struct EmbeddedParts {
    pub store: Arc<EmbeddedStore>,
    pub records: Arc<EmbeddedQueue>,
    pub reconciles: Arc<EmbeddedQueue>,
}

pub fn open(path: &Path) -> Result<EmbeddedParts, ConfigError> {
    let backend =
        |e: &dyn std::fmt::Display| ConfigError::Backend(format!("{}: {e}", path.display()));
    let settings = QueueSettings {
        max_receive_count: 5,
    };
    Ok(EmbeddedParts {
        store: Arc::new(EmbeddedStore::open(path).map_err(|e| backend(&e))?),
        records: Arc::new(
            EmbeddedQueue::open(path, RECORD_QUEUE, settings).map_err(|e| backend(&e))?,
        ),
        reconciles: Arc::new(
            EmbeddedQueue::open(path, RECONCILE_QUEUE, settings).map_err(|e| backend(&e))?,
        ),
    })
}

/// The app on the embedded parts; `tune_hubspot` adjusts the client (the sandbox's limits).
pub fn app(
    config: &Config,
    parts: &EmbeddedParts,
    tune_hubspot: impl FnOnce(HubSpotConfig) -> HubSpotConfig,
) -> Result<App, ConfigError> {
    config.build(
        parts.store.clone(),
        parts.records.clone(),
        parts.reconciles.clone(),
        tune_hubspot,
    )
}
