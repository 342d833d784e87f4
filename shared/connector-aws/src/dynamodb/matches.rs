//! Pending matches, and the per-source-record item that keeps at most one open.

use connector::ports::{Page, PageRequest, StoreError, StoreResult};
use connector::{
    MatchResolution, ObjectKind, PendingMatch, PendingMatchId, PendingMatchStatus, Provider,
    SourceId, TenantId, Timestamp,
};

use super::DynamoStore;
use super::item::{self, Item, ItemBuilder};
use super::keys::{self, SHARDS};
use super::query::{self, Partition};
use super::write::{Condition, Written};

fn match_item(m: &PendingMatch) -> StoreResult<Item> {
    Ok(
        ItemBuilder::new(&keys::pending_match(&m.tenant_id, &m.id), keys::TYPE_MATCH)
            .body(m)?
            .string(keys::STATUS, keys::match_status_name(m.status))
            .index(
                keys::GSI1_PK,
                keys::matches_partition(&m.tenant_id, m.status, keys::shard_of(m.id.as_str())),
                keys::GSI1_SK,
                keys::time_ordered(m.created_at, m.id.as_str()),
            )
            .build(),
    )
}

fn source_item(m: &PendingMatch) -> Item {
    let key = keys::pending_match_source(&m.tenant_id, m.provider, m.object_kind, &m.source_id);
    ItemBuilder::new(&key, keys::TYPE_MATCH_SOURCE)
        .string(keys::MATCH_ID, m.id.as_str())
        .string(keys::STATUS, keys::match_status_name(m.status))
        .build()
}

fn status_is(status: PendingMatchStatus) -> Condition {
    Condition {
        expression: "#status = :status".to_owned(),
        names: vec![("#status", keys::STATUS)],
        values: vec![(":status", item::s(keys::match_status_name(status)))],
    }
}

pub async fn create(store: &DynamoStore, m: &PendingMatch) -> StoreResult<()> {
    let mut no_open_match = status_is(PendingMatchStatus::Resolved);
    no_open_match.expression = format!("attribute_not_exists(#pk) OR {}", no_open_match.expression);
    no_open_match.names.push(("#pk", keys::PK));
    let written = store
        .transact(vec![
            store.put_request(match_item(m)?, Some(Condition::absent()))?,
            store.put_request(source_item(m), Some(no_open_match))?,
        ])
        .await?;
    match written {
        Written::Done => Ok(()),
        Written::Refused(_) => Err(StoreError::AlreadyExists {
            entity: "pending match",
        }),
    }
}

pub async fn find_for_source(
    store: &DynamoStore,
    tenant: &TenantId,
    provider: Provider,
    kind: ObjectKind,
    source: &SourceId,
) -> StoreResult<Option<PendingMatch>> {
    let key = keys::pending_match_source(tenant, provider, kind, source);
    let Some(pointer) = store.get_item(&key).await? else {
        return Ok(None);
    };
    let id = PendingMatchId::parse(item::required_string(&pointer, keys::MATCH_ID)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.get_body(&keys::pending_match(tenant, &id)).await
}

pub async fn list(
    store: &DynamoStore,
    tenant: &TenantId,
    status: PendingMatchStatus,
    request: PageRequest,
) -> StoreResult<Page<PendingMatch>> {
    let shards: Vec<Partition> = (0..SHARDS)
        .map(|shard| Partition::gsi(keys::GSI1, keys::matches_partition(tenant, status, shard)))
        .collect();
    query::merged_page(&store.client, store.table(), &shards, &request, item::body).await
}

pub async fn resolve(
    store: &DynamoStore,
    tenant: &TenantId,
    id: &PendingMatchId,
    resolution: MatchResolution,
    at: Timestamp,
) -> StoreResult<PendingMatch> {
    let mut m: PendingMatch = store
        .get_body(&keys::pending_match(tenant, id))
        .await?
        .ok_or(StoreError::NotFound {
            entity: "pending match",
        })?;
    if m.status != PendingMatchStatus::Open {
        return Err(StoreError::AlreadyResolved);
    }
    m.status = PendingMatchStatus::Resolved;
    m.resolution = Some(resolution);
    m.resolved_at = Some(at);
    let written = store
        .transact(vec![
            store.put_request(match_item(&m)?, Some(status_is(PendingMatchStatus::Open)))?,
            store.put_request(source_item(&m), None)?,
        ])
        .await?;
    match written {
        Written::Done => Ok(m),
        // Someone resolved it between our read and this write.
        Written::Refused(_) => Err(StoreError::AlreadyResolved),
    }
}
