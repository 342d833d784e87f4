//! Sync runs: versioned like the other records, plus counters many workers add to at once.

use connector::model::{
    ConnectionId, ListedIds, ObjectKind, PendingArchive, SyncCounters, SyncRun, SyncRunId,
    TenantId, Timestamp,
};
use connector::ports::{Page, PageRequest, StoreError, StoreResult};
use rusqlite::{Connection as Db, TransactionBehavior, params};

use super::codec::{
    AFTER_EVERY_ID, SqlResult, encode, fetch_size, into_page, join_cursor, next_version, query_all,
    query_one, split_time_cursor, stored_version,
};

pub(super) fn get(
    db: &Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    id: &SyncRunId,
) -> StoreResult<Option<SyncRun>> {
    query_one(
        db,
        "sync run",
        "SELECT body FROM store_sync_runs
         WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
        [tenant.as_str(), connection.as_str(), id.as_str()],
    )
}

pub(super) fn put(db: &mut Db, mut run: SyncRun) -> StoreResult<SyncRun> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let keys = [
        run.tenant_id.as_str(),
        run.connection_id.as_str(),
        run.id.as_str(),
    ];
    let stored = stored_version(
        &tx,
        "SELECT version FROM store_sync_runs
         WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
        keys,
    )?;
    run.version = next_version("sync run", stored, run.version)?;
    write(&tx, &run)?;
    tx.commit().db()?;
    Ok(run)
}

/// Read, add and write back inside one write transaction: concurrent adds serialise on
/// SQLite's write lock, so none is lost.
pub(super) fn add_counters(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    id: &SyncRunId,
    delta: &SyncCounters,
) -> StoreResult<()> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let mut run =
        get(&tx, tenant, connection, id)?.ok_or(StoreError::NotFound { entity: "sync run" })?;
    run.counters.add(delta);
    write(&tx, &run)?;
    tx.commit().db()
}

fn write(db: &Db, run: &SyncRun) -> StoreResult<()> {
    db.prepare_cached(
        "INSERT INTO store_sync_runs (tenant_id, connection_id, id, started_at, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant_id, connection_id, id) DO UPDATE SET
             started_at = excluded.started_at, version = excluded.version, body = excluded.body",
    )
    .db()?
    .execute(params![
        run.tenant_id.as_str(),
        run.connection_id.as_str(),
        run.id.as_str(),
        run.started_at.as_millis(),
        run.version,
        encode(run)?,
    ])
    .db()?;
    Ok(())
}

/// Newest first, ordered by `(started_at, id)` descending; the cursor is `millis#id`.
pub(super) fn list(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    page: &PageRequest,
) -> StoreResult<Page<SyncRun>> {
    let limit = page.effective_limit();
    let (before_at, before_id) = match &page.cursor {
        Some(cursor) => split_time_cursor(cursor)?,
        None => (i64::MAX, AFTER_EVERY_ID),
    };
    let items: Vec<SyncRun> = query_all(
        db,
        "sync run",
        "SELECT body FROM store_sync_runs
         WHERE tenant_id = ?1 AND connection_id = ?2 AND (started_at, id) < (?3, ?4)
         ORDER BY started_at DESC, id DESC LIMIT ?5",
        params![
            tenant.as_str(),
            connection.as_str(),
            before_at,
            before_id,
            fetch_size(limit),
        ],
    )?;
    Ok(into_page(items, limit, |r| {
        join_cursor(&r.started_at.as_millis().to_string(), r.id.as_str())
    }))
}

pub(super) fn put_pending_archives(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    archives: &[PendingArchive],
    expires_at: Timestamp,
) -> StoreResult<()> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO store_pending_archives
                     (tenant_id, connection_id, run_id, source_id, expires_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, connection_id, run_id, source_id) DO UPDATE SET
                     expires_at = excluded.expires_at, body = excluded.body",
            )
            .db()?;
        for archive in archives {
            insert
                .execute(params![
                    tenant.as_str(),
                    connection.as_str(),
                    run.as_str(),
                    archive.source_id.as_str(),
                    expires_at.as_millis(),
                    encode(archive)?,
                ])
                .db()?;
        }
    }
    tx.commit().db()
}

pub(super) fn list_pending_archives(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    page: &PageRequest,
    now: Timestamp,
) -> StoreResult<Page<PendingArchive>> {
    let limit = page.effective_limit();
    let after = page.cursor.as_deref().unwrap_or("");
    let items: Vec<PendingArchive> = query_all(
        db,
        "pending archive",
        "SELECT body FROM store_pending_archives
         WHERE tenant_id = ?1 AND connection_id = ?2 AND run_id = ?3
           AND source_id > ?4 AND expires_at > ?5
         ORDER BY source_id LIMIT ?6",
        params![
            tenant.as_str(),
            connection.as_str(),
            run.as_str(),
            after,
            now.as_millis(),
            fetch_size(limit),
        ],
    )?;
    Ok(into_page(items, limit, |a| a.source_id.as_str().to_owned()))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn put_listed_ids(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    kind: ObjectKind,
    chunk: u32,
    ids: &ListedIds,
    expires_at: Timestamp,
) -> StoreResult<()> {
    db.prepare_cached(
        "INSERT INTO store_listed_ids
             (tenant_id, connection_id, run_id, kind, chunk, expires_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, connection_id, run_id, kind, chunk) DO UPDATE SET
             expires_at = excluded.expires_at, body = excluded.body",
    )
    .db()?
    .execute(params![
        tenant.as_str(),
        connection.as_str(),
        run.as_str(),
        kind.as_str(),
        chunk,
        expires_at.as_millis(),
        encode(ids)?,
    ])
    .db()?;
    Ok(())
}

pub(super) fn listed_ids(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    kind: ObjectKind,
    now: Timestamp,
) -> StoreResult<Vec<ListedIds>> {
    query_all(
        db,
        "listed ids",
        "SELECT body FROM store_listed_ids
         WHERE tenant_id = ?1 AND connection_id = ?2 AND run_id = ?3 AND kind = ?4
           AND expires_at > ?5
         ORDER BY chunk",
        params![
            tenant.as_str(),
            connection.as_str(),
            run.as_str(),
            kind.as_str(),
            now.as_millis(),
        ],
    )
}
