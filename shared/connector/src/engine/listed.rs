//! What a pass's listing saw, so its check phase re-reads at the provider only the mirrored
//! records the listing no longer shows (the deletions, merges and filter exits to confirm)
//! instead of every mirrored record again.
//!
//! Ids are kept as 64-bit hashes salted with the run id: 8 bytes an id, and the chance
//! that a vanished id shares its hash with a listed one is about one in 10^13 for a portal
//! of 400,000 records (and a different salt next pass). Within one invocation they stay in
//! memory; a hand-over saves them beside the run in chunks. An invocation that died
//! between hand-overs lost what it had not saved: its checkpoint says so, and the check
//! phase of that kind re-reads every mirrored record, as a pass did before.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use crate::model::{
    Checkpoint, ConnectionId, LISTED_CHUNK_IDS, ListedIds, ObjectKind, SourceId, SyncRunId,
    TenantId, Timestamp,
};
use crate::ports::{Store, StoreResult};

/// How long saved chunks are kept: as long as a run's pending archives.
const KEPT: std::time::Duration = super::reconcile::PENDING_ARCHIVES_KEPT;

/// One invocation's view of what its run's listing saw.
pub(super) struct Listed {
    tenant: TenantId,
    connection: ConnectionId,
    run: SyncRunId,
    /// Listed in this invocation and not saved yet.
    unsaved: BTreeMap<ObjectKind, Vec<u64>>,
    /// Everything the listing of a kind saw, once the check phase needs it; `None` when
    /// some of it was lost.
    loaded: BTreeMap<ObjectKind, Option<HashSet<u64>>>,
}

impl Listed {
    /// At the start of an invocation: ids an earlier invocation held unsaved are lost.
    pub fn resume(
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        cp: &mut Checkpoint,
    ) -> Self {
        for progress in cp.listed.values_mut() {
            if progress.unsaved {
                progress.lost = true;
                progress.unsaved = false;
            }
        }
        Self {
            tenant: tenant.clone(),
            connection: connection.clone(),
            run: run.clone(),
            unsaved: BTreeMap::new(),
            loaded: BTreeMap::new(),
        }
    }

    /// The listing of `kind` starts from its first page.
    pub fn start(&mut self, cp: &mut Checkpoint, kind: ObjectKind) {
        cp.listed.insert(kind, Default::default());
        self.unsaved.remove(&kind);
        self.loaded.remove(&kind);
    }

    /// The listing of `kind` showed these ids.
    pub fn saw<'a>(
        &mut self,
        cp: &mut Checkpoint,
        kind: ObjectKind,
        ids: impl IntoIterator<Item = &'a SourceId>,
    ) {
        let hashes: Vec<u64> = ids.into_iter().map(|id| self.hash(kind, id)).collect();
        if hashes.is_empty() {
            return;
        }
        cp.listed.entry(kind).or_default().unsaved = true;
        self.unsaved.entry(kind).or_default().extend(hashes);
    }

    /// Saves what this invocation listed, before its checkpoint is handed over.
    pub async fn save(&mut self, store: &dyn Store, cp: &mut Checkpoint) -> StoreResult<()> {
        let expires = Timestamp::now().plus(KEPT);
        for (kind, hashes) in std::mem::take(&mut self.unsaved) {
            let progress = cp.listed.entry(kind).or_default();
            for chunk in hashes.chunks(LISTED_CHUNK_IDS) {
                store
                    .put_listed_ids(
                        &self.tenant,
                        &self.connection,
                        &self.run,
                        kind,
                        progress.chunks,
                        &ListedIds(chunk.to_vec()),
                        expires,
                    )
                    .await?;
                progress.chunks += 1;
            }
            progress.unsaved = false;
        }
        Ok(())
    }

    /// Whether the listing of `kind` showed `id`; `false` when that is not known.
    pub async fn showed(
        &mut self,
        store: &dyn Store,
        cp: &Checkpoint,
        kind: ObjectKind,
        id: &SourceId,
    ) -> StoreResult<bool> {
        let hash = self.hash(kind, id);
        if !self.loaded.contains_key(&kind) {
            let known = self.load(store, cp, kind).await?;
            self.loaded.insert(kind, known);
        }
        Ok(self
            .loaded
            .get(&kind)
            .and_then(Option::as_ref)
            .is_some_and(|seen| seen.contains(&hash)))
    }

    async fn load(
        &self,
        store: &dyn Store,
        cp: &Checkpoint,
        kind: ObjectKind,
    ) -> StoreResult<Option<HashSet<u64>>> {
        // A run from before listed ids were kept has no entry: nothing is known.
        let Some(progress) = cp.listed.get(&kind).filter(|p| !p.lost) else {
            return Ok(None);
        };
        let chunks = if progress.chunks > 0 {
            store
                .listed_ids(
                    &self.tenant,
                    &self.connection,
                    &self.run,
                    kind,
                    Timestamp::now(),
                )
                .await?
        } else {
            Vec::new()
        };
        if chunks.len() != progress.chunks as usize {
            tracing::warn!(run = %self.run, ?kind, saved = progress.chunks, found = chunks.len(),
                "listed ids are missing: the check re-reads every mirrored record");
            return Ok(None);
        }
        let mut seen: HashSet<u64> = chunks.into_iter().flat_map(|c| c.0).collect();
        seen.extend(self.unsaved.get(&kind).into_iter().flatten().copied());
        Ok(Some(seen))
    }

    fn hash(&self, kind: ObjectKind, id: &SourceId) -> u64 {
        let digest = Sha256::new()
            .chain_update(self.run.as_str())
            .chain_update([0])
            .chain_update(kind.as_str())
            .chain_update([0])
            .chain_update(id.as_str())
            .finalize();
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(word)
    }
}
