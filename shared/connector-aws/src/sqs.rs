//! The job queue on SQS: a standard queue whose RedrivePolicy points at its dead-letter queue.
//!
//! What SQS itself decides, this adapter does not second-guess: a receipt handle is
//! refused as [`QueueError::StaleReceipt`] only when SQS refuses it. SQS does not reliably
//! refuse an *older* receipt of a message received again (AWS: "the message might not be
//! deleted"; moto accepts old receipts and acts on the message), so callers must already
//! be idempotent, as at-least-once delivery requires anyway.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use connector::ports::{
    JobQueue, MAX_BATCH, MAX_BODY_BYTES, MAX_VISIBILITY_TIMEOUT, OutgoingMessage, QueueError,
    QueueResult, ReceivedMessage,
};

/// How long a redrive hides the dead letters it is moving; long enough to send and delete them.
const REDRIVE_VISIBILITY: Duration = Duration::from_secs(60);

/// What went wrong that SQS did not report as a service error of its own.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("SQS refused {failed} of {sent} batch entries; first: {code}: {message}")]
    BatchEntriesFailed {
        failed: usize,
        sent: usize,
        code: String,
        message: String,
    },
    #[error("SQS returned a message without its {0}")]
    MissingMessageField(&'static str),
    #[error("SQS returned no {0} for the queue")]
    MissingQueueAttribute(&'static str),
    #[error("queue attribute {name} is not a count: {value:?}")]
    BadCount { name: &'static str, value: String },
    #[error("could not build the SQS request")]
    Build(#[from] aws_smithy_types::error::operation::BuildError),
}

impl From<SqsError> for QueueError {
    fn from(e: SqsError) -> Self {
        QueueError::backend(e)
    }
}

/// A [`JobQueue`] on one SQS queue and its dead-letter queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    /// Uses existing queues; `queue_url`'s RedrivePolicy must point at `dead_letter_url`.
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> SqsQueue {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }

    /// Creates `<name>-dlq` and `<name>` (redriving to it after `max_receive_count`
    /// receives). For tests and local tools; deployed queues come from the template.
    pub async fn create(
        client: &Client,
        name: &str,
        max_receive_count: u32,
    ) -> QueueResult<SqsQueue> {
        let dead_letter_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(QueueError::backend)?
            .queue_url
            .ok_or(SqsError::MissingQueueAttribute("QueueUrl"))?;
        let dead_letter_arn = client
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(QueueError::backend)?
            .attributes
            .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
            .ok_or(SqsError::MissingQueueAttribute("QueueArn"))?;
        let redrive_policy = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": max_receive_count,
        });
        let queue_url = client
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::RedrivePolicy,
                redrive_policy.to_string(),
            )
            .send()
            .await
            .map_err(QueueError::backend)?
            .queue_url
            .ok_or(SqsError::MissingQueueAttribute("QueueUrl"))?;
        Ok(SqsQueue::new(client.clone(), queue_url, dead_letter_url))
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dead_letter_url(&self) -> &str {
        &self.dead_letter_url
    }

    async fn send_to(&self, queue_url: &str, messages: &[OutgoingMessage]) -> QueueResult<()> {
        for message in messages {
            message.validate()?;
        }
        for chunk in batches(messages) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, message)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&message.body)
                        .delay_seconds(whole_seconds(message.delay))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(SqsError::from)?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(QueueError::backend)?;
            if let Some(first) = output.failed.first() {
                return Err(SqsError::BatchEntriesFailed {
                    failed: output.failed.len(),
                    sent: chunk.len(),
                    code: first.code.clone(),
                    message: first.message.clone().unwrap_or_default(),
                }
                .into());
            }
        }
        Ok(())
    }

    async fn receive_from(
        &self,
        queue_url: &str,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        check_visibility(visibility)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(max.min(MAX_BATCH) as i32)
            .visibility_timeout(whole_seconds(visibility))
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(QueueError::backend)?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(received)
            .collect()
    }

    async fn delete_from(&self, queue_url: &str, receipt: &str) -> QueueResult<()> {
        self.client
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(DeleteMessageError::ReceiptHandleIsInvalid(_)) => QueueError::StaleReceipt,
                _ => QueueError::backend(e),
            })?;
        Ok(())
    }

    async fn attribute_count(
        &self,
        queue_url: &str,
        names: &[(QueueAttributeName, &'static str)],
    ) -> QueueResult<u64> {
        let attributes: HashMap<QueueAttributeName, String> = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .set_attribute_names(Some(names.iter().map(|(name, _)| name.clone()).collect()))
            .send()
            .await
            .map_err(QueueError::backend)?
            .attributes
            .unwrap_or_default();
        let mut total = 0u64;
        for (name, label) in names {
            let value = attributes
                .get(name)
                .ok_or(SqsError::MissingQueueAttribute(label))?;
            total += value.parse::<u64>().map_err(|_| SqsError::BadCount {
                name: label,
                value: value.clone(),
            })?;
        }
        Ok(total)
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    /// Checks every message first, then sends batches of at most ten and 256 KiB. An entry
    /// SQS refuses fails the call; batches sent before it stay sent (resending is safe
    /// under at-least-once delivery).
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> QueueResult<()> {
        self.send_to(&self.queue_url, messages).await
    }

    async fn receive(&self, max: usize, visibility: Duration) -> QueueResult<Vec<ReceivedMessage>> {
        self.receive_from(&self.queue_url, max, visibility).await
    }

    async fn delete(&self, receipt: &str) -> QueueResult<()> {
        self.delete_from(&self.queue_url, receipt).await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> QueueResult<()> {
        check_visibility(timeout)?;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_seconds(timeout))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(
                    ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_)
                    | ChangeMessageVisibilityError::MessageNotInflight(_),
                ) => QueueError::StaleReceipt,
                _ => QueueError::backend(e),
            })?;
        Ok(())
    }

    async fn receive_dead_letters(
        &self,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        self.receive_from(&self.dead_letter_url, max, visibility)
            .await
    }

    async fn delete_dead_letter(&self, receipt: &str) -> QueueResult<()> {
        self.delete_from(&self.dead_letter_url, receipt).await
    }

    /// Receive from the dead-letter queue, send to the main queue, then delete from the
    /// dead-letter queue, ten at a time until it answers empty. A failure midway leaves
    /// the unsent ones where they were (at-least-once: a resent one may arrive twice).
    async fn redrive_dead_letters(&self) -> QueueResult<u64> {
        let mut moved = 0u64;
        loop {
            let letters = self
                .receive_from(&self.dead_letter_url, MAX_BATCH, REDRIVE_VISIBILITY)
                .await?;
            if letters.is_empty() {
                return Ok(moved);
            }
            let resend: Vec<OutgoingMessage> = letters
                .iter()
                .map(|letter| OutgoingMessage::now(letter.body.clone()))
                .collect();
            self.send_to(&self.queue_url, &resend).await?;
            let entries = letters
                .iter()
                .enumerate()
                .map(|(i, letter)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&letter.receipt)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(SqsError::from)?;
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.dead_letter_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(QueueError::backend)?;
            if let Some(first) = output.failed.first() {
                return Err(SqsError::BatchEntriesFailed {
                    failed: output.failed.len(),
                    sent: letters.len(),
                    code: first.code.clone(),
                    message: first.message.clone().unwrap_or_default(),
                }
                .into());
            }
            moved += letters.len() as u64;
        }
    }

    async fn approximate_depth(&self) -> QueueResult<u64> {
        self.attribute_count(
            &self.queue_url,
            &[
                (
                    QueueAttributeName::ApproximateNumberOfMessages,
                    "ApproximateNumberOfMessages",
                ),
                (
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                    "ApproximateNumberOfMessagesDelayed",
                ),
                (
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    "ApproximateNumberOfMessagesNotVisible",
                ),
            ],
        )
        .await
    }
}

