use std::ops::Deref;

use connector_embedded::store::EmbeddedStore;
use tempfile::TempDir;

/// A fresh embedded store in its own temporary directory, removed when this is dropped.
pub struct TempEmbeddedStore {
    store: EmbeddedStore,
    _dir: TempDir,
}

impl Deref for TempEmbeddedStore {
    type Target = EmbeddedStore;

    fn deref(&self) -> &EmbeddedStore {
        &self.store
    }
}

pub fn embedded_store() -> TempEmbeddedStore {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = EmbeddedStore::open(dir.path().join("state.sqlite")).expect("open the store");
    TempEmbeddedStore { store, _dir: dir }
}
