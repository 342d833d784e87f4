//! Webhook intake, after the provider's signature check: route each change to its
//! connection, drop duplicates by event id, enqueue one record job per changed object.
//! Never calls a provider.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::{Engine, EngineError};
use crate::model::{
    ChangeKind, Connection, ConnectionId, Job, JobCause, JobKind, ObjectKind, Provider,
    ProviderAccountId, SourceId, TenantId, Timestamp, WebhookEventId,
};

/// One change a provider told us about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub provider: Provider,
    pub account: ProviderAccountId,
    pub event_id: WebhookEventId,
    pub occurred_at: Timestamp,
    pub object: ObjectKind,
    pub source_id: SourceId,
    pub change: ChangeKind,
    /// Set when the provider says our own app made the change: the property and value it
    /// set, if it names one. A two-way or outbound connection drops the echo of a value
    /// it pushed.
    pub own_write: Option<OwnWrite>,
}

/// A change our own app made, as its webhook describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnWrite {
    pub property: Option<String>,
    pub value: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IntakeReport {
    pub received: usize,
    pub enqueued: usize,
    pub duplicates: usize,
    /// Events for accounts no Connected connection is bound to.
    pub unrouted: usize,
    /// Our own pushed values coming back: neither applied, pushed nor counted again.
    pub echoes: usize,
}

impl Engine {
    pub async fn intake(&self, changes: Vec<Change>) -> Result<IntakeReport, EngineError> {
        let now = Timestamp::now();
        let expires = now.plus(self.settings.event_dedupe_ttl);
        let mut report = IntakeReport {
            received: changes.len(),
            ..IntakeReport::default()
        };
        let mut routes: HashMap<(Provider, ProviderAccountId), Vec<Connection>> = HashMap::new();
        let mut routed = Vec::new();
        for change in changes {
            let route_key = (change.provider, change.account.clone());
            if !routes.contains_key(&route_key) {
                let found = self
                    .routed_connections(change.provider, &change.account)
                    .await?;
                routes.insert(route_key.clone(), found);
            }
            if routes.get(&route_key).is_none_or(Vec::is_empty) {
                tracing::warn!(provider = %change.provider, account = %change.account, event = %change.event_id, "webhook event for no connected connection: ignored");
                report.unrouted += 1;
                continue;
            }
            routed.push(change);
        }
        let keys: Vec<String> = routed
            .iter()
            .map(|change| dedupe_key(change.provider, &change.event_id))
            .collect();
        let seen = if keys.is_empty() {
            BTreeSet::new()
        } else {
            self.store.events_recorded(&keys, now).await?
        };
        let mut jobs = Vec::new();
        let mut fresh_keys = BTreeSet::new();
        let mut queued_objects = BTreeSet::new();
        for (change, key) in routed.into_iter().zip(keys) {
            // One event can name several records (a merge): each is one of its changes.
            if seen.contains(&key) {
                report.duplicates += 1;
                continue;
            }
            fresh_keys.insert(key);
            let connections = routes
                .get(&(change.provider, change.account.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            // Every tenant that connected the account hears of the change.
            for connection in connections {
                // A batch often carries several events for one object: one fresh fetch
                // covers them.
                let object = (
                    connection.id.clone(),
                    change.object,
                    change.source_id.clone(),
                );
                if queued_objects.contains(&object) {
                    continue;
                }
                if self.is_echo(connection, &change).await? {
                    report.echoes += 1;
                    continue;
                }
                queued_objects.insert(object);
                jobs.push(Job::new(
                    connection.tenant_id.clone(),
                    connection.id.clone(),
                    change.provider,
                    JobKind::SyncRecord {
                        object: change.object,
                        source_id: change.source_id.clone(),
                        cause: JobCause::Webhook {
                            event_id: change.event_id.clone(),
                            occurred_at: change.occurred_at,
                            change: change.change,
                        },
                    },
                    now,
                ));
            }
        }
        self.enqueue_records(&jobs).await?;
        // Seen only once queued: an error or a crash before this point leaves the provider's
        // redelivery to be taken, and a redelivery after it only repeats an idempotent job.
        if !fresh_keys.is_empty() {
            let fresh: Vec<String> = fresh_keys.into_iter().collect();
            self.store.record_events(&fresh, expires).await?;
        }
        report.enqueued = jobs.len();
        Ok(report)
    }
}

impl Engine {
    /// Whether `change` is the echo of a value this connection pushed (a store read, no
    /// provider call; only for changes our own app made).
    async fn is_echo(&self, connection: &Connection, change: &Change) -> Result<bool, EngineError> {
        let Some(own) = &change.own_write else {
            return Ok(false);
        };
        if !connection.pushes() || change.object != ObjectKind::Contact {
            return Ok(false);
        }
        let Some(source) = connection.source_ref(change.object, &change.source_id) else {
            return Ok(false);
        };
        let Some(link) = self.store.get_link(&connection.tenant_id, &source).await? else {
            return Ok(false);
        };
        Ok(super::two_way_push::is_echo(
            connection,
            &link,
            own.property.as_deref(),
            own.value.as_deref(),
        ))
    }

    /// The connection a per-connection webhook endpoint names (Stripe API-key
    /// connections), if it exists and is one of `provider`'s.
    pub async fn endpoint_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        provider: Provider,
    ) -> Result<Option<Connection>, EngineError> {
        Ok(self
            .store
            .get_connection(tenant, id)
            .await?
            .filter(|c| c.provider == provider))
    }

    /// Where a provider account's events go: in each tenant that connected it, its
    /// Connected connection.
    pub async fn routed_connections(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> Result<Vec<Connection>, EngineError> {
        Ok(self
            .store
            .find_connections_by_account(provider, account)
            .await?
            .into_iter()
            .filter(Connection::accepts_jobs)
            .collect())
    }

    /// The provider says our access to `account` is gone (Stripe's
    /// `account.application.deauthorized`): every connection to it goes to Reauthorize,
    /// their jobs stop, and each log says `oauth_revoked`. False when none is bound to it.
    pub async fn provider_deauthorized(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> Result<bool, EngineError> {
        let connections = self
            .store
            .find_connections_by_account(provider, account)
            .await?;
        for connection in &connections {
            self.deauthorized(connection, account).await?;
        }
        Ok(!connections.is_empty())
    }

    async fn deauthorized(
        &self,
        connection: &Connection,
        account: &ProviderAccountId,
    ) -> Result<(), EngineError> {
        let provider = connection.provider;
        self.apply_refusal(connection, crate::model::ErrorCode::OauthRevoked, &[])
            .await?;
        let mut entry = crate::model::LogEntry::new(
            connection.tenant_id.clone(),
            connection.id.clone(),
            provider,
            crate::model::LogStatus::Failed,
            Timestamp::now(),
        );
        entry.error_code = Some(crate::model::ErrorCode::OauthRevoked);
        entry.message = Some(format!(
            "{provider} account {account} removed our access: connect again"
        ));
        self.log(entry).await;
        Ok(())
    }
}

pub fn dedupe_key(provider: Provider, event: &WebhookEventId) -> String {
    format!("{provider}:{event}")
}