/// Splits into SendMessageBatch calls: at most ten entries and 256 KiB of bodies each
/// (SQS limits the whole batch's payload, not only each message).
fn batches(messages: &[OutgoingMessage]) -> Vec<&[OutgoingMessage]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, message) in messages.iter().enumerate() {
        let len = message.body.len();
        if i > start && (i - start == MAX_BATCH || bytes + len > MAX_BODY_BYTES) {
            chunks.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < messages.len() {
        chunks.push(&messages[start..]);
    }
    chunks
}

fn check_visibility(visibility: Duration) -> QueueResult<()> {
    if visibility > MAX_VISIBILITY_TIMEOUT {
        return Err(QueueError::VisibilityTooLong(visibility));
    }
    Ok(())
}

/// SQS counts whole seconds; a fraction rounds up so "invisible for at least" holds.
/// Callers have checked the limits (at most 12 hours), so the value fits.
fn whole_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

fn received(message: Message) -> QueueResult<ReceivedMessage> {
    let receive_count = message
        .attributes
        .as_ref()
        .and_then(|attributes| attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .ok_or(SqsError::MissingMessageField("ApproximateReceiveCount"))?;
    let receive_count = receive_count
        .parse::<u32>()
        .map_err(|_| SqsError::BadCount {
            name: "ApproximateReceiveCount",
            value: receive_count.clone(),
        })?;
    Ok(ReceivedMessage {
        message_id: message
            .message_id
            .ok_or(SqsError::MissingMessageField("MessageId"))?,
        receipt: message
            .receipt_handle
            .ok_or(SqsError::MissingMessageField("ReceiptHandle"))?,
        body: message.body.unwrap_or_default(),
        receive_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(sizes: &[usize]) -> Vec<OutgoingMessage> {
        sizes
            .iter()
            .map(|&n| OutgoingMessage::now("x".repeat(n)))
            .collect()
    }

    fn chunk_lengths(messages: &[OutgoingMessage]) -> Vec<usize> {
        batches(messages).iter().map(|chunk| chunk.len()).collect()
    }

    #[test]
    fn batches_hold_at_most_ten_messages() {
        assert_eq!(chunk_lengths(&bodies(&[1; 23])), vec![10, 10, 3]);
        assert_eq!(chunk_lengths(&bodies(&[1; 10])), vec![10]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn batches_hold_at_most_256_kib_of_bodies() {
        let big = MAX_BODY_BYTES / 2;
        assert_eq!(chunk_lengths(&bodies(&[big, big, 1, big])), vec![2, 2]);
        assert_eq!(chunk_lengths(&bodies(&[MAX_BODY_BYTES; 3])), vec![1, 1, 1]);
    }

    #[test]
    fn fractions_of_a_second_round_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(900)), 900);
    }
}
