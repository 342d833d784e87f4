//! Paged reads over one or many partitions, always with `Query` (never `Scan`).
//!
//! Listings that are spread over shards come in two shapes:
//! - *sequential*: walk the partitions one after another (order: partition, then sort
//!   key); every item is read once. For listings with no order promise.
//! - *merged*: query every shard and merge by sort key, for "newest first" listings;
//!   the cursor keeps one position per shard.

use aws_sdk_dynamodb::Client;
use connector::ports::{Page, PageRequest, StoreResult};
use futures::future::try_join_all;

use super::cursor::{self, MergedCursor, SequentialCursor, ShardPosition};
use super::item::{self, Item};
use super::keys;

/// One partition of a table or index, read in one direction.
#[derive(Clone, Debug)]
pub struct Partition {
    /// `None`: the table itself.
    pub index: Option<&'static str>,
    pub pk_attr: &'static str,
    pub sk_attr: &'static str,
    pub pk: String,
    /// Ascending sort key when true, descending when false.
    pub forward: bool,
    /// Only items whose `expires_at_ms` is after this instant (epoch ms).
    pub live_at_ms: Option<i64>,
    /// Only sort keys with this prefix (a partition shared by several record types).
    pub sk_prefix: Option<&'static str>,
}

impl Partition {
    pub fn gsi(index: &'static str, pk: String) -> Self {
        let (pk_attr, sk_attr) = match index {
            keys::GSI1 => (keys::GSI1_PK, keys::GSI1_SK),
            keys::GSI2 => (keys::GSI2_PK, keys::GSI2_SK),
            _ => (keys::GSI3_PK, keys::GSI3_SK),
        };
        Self {
            index: Some(index),
            pk_attr,
            sk_attr,
            pk,
            forward: true,
            live_at_ms: None,
            sk_prefix: None,
        }
    }

    /// Items of the table's own partition `pk` whose sort key starts with `prefix`.
    pub fn table(pk: String, prefix: &'static str) -> Self {
        Self {
            index: None,
            pk_attr: keys::PK,
            sk_attr: keys::SK,
            pk,
            forward: true,
            live_at_ms: None,
            sk_prefix: Some(prefix),
        }
    }

    pub fn newest_first(mut self) -> Self {
        self.forward = false;
        self
    }

    pub fn live_at(mut self, now_ms: i64) -> Self {
        self.live_at_ms = Some(now_ms);
        self
    }

    fn sort_key<'a>(&self, item: &'a Item) -> &'a str {
        item::string(item, self.sk_attr).unwrap_or_default()
    }
}

/// Reads up to `want` items of `part` that come after `after` in its order, following
/// DynamoDB's pages (a page stops at 1 MB, and a filter can leave it short).
pub async fn fetch(
    client: &Client,
    table: &str,
    part: &Partition,
    after: Option<&str>,
    want: usize,
) -> StoreResult<Vec<Item>> {
    let mut condition = "#pk = :pk".to_owned();
    let mut request = client
        .query()
        .table_name(table)
        .set_index_name(part.index.map(str::to_owned))
        .scan_index_forward(part.forward)
        .expression_attribute_names("#pk", part.pk_attr)
        .expression_attribute_values(":pk", item::s(&part.pk));
    if let Some(after) = after {
        condition.push_str(if part.forward {
            " AND #sk > :after"
        } else {
            " AND #sk < :after"
        });
        request = request
            .expression_attribute_names("#sk", part.sk_attr)
            .expression_attribute_values(":after", item::s(after));
    } else if let Some(prefix) = part.sk_prefix {
        condition.push_str(" AND begins_with(#sk, :prefix)");
        request = request
            .expression_attribute_names("#sk", part.sk_attr)
            .expression_attribute_values(":prefix", item::s(prefix));
    }
    if let Some(now) = part.live_at_ms {
        request = request
            .filter_expression("attribute_not_exists(#exp) OR #exp > :now")
            .expression_attribute_names("#exp", keys::EXPIRES_AT_MS)
            .expression_attribute_values(":now", item::n(now));
    }
    let page_size = i32::try_from(want).unwrap_or(i32::MAX).max(1);
    let mut pages = request
        .key_condition_expression(condition)
        .into_paginator()
        .page_size(page_size)
        .send();
    let mut items = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(item::backend)?;
        for found in page.items.unwrap_or_default() {
            // The filter already dropped expired rows; checking again keeps the rule in one
            // place for readers of this function.
            if part
                .live_at_ms
                .is_some_and(|now| !item::is_live(&found, now))
                || part
                    .sk_prefix
                    .is_some_and(|prefix| !part.sort_key(&found).starts_with(prefix))
            {
                continue;
            }
            items.push(found);
            if items.len() >= want {
                return Ok(items);
            }
        }
    }
    Ok(items)
}

