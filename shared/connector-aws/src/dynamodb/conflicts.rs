//! The conflict audit: an item per conflict (versioned: a Restore marks it), listed
//! newest first from one GSI1 partition per connection (conflicts are rare), and read
//! only until `expires_at_ms`.

use connector::ports::{Page, PageRequest, StoreResult};
use connector::{Conflict, ConflictId, ConnectionId, TenantId, Timestamp};

use super::DynamoStore;
use super::item::{self, ItemBuilder};
use super::keys;
use super::query::{self, Partition};
use super::write::Condition;

pub async fn put(
    store: &DynamoStore,
    conflict: &Conflict,
    now: Timestamp,
) -> StoreResult<Conflict> {
    let mut stored = conflict.clone();
    stored.version = conflict.version + 1;
    let item = ItemBuilder::new(
        &keys::conflict(&stored.tenant_id, &stored.id),
        keys::TYPE_CONFLICT,
    )
    .body(&stored)?
    .number(keys::VERSION, stored.version)
    .expires(stored.expires_at)
    .index(
        keys::GSI1_PK,
        keys::conflicts_partition(&stored.tenant_id, &stored.connection_id),
        keys::GSI1_SK,
        keys::time_ordered(stored.at, stored.id.as_str()),
    )
    .build();
    store
        .put_item(
            item,
            Some(Condition::version_is_or_expired(conflict.version, now)),
        )
        .await?
        .or_version_conflict("conflict", conflict.version)?;
    Ok(stored)
}

pub async fn list(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    request: PageRequest,
    now: Timestamp,
) -> StoreResult<Page<Conflict>> {
    let partition = Partition::gsi(keys::GSI1, keys::conflicts_partition(tenant, connection))
        .newest_first()
        .live_at(now.as_millis());
    query::merged_page(
        &store.client,
        store.table(),
        &[partition],
        &request,
        item::body,
    )
    .await
}

pub async fn get(
    store: &DynamoStore,
    tenant: &TenantId,
    id: &ConflictId,
    now: Timestamp,
) -> StoreResult<Option<Conflict>> {
    match store.get_item(&keys::conflict(tenant, id)).await? {
        Some(found) if item::is_live(&found, now.as_millis()) => item::body(&found).map(Some),
        _ => Ok(None),
    }
}
