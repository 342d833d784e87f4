//! The job queue in the embedded SQLite file: [`EmbeddedQueue`], with SQS's semantics.
//!
//! Every named queue and its dead-letter queue live in one `queue_messages` table, next to
//! the store's `store_*` tables in the same file. A message row carries the time it next
//! becomes visible (send time + delay, or receive time + visibility timeout), its receive
//! count and its current receipt. Receiving draws a fresh receipt, so every older one is
//! stale; a message already received `max_receive_count` times is moved to the dead
//! letters when it would be delivered again, as SQS's redrive policy does.
//!
//! One connection of its own behind a mutex, used from `spawn_blocking`; every change
//! runs in an `IMMEDIATE` transaction so two processes on one file never hand out the
//! same message twice at once. Times are real wall-clock milliseconds.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use connector::ports::{
    JobQueue, MAX_BATCH, MAX_VISIBILITY_TIMEOUT, OutgoingMessage, QueueError, QueueResult,
    ReceivedMessage,
};
use rusqlite::{Connection, TransactionBehavior, params};
use uuid::Uuid;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    dead_letter   INTEGER NOT NULL,  -- 0: the queue itself, 1: its dead-letter queue
    message_id    TEXT    NOT NULL UNIQUE,
    body          TEXT    NOT NULL,
    visible_at_ms INTEGER NOT NULL,  -- not delivered before this (delay or visibility)
    receive_count INTEGER NOT NULL,
    receipt       TEXT    UNIQUE     -- the latest receive's handle; NULL when none is current
);
CREATE INDEX IF NOT EXISTS queue_messages_due
    ON queue_messages (queue, dead_letter, visible_at_ms, seq);
";

/// Per-queue settings, like an SQS queue's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// Receives after which an undeleted message goes to the dead letters (SQS's
    /// `maxReceiveCount`).
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedQueueError {
    #[error("the queue's connection lock is poisoned by an earlier panic")]
    Poisoned,
    #[error("the queue's blocking task did not finish")]
    Task(#[from] tokio::task::JoinError),
    #[error("the system clock is outside the range the queue can store")]
    Clock,
}

impl From<EmbeddedQueueError> for QueueError {
    fn from(e: EmbeddedQueueError) -> Self {
        QueueError::backend(e)
    }
}

/// Which of a queue's two lanes a call works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Main = 0,
    DeadLetter = 1,
}

