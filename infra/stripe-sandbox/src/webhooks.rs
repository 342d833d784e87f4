//! Signed webhook delivery: a background worker sends due deliveries (if `auto_deliver`),
//! failures are retried on the configured schedule with a fresh `t` and signature each time,
//! and `flush` sends everything pending at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::Shared;
use crate::signature::signature_header;
use crate::world::{Delivery, DeliveryReport, unix_now};

/// The background loop: deliver what is due, then sleep until the next due time or a wake-up.
pub async fn run(shared: Arc<Shared>) {
    loop {
        let next_due = deliver_due(&shared, false).await;
        let wait = next_due
            .map(|due| due.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(5));
        tokio::select! {
            () = shared.notify.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Delivers the due deliveries (all pending ones when `force`), returning what happened when
/// forced, or the next due time otherwise.
async fn deliver_due(shared: &Shared, force: bool) -> Option<Instant> {
    deliver_round(shared, force).await.1
}

/// `POST /_sandbox/webhooks/flush`: one pass over everything pending, now.
pub async fn flush(shared: &Shared) -> Vec<DeliveryReport> {
    deliver_round(shared, true).await.0
}

async fn deliver_round(shared: &Shared, force: bool) -> (Vec<DeliveryReport>, Option<Instant>) {
    let _round = shared.delivery_lock.lock().await;
    let (batch, url, secrets, timeout) = {
        let mut world = shared.world.lock().await;
        world.enqueue_outbox();
        let Some(url) = world.webhook_target().map(str::to_owned) else {
            return (Vec::new(), None);
        };
        if !force && !world.config.webhooks.auto_deliver {
            return (Vec::new(), None);
        }
        let now = Instant::now();
        let mut due: Vec<Delivery> = Vec::new();
        let mut later = std::collections::VecDeque::new();
        while let Some(d) = world.webhook_queue.pop_front() {
            if force || d.due <= now {
                due.push(d);
            } else {
                later.push_back(d);
            }
        }
        world.webhook_queue = later;
        // Held-back (reordered) deliveries go after the ones that overtook them.
        due.sort_by_key(|d| d.due);
        let hooks = &world.config.webhooks;
        (due, url, hooks.secrets.clone(), hooks.timeout())
    };
    let mut reports = Vec::with_capacity(batch.len());
    for delivery in batch {
        let t = unix_now();
        let header = signature_header(
            &secrets,
            t,
            delivery.event.payload.as_bytes(),
            delivery.event.livemode,
        );
        let sent = shared
            .http
            .post(&url)
            .timeout(timeout)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", header)
            .body(delivery.event.payload.clone())
            .send()
            .await;
        let status = sent.as_ref().ok().map(|r| r.status().as_u16());
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let mut world = shared.world.lock().await;
        let schedule = world.config.webhooks.retry_schedule_ms.clone();
        let retry_in = usize::try_from(delivery.attempt)
            .ok()
            .and_then(|i| schedule.get(i))
            .copied();
        let outcome = match (ok, retry_in) {
            (true, _) => "delivered",
            (false, Some(_)) => "failed",
            (false, None) => "gave_up",
        };
        world.mark_delivery(&delivery.event, Some(ok));
        let report = DeliveryReport {
            event_id: delivery.event.event_id.clone(),
            kind: delivery.event.kind.clone(),
            account: delivery.event.account.clone(),
            attempt: delivery.attempt,
            status,
            ok,
            outcome: outcome.to_owned(),
        };
        world.webhook_log.push(report.clone());
        if let (false, Some(ms)) = (ok, retry_in) {
            world.webhook_queue.push_back(Delivery {
                event: delivery.event,
                attempt: delivery.attempt + 1,
                due: Instant::now() + Duration::from_millis(ms),
            });
        }
        reports.push(report);
    }
    let world = shared.world.lock().await;
    let next = world.webhook_queue.iter().map(|d| d.due).min();
    (reports, next)
}
