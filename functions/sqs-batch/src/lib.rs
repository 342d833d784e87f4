//! Lambda's SQS event in, the service's job messages out; failed message ids back as a
//! partial batch response (`ReportBatchItemFailures`).

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use sync_service::jobs::Message;

pub fn messages(event: SqsEvent) -> Vec<Message> {
    event
        .records
        .into_iter()
        .map(|r| Message {
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect()
}

/// The Lambda's deadline (epoch ms) as an `Instant`, `margin` early.
pub fn deadline_before(deadline_ms: u64, margin: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(margin)
}

pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqs_event_becomes_messages_and_failures_a_partial_batch_response() {
        let event: SqsEvent = serde_json::from_value(serde_json::json!({
            "Records": [
                {"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"},
                {"messageId": "m2", "body": "x", "eventSource": "aws:sqs"}
            ]
        }))
        .unwrap();
        let messages = messages(event);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            (messages[1].id.as_str(), messages[1].body.as_str()),
            ("m2", "x")
        );
        let response = serde_json::to_value(batch_response(vec!["m2".into()])).unwrap();
        assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m2");
    }
}
