//! Webhook events in HubSpot's payload shape, the outbox, and signed delivery with
//! HubSpot's retry behaviour (retry on connection failure, timeout, any 4xx/5xx).

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::now_ms;
use crate::config::{LegacySignature, SandboxConfig};
use crate::model::UNSUBSCRIBABLE_PROPERTIES;
use crate::signature;
use crate::store::EventDraft;
use crate::world::Shared;

const ACTIONS: &[&str] = &[
    "creation",
    "deletion",
    "propertyChange",
    "merge",
    "restore",
    "associationChange",
];
/// Kept delivery log entries.
const LOG_LIMIT: usize = 500;

/// The subscription an event type belongs to (stable ids, one per type).
pub fn subscription_id(singular: &str, action: &str) -> u64 {
    let base = if singular == "company" { 100 } else { 200 };
    base + ACTIONS.iter().position(|a| *a == action).unwrap_or(0) as u64
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// The event without `attemptNumber` (added when sent).
    pub event: Map<String, Value>,
    pub attempt: u32,
    pub due_ms: i64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct WebhookStats {
    pub enqueued: u64,
    pub delivered: u64,
    pub dropped_by_fault: u64,
    pub duplicated_by_fault: u64,
    pub reordered_by_fault: u64,
    pub failed_attempts: u64,
    pub given_up: u64,
    pub batches_sent: u64,
    pub batches_failed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryLog {
    pub at_ms: i64,
    pub url: String,
    pub event_ids: Vec<u64>,
    pub attempt_numbers: Vec<u32>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub ok: bool,
}

pub struct Outbox {
    pub queue: VecDeque<Pending>,
    pub next_event_id: u64,
    pub stats: WebhookStats,
    pub log: VecDeque<DeliveryLog>,
}

impl Outbox {
    pub fn new(seed: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            next_event_id: 3_816_000_000 + (seed % 1000) * 1000,
            stats: WebhookStats::default(),
            log: VecDeque::new(),
        }
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }

    pub fn enqueue(&mut self, event: Map<String, Value>, due_ms: i64) {
        self.stats.enqueued += 1;
        self.queue.push_back(Pending {
            event,
            attempt: 0,
            due_ms,
        });
    }

    fn record(&mut self, entry: DeliveryLog) {
        if self.log.len() >= LOG_LIMIT {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    pub fn next_due_ms(&self) -> Option<i64> {
        self.queue.iter().map(|p| p.due_ms).min()
    }
}

fn subscribed(config: &SandboxConfig, property: &str) -> bool {
    if UNSUBSCRIBABLE_PROPERTIES.contains(&property) {
        return false;
    }
    config
        .webhooks
        .property_subscriptions
        .as_ref()
        .is_none_or(|names| names.iter().any(|n| n == property))
}

/// The payload HubSpot would send for a draft, or `None` when no subscription covers it.
pub fn to_event(
    draft: &EventDraft,
    config: &SandboxConfig,
    outbox: &mut Outbox,
) -> Option<Map<String, Value>> {
    if draft.action == "propertyChange" {
        let name = draft
            .fields
            .get("propertyName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !subscribed(config, name)
            || (draft.on_create && !config.webhooks.property_change_on_create)
        {
            return None;
        }
    }
    let singular = draft.kind.singular();
    let event_id = outbox.next_event_id;
    outbox.next_event_id += 1;
    let mut event = Map::new();
    event.insert("eventId".into(), json!(event_id));
    event.insert(
        "subscriptionId".into(),
        json!(subscription_id(singular, draft.action)),
    );
    event.insert("portalId".into(), json!(config.app.portal_id));
    event.insert("appId".into(), json!(config.app.app_id));
    event.insert("occurredAt".into(), json!(draft.occurred_ms));
    event.insert(
        "subscriptionType".into(),
        json!(format!("{singular}.{}", draft.action)),
    );
    event.insert("objectId".into(), json!(draft.object_id));
    event.insert("changeSource".into(), json!(draft.change_source));
    // Who made the change: the app itself for writes with its tokens (how a writer tells
    // its own echo), a portal user for edits in the CRM.
    match draft.change_source.as_str() {
        crate::routes::writes::API_SOURCE => {
            event.insert("sourceId".into(), json!(config.app.app_id.to_string()));
        }
        "CRM_UI" => {
            event.insert("sourceId".into(), json!("userId:1"));
        }
        _ => {}
    }
    for (key, value) in &draft.fields {
        event.insert(key.clone(), value.clone());
    }
    Some(event)
}

/// What one delivery run did (the answer of `POST /_sandbox/webhooks/flush`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlushReport {
    pub batches: usize,
    pub delivered: usize,
    pub failed: usize,
    pub given_up: usize,
    /// Events still queued (retries not yet due, or no target configured).
    pub pending: usize,
    /// The events that reached the target, as sent (with `attemptNumber`).
    pub events: Vec<Value>,
    /// Why nothing was sent, when nothing could be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

struct Batch {
    events: Vec<Pending>,
}

/// Takes the events to send now (all of them when `everything`), with duplicate and
/// reorder faults applied, cut into batches.
fn take_batches(shared: &Shared, everything: bool) -> Result<(String, Vec<Batch>), String> {
    let mut world = shared.lock();
    let config = world.config.webhooks.clone();
    let Some(url) = config.target_url.clone() else {
        return Err("no webhook target configured".into());
    };
    if !config.enabled {
        return Err("webhook delivery is disabled".into());
    }
    let now = now_ms();
    let mut ready = Vec::new();
    let mut later = VecDeque::new();
    while let Some(p) = world.outbox.queue.pop_front() {
        if everything || p.due_ms <= now {
            ready.push(p);
        } else {
            later.push_back(p);
        }
    }
    world.outbox.queue = later;
    let faults = world.config.faults.clone();
    let mut ordered = Vec::with_capacity(ready.len());
    let mut held_back = Vec::new();
    let mut copies = Vec::new();
    for p in ready {
        if world.roll(faults.webhook_duplicate_rate) {
            world.outbox.stats.duplicated_by_fault += 1;
            copies.push(p.clone());
        }
        if world.roll(faults.webhook_reorder_rate) {
            world.outbox.stats.reordered_by_fault += 1;
            held_back.push(p);
        } else {
            ordered.push(p);
        }
    }
    // held-back events come after the others, newest first
    ordered.extend(held_back.into_iter().rev());
    ordered.extend(copies);
    let size = config.max_batch.clamp(1, 100);
    let mut batches = Vec::new();
    let mut iter = ordered.into_iter().peekable();
    while iter.peek().is_some() {
        batches.push(Batch {
            events: iter.by_ref().take(size).collect(),
        });
    }
    Ok((url, batches))
}

/// Signature headers for one POST of `body` to `url`.
pub fn signature_headers(
    config: &SandboxConfig,
    url: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> Vec<(&'static str, String)> {
    let secret = &config.app.client_secret;
    let timestamp = timestamp_ms.to_string();
    let mut headers = vec![
        (
            "X-HubSpot-Signature-v3",
            signature::v3(secret, "POST", &signature::v3_uri(url), body, &timestamp),
        ),
        ("X-HubSpot-Request-Timestamp", timestamp),
    ];
    match config.webhooks.legacy_signature {
        LegacySignature::V1 => {
            headers.push(("X-HubSpot-Signature", signature::v1(secret, body)));
            headers.push(("X-HubSpot-Signature-Version", "v1".into()));
        }
        LegacySignature::V2 => {
            headers.push((
                "X-HubSpot-Signature",
                signature::v2(secret, "POST", url, body),
            ));
            headers.push(("X-HubSpot-Signature-Version", "v2".into()));
        }
        LegacySignature::None => {}
    }
    headers
}

async fn send(shared: &Shared, url: &str, batch: &Batch) -> (Result<u16, String>, Vec<Value>) {
    let (config, fail) = {
        let mut world = shared.lock();
        let fail_rate = world.config.faults.webhook_fail_rate;
        (world.config.clone(), world.roll(fail_rate))
    };
    let events: Vec<Value> = batch
        .events
        .iter()
        .map(|p| {
            let mut e = p.event.clone();
            e.insert("attemptNumber".into(), json!(p.attempt));
            Value::Object(e)
        })
        .collect();
    if fail {
        return (Err("failure injected by webhook_fail_rate".into()), events);
    }
    let body = Value::Array(events.clone()).to_string().into_bytes();
    let mut request = shared
        .http
        .post(url)
        .timeout(Duration::from_millis(config.webhooks.timeout_ms))
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon",
        )
        .header(
            "X-HubSpot-Timeout-Millis",
            config.webhooks.timeout_ms.to_string(),
        );
    for (name, value) in signature_headers(&config, url, &body, now_ms()) {
        request = request.header(name, value);
    }
    let result = match request.body(body).send().await {
        Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
        Ok(response) => Err(format!("status {}", response.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(e) => Err(format!("connection failed: {e}")),
    };
    (result, events)
}

fn retry_delay_ms(config: &SandboxConfig, retry: u32, rng: &mut impl Rng) -> Option<i64> {
    let schedule = &config.webhooks.retry_schedule_ms;
    let base = *schedule.get(retry as usize - 1)? as f64 * config.webhooks.retry_scale.max(0.0);
    let jitter = base * config.webhooks.retry_jitter.clamp(0.0, 1.0) * rng.r#gen::<f64>();
    Some((base + jitter) as i64)
}

/// Sends what is due (or everything, for a flush). Failed batches are scheduled for retry
/// with `attemptNumber + 1` until the schedule runs out.
pub async fn deliver(shared: &Shared, everything: bool) -> FlushReport {
    let _one_run = shared.delivery.lock().await;
    let mut report = FlushReport::default();
    let (url, batches) = match take_batches(shared, everything) {
        Ok(taken) => taken,
        Err(why) => {
            report.pending = shared.lock().outbox.queue.len();
            report.skipped = Some(why);
            return report;
        }
    };
    for batch in batches {
        let (result, events) = send(shared, &url, &batch).await;
        let mut world = shared.lock();
        report.batches += 1;
        let entry = DeliveryLog {
            at_ms: now_ms(),
            url: url.clone(),
            event_ids: batch
                .events
                .iter()
                .filter_map(|p| p.event.get("eventId").and_then(Value::as_u64))
                .collect(),
            attempt_numbers: batch.events.iter().map(|p| p.attempt).collect(),
            status: result.as_ref().ok().copied(),
            error: result.as_ref().err().cloned(),
            ok: result.is_ok(),
        };
        world.outbox.record(entry);
        world.outbox.stats.batches_sent += 1;
        if result.is_ok() {
            world.outbox.stats.delivered += events.len() as u64;
            report.delivered += events.len();
            report.events.extend(events);
            continue;
        }
        world.outbox.stats.batches_failed += 1;
        let now = now_ms();
        for mut p in batch.events {
            world.outbox.stats.failed_attempts += 1;
            report.failed += 1;
            p.attempt += 1;
            let config = world.config.clone();
            match retry_delay_ms(&config, p.attempt, &mut world.rng) {
                Some(delay) => {
                    p.due_ms = now + delay;
                    world.outbox.queue.push_back(p);
                }
                None => {
                    world.outbox.stats.given_up += 1;
                    report.given_up += 1;
                }
            }
        }
    }
    report.pending = shared.lock().outbox.queue.len();
    report
}

/// The background sender: waits for new events or the next retry, gathers for
/// `batch_delay_ms`, then delivers what is due.
pub async fn run_sender(shared: std::sync::Arc<Shared>) {
    loop {
        let (can_send, delay_ms, next_due) = {
            let world = shared.lock();
            let settings = &world.config.webhooks;
            (
                settings.auto_deliver && settings.enabled && settings.target_url.is_some(),
                settings.batch_delay_ms,
                world.outbox.next_due_ms(),
            )
        };
        // nothing can be sent: sleep until settings or events change
        let wait = match (can_send, next_due) {
            (true, Some(due)) => Duration::from_millis((due - now_ms()).clamp(0, 1_000) as u64),
            _ => Duration::from_millis(1_000),
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let ready = {
            let world = shared.lock();
            let settings = &world.config.webhooks;
            settings.auto_deliver
                && settings.enabled
                && settings.target_url.is_some()
                && world
                    .outbox
                    .next_due_ms()
                    .is_some_and(|due| due <= now_ms() + delay_ms as i64)
        };
        if ready {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            deliver(&shared, false).await;
        }
    }
}
