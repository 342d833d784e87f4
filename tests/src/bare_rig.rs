//! An engine with no provider on a fresh embedded store and queues: for the engine's own
//! logic (passes, leases, admin queries) where no provider call is made.

use std::sync::Arc;

use connector::engine::{Engine, EngineSettings};
use connector::model::*;
use connector::ports::{JobQueue, Store};

use crate::adapters::{TempEmbeddedQueue, TempEmbeddedStore, embedded_queue, embedded_store};

pub struct BareRig {
    pub store: Arc<dyn Store>,
    pub records: TempEmbeddedQueue,
    pub reconciles: TempEmbeddedQueue,
    _store_dir: TempEmbeddedStore,
}

impl BareRig {
    pub fn new() -> Self {
        let store_dir = embedded_store();
        Self {
            store: Arc::new((*store_dir).clone()),
            records: embedded_queue(5),
            reconciles: embedded_queue(5),
            _store_dir: store_dir,
        }
    }

    pub fn engine(&self, settings: EngineSettings) -> Engine {
        Engine::new(
            self.store.clone(),
            Arc::new((*self.records).clone()) as Arc<dyn JobQueue>,
            Arc::new((*self.reconciles).clone()) as Arc<dyn JobQueue>,
            settings,
        )
    }

    /// A HubSpot connection, connected to portal 62515.
    pub async fn connected(&self) -> Connection {
        let mut connection = Connection::new(
            TenantId::parse("tenant-a").unwrap(),
            Provider::Hubspot,
            Timestamp::now(),
        );
        connection.status = ConnectionStatus::Connected;
        connection.account_id = Some(ProviderAccountId::parse("62515").unwrap());
        self.store.put_connection(&connection).await.unwrap()
    }
}

impl Default for BareRig {
    fn default() -> Self {
        Self::new()
    }
}
