//! The conflict audit: one row per resolved conflict, versioned (a Restore marks it) and
//! invisible once `expires_at` has passed.

use connector::model::{Conflict, ConflictId, ConnectionId, TenantId, Timestamp};
use connector::ports::{Page, PageRequest, StoreResult};
use rusqlite::{Connection as Db, TransactionBehavior, params};

use super::codec::{
    AFTER_EVERY_ID, SqlResult, encode, fetch_size, into_page, join_cursor, next_version, query_all,
    query_one, split_time_cursor, stored_version,
};

pub(super) fn put(db: &mut Db, mut conflict: Conflict, now: Timestamp) -> StoreResult<Conflict> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let stored = stored_version(
        &tx,
        "SELECT version FROM store_conflicts
         WHERE tenant_id = ?1 AND id = ?2 AND expires_at > ?3",
        params![
            conflict.tenant_id.as_str(),
            conflict.id.as_str(),
            now.as_millis()
        ],
    )?;
    conflict.version = next_version("conflict", stored, conflict.version)?;
    tx.prepare_cached(
        "INSERT INTO store_conflicts
             (tenant_id, id, connection_id, at, version, expires_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             connection_id = excluded.connection_id, at = excluded.at,
             version = excluded.version, expires_at = excluded.expires_at,
             body = excluded.body",
    )
    .db()?
    .execute(params![
        conflict.tenant_id.as_str(),
        conflict.id.as_str(),
        conflict.connection_id.as_str(),
        conflict.at.as_millis(),
        conflict.version,
        conflict.expires_at.as_millis(),
        encode(&conflict)?,
    ])
    .db()?;
    tx.commit().db()?;
    Ok(conflict)
}

/// Newest first, ordered by `(at, id)` descending; the cursor is `at_millis#id`.
pub(super) fn list(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    page: &PageRequest,
    now: Timestamp,
) -> StoreResult<Page<Conflict>> {
    let limit = page.effective_limit();
    let (before_at, before_id) = match &page.cursor {
        Some(cursor) => split_time_cursor(cursor)?,
        None => (i64::MAX, AFTER_EVERY_ID),
    };
    let items: Vec<Conflict> = query_all(
        db,
        "conflict",
        "SELECT body FROM store_conflicts
         WHERE tenant_id = ?1 AND connection_id = ?2 AND expires_at > ?3
           AND (at, id) < (?4, ?5)
         ORDER BY at DESC, id DESC LIMIT ?6",
        params![
            tenant.as_str(),
            connection.as_str(),
            now.as_millis(),
            before_at,
            before_id,
            fetch_size(limit),
        ],
    )?;
    Ok(into_page(items, limit, |c| {
        join_cursor(&c.at.as_millis().to_string(), c.id.as_str())
    }))
}

pub(super) fn get(
    db: &mut Db,
    tenant: &TenantId,
    id: &ConflictId,
    now: Timestamp,
) -> StoreResult<Option<Conflict>> {
    query_one(
        db,
        "conflict",
        "SELECT body FROM store_conflicts WHERE tenant_id = ?1 AND id = ?2 AND expires_at > ?3",
        params![tenant.as_str(), id.as_str(), now.as_millis()],
    )
}
