//! The job queue conformance checks. Each gets a fresh, empty queue made with
//! [`MAX_RECEIVE_COUNT`]. SQS counts time in whole seconds, so timeouts here are 1-2 s
//! and anything that must happen "later" is polled for until a deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use connector::ports::{
    JobQueue, MAX_BODY_BYTES, MAX_DELAY, MAX_VISIBILITY_TIMEOUT, OutgoingMessage, QueueError,
    ReceivedMessage,
};

/// The `max_receive_count` of the queue every check is given.
pub const MAX_RECEIVE_COUNT: u32 = 2;

/// Long enough that nothing received with it reappears during a check.
const HIDDEN: Duration = Duration::from_secs(60);
/// Upper bound for anything that is due within a few seconds.
const DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

pub async fn delayed_messages_stay_invisible_until_due(queue: &dyn JobQueue) {
    let delay = Duration::from_secs(2);
    let sent_at = Instant::now();
    queue
        .send_batch(&[
            OutgoingMessage::delayed("later", delay),
            OutgoingMessage::now("now"),
        ])
        .await
        .unwrap();

    let first = queue.receive(10, HIDDEN).await.unwrap();
    assert_eq!(bodies(&first), ["now"]);

    let later = receive_within(queue, HIDDEN).await;
    assert_eq!(bodies(&later), ["later"]);
    assert!(
        sent_at.elapsed() >= delay,
        "delivered {:?} after sending, before its {delay:?} delay",
        sent_at.elapsed()
    );
}

pub async fn a_received_message_is_redelivered_after_its_visibility_timeout(queue: &dyn JobQueue) {
    let visibility = Duration::from_secs(2);
    queue
        .send_batch(&[OutgoingMessage::now("job")])
        .await
        .unwrap();
    let received_at = Instant::now();
    let first = only(queue.receive(1, visibility).await.unwrap());
    assert_eq!(first.receive_count, 1);
    assert!(queue.receive(10, HIDDEN).await.unwrap().is_empty());

    let again = only(receive_within(queue, HIDDEN).await);
    assert!(received_at.elapsed() >= visibility);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.body, "job");
    assert_eq!(again.receive_count, 2);
    assert_ne!(again.receipt, first.receipt);

    queue.delete(&again.receipt).await.unwrap();
    assert_depth_becomes(queue, 0).await;
}

/// The strict reading of "only the latest receive's receipt is current".
pub async fn the_old_receipt_is_stale_after_redelivery(queue: &dyn JobQueue) {
    queue
        .send_batch(&[OutgoingMessage::now("job")])
        .await
        .unwrap();
    let first = only(queue.receive(1, Duration::ZERO).await.unwrap());
    let again = only(receive_within(queue, HIDDEN).await);
    assert_eq!(again.receive_count, 2);

    assert_stale(queue.delete(&first.receipt).await);
    assert_stale(
        queue
            .change_visibility(&first.receipt, Duration::ZERO)
            .await,
    );
    assert_eq!(queue.approximate_depth().await.unwrap(), 1);
    assert!(
        queue.receive(10, HIDDEN).await.unwrap().is_empty(),
        "the stale receipt changed the message's visibility"
    );
    queue.delete(&again.receipt).await.unwrap();
    assert_eq!(queue.approximate_depth().await.unwrap(), 0);
}

pub async fn an_unknown_receipt_is_refused(queue: &dyn JobQueue) {
    let unknown = "no-such-receipt";
    assert_stale(queue.delete(unknown).await);
    assert_stale(queue.change_visibility(unknown, Duration::ZERO).await);
    assert_stale(queue.delete_dead_letter(unknown).await);
}

