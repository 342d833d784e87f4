//! Tenants, connections and the `(provider, account)` routing items.

use connector::ports::{Page, PageRequest, StoreError, StoreResult};
use connector::{Connection, ConnectionStatus, Provider, ProviderAccountId, Tenant, TenantId};

use super::DynamoStore;
use super::item::{self, ItemBuilder};
use super::keys::{self, SHARDS};
use super::query::{self, Partition};
use super::write::Condition;

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
    let claims = stored
        .account_id
        .as_ref()
        .filter(|_| stored.status != ConnectionStatus::Disconnected);
    let written = match claims {
        None => store.put_item(item, Some(condition)).await?,
        Some(account) => {
            // The route is only a pointer: readers check that the connection still names
            // this account and is not Disconnected, so a route left behind by an account
            // change or a disconnect is harmless, and a disconnect never takes the route
            // from the connection that claimed it after.
            let route = ItemBuilder::new(
                &keys::account_route(stored.provider, account, &stored.tenant_id),
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
    written.or_version_conflict("connection", connection.version)?;
    Ok(stored)
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

pub async fn find_connections_by_account(
    store: &DynamoStore,
    provider: Provider,
    account: &ProviderAccountId,
) -> StoreResult<Vec<Connection>> {
    let part = Partition::table(keys::account_routes(provider, account), keys::SK_ROUTE);
    let mut found = Vec::new();
    for route in query::fetch_all(&store.client, store.table(), &part).await? {
        let tenant = TenantId::parse(item::required_string(&route, keys::TENANT_ID)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id =
            connector::ConnectionId::parse(item::required_string(&route, keys::CONNECTION_ID)?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let connection: Option<Connection> =
            store.get_body(&keys::connection(&tenant, &id)).await?;
        found.extend(connection.filter(|c| {
            c.provider == provider
                && c.account_id.as_ref() == Some(account)
                && c.status != ConnectionStatus::Disconnected
        }));
    }
    Ok(found)
}

pub async fn list_all_connections(
    store: &DynamoStore,
    request: PageRequest,
) -> StoreResult<Page<Connection>> {
    let parts: Vec<Partition> = (0..SHARDS)
        .map(|shard| Partition::gsi(keys::GSI1, keys::all_connections_partition(shard)))
        .collect();
    query::sequential_page(&store.client, store.table(), &parts, &request, item::body).await
}
