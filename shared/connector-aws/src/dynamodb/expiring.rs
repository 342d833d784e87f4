//! Items with an expiry: sync log rows, webhook dedupe keys, OAuth states, pass leases. TTL deletes
//! them late (moto never), so every read here checks `expires_at_ms` itself.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::ReturnValue;
use connector::ports::{LogFilter, OAuthState, Page, PageRequest, StoreError, StoreResult};
use connector::{ConnectionId, LogEntry, LogEntryId, SyncRunId, TenantId, Timestamp};

use super::DynamoStore;
use super::item::{self, ItemBuilder};
use super::keys::{self, Key, SHARDS};
use super::query::{self, Partition};
use super::write::{Condition, Written};

pub async fn append_log(store: &DynamoStore, entry: &LogEntry) -> StoreResult<()> {
    let shard = keys::shard_of(entry.id.as_str());
    let sort = keys::time_ordered(entry.at, entry.id.as_str());
    let mut builder = ItemBuilder::new(
        &keys::log_entry(&entry.tenant_id, &entry.id),
        keys::TYPE_LOG,
    )
    .body(entry)?
    .expires(entry.expires_at)
    .index(
        keys::GSI1_PK,
        keys::log_partition(&entry.tenant_id, &entry.connection_id, shard),
        keys::GSI1_SK,
        sort.clone(),
    );
    if entry.is_error() {
        builder = builder.index(
            keys::GSI2_PK,
            keys::log_errors_partition(&entry.tenant_id, &entry.connection_id, shard),
            keys::GSI2_SK,
            sort,
        );
    }
    store.put_item(builder.build(), None).await?;
    Ok(())
}

pub async fn list_log(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    filter: LogFilter,
    request: PageRequest,
    now: Timestamp,
) -> StoreResult<Page<LogEntry>> {
    let shards: Vec<Partition> = (0..SHARDS)
        .map(|shard| {
            if filter.errors_only {
                Partition::gsi(
                    keys::GSI2,
                    keys::log_errors_partition(tenant, connection, shard),
                )
            } else {
                Partition::gsi(keys::GSI1, keys::log_partition(tenant, connection, shard))
            }
            .newest_first()
            .live_at(now.as_millis())
        })
        .collect();
    query::merged_page(&store.client, store.table(), &shards, &request, item::body).await
}

pub async fn get_log_entry(
    store: &DynamoStore,
    tenant: &TenantId,
    id: &LogEntryId,
    now: Timestamp,
) -> StoreResult<Option<LogEntry>> {
    match store.get_item(&keys::log_entry(tenant, id)).await? {
        Some(found) if item::is_live(&found, now.as_millis()) => item::body(&found).map(Some),
        _ => Ok(None),
    }
}

