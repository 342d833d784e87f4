//! Tenants, connections and the `(provider, account)` routing items.

use connector::ports::{Page, PageRequest, StoreError, StoreResult};
use connector::{Connection, Provider, ProviderAccountId, Tenant, TenantId};

use super::item::{self, ItemBuilder};
use super::keys::{self, SHARDS};
use super::query::{self, Partition};
use super::write::{Condition, Written};
use super::{DynamoStore, page};

pub async fn put_tenant(store: &DynamoStore, tenant: &Tenant) -> StoreResult<()> {
    let item = ItemBuilder::new(&keys::tenant(&tenant.id), keys::TYPE_TENANT)
        .body(tenant)?
        .build();
    store.put_item(item, None).await?;
    Ok(())
}

pub async fn put_connection(
    store: &DynamoStore,
    connection: &Connection,
) -> StoreResult<Connection> {
    let mut stored = connection.clone();
    stored.version = connection.version + 1;
    let key = keys::connection(&stored.tenant_id, &stored.id);
    let item = ItemBuilder::new(&key, keys::TYPE_CONNECTION)
        .body(&stored)?
        .number(keys::VERSION, stored.version)
        .index(
            keys::GSI1_PK,
            keys::all_connections_partition(keys::shard_of(stored.id.as_str())),
            keys::GSI1_SK,
            keys::all_connections_sort(&stored.tenant_id, &stored.id),
        )
        .build();
    let condition = Condition::version_is(connection.version);
    let written = match &stored.account_id {
        None => store.put_item(item, Some(condition)).await?,
        Some(account) => {
            // The route is only a pointer: readers check that the connection still names
            // this account, so a route left behind by an account change is harmless.
            let route = ItemBuilder::new(
                &keys::account_route(stored.provider, account),
                keys::TYPE_ROUTE,
            )
            .string(keys::TENANT_ID, stored.tenant_id.as_str())
            .string(keys::CONNECTION_ID, stored.id.as_str())
            .build();
            store
                .transact(vec![
                    store.put_request(item, Some(condition))?,
                    store.put_request(route, None)?,
                ])
                .await?
        }
    };
    match written {
        Written::Done => Ok(stored),
        Written::Refused(_) => Err(StoreError::VersionConflict {
            entity: "connection",
            expected: connection.version,
        }),
    }
}

pub async fn list_connections(
    store: &DynamoStore,
    tenant: &TenantId,
) -> StoreResult<Vec<Connection>> {
    let part = Partition::table(keys::tenant(tenant).pk, keys::SK_CONNECTION_PREFIX);
    query::fetch_all(&store.client, store.table(), &part)
        .await?
        .iter()
        .map(item::body)
        .collect()
}

pub async fn find_connection_by_account(
    store: &DynamoStore,
    provider: Provider,
    account: &ProviderAccountId,
) -> StoreResult<Option<Connection>> {
    let Some(route) = store
        .get_item(&keys::account_route(provider, account))
        .await?
    else {
        return Ok(None);
    };
    let tenant = TenantId::parse(item::required_string(&route, keys::TENANT_ID)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = connector::ConnectionId::parse(item::required_string(&route, keys::CONNECTION_ID)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let connection: Option<Connection> = store.get_body(&keys::connection(&tenant, &id)).await?;
    Ok(connection.filter(|c| c.provider == provider && c.account_id.as_ref() == Some(account)))
}

pub async fn list_all_connections(
    store: &DynamoStore,
    request: PageRequest,
) -> StoreResult<Page<Connection>> {
    let parts: Vec<Partition> = (0..SHARDS)
        .map(|shard| Partition::gsi(keys::GSI1, keys::all_connections_partition(shard)))
        .collect();
    let (items, next) = query::list_sequential(
        &store.client,
        store.table(),
        &parts,
        request.cursor.as_deref(),
        request.effective_limit(),
    )
    .await?;
    let connections = items.iter().map(item::body).collect::<StoreResult<_>>()?;
    Ok(page(connections, next))
}
