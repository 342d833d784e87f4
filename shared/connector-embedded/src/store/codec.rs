//! Conversions between stored rows and model values: JSON bodies, versions, cursors.

use connector::ports::{Page, StoreError, StoreResult};
use rusqlite::{Connection as Db, OptionalExtension, Params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every id the model allows sorts below this string (ids are ASCII letters, digits and
/// `-_.:`, all below `~`), so it stands for "after the last id" in descending scans.
pub(super) const AFTER_EVERY_ID: &str = "~";

/// SQLite failures become backend errors.
pub(super) trait SqlResult<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(StoreError::backend)
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(StoreError::backend)
}

/// A stored body that does not parse is `Corrupt`. The message names the entity and the
/// parse error, never the body (it may hold sealed credentials).
pub(super) fn decode<T: DeserializeOwned>(entity: &str, body: &str) -> StoreResult<T> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("{entity}: {e}")))
}

/// The body of at most one row (the first column of `sql`), decoded.
pub(super) fn query_one<T: DeserializeOwned>(
    conn: &Db,
    entity: &str,
    sql: &str,
    params: impl Params,
) -> StoreResult<Option<T>> {
    let body: Option<String> = conn
        .prepare_cached(sql)
        .db()?
        .query_row(params, |row| row.get(0))
        .optional()
        .db()?;
    body.map(|b| decode(entity, &b)).transpose()
}

/// The bodies of every row (the first column of `sql`), decoded.
pub(super) fn query_all<T: DeserializeOwned>(
    conn: &Db,
    entity: &str,
    sql: &str,
    params: impl Params,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let bodies = stmt.query_map(params, |row| row.get::<_, String>(0)).db()?;
    bodies
        .map(|body| body.db().and_then(|b| decode(entity, &b)))
        .collect()
}

/// The version column of one row, if the row exists.
pub(super) fn stored_version(
    conn: &Db,
    sql: &str,
    params: impl Params,
) -> StoreResult<Option<u64>> {
    let version: Option<i64> = conn
        .prepare_cached(sql)
        .db()?
        .query_row(params, |row| row.get(0))
        .optional()
        .db()?;
    version
        .map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative version {v}"))))
        .transpose()
}

/// The version a write stores, if the optimistic check passes: `expected` must be the
/// stored version, or 0 when nothing is stored.
pub(super) fn next_version(
    entity: &'static str,
    stored: Option<u64>,
    expected: u64,
) -> StoreResult<u64> {
    let conflict = StoreError::VersionConflict { entity, expected };
    let matches = match stored {
        None => expected == 0,
        Some(v) => expected != 0 && v == expected,
    };
    if !matches {
        return Err(conflict);
    }
    expected.checked_add(1).ok_or(conflict)
}

/// Rows are read `limit + 1` at a time: the extra row only says that another page exists.
pub(super) fn fetch_size(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// Cuts the extra row off and makes the cursor from the last row kept.
pub(super) fn into_page<T>(
    mut items: Vec<T>,
    limit: usize,
    cursor_of: impl Fn(&T) -> String,
) -> Page<T> {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next }
}

/// Cursors made of two keys are `first#second`; `#` never occurs in an id.
pub(super) fn join_cursor(first: &str, second: &str) -> String {
    format!("{first}#{second}")
}

pub(super) fn split_cursor(cursor: &str) -> StoreResult<(&str, &str)> {
    cursor.split_once('#').ok_or(StoreError::BadCursor)
}

/// A `millis#id` cursor (listings ordered by time).
pub(super) fn split_time_cursor(cursor: &str) -> StoreResult<(i64, &str)> {
    let (millis, id) = split_cursor(cursor)?;
    let millis = millis.parse().map_err(|_| StoreError::BadCursor)?;
    Ok((millis, id))
}
