//! Conditional and transactional writes, and how their refusals are reported.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, Put, PutRequest, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, WriteRequest,
};
use connector::ports::{StoreError, StoreResult};

use super::DynamoStore;
use super::item::{self, Item};
use super::keys::{self, Key};

/// A condition expression with its placeholders.
#[derive(Clone, Debug, Default)]
pub struct Condition {
    pub expression: String,
    pub names: Vec<(&'static str, &'static str)>,
    pub values: Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>,
}

impl Condition {
    /// The optimistic-concurrency check: stored `version` equals `expected`, 0 meaning absent.
    pub fn version_is(expected: u64) -> Self {
        if expected == 0 {
            Self::absent()
        } else {
            Self {
                expression: "#version = :expected".to_owned(),
                names: vec![("#version", keys::VERSION)],
                values: vec![(":expected", item::n(expected))],
            }
        }
    }

    /// [`Condition::version_is`], where an expired item counts as absent.
    pub fn version_is_or_expired(expected: u64, now: connector::Timestamp) -> Self {
        if expected == 0 {
            Self {
                expression: "attribute_not_exists(#pk) OR #exp <= :now".to_owned(),
                names: vec![("#pk", keys::PK), ("#exp", keys::EXPIRES_AT_MS)],
                values: vec![(":now", item::n(now.as_millis()))],
            }
        } else {
            Self::version_is(expected)
        }
    }

    pub fn absent() -> Self {
        Self {
            expression: "attribute_not_exists(#pk)".to_owned(),
            names: vec![("#pk", keys::PK)],
            values: Vec::new(),
        }
    }
}

/// Why one item of a refused write was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// Its condition did not hold; the stored item, when DynamoDB returned it.
    Condition(Option<Box<Item>>),
    /// Another transaction was writing the same item at that moment.
    Conflict,
}

/// The outcome of a write that may be refused.
pub enum Written {
    Done,
    /// One entry per item of the request, `None` for the items that were fine.
    Refused(Vec<Option<Refusal>>),
}

impl Written {
    /// A versioned write's outcome: refused means another writer got there first.
    pub fn or_version_conflict(self, entity: &'static str, expected: u64) -> StoreResult<()> {
        match self {
            Written::Done => Ok(()),
            Written::Refused(_) => Err(StoreError::VersionConflict { entity, expected }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB cancelled the transaction: {0}")]
struct TransactionFailed(String);

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB left {0} requests of a batch unprocessed after retries")]
struct Unprocessed(usize);

/// How often a batch's unprocessed requests are sent again (DynamoDB's advice: back off).
const BATCH_RETRIES: u32 = 8;

/// Before sending a batch's unprocessed requests again: an error once the retries are
/// spent, else a wait that doubles with each attempt.
async fn back_off(attempt: u32, unprocessed: usize) -> StoreResult<()> {
    if attempt > BATCH_RETRIES {
        return Err(StoreError::backend(Unprocessed(unprocessed)));
    }
    if attempt > 0 {
        tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
    }
    Ok(())
}

impl DynamoStore {
    pub(super) fn put_request(&self, item: Item, condition: Option<Condition>) -> StoreResult<Put> {
        let mut put = Put::builder().table_name(self.table()).set_item(Some(item));
        if let Some(c) = condition {
            put = put
                .condition_expression(c.expression)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            for (k, v) in c.names {
                put = put.expression_attribute_names(k, v);
            }
            for (k, v) in c.values {
                put = put.expression_attribute_values(k, v);
            }
        }
        put.build().map_err(item::backend)
    }

    /// One PutItem, refused if `condition` does not hold.
    pub(super) async fn put_item(
        &self,
        item: Item,
        condition: Option<Condition>,
    ) -> StoreResult<Written> {
        let mut request = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item));
        if let Some(c) = condition {
            request = request
                .condition_expression(c.expression)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            for (k, v) in c.names {
                request = request.expression_attribute_names(k, v);
            }
            for (k, v) in c.values {
                request = request.expression_attribute_values(k, v);
            }
        }
        match request.send().await {
            Ok(_) => Ok(Written::Done),
            Err(e) => match e.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    let stored = match service {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                            c.item().cloned().map(Box::new)
                        }
                        _ => None,
                    };
                    Ok(Written::Refused(vec![Some(Refusal::Condition(stored))]))
                }
                _ => Err(item::backend(e)),
            },
        }
    }

    /// TransactWriteItems: all puts land together or none does.
    pub(super) async fn transact(&self, puts: Vec<Put>) -> StoreResult<Written> {
        let items = puts
            .into_iter()
            .map(|p| TransactWriteItem::builder().put(p).build())
            .collect();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(Written::Done),
            Err(e) => e,
        };
        let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            e.as_service_error()
        else {
            return Err(item::backend(e));
        };
        let mut refusals = Vec::new();
        for reason in cancelled.cancellation_reasons() {
            refusals.push(match reason.code() {
                None | Some("None") => None,
                Some("ConditionalCheckFailed") => {
                    Some(Refusal::Condition(reason.item().cloned().map(Box::new)))
                }
                Some("TransactionConflict") => Some(Refusal::Conflict),
                Some(other) => {
                    let detail = format!("{other}: {}", reason.message().unwrap_or_default());
                    return Err(StoreError::backend(TransactionFailed(detail)));
                }
            });
        }
        Ok(Written::Refused(refusals))
    }

    /// Deletes items in batches of 25, sending back what DynamoDB leaves unprocessed.
    pub(super) async fn delete_all(&self, doomed: &[Key]) -> StoreResult<()> {
        let requests = doomed
            .iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(item::key_map(key)))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(item::backend)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.write_all(requests).await
    }

    /// Puts items unconditionally in batches of 25, sending back what is left unprocessed.
    pub(super) async fn put_all(&self, items: Vec<Item>) -> StoreResult<()> {
        let requests = items
            .into_iter()
            .map(|found| {
                PutRequest::builder()
                    .set_item(Some(found))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(item::backend)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.write_all(requests).await
    }

    async fn write_all(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(25) {
            let mut requests = chunk.to_vec();
            let mut attempt = 0;
            while !requests.is_empty() {
                back_off(attempt, requests.len()).await?;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table(), requests)
                    .send()
                    .await
                    .map_err(item::backend)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(self.table()))
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(())
    }

    /// Strongly consistent reads of `keys` in batches of 100, sending back what is left
    /// unprocessed; the items found, in no particular order.
    pub(super) async fn get_all(&self, keys: &[Key]) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk.iter().map(item::key_map).collect();
            let mut attempt = 0;
            while !wanted.is_empty() {
                back_off(attempt, wanted.len()).await?;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .consistent_read(true)
                    .build()
                    .map_err(item::backend)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(item::backend)?;
                found.extend(
                    out.responses
                        .and_then(|mut by_table| by_table.remove(self.table()))
                        .unwrap_or_default(),
                );
                wanted = out
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(self.table()))
                    .map(|left| left.keys)
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(found)
    }
}
