//! The job queue conformance suite, once per adapter: `conformance_queue::<adapter>::<check>`,
//! each on a fresh queue that dead-letters after `queue::MAX_RECEIVE_COUNT` receives.

macro_rules! queue_conformance {
    ($adapter:ident, $fresh_queue:expr, [$($check:ident),* $(,)?]) => {
        mod $adapter {
            use integration_tests::adapters::*;
            use integration_tests::conformance::queue;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fresh = $fresh_queue;
                    queue::$check(fresh.as_job_queue()).await;
                }
            )*
        }
    };
}

queue_conformance!(
    embedded,
    embedded_queue(queue::MAX_RECEIVE_COUNT),
    [
        delayed_messages_stay_invisible_until_due,
        a_received_message_is_redelivered_after_its_visibility_timeout,
        the_old_receipt_is_stale_after_redelivery,
        an_unknown_receipt_is_refused,
        a_deleted_message_is_gone_for_good,
        dead_letters_after_max_receives,
        redrive_brings_dead_letters_back,
        batches_over_ten_are_split_and_all_arrive,
        limits_are_refused_before_anything_is_sent,
        change_visibility_to_zero_makes_it_visible_at_once,
        approximate_depth_counts_visible_delayed_and_in_flight,
    ]
);

// Not `the_old_receipt_is_stale_after_redelivery`: SQS does not refuse an older receipt
// of a redelivered message (AWS: "the message might not be deleted"), and moto acts on it.
queue_conformance!(
    sqs,
    sqs_queue(queue::MAX_RECEIVE_COUNT).await,
    [
        delayed_messages_stay_invisible_until_due,
        a_received_message_is_redelivered_after_its_visibility_timeout,
        an_unknown_receipt_is_refused,
        a_deleted_message_is_gone_for_good,
        dead_letters_after_max_receives,
        redrive_brings_dead_letters_back,
        batches_over_ten_are_split_and_all_arrive,
        limits_are_refused_before_anything_is_sent,
        change_visibility_to_zero_makes_it_visible_at_once,
        approximate_depth_counts_visible_delayed_and_in_flight,
    ]
);
