//! Notifications: one partition per tenant, versioned like connections.

use connector::ports::StoreResult;
use connector::{Notification, TenantId, Timestamp};

use super::DynamoStore;
use super::item::{self, ItemBuilder};
use super::keys;
use super::query::{self, Partition};
use super::write::Condition;

pub async fn put(
    store: &DynamoStore,
    notification: &Notification,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> StoreResult<Notification> {
    let mut stored = notification.clone();
    stored.version = notification.version + 1;
    let key = keys::notification(&stored.tenant_id, &stored.id);
    let mut builder = ItemBuilder::new(&key, keys::TYPE_NOTIFICATION)
        .body(&stored)?
        .number(keys::VERSION, stored.version);
    if let Some(at) = expires_at {
        builder = builder.expires(at);
    }
    store
        .put_item(
            builder.build(),
            Some(Condition::version_is_or_expired(notification.version, now)),
        )
        .await?
        .or_version_conflict("notification", notification.version)?;
    Ok(stored)
}

pub async fn list(
    store: &DynamoStore,
    tenant: &TenantId,
    now: Timestamp,
) -> StoreResult<Vec<Notification>> {
    let part = Partition::table(keys::notifications_partition(tenant), keys::NOTE)
        .live_at(now.as_millis());
    query::fetch_all(&store.client, store.table(), &part)
        .await?
        .iter()
        .map(item::body)
        .collect()
}
