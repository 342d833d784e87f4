//! The sync log: one row per sync attempt, invisible once `expires_at` has passed.

use connector::model::{ConnectionId, LogEntry, LogEntryId, TenantId, Timestamp};
use connector::ports::{LogFilter, Page, PageRequest, StoreResult};
use rusqlite::{Connection as Db, params};

use super::codec::{
    AFTER_EVERY_ID, SqlResult, encode, fetch_size, into_page, join_cursor, query_all, query_one,
    split_time_cursor,
};

pub(super) fn append(db: &mut Db, entry: &LogEntry) -> StoreResult<()> {
    db.prepare_cached(
        "INSERT INTO store_log (tenant_id, id, connection_id, at, is_error, expires_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             connection_id = excluded.connection_id, at = excluded.at,
             is_error = excluded.is_error, expires_at = excluded.expires_at, body = excluded.body",
    )
    .db()?
    .execute(params![
        entry.tenant_id.as_str(),
        entry.id.as_str(),
        entry.connection_id.as_str(),
        entry.at.as_millis(),
        entry.is_error(),
        entry.expires_at.as_millis(),
        encode(entry)?,
    ])
    .db()?;
    Ok(())
}

/// Newest first, ordered by `(at, id)` descending; the cursor is `at_millis#id`.
pub(super) fn list(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    filter: LogFilter,
    page: &PageRequest,
    now: Timestamp,
) -> StoreResult<Page<LogEntry>> {
    let limit = page.effective_limit();
    let (before_at, before_id) = match &page.cursor {
        Some(cursor) => split_time_cursor(cursor)?,
        None => (i64::MAX, AFTER_EVERY_ID),
    };
    let items: Vec<LogEntry> = query_all(
        db,
        "log entry",
        "SELECT body FROM store_log
         WHERE tenant_id = ?1 AND connection_id = ?2 AND expires_at > ?3
           AND (?4 = 0 OR is_error = 1)
           AND (at, id) < (?5, ?6)
         ORDER BY at DESC, id DESC LIMIT ?7",
        params![
            tenant.as_str(),
            connection.as_str(),
            now.as_millis(),
            filter.errors_only,
            before_at,
            before_id,
            fetch_size(limit),
        ],
    )?;
    Ok(into_page(items, limit, |e| {
        join_cursor(&e.at.as_millis().to_string(), e.id.as_str())
    }))
}

pub(super) fn get(
    db: &mut Db,
    tenant: &TenantId,
    id: &LogEntryId,
    now: Timestamp,
) -> StoreResult<Option<LogEntry>> {
    query_one(
        db,
        "log entry",
        "SELECT body FROM store_log WHERE tenant_id = ?1 AND id = ?2 AND expires_at > ?3",
        params![tenant.as_str(), id.as_str(), now.as_millis()],
    )
}