/// Every item of one partition (for short, bounded listings).
pub async fn fetch_all(client: &Client, table: &str, part: &Partition) -> StoreResult<Vec<Item>> {
    fetch(client, table, part, None, usize::MAX).await
}

/// A page of a listing that walks `parts` in order, each item decoded by `decode` (for
/// most records `item::body`).
pub async fn sequential_page<T>(
    client: &Client,
    table: &str,
    parts: &[Partition],
    request: &PageRequest,
    decode: impl Fn(&Item) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let (items, next) = list_sequential(
        client,
        table,
        parts,
        request.cursor.as_deref(),
        request.effective_limit(),
    )
    .await?;
    let items = items.iter().map(decode).collect::<StoreResult<_>>()?;
    Ok(Page { items, next })
}

/// A page of a listing that merges `shards` by sort key, each item decoded by `decode`.
pub async fn merged_page<T>(
    client: &Client,
    table: &str,
    shards: &[Partition],
    request: &PageRequest,
    decode: impl Fn(&Item) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let (items, next) = list_merged(
        client,
        table,
        shards,
        request.cursor.as_deref(),
        request.effective_limit(),
    )
    .await?;
    let items = items.iter().map(decode).collect::<StoreResult<_>>()?;
    Ok(Page { items, next })
}

/// A page of a listing that walks `parts` in order.
async fn list_sequential(
    client: &Client,
    table: &str,
    parts: &[Partition],
    raw_cursor: Option<&str>,
    limit: usize,
) -> StoreResult<(Vec<Item>, Option<String>)> {
    let start = SequentialCursor::parse(raw_cursor, parts.len())?;
    let mut items: Vec<Item> = Vec::with_capacity(limit);
    let mut index = start.partition;
    let mut after = start.after;
    while let Some(part) = parts.get(index) {
        let needed = limit - items.len();
        // One more than needed tells whether this partition has more after the page.
        let mut got = fetch(client, table, part, after.as_deref(), needed + 1).await?;
        if got.len() > needed {
            got.truncate(needed);
            let last = got.last().map(|i| part.sort_key(i).to_owned());
            items.extend(got);
            let next = SequentialCursor {
                partition: index,
                after: last,
            };
            return Ok((items, Some(cursor::encode(&next)?)));
        }
        items.extend(got);
        index += 1;
        after = None;
        if items.len() == limit {
            // The page is full; a next page exists only if a later partition has an item.
            for (later, part) in parts.iter().enumerate().skip(index) {
                if !fetch(client, table, part, None, 1).await?.is_empty() {
                    let next = SequentialCursor {
                        partition: later,
                        after: None,
                    };
                    return Ok((items, Some(cursor::encode(&next)?)));
                }
            }
            return Ok((items, None));
        }
    }
    Ok((items, None))
}

/// A page of a listing that merges `shards` by sort key (all in the same direction).
async fn list_merged(
    client: &Client,
    table: &str,
    shards: &[Partition],
    raw_cursor: Option<&str>,
    limit: usize,
) -> StoreResult<(Vec<Item>, Option<String>)> {
    let mut positions = MergedCursor::parse(raw_cursor, shards.len())?;
    let reads = shards
        .iter()
        .zip(&positions.shards)
        .map(|(part, position)| async move {
            match position {
                ShardPosition::Done => Ok(Vec::new()),
                ShardPosition::Start => fetch(client, table, part, None, limit + 1).await,
                ShardPosition::After(sk) => fetch(client, table, part, Some(sk), limit + 1).await,
            }
        });
    let fetched = try_join_all(reads).await?;

    let forward = shards.first().is_none_or(|p| p.forward);
    let mut candidates: Vec<(usize, Item)> = fetched
        .iter()
        .enumerate()
        .flat_map(|(shard, items)| items.iter().map(move |i| (shard, i.clone())))
        .collect();
    candidates.sort_by(|(a_shard, a), (b_shard, b)| {
        let a = shards[*a_shard].sort_key(a);
        let b = shards[*b_shard].sort_key(b);
        if forward { a.cmp(b) } else { b.cmp(a) }
    });
    candidates.truncate(limit);

    let mut taken = vec![0usize; shards.len()];
    let mut items = Vec::with_capacity(candidates.len());
    for (shard, found) in candidates {
        taken[shard] += 1;
        positions.shards[shard] = ShardPosition::After(shards[shard].sort_key(&found).to_owned());
        items.push(found);
    }
    for (shard, got) in fetched.iter().enumerate() {
        // A shard read fewer than it asked for is exhausted; once all of it is taken it is done.
        if got.len() <= limit && taken[shard] == got.len() {
            positions.shards[shard] = ShardPosition::Done;
        }
    }
    let next = if positions.is_done() {
        None
    } else {
        Some(cursor::encode(&positions)?)
    };
    Ok((items, next))
}
