//! Sync runs. The counters live in numeric attributes beside the body, so many workers
//! can `ADD` to them at once without touching the run's version.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use connector::ports::{Page, PageRequest, StoreError, StoreResult};
use connector::{
    ConnectionId, ListedIds, ObjectKind, PendingArchive, SyncCounters, SyncRun, SyncRunId,
    TenantId, Timestamp,
};

use super::DynamoStore;
use super::item::{self, Item, ItemBuilder};
use super::keys;
use super::query::{self, Partition};
use super::write::Condition;

/// Counter attribute names, in the order of [`counter_values`].
const COUNTERS: [&str; 8] = [
    "c_seen",
    "c_applied",
    "c_unchanged",
    "c_archived",
    "c_failed",
    "c_webhook_misses",
    "c_held",
    "c_pushed",
];

fn counter_values(c: &SyncCounters) -> [u64; 8] {
    [
        c.seen,
        c.applied,
        c.unchanged,
        c.archived,
        c.failed,
        c.webhook_misses,
        c.held,
        c.pushed,
    ]
}

/// The run from its body, with the counters from their own attributes.
fn run_from(found: &Item) -> StoreResult<SyncRun> {
    let mut run: SyncRun = item::body(found)?;
    let read = |name: &str| item::number::<u64>(found, name).unwrap_or(0);
    run.counters = SyncCounters {
        seen: read(COUNTERS[0]),
        applied: read(COUNTERS[1]),
        unchanged: read(COUNTERS[2]),
        archived: read(COUNTERS[3]),
        failed: read(COUNTERS[4]),
        webhook_misses: read(COUNTERS[5]),
        held: read(COUNTERS[6]),
        pushed: read(COUNTERS[7]),
    };
    Ok(run)
}

pub async fn get(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    id: &SyncRunId,
) -> StoreResult<Option<SyncRun>> {
    match store
        .get_item(&keys::sync_run(tenant, connection, id))
        .await?
    {
        Some(found) => run_from(&found).map(Some),
        None => Ok(None),
    }
}

pub async fn put(store: &DynamoStore, run: &SyncRun) -> StoreResult<SyncRun> {
    let mut stored = run.clone();
    stored.version = run.version + 1;
    let key = keys::sync_run(&stored.tenant_id, &stored.connection_id, &stored.id);
    let mut builder = ItemBuilder::new(&key, keys::TYPE_SYNC_RUN)
        .body(&stored)?
        .number(keys::VERSION, stored.version)
        .index(
            keys::GSI1_PK,
            keys::sync_runs_partition(&stored.tenant_id, &stored.connection_id),
            keys::GSI1_SK,
            keys::time_ordered(stored.started_at, stored.id.as_str()),
        );
    for (name, value) in COUNTERS.iter().zip(counter_values(&stored.counters)) {
        builder = builder.number(name, value);
    }
    store
        .put_item(builder.build(), Some(Condition::version_is(run.version)))
        .await?
        .or_version_conflict("sync run", run.version)?;
    Ok(stored)
}

/// One UpdateItem with `ADD`: atomic however many workers report at once.
pub async fn add_counters(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    id: &SyncRunId,
    delta: &SyncCounters,
) -> StoreResult<()> {
    let mut request = store
        .client
        .update_item()
        .table_name(store.table())
        .set_key(Some(item::key_map(&keys::sync_run(tenant, connection, id))))
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", keys::PK);
    let mut additions = Vec::new();
    for (i, (name, value)) in COUNTERS.iter().zip(counter_values(delta)).enumerate() {
        additions.push(format!("#c{i} :c{i}"));
        request = request
            .expression_attribute_names(format!("#c{i}"), *name)
            .expression_attribute_values(format!(":c{i}"), item::n(value));
    }
    let result = request
        .update_expression(format!("ADD {}", additions.join(", ")))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => match e.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                Err(StoreError::NotFound { entity: "sync run" })
            }
            _ => Err(item::backend(e)),
        },
    }
}

pub async fn list(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    request: PageRequest,
) -> StoreResult<Page<SyncRun>> {
    let parts = [
        Partition::gsi(keys::GSI1, keys::sync_runs_partition(tenant, connection)).newest_first(),
    ];
    query::sequential_page(&store.client, store.table(), &parts, &request, run_from).await
}

pub async fn put_pending_archives(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    archives: &[PendingArchive],
    expires_at: Timestamp,
) -> StoreResult<()> {
    let items = archives
        .iter()
        .map(|archive| {
            let key = keys::pending_archive(tenant, connection, run, &archive.source_id);
            Ok(ItemBuilder::new(&key, keys::TYPE_PENDING_ARCHIVE)
                .body(archive)?
                .expires(expires_at)
                .build())
        })
        .collect::<StoreResult<Vec<_>>>()?;
    store.put_all(items).await
}

pub async fn list_pending_archives(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    request: PageRequest,
    now: Timestamp,
) -> StoreResult<Page<PendingArchive>> {
    let parts = [
        Partition::table(keys::sync_run(tenant, connection, run).pk, keys::ARCHIVE)
            .live_at(now.as_millis()),
    ];
    query::sequential_page(&store.client, store.table(), &parts, &request, item::body).await
}

#[allow(clippy::too_many_arguments)]
pub async fn put_listed_ids(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    kind: ObjectKind,
    chunk: u32,
    ids: &ListedIds,
    expires_at: Timestamp,
) -> StoreResult<()> {
    let key = keys::listed_ids(tenant, connection, run, kind, chunk);
    let item = ItemBuilder::new(&key, keys::TYPE_LISTED_IDS)
        .body(ids)?
        .expires(expires_at)
        .build();
    store.put_all(vec![item]).await
}

pub async fn listed_ids(
    store: &DynamoStore,
    tenant: &TenantId,
    connection: &ConnectionId,
    run: &SyncRunId,
    kind: ObjectKind,
    now: Timestamp,
) -> StoreResult<Vec<ListedIds>> {
    let part = Partition::table(
        keys::sync_run(tenant, connection, run).pk,
        keys::listed_ids_prefix(kind),
    )
    .live_at(now.as_millis());
    query::fetch_all(&store.client, store.table(), &part)
        .await?
        .iter()
        .map(item::body)
        .collect()
}
