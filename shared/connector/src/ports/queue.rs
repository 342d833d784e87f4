use std::time::Duration;

use async_trait::async_trait;

/// SQS's limits, kept by both adapters so the embedded queue never accepts what SQS would refuse.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
pub const MAX_BATCH: usize = 10;
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("delay {0:?} is longer than the 15-minute maximum")]
    DelayTooLong(Duration),
    #[error("visibility timeout {0:?} is longer than the 12-hour maximum")]
    VisibilityTooLong(Duration),
    #[error("message body is {0} bytes; the maximum is 256 KiB")]
    BodyTooLarge(usize),
    /// The receipt is unknown or no longer current (the message was received again or deleted).
    #[error("receipt handle is not current")]
    StaleReceipt,
    #[error("queue backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl QueueError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        QueueError::Backend(Box::new(e))
    }
}

pub type QueueResult<T> = Result<T, QueueError>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    /// Invisible until this much time has passed (at most [`MAX_DELAY`]).
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn now(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(body: impl Into<String>, delay: Duration) -> Self {
        Self {
            body: body.into(),
            delay,
        }
    }

    /// Checks SQS's limits before anything is sent.
    pub fn validate(&self) -> QueueResult<()> {
        if self.delay > MAX_DELAY {
            return Err(QueueError::DelayTooLong(self.delay));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(QueueError::BodyTooLarge(self.body.len()));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Opaque handle for `delete` / `change_visibility`; only the latest receive's is current.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included (1 the first time).
    pub receive_count: u32,
}

/// A job queue with SQS semantics: at-least-once delivery, per-message delay, a
/// visibility timeout after each receive, and dead-lettering once a message has been
/// received `max_receive_count` times without being deleted.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Sends messages, at most [`MAX_BATCH`] per backend call; larger slices are split.
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> QueueResult<()>;
    /// Receives up to `max` (1..=10) visible messages and hides them for `visibility`.
    /// Returns at once with what is visible (no long polling).
    async fn receive(&self, max: usize, visibility: Duration) -> QueueResult<Vec<ReceivedMessage>>;
    async fn delete(&self, receipt: &str) -> QueueResult<()>;
    /// Makes a received message visible again after `timeout` (0: now).
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> QueueResult<()>;
    /// Receives from the dead-letter queue (same semantics as `receive`).
    async fn receive_dead_letters(
        &self,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>>;
    async fn delete_dead_letter(&self, receipt: &str) -> QueueResult<()>;
    /// Moves every dead letter back to the main queue; returns how many moved.
    async fn redrive_dead_letters(&self) -> QueueResult<u64>;
    /// Approximate count of messages waiting (visible + delayed + in flight), main queue.
    async fn approximate_depth(&self) -> QueueResult<u64>;
}
