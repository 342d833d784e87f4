//! Pending matches: source records held for the admin to choose a customer.

use connector::model::{
    MatchResolution, ObjectKind, PendingMatch, PendingMatchId, PendingMatchStatus, Provider,
    SourceId, TenantId, Timestamp,
};
use connector::ports::{Page, PageRequest, StoreError, StoreResult};
use rusqlite::{Connection as Db, OptionalExtension, TransactionBehavior, params};

use super::codec::{SqlResult, encode, fetch_size, into_page, query_all, query_one};

fn status_column(status: PendingMatchStatus) -> &'static str {
    match status {
        PendingMatchStatus::Open => "open",
        PendingMatchStatus::Resolved => "resolved",
    }
}

pub(super) fn create(db: &mut Db, m: &PendingMatch) -> StoreResult<()> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let tenant = m.tenant_id.as_str();
    let id_taken = tx
        .prepare_cached("SELECT 1 FROM store_pending_matches WHERE tenant_id = ?1 AND id = ?2")
        .db()?
        .query_row([tenant, m.id.as_str()], |_| Ok(()))
        .optional()
        .db()?
        .is_some();
    let open_for_source = m.status == PendingMatchStatus::Open
        && tx
            .prepare_cached(
                "SELECT 1 FROM store_pending_matches
                 WHERE tenant_id = ?1 AND provider = ?2 AND object_kind = ?3
                   AND source_id = ?4 AND status = 'open'",
            )
            .db()?
            .query_row(
                [
                    tenant,
                    m.provider.as_str(),
                    m.object_kind.as_str(),
                    m.source_id.as_str(),
                ],
                |_| Ok(()),
            )
            .optional()
            .db()?
            .is_some();
    if id_taken || open_for_source {
        return Err(StoreError::AlreadyExists {
            entity: "pending match",
        });
    }
    tx.prepare_cached(
        "INSERT INTO store_pending_matches
             (tenant_id, id, provider, object_kind, source_id, status, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![
        tenant,
        m.id.as_str(),
        m.provider.as_str(),
        m.object_kind.as_str(),
        m.source_id.as_str(),
        status_column(m.status),
        encode(m)?,
    ])
    .db()?;
    tx.commit().db()
}

pub(super) fn get(
    db: &Db,
    tenant: &TenantId,
    id: &PendingMatchId,
) -> StoreResult<Option<PendingMatch>> {
    query_one(
        db,
        "pending match",
        "SELECT body FROM store_pending_matches WHERE tenant_id = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
}

/// The open match of the source record if there is one, else its latest resolved one.
pub(super) fn find_for_source(
    db: &mut Db,
    tenant: &TenantId,
    provider: Provider,
    kind: ObjectKind,
    source_id: &SourceId,
) -> StoreResult<Option<PendingMatch>> {
    query_one(
        db,
        "pending match",
        "SELECT body FROM store_pending_matches INDEXED BY store_pending_matches_by_source
         WHERE tenant_id = ?1 AND provider = ?2 AND object_kind = ?3 AND source_id = ?4
         ORDER BY status = 'open' DESC, id DESC LIMIT 1",
        [
            tenant.as_str(),
            provider.as_str(),
            kind.as_str(),
            source_id.as_str(),
        ],
    )
}

/// Oldest first (ids are time-ordered); the cursor is the last id of the page.
pub(super) fn list(
    db: &mut Db,
    tenant: &TenantId,
    status: PendingMatchStatus,
    page: &PageRequest,
) -> StoreResult<Page<PendingMatch>> {
    let limit = page.effective_limit();
    let after = page.cursor.as_deref().unwrap_or("");
    let items: Vec<PendingMatch> = query_all(
        db,
        "pending match",
        "SELECT body FROM store_pending_matches INDEXED BY store_pending_matches_by_status
         WHERE tenant_id = ?1 AND status = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
        params![
            tenant.as_str(),
            status_column(status),
            after,
            fetch_size(limit)
        ],
    )?;
    Ok(into_page(items, limit, |m| m.id.as_str().to_owned()))
}

pub(super) fn resolve(
    db: &mut Db,
    tenant: &TenantId,
    id: &PendingMatchId,
    resolution: MatchResolution,
    at: Timestamp,
) -> StoreResult<PendingMatch> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let mut m = get(&tx, tenant, id)?.ok_or(StoreError::NotFound {
        entity: "pending match",
    })?;
    if m.status != PendingMatchStatus::Open {
        return Err(StoreError::AlreadyResolved);
    }
    m.status = PendingMatchStatus::Resolved;
    m.resolution = Some(resolution);
    m.resolved_at = Some(at);
    tx.prepare_cached(
        "UPDATE store_pending_matches SET status = ?3, body = ?4
         WHERE tenant_id = ?1 AND id = ?2",
    )
    .db()?
    .execute(params![
        tenant.as_str(),
        id.as_str(),
        status_column(m.status),
        encode(&m)?,
    ])
    .db()?;
    tx.commit().db()?;
    Ok(m)
}