pub async fn a_deleted_message_is_gone_for_good(queue: &dyn JobQueue) {
    queue
        .send_batch(&[OutgoingMessage::now("done")])
        .await
        .unwrap();
    // Received with no visibility timeout: only the delete keeps it from coming back.
    let got = only(queue.receive(1, Duration::ZERO).await.unwrap());
    queue.delete(&got.receipt).await.unwrap();

    assert!(queue.receive(10, HIDDEN).await.unwrap().is_empty());
    assert!(
        queue
            .receive_dead_letters(10, HIDDEN)
            .await
            .unwrap()
            .is_empty()
    );
    assert_depth_becomes(queue, 0).await;
}

pub async fn dead_letters_after_max_receives(queue: &dyn JobQueue) {
    queue
        .send_batch(&[OutgoingMessage::now("poison")])
        .await
        .unwrap();
    let mut message_id = None;
    for count in 1..=MAX_RECEIVE_COUNT {
        let got = only(receive_within(queue, Duration::ZERO).await);
        assert_eq!(got.receive_count, count);
        message_id = Some(got.message_id);
    }

    assert!(
        queue.receive(10, HIDDEN).await.unwrap().is_empty(),
        "delivered again after {MAX_RECEIVE_COUNT} receives"
    );
    assert_depth_becomes(queue, 0).await;
    let dead = only(receive_dead_letters_within(queue).await);
    assert_eq!(dead.body, "poison");
    assert_eq!(Some(dead.message_id), message_id);

    queue.delete_dead_letter(&dead.receipt).await.unwrap();
    assert_eq!(queue.redrive_dead_letters().await.unwrap(), 0);
    assert!(queue.receive(10, HIDDEN).await.unwrap().is_empty());
}

pub async fn redrive_brings_dead_letters_back(queue: &dyn JobQueue) {
    queue
        .send_batch(&[OutgoingMessage::now("a"), OutgoingMessage::now("b")])
        .await
        .unwrap();
    for _ in 0..MAX_RECEIVE_COUNT {
        let got = receive_exactly(queue, 2, Duration::ZERO).await;
        assert_eq!(sorted_bodies(&got), ["a", "b"]);
    }
    assert!(queue.receive(10, HIDDEN).await.unwrap().is_empty());
    assert_depth_becomes(queue, 0).await;

    assert_eq!(queue.redrive_dead_letters().await.unwrap(), 2);

    assert_depth_becomes(queue, 2).await;
    let back = receive_exactly(queue, 2, HIDDEN).await;
    assert_eq!(sorted_bodies(&back), ["a", "b"]);
    assert!(back.iter().all(|m| m.receive_count == 1), "{back:?}");
    assert!(
        queue
            .receive_dead_letters(10, HIDDEN)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn batches_over_ten_are_split_and_all_arrive(queue: &dyn JobQueue) {
    let sent: Vec<OutgoingMessage> = (0..25)
        .map(|i| OutgoingMessage::now(format!("job-{i:02}")))
        .collect();
    queue.send_batch(&sent).await.unwrap();
    assert_depth_becomes(queue, 25).await;

    let got = receive_exactly(queue, 25, HIDDEN).await;
    let expected: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(sorted_bodies(&got), expected);
    let ids: BTreeSet<&str> = got.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 25);
}

pub async fn limits_are_refused_before_anything_is_sent(queue: &dyn JobQueue) {
    let too_late = OutgoingMessage::delayed("late", MAX_DELAY + Duration::from_secs(1));
    let too_big = OutgoingMessage::now("x".repeat(MAX_BODY_BYTES + 1));
    assert!(matches!(
        queue.send_batch(std::slice::from_ref(&too_late)).await,
        Err(QueueError::DelayTooLong(_))
    ));
    assert!(matches!(
        queue.send_batch(&[OutgoingMessage::now("fine"), too_big]).await,
        Err(QueueError::BodyTooLarge(n)) if n == MAX_BODY_BYTES + 1
    ));
    assert!(matches!(
        queue
            .receive(1, MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1))
            .await,
        Err(QueueError::VisibilityTooLong(_))
    ));
    assert_depth_becomes(queue, 0).await;

    // Exactly at the limits is allowed (and the two bodies together exceed one SQS batch).
    queue
        .send_batch(&[
            OutgoingMessage::delayed("slow", MAX_DELAY),
            OutgoingMessage::now("x".repeat(MAX_BODY_BYTES)),
            OutgoingMessage::now("y".repeat(MAX_BODY_BYTES)),
        ])
        .await
        .unwrap();
    assert_depth_becomes(queue, 3).await;
    let big = receive_exactly(queue, 2, HIDDEN).await;
    assert!(big.iter().all(|m| m.body.len() == MAX_BODY_BYTES));
    assert!(matches!(
        queue
            .change_visibility(
                &big[0].receipt,
                MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1)
            )
            .await,
        Err(QueueError::VisibilityTooLong(_))
    ));
}

