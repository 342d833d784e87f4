//! Items that expire: webhook dedupe keys and OAuth states (and, for purging, log rows,
//! pending archives, listed ids, closed notifications and conflicts).
//! Each read treats an item whose `expires_at <= now` as absent.

use std::collections::BTreeSet;

use connector::model::{ConnectionId, SyncRunId, TenantId, Timestamp};
use connector::ports::{OAuthState, StoreError, StoreResult};
use rusqlite::{Connection as Db, OptionalExtension, TransactionBehavior, params};

use super::codec::{SqlResult, decode, encode};

/// Deletes every expired log row, dedupe key and OAuth state; returns how many.
pub(super) fn purge_expired(db: &mut Db, now: Timestamp) -> StoreResult<u64> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let mut purged = 0u64;
    for sql in [
        "DELETE FROM store_log WHERE expires_at <= ?1",
        "DELETE FROM store_events WHERE expires_at <= ?1",
        "DELETE FROM store_oauth_states WHERE expires_at <= ?1",
        "DELETE FROM store_pending_archives WHERE expires_at <= ?1",
        "DELETE FROM store_listed_ids WHERE expires_at <= ?1",
        "DELETE FROM store_notifications WHERE expires_at <= ?1",
        "DELETE FROM store_conflicts WHERE expires_at <= ?1",
    ] {
        let deleted = tx
            .prepare_cached(sql)
            .db()?
            .execute([now.as_millis()])
            .db()?;
        purged = purged.saturating_add(deleted as u64);
    }
    tx.commit().db()?;
    Ok(purged)
}

/// Put-if-absent, where an expired record counts as absent.
pub(super) fn record_event_once(
    db: &mut Db,
    key: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<bool> {
    let recorded = db
        .prepare_cached(
            "INSERT INTO store_events (key, expires_at) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
             WHERE store_events.expires_at <= ?3",
        )
        .db()?
        .execute(params![key, expires_at.as_millis(), now.as_millis()])
        .db()?;
    Ok(recorded == 1)
}

pub(super) fn events_recorded(
    db: &mut Db,
    keys: &[String],
    now: Timestamp,
) -> StoreResult<BTreeSet<String>> {
    let mut live = db
        .prepare_cached("SELECT 1 FROM store_events WHERE key = ?1 AND expires_at > ?2")
        .db()?;
    let mut recorded = BTreeSet::new();
    for key in keys {
        let found: Option<i64> = live
            .query_row(params![key, now.as_millis()], |row| row.get(0))
            .optional()
            .db()?;
        if found.is_some() {
            recorded.insert(key.clone());
        }
    }
    Ok(recorded)
}

pub(super) fn record_events(
    db: &mut Db,
    keys: &[String],
    expires_at: Timestamp,
) -> StoreResult<()> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    {
        let mut put = tx
            .prepare_cached(
                "INSERT INTO store_events (key, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .db()?;
        for key in keys {
            put.execute(params![key, expires_at.as_millis()]).db()?;
        }
    }
    tx.commit().db()
}

/// Put-if-free: a lease that expired, or is `run`'s own, counts as free.
pub(super) fn claim_pass(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<SyncRunId> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    tx.prepare_cached(
        "INSERT INTO store_pass_leases (tenant_id, connection_id, run_id, expires_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, connection_id) DO UPDATE SET
             run_id = excluded.run_id, expires_at = excluded.expires_at
         WHERE store_pass_leases.expires_at <= ?5 OR store_pass_leases.run_id = excluded.run_id",
    )
    .db()?
    .execute(params![
        tenant.as_str(),
        connection.as_str(),
        run.as_str(),
        expires_at.as_millis(),
        now.as_millis()
    ])
    .db()?;
    let holder: String = tx
        .prepare_cached(
            "SELECT run_id FROM store_pass_leases WHERE tenant_id = ?1 AND connection_id = ?2",
        )
        .db()?
        .query_row([tenant.as_str(), connection.as_str()], |row| row.get(0))
        .db()?;
    tx.commit().db()?;
    SyncRunId::parse(holder).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn release_pass(
    db: &mut Db,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
) -> StoreResult<()> {
    db.prepare_cached(
        "DELETE FROM store_pass_leases WHERE tenant_id = ?1 AND connection_id = ?2 AND run_id = ?3",
    )
    .db()?
    .execute([tenant.as_str(), connection.as_str(), run.as_str()])
    .db()?;
    Ok(())
}

pub(super) fn put_oauth_state(db: &mut Db, state: &OAuthState) -> StoreResult<()> {
    db.prepare_cached(
        "INSERT INTO store_oauth_states (state, expires_at, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (state) DO UPDATE SET expires_at = excluded.expires_at, body = excluded.body",
    )
    .db()?
    .execute(params![
        state.state,
        state.expires_at.as_millis(),
        encode(state)?
    ])
    .db()?;
    Ok(())
}

/// Deletes the state and returns it if it had not expired. `DELETE ... RETURNING` makes
/// the read and the delete one statement, so two callers cannot both get it.
pub(super) fn take_oauth_state(
    db: &mut Db,
    state: &str,
    now: Timestamp,
) -> StoreResult<Option<OAuthState>> {
    let taken: Option<(i64, String)> = db
        .prepare_cached(
            "DELETE FROM store_oauth_states WHERE state = ?1 RETURNING expires_at, body",
        )
        .db()?
        .query_row([state], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .db()?;
    match taken {
        Some((expires_at, body)) if expires_at > now.as_millis() => {
            decode("oauth state", &body).map(Some)
        }
        _ => Ok(None),
    }
}
