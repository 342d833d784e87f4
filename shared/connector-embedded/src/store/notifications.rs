//! Notifications, versioned like connections; an expired one counts as absent.

use connector::model::{Notification, TenantId, Timestamp};
use connector::ports::StoreResult;
use rusqlite::{Connection as Db, TransactionBehavior, params};

use super::codec::{SqlResult, encode, next_version, query_all, stored_version};

pub(super) fn put(
    db: &mut Db,
    mut notification: Notification,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> StoreResult<Notification> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let id = &notification.id;
    let stored = stored_version(
        &tx,
        "SELECT version FROM store_notifications
         WHERE tenant_id = ?1 AND connection_id = ?2 AND kind = ?3 AND incident = ?4
           AND (expires_at IS NULL OR expires_at > ?5)",
        params![
            notification.tenant_id.as_str(),
            id.connection_id.as_str(),
            id.kind.as_str(),
            id.incident,
            now.as_millis(),
        ],
    )?;
    notification.version = next_version("notification", stored, notification.version)?;
    tx.prepare_cached(
        "INSERT INTO store_notifications
             (tenant_id, connection_id, kind, incident, version, expires_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, connection_id, kind, incident) DO UPDATE SET
             version = excluded.version, expires_at = excluded.expires_at,
             body = excluded.body",
    )
    .db()?
    .execute(params![
        notification.tenant_id.as_str(),
        id.connection_id.as_str(),
        id.kind.as_str(),
        id.incident,
        notification.version,
        expires_at.map(Timestamp::as_millis),
        encode(&notification)?,
    ])
    .db()?;
    tx.commit().db()?;
    Ok(notification)
}

pub(super) fn list(
    db: &mut Db,
    tenant: &TenantId,
    now: Timestamp,
) -> StoreResult<Vec<Notification>> {
    query_all(
        db,
        "notification",
        "SELECT body FROM store_notifications
         WHERE tenant_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
         ORDER BY connection_id, kind, incident",
        params![tenant.as_str(), now.as_millis()],
    )
}
