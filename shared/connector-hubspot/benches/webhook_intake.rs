//! The CPU the webhook intake spends per event before it enqueues: v3 signature check over
//! a full 100-event batch, then parsing it. `cargo bench -p connector-hubspot --bench webhook_intake`.

use std::hint::black_box;

use connector::{Secret, Timestamp};
use connector_hubspot::webhook::{self, SignatureHeaders};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const URI: &str = "https://sync.example.com/webhooks/hubspot";

fn batch(events: usize) -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..events)
        .map(|i| {
            serde_json::json!({
                "eventId": 1_000_000 + i,
                "subscriptionId": 4711,
                "portalId": 62515,
                "appId": 54321,
                "occurredAt": 1_795_000_000_000u64 + i as u64,
                "subscriptionType": "company.propertyChange",
                "attemptNumber": 0,
                "objectId": 2_000_000 + i,
                "propertyName": "name",
                "propertyValue": format!("Company {i}"),
                "changeSource": "CRM_UI"
            })
        })
        .collect();
    serde_json::to_vec(&items).unwrap_or_default()
}

fn intake(c: &mut Criterion) {
    let secret = Secret::new("8f14e45f-ceea-467a-9575-3ba3a9d1a2b3");
    let body = batch(100);
    let now = Timestamp::from_millis(1_795_000_100_000);
    let timestamp = now.as_millis().to_string();
    let signature = webhook::sign_v3("POST", URI, &body, &timestamp, &secret);
    let mut group = c.benchmark_group("webhook_intake");
    group.throughput(Throughput::Elements(100));
    group.bench_function("verify_v3_and_parse_100_events", |b| {
        b.iter(|| {
            let headers = SignatureHeaders {
                signature_v3: Some(&signature),
                timestamp: Some(&timestamp),
                signature: None,
                signature_version: None,
            };
            let verified =
                webhook::verify_request("POST", URI, black_box(&body), &headers, &secret, now);
            assert!(verified.is_ok());
            let batch = webhook::parse_events(black_box(&body)).unwrap_or_default();
            assert_eq!(batch.events.len(), 100);
            batch
        })
    });
    group.finish();
}

criterion_group!(benches, intake);
criterion_main!(benches);