/// One named queue (and its dead letters) in an SQLite file. Cloning is cheap: clones
/// share one connection.
#[derive(Clone)]
pub struct EmbeddedQueue {
    conn: Arc<Mutex<Connection>>,
    name: Arc<str>,
    settings: QueueSettings,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl EmbeddedQueue {
    /// Opens (or creates) the SQLite file at `path` in WAL mode, creates the queue table
    /// if missing, and serves the queue called `queue_name` in it. Messages already in the
    /// file (sent before a restart) are kept, with their visibility and receive counts.
    pub fn open(
        path: impl AsRef<Path>,
        queue_name: &str,
        settings: QueueSettings,
    ) -> QueueResult<EmbeddedQueue> {
        let conn = Connection::open(path).map_err(QueueError::backend)?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(QueueError::backend)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(QueueError::backend)?;
        // In WAL mode, NORMAL loses nothing on an application crash, only on power loss.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(QueueError::backend)?;
        conn.execute_batch(SCHEMA).map_err(QueueError::backend)?;
        Ok(EmbeddedQueue {
            conn: Arc::new(Mutex::new(conn)),
            name: Arc::from(queue_name),
            settings,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// Runs `work` on the connection on the blocking pool.
    async fn with_conn<T, F>(&self, work: F) -> QueueResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str, QueueSettings) -> QueueResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let name = Arc::clone(&self.name);
        let settings = self.settings;
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn)?;
            work(&mut guard, &name, settings)
        })
        .await
        .map_err(EmbeddedQueueError::from)?
    }

    async fn receive_lane(
        &self,
        lane: Lane,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        check_visibility(visibility)?;
        let max = max.min(MAX_BATCH);
        if max == 0 {
            return Ok(Vec::new());
        }
        let visibility_ms = millis(visibility)?;
        self.with_conn(move |conn, name, settings| {
            let now = now_ms()?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(QueueError::backend)?;
            let received = receive_in(&tx, name, lane, settings, max, now, visibility_ms)
                .map_err(QueueError::backend)?;
            tx.commit().map_err(QueueError::backend)?;
            Ok(received)
        })
        .await
    }

    async fn delete_in_lane(&self, lane: Lane, receipt: &str) -> QueueResult<()> {
        let receipt = receipt.to_owned();
        self.with_conn(move |conn, name, _| {
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM queue_messages
                     WHERE receipt = ?1 AND queue = ?2 AND dead_letter = ?3",
                )
                .and_then(|mut delete| delete.execute(params![receipt, name, lane as i64]))
                .map_err(QueueError::backend)?;
            if deleted == 0 {
                return Err(QueueError::StaleReceipt);
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl JobQueue for EmbeddedQueue {
    /// Sends in transactions of at most ten messages, like SQS's batches; all messages are
    /// checked first, so an invalid one means nothing is sent.
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> QueueResult<()> {
        for message in messages {
            message.validate()?;
        }
        if messages.is_empty() {
            return Ok(());
        }
        let messages = messages.to_vec();
        self.with_conn(move |conn, name, _| {
            for chunk in messages.chunks(MAX_BATCH) {
                let now = now_ms()?;
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(QueueError::backend)?;
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO queue_messages
                                 (queue, dead_letter, message_id, body, visible_at_ms, receive_count)
                             VALUES (?1, 0, ?2, ?3, ?4, 0)",
                        )
                        .map_err(QueueError::backend)?;
                    for message in chunk {
                        let visible_at = now + millis(message.delay)?;
                        insert
                            .execute(params![
                                name,
                                Uuid::now_v7().to_string(),
                                message.body,
                                visible_at
                            ])
                            .map_err(QueueError::backend)?;
                    }
                }
                tx.commit().map_err(QueueError::backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn receive(&self, max: usize, visibility: Duration) -> QueueResult<Vec<ReceivedMessage>> {
        self.receive_lane(Lane::Main, max, visibility).await
    }

    async fn delete(&self, receipt: &str) -> QueueResult<()> {
        self.delete_in_lane(Lane::Main, receipt).await
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> QueueResult<()> {
        check_visibility(timeout)?;
        let timeout_ms = millis(timeout)?;
        let receipt = receipt.to_owned();
        self.with_conn(move |conn, name, _| {
            let visible_at = now_ms()? + timeout_ms;
            let changed = conn
                .prepare_cached(
                    "UPDATE queue_messages SET visible_at_ms = ?1
                     WHERE receipt = ?2 AND queue = ?3 AND dead_letter = 0",
                )
                .and_then(|mut update| update.execute(params![visible_at, receipt, name]))
                .map_err(QueueError::backend)?;
            if changed == 0 {
                return Err(QueueError::StaleReceipt);
            }
            Ok(())
        })
        .await
    }

    async fn receive_dead_letters(
        &self,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        self.receive_lane(Lane::DeadLetter, max, visibility).await
    }

    async fn delete_dead_letter(&self, receipt: &str) -> QueueResult<()> {
        self.delete_in_lane(Lane::DeadLetter, receipt).await
    }

    /// Moves the dead letters that are visible (not held by a `receive_dead_letters`) back,
    /// as fresh messages: receive count 0, visible now, no current receipt. The SQS
    /// adapter moves the same set.
    async fn redrive_dead_letters(&self) -> QueueResult<u64> {
        self.with_conn(|conn, name, _| {
            let now = now_ms()?;
            let moved = conn
                .prepare_cached(
                    "UPDATE queue_messages
                     SET dead_letter = 0, receive_count = 0, receipt = NULL, visible_at_ms = ?1
                     WHERE queue = ?2 AND dead_letter = 1 AND visible_at_ms <= ?1",
                )
                .and_then(|mut update| update.execute(params![now, name]))
                .map_err(QueueError::backend)?;
            Ok(moved as u64)
        })
        .await
    }

    /// Exact here: visible, delayed and in-flight messages of the main queue.
    async fn approximate_depth(&self) -> QueueResult<u64> {
        self.with_conn(|conn, name, _| {
            let depth: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1 AND dead_letter = 0",
                )
                .and_then(|mut count| count.query_row(params![name], |row| row.get(0)))
                .map_err(QueueError::backend)?;
            Ok(u64::try_from(depth).unwrap_or(0))
        })
        .await
    }
}

/// Picks up to `max` due messages in the order they became visible. On the main lane, a
/// due message already received `max_receive_count` times moves to the dead letters
/// instead (keeping its receive count, as SQS does) and the search goes on.
fn receive_in(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    lane: Lane,
    settings: QueueSettings,
    max: usize,
    now: i64,
    visibility_ms: i64,
) -> rusqlite::Result<Vec<ReceivedMessage>> {
    // Pages through due messages by (visible_at_ms, seq). A message received here with a
    // zero visibility timeout is due again at once, so it is skipped by its seq.
    let mut due_page = tx.prepare_cached(
        "SELECT seq, visible_at_ms, message_id, body, receive_count FROM queue_messages
         WHERE queue = ?1 AND dead_letter = ?2 AND visible_at_ms <= ?3
           AND (visible_at_ms, seq) > (?4, ?5)
         ORDER BY visible_at_ms, seq LIMIT ?6",
    )?;
    let mut mark_received = tx.prepare_cached(
        "UPDATE queue_messages SET receive_count = ?1, receipt = ?2, visible_at_ms = ?3
         WHERE seq = ?4",
    )?;
    let mut to_dead_letters = tx.prepare_cached(
        "UPDATE queue_messages SET dead_letter = 1, receipt = NULL, visible_at_ms = ?1
         WHERE seq = ?2",
    )?;
    let mut received = Vec::with_capacity(max);
    let mut picked = Vec::with_capacity(max);
    let mut cursor = (i64::MIN, i64::MIN);
    while received.len() < max {
        let wanted = max - received.len();
        let page = due_page
            .query_map(
                params![name, lane as i64, now, cursor.0, cursor.1, wanted as i64],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, u32>(4)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let last_page = page.len() < wanted;
        for (seq, visible_at, message_id, body, count) in page {
            cursor = (visible_at, seq);
            if picked.contains(&seq) {
                continue;
            }
            if lane == Lane::Main && count >= settings.max_receive_count {
                to_dead_letters.execute(params![now, seq])?;
                continue;
            }
            let receipt = Uuid::new_v4().to_string();
            let receive_count = count.saturating_add(1);
            mark_received.execute(params![receive_count, receipt, now + visibility_ms, seq])?;
            picked.push(seq);
            received.push(ReceivedMessage {
                message_id,
                receipt,
                body,
                receive_count,
            });
        }
        if last_page {
            break;
        }
    }
    Ok(received)
}

fn lock(conn: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, EmbeddedQueueError> {
    conn.lock().map_err(|_| EmbeddedQueueError::Poisoned)
}

fn check_visibility(visibility: Duration) -> QueueResult<()> {
    if visibility > MAX_VISIBILITY_TIMEOUT {
        return Err(QueueError::VisibilityTooLong(visibility));
    }
    Ok(())
}

fn millis(duration: Duration) -> Result<i64, EmbeddedQueueError> {
    i64::try_from(duration.as_millis()).map_err(|_| EmbeddedQueueError::Clock)
}

fn now_ms() -> Result<i64, EmbeddedQueueError> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| EmbeddedQueueError::Clock)?;
    millis(since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIDE: Duration = Duration::from_secs(600);

    fn settings(max_receive_count: u32) -> QueueSettings {
        QueueSettings { max_receive_count }
    }

    #[tokio::test]
    async fn messages_survive_closing_and_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let first = EmbeddedQueue::open(&path, "jobs", settings(5)).unwrap();
        first
            .send_batch(&[OutgoingMessage::now("a"), OutgoingMessage::now("b")])
            .await
            .unwrap();
        let held = first.receive(1, HIDE).await.unwrap();
        drop(first);

        let reopened = EmbeddedQueue::open(&path, "jobs", settings(5)).unwrap();
        assert_eq!(reopened.approximate_depth().await.unwrap(), 2);
        let visible = reopened.receive(10, HIDE).await.unwrap();
        assert_eq!(
            visible.len(),
            1,
            "the held message stays hidden: {visible:?}"
        );
        assert_ne!(visible[0].body, held[0].body);
        reopened.delete(&held[0].receipt).await.unwrap();
        assert_eq!(reopened.approximate_depth().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn named_queues_in_one_file_do_not_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local.db");
        let jobs = EmbeddedQueue::open(&path, "jobs", settings(5)).unwrap();
        let other = EmbeddedQueue::open(&path, "other", settings(5)).unwrap();
        jobs.send_batch(&[OutgoingMessage::now("for jobs")])
            .await
            .unwrap();

        assert!(other.receive(10, HIDE).await.unwrap().is_empty());
        assert_eq!(other.approximate_depth().await.unwrap(), 0);
        let got = jobs.receive(10, HIDE).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(matches!(
            other.delete(&got[0].receipt).await,
            Err(QueueError::StaleReceipt)
        ));
    }

    #[tokio::test]
    async fn a_message_received_max_times_goes_to_the_dead_letters_on_the_next_receive() {
        let dir = tempfile::tempdir().unwrap();
        let queue = EmbeddedQueue::open(dir.path().join("q.db"), "jobs", settings(2)).unwrap();
        queue
            .send_batch(&[OutgoingMessage::now("poison")])
            .await
            .unwrap();
        for expected_count in 1..=2 {
            let got = queue.receive(1, HIDE).await.unwrap();
            assert_eq!(got[0].receive_count, expected_count);
            queue
                .change_visibility(&got[0].receipt, Duration::ZERO)
                .await
                .unwrap();
        }

        assert!(queue.receive(10, HIDE).await.unwrap().is_empty());
        assert_eq!(queue.approximate_depth().await.unwrap(), 0);
        let dead = queue.receive_dead_letters(10, HIDE).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "poison");
        assert_eq!(dead[0].receive_count, 3);
    }

    #[tokio::test]
    async fn a_held_dead_letter_is_not_redriven_until_it_is_visible_again() {
        let dir = tempfile::tempdir().unwrap();
        let queue = EmbeddedQueue::open(dir.path().join("q.db"), "jobs", settings(1)).unwrap();
        queue
            .send_batch(&[OutgoingMessage::now("x")])
            .await
            .unwrap();
        let got = queue.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(queue.receive(1, HIDE).await.unwrap().is_empty());
        let dead = queue.receive_dead_letters(1, HIDE).await.unwrap();
        assert_eq!(dead.len(), 1);

        assert_eq!(queue.redrive_dead_letters().await.unwrap(), 0);
        queue.delete_dead_letter(&dead[0].receipt).await.unwrap();
        assert!(
            queue
                .receive_dead_letters(1, HIDE)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn one_receive_never_returns_a_message_twice_even_with_zero_visibility() {
        let dir = tempfile::tempdir().unwrap();
        let queue = EmbeddedQueue::open(dir.path().join("q.db"), "jobs", settings(5)).unwrap();
        let batch: Vec<_> = (0..3)
            .map(|i| OutgoingMessage::now(format!("m{i}")))
            .collect();
        queue.send_batch(&batch).await.unwrap();

        let got = queue.receive(10, Duration::ZERO).await.unwrap();
        let mut bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
        bodies.sort_unstable();
        assert_eq!(bodies, ["m0", "m1", "m2"]);
    }

    #[tokio::test]
    async fn a_deleted_message_receipt_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let queue = EmbeddedQueue::open(dir.path().join("q.db"), "jobs", settings(5)).unwrap();
        queue
            .send_batch(&[OutgoingMessage::now("x")])
            .await
            .unwrap();
        let got = queue.receive(1, HIDE).await.unwrap();
        queue.delete(&got[0].receipt).await.unwrap();

        assert!(matches!(
            queue.delete(&got[0].receipt).await,
            Err(QueueError::StaleReceipt)
        ));
        assert!(matches!(
            queue
                .change_visibility(&got[0].receipt, Duration::ZERO)
                .await,
            Err(QueueError::StaleReceipt)
        ));
    }

    #[tokio::test]
    async fn an_invalid_message_in_a_batch_means_none_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let queue = EmbeddedQueue::open(dir.path().join("q.db"), "jobs", settings(5)).unwrap();
        let batch = [
            OutgoingMessage::now("fine"),
            OutgoingMessage::delayed("late", Duration::from_secs(16 * 60)),
        ];

        assert!(matches!(
            queue.send_batch(&batch).await,
            Err(QueueError::DelayTooLong(_))
        ));
        assert_eq!(queue.approximate_depth().await.unwrap(), 0);
    }
}