pub async fn record_event_once(
    store: &DynamoStore,
    key: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<bool> {
    let item = ItemBuilder::new(&keys::webhook_event(key), keys::TYPE_EVENT)
        .expires(expires_at)
        .build();
    let absent_or_expired = Condition {
        expression: "attribute_not_exists(#pk) OR #exp <= :now".to_owned(),
        names: vec![("#pk", keys::PK), ("#exp", keys::EXPIRES_AT_MS)],
        values: vec![(":now", item::n(now.as_millis()))],
    };
    match store.put_item(item, Some(absent_or_expired)).await? {
        Written::Done => Ok(true),
        Written::Refused(_) => Ok(false),
    }
}

/// Which of `events` have a live dedupe item, read in batches (a key asked twice is read once).
pub async fn events_recorded(
    store: &DynamoStore,
    events: &[String],
    now: Timestamp,
) -> StoreResult<BTreeSet<String>> {
    let mut by_pk: HashMap<String, &String> = HashMap::new();
    let mut wanted: Vec<Key> = Vec::new();
    for event in events {
        let key = keys::webhook_event(event);
        if by_pk.insert(key.pk.clone(), event).is_none() {
            wanted.push(key);
        }
    }
    let found = store.get_all(&wanted).await?;
    Ok(found
        .iter()
        .filter(|found| item::is_live(found, now.as_millis()))
        .filter_map(|found| item::string(found, keys::PK))
        .filter_map(|pk| by_pk.get(pk))
        .map(|event| (*event).clone())
        .collect())
}

/// Puts a dedupe item for each of `events` in batches; a batch may not name a key twice.
pub async fn record_events(
    store: &DynamoStore,
    events: &[String],
    expires_at: Timestamp,
) -> StoreResult<()> {
    let distinct: BTreeSet<&String> = events.iter().collect();
    let items = distinct
        .into_iter()
        .map(|event| {
            ItemBuilder::new(&keys::webhook_event(event), keys::TYPE_EVENT)
                .expires(expires_at)
                .build()
        })
        .collect();
    store.put_all(items).await
}

pub async fn claim_pass(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    expires_at: Timestamp,
    now: Timestamp,
) -> StoreResult<SyncRunId> {
    let key = keys::pass_lease(tenant, connection);
    let item = ItemBuilder::new(&key, keys::TYPE_LEASE)
        .string(keys::RUN_ID, run.as_str())
        .expires(expires_at)
        .build();
    let free_or_ours = Condition {
        expression: "attribute_not_exists(#pk) OR #exp <= :now OR #run = :run".to_owned(),
        names: vec![
            ("#pk", keys::PK),
            ("#exp", keys::EXPIRES_AT_MS),
            ("#run", keys::RUN_ID),
        ],
        values: vec![
            (":now", item::n(now.as_millis())),
            (":run", item::s(run.as_str())),
        ],
    };
    match store.put_item(item, Some(free_or_ours)).await? {
        Written::Done => Ok(run.clone()),
        Written::Refused(_) => {
            let holder = store
                .get_item(&key)
                .await?
                .and_then(|found| item::string(&found, keys::RUN_ID).map(str::to_owned));
            match holder {
                Some(holder) => {
                    SyncRunId::parse(holder).map_err(|e| StoreError::Corrupt(e.to_string()))
                }
                // Released between the two calls: the caller may simply try again.
                None => Err(StoreError::VersionConflict {
                    entity: "pass lease",
                    expected: 0,
                }),
            }
        }
    }
}

pub async fn release_pass(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
) -> StoreResult<()> {
    let released = store
        .client
        .delete_item()
        .table_name(store.table())
        .set_key(Some(item::key_map(&keys::pass_lease(tenant, connection))))
        .condition_expression("#run = :run")
        .expression_attribute_names("#run", keys::RUN_ID)
        .expression_attribute_values(":run", item::s(run.as_str()))
        .send()
        .await;
    match released {
        Ok(_) => Ok(()),
        Err(e) => match e.as_service_error() {
            // Another run holds the lease (or none does): nothing of ours to release.
            Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(()),
            _ => Err(item::backend(e)),
        },
    }
}

pub async fn put_oauth_state(store: &DynamoStore, state: &OAuthState) -> StoreResult<()> {
    let item = ItemBuilder::new(&keys::oauth_state(&state.state), keys::TYPE_OAUTH_STATE)
        .body(state)?
        .expires(state.expires_at)
        .build();
    store.put_item(item, None).await?;
    Ok(())
}

/// One conditional DeleteItem: of two concurrent takes, exactly one gets the state.
pub async fn take_oauth_state(
    store: &DynamoStore,
    state: &str,
    now: Timestamp,
) -> StoreResult<Option<OAuthState>> {
    let taken = store
        .client
        .delete_item()
        .table_name(store.table())
        .set_key(Some(item::key_map(&keys::oauth_state(state))))
        .condition_expression("attribute_exists(#pk) AND #exp > :now")
        .expression_attribute_names("#pk", keys::PK)
        .expression_attribute_names("#exp", keys::EXPIRES_AT_MS)
        .expression_attribute_values(":now", item::n(now.as_millis()))
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    match taken {
        Ok(out) => match out.attributes {
            Some(old) if item::is_live(&old, now.as_millis()) => {
                let found: OAuthState = item::body(&old)?;
                // Keys of very long states are hashed; the stored value must still match.
                Ok((found.state == state).then_some(found))
            }
            _ => Ok(None),
        },
        Err(e) => match e.as_service_error() {
            Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(None),
            _ => Err(item::backend(e)),
        },
    }
}