pub async fn change_visibility_to_zero_makes_it_visible_at_once(queue: &dyn JobQueue) {
    queue
        .send_batch(&[OutgoingMessage::now("retry me")])
        .await
        .unwrap();
    let got = only(queue.receive(1, HIDDEN).await.unwrap());
    assert!(queue.receive(10, HIDDEN).await.unwrap().is_empty());

    queue
        .change_visibility(&got.receipt, Duration::ZERO)
        .await
        .unwrap();
    let changed_at = Instant::now();
    let again = only(receive_within(queue, HIDDEN).await);
    assert!(
        changed_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        changed_at.elapsed()
    );
    assert_eq!(again.message_id, got.message_id);
    assert_eq!(again.receive_count, 2);
}

pub async fn approximate_depth_counts_visible_delayed_and_in_flight(queue: &dyn JobQueue) {
    assert_depth_becomes(queue, 0).await;
    queue
        .send_batch(&[
            OutgoingMessage::now("a"),
            OutgoingMessage::now("b"),
            OutgoingMessage::delayed("c", Duration::from_secs(60)),
        ])
        .await
        .unwrap();
    assert_depth_becomes(queue, 3).await;

    let got = only(queue.receive(1, HIDDEN).await.unwrap());
    assert_depth_becomes(queue, 3).await;
    queue.delete(&got.receipt).await.unwrap();
    assert_depth_becomes(queue, 2).await;
}

fn only(mut messages: Vec<ReceivedMessage>) -> ReceivedMessage {
    assert_eq!(messages.len(), 1, "expected one message: {messages:?}");
    messages.remove(0)
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

fn sorted_bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    let mut bodies = bodies(messages);
    bodies.sort_unstable();
    bodies
}

fn assert_stale(result: Result<(), QueueError>) {
    assert!(
        matches!(result, Err(QueueError::StaleReceipt)),
        "expected StaleReceipt, got {result:?}"
    );
}

/// Receives until something arrives; panics at the deadline.
async fn receive_within(queue: &dyn JobQueue, visibility: Duration) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = queue.receive(10, visibility).await.unwrap();
        if !got.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "nothing arrived within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn receive_dead_letters_within(queue: &dyn JobQueue) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let got = queue.receive_dead_letters(10, HIDDEN).await.unwrap();
        if !got.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Receives until `n` messages have arrived (in however many calls); panics at the deadline.
async fn receive_exactly(
    queue: &dyn JobQueue,
    n: usize,
    visibility: Duration,
) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got.len() < n {
        let batch = queue.receive(10, visibility).await.unwrap();
        if batch.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} of {n} arrived within {DEADLINE:?}",
                got.len()
            );
            tokio::time::sleep(POLL).await;
        }
        got.extend(batch);
    }
    assert_eq!(got.len(), n, "more than {n} arrived: {got:?}");
    got
}

/// Depth is approximate (eventually consistent on SQS): polls until it reads `n`.
async fn assert_depth_becomes(queue: &dyn JobQueue, n: u64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let depth = queue.approximate_depth().await.unwrap();
        if depth == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "depth is {depth}, expected {n} within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}
