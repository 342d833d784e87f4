//! Tenants, connections and the provider-account routing of connections.

use connector::model::{
    Connection, ConnectionId, ConnectionStatus, Provider, ProviderAccountId, Tenant, TenantId,
};
use connector::ports::{Page, PageRequest, StoreResult};
use rusqlite::{Connection as Db, TransactionBehavior, params};

use super::codec::{
    SqlResult, encode, fetch_size, into_page, join_cursor, next_version, query_all, query_one,
    split_cursor, stored_version,
};

pub(super) fn put_tenant(db: &mut Db, tenant: &Tenant) -> StoreResult<()> {
    db.prepare_cached(
        "INSERT INTO store_tenants (id, body) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET body = excluded.body",
    )
    .db()?
    .execute(params![tenant.id.as_str(), encode(tenant)?])
    .db()?;
    Ok(())
}

pub(super) fn get_tenant(db: &mut Db, id: &TenantId) -> StoreResult<Option<Tenant>> {
    query_one(
        db,
        "tenant",
        "SELECT body FROM store_tenants WHERE id = ?1",
        [id.as_str()],
    )
}

pub(super) fn get_connection(
    db: &mut Db,
    tenant: &TenantId,
    id: &ConnectionId,
) -> StoreResult<Option<Connection>> {
    query_one(
        db,
        "connection",
        "SELECT body FROM store_connections WHERE tenant_id = ?1 AND id = ?2",
        [tenant.as_str(), id.as_str()],
    )
}

/// Writes the connection and its routing entry together. A route points at the
/// connection of its tenant that last claimed the account; a Disconnected connection
/// claims nothing and drops only a route that points at itself.
pub(super) fn put_connection(db: &mut Db, mut connection: Connection) -> StoreResult<Connection> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let tenant = connection.tenant_id.as_str();
    let id = connection.id.as_str();
    let stored = stored_version(
        &tx,
        "SELECT version FROM store_connections WHERE tenant_id = ?1 AND id = ?2",
        [tenant, id],
    )?;
    let version = next_version("connection", stored, connection.version)?;
    connection.version = version;
    tx.prepare_cached(
        "INSERT INTO store_connections (tenant_id, id, version, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, id) DO UPDATE SET version = excluded.version, body = excluded.body",
    )
    .db()?
    .execute(params![tenant, id, version, encode(&connection)?])
    .db()?;
    tx.prepare_cached(
        "DELETE FROM store_account_routes INDEXED BY store_account_routes_by_connection
         WHERE tenant_id = ?1 AND connection_id = ?2",
    )
    .db()?
    .execute([tenant, id])
    .db()?;
    let claims = connection
        .account_id
        .as_ref()
        .filter(|_| connection.status != ConnectionStatus::Disconnected);
    if let Some(account) = claims {
        tx.prepare_cached(
            "INSERT INTO store_account_routes (provider, account_id, tenant_id, connection_id)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (provider, account_id, tenant_id) DO UPDATE SET
                 connection_id = excluded.connection_id",
        )
        .db()?
        .execute([connection.provider.as_str(), account.as_str(), tenant, id])
        .db()?;
    }
    tx.commit().db()?;
    Ok(connection)
}

pub(super) fn list_connections(db: &mut Db, tenant: &TenantId) -> StoreResult<Vec<Connection>> {
    query_all(
        db,
        "connection",
        "SELECT body FROM store_connections WHERE tenant_id = ?1 ORDER BY id",
        [tenant.as_str()],
    )
}

pub(super) fn find_connections_by_account(
    db: &mut Db,
    provider: Provider,
    account: &ProviderAccountId,
) -> StoreResult<Vec<Connection>> {
    let routed: Vec<Connection> = query_all(
        db,
        "connection",
        "SELECT c.body FROM store_account_routes r
         JOIN store_connections c ON c.tenant_id = r.tenant_id AND c.id = r.connection_id
         WHERE r.provider = ?1 AND r.account_id = ?2
         ORDER BY r.tenant_id",
        [provider.as_str(), account.as_str()],
    )?;
    Ok(routed
        .into_iter()
        .filter(|c| c.status != ConnectionStatus::Disconnected)
        .collect())
}

/// Every tenant's connections ordered by `(tenant, id)`; the cursor is `tenant#id`.
pub(super) fn list_all_connections(
    db: &mut Db,
    page: &PageRequest,
) -> StoreResult<Page<Connection>> {
    let limit = page.effective_limit();
    let (after_tenant, after_id) = match &page.cursor {
        Some(cursor) => split_cursor(cursor)?,
        None => ("", ""),
    };
    let items: Vec<Connection> = query_all(
        db,
        "connection",
        "SELECT body FROM store_connections
         WHERE (tenant_id, id) > (?1, ?2)
         ORDER BY tenant_id, id LIMIT ?3",
        params![after_tenant, after_id, fetch_size(limit)],
    )?;
    Ok(into_page(items, limit, |c| {
        join_cursor(c.tenant_id.as_str(), c.id.as_str())
    }))
}
