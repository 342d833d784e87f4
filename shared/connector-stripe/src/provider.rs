//! Stripe behind the engine's [`SourceProvider`] trait. One record kind:
//! [`ObjectKind::BillingCustomer`], a Stripe customer carrying its name, email, metadata and
//! the billing fields computed from its subscriptions (MRR per currency, status, plans,
//! next renewal) as properties. Subscriptions are read through their customer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use connector::crypto::{CredentialOwner, TokenCipher};
use connector::provider::{
    Fetched, PropertySchema, ProviderError, ProviderResult, SourcePage, SourceProvider,
    SourceRecord,
};
use connector::{
    Connection, ConnectionId, ErrorCode, ObjectKind, Provider, SealedCredentials, SourceId,
    SourceVersion, Timestamp,
};
use futures::StreamExt;

use crate::auth::{StripeCredentials, StripeSession};
use crate::client::{CustomerBilling, RetrievedCustomer, StripeClient};
use crate::error::internal;
use crate::mrr::{BillingSummary, MrrPolicy};
use crate::types::Customer;

/// Property names of a billing-customer record.
pub mod property {
    pub const NAME: &str = "name";
    pub const EMAIL: &str = "email";
    pub const DESCRIPTION: &str = "description";
    pub const CURRENCY: &str = "currency";
    pub const DELINQUENT: &str = "delinquent";
    pub const LIVEMODE: &str = "livemode";
    /// `metadata.<key>` for each metadata entry.
    pub const METADATA_PREFIX: &str = "metadata.";
    /// `connector::Billing` as JSON: what goes on our customer.
    pub const BILLING: &str = "billing";
    /// MRR per currency as JSON `[{"amount_minor":..,"currency":"USD"}]`.
    pub const MRR: &str = "mrr";
    pub const SUBSCRIPTION_STATUS: &str = "subscription_status";
    /// JSON array of names.
    pub const PLAN_NAMES: &str = "plan_names";
    /// RFC 3339.
    pub const NEXT_RENEWAL: &str = "next_renewal";
    /// RFC 3339: the soonest requested cancellation ("churning on").
    pub const SCHEDULED_CANCEL_AT: &str = "scheduled_cancel_at";
    /// The per-subscription breakdown (`MrrSummary`) as JSON, with its flags.
    pub const MRR_DETAIL: &str = "mrr_detail";
    /// When the billing fields were computed, RFC 3339.
    pub const MRR_COMPUTED_AT: &str = "mrr_computed_at";
}

struct CachedSession {
    session: Arc<StripeSession>,
    /// Sealed forms of this session's credentials: what it was opened from, and what
    /// [`StripeProvider::take_updated_credentials`] handed out after refreshes.
    lineage: Vec<SealedCredentials>,
}

pub struct StripeProvider {
    client: StripeClient,
    cipher: TokenCipher,
    policy: MrrPolicy,
    sessions: Mutex<HashMap<ConnectionId, CachedSession>>,
}

impl std::fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProvider")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl StripeProvider {
    pub fn new(client: StripeClient, cipher: TokenCipher, policy: MrrPolicy) -> Self {
        Self {
            client,
            cipher,
            policy,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &StripeClient {
        &self.client
    }

    pub fn policy(&self) -> &MrrPolicy {
        &self.policy
    }

    /// The session for a connection, opened from its sealed credentials once and reused,
    /// so refreshed (rotated) tokens are used from then on.
    pub fn session(&self, connection: &Connection) -> ProviderResult<Arc<StripeSession>> {
        let sealed = connection.credentials.as_ref().ok_or_else(|| {
            ProviderError::new(
                ErrorCode::OauthRevoked,
                "the Stripe connection has no credentials; reconnect it",
            )
        })?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = sessions.get(&connection.id)
            && cached.lineage.contains(sealed)
        {
            return Ok(Arc::clone(&cached.session));
        }
        let session = Arc::new(
            StripeSession::open(sealed, &self.cipher, connection.credential_owner())
                .map_err(|e| internal(format!("cannot open the Stripe credentials: {e}")))?,
        );
        sessions.insert(
            connection.id.clone(),
            CachedSession {
                session: Arc::clone(&session),
                lineage: vec![sealed.clone()],
            },
        );
        Ok(session)
    }

    /// Credentials that changed (an OAuth refresh rotated the refresh token) since the
    /// connection was read: the caller MUST store them on the connection, or the next
    /// process will hold a refresh token Stripe no longer accepts.
    pub async fn take_updated_credentials(
        &self,
        connection: &Connection,
    ) -> ProviderResult<Option<SealedCredentials>> {
        let session = {
            let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            match sessions.get(&connection.id) {
                Some(cached) => Arc::clone(&cached.session),
                None => return Ok(None),
            }
        };
        let Some(auth) = session.take_updated().await else {
            return Ok(None);
        };
        let credentials = StripeCredentials::new(auth, session.webhook_secret().cloned());
        let sealed = self.seal_credentials(&credentials, connection.credential_owner())?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = sessions.get_mut(&connection.id) {
            cached.lineage.push(sealed.clone());
        }
        Ok(Some(sealed))
    }

    /// Seals credentials for a connection's `credentials` (after a connect).
    pub fn seal_credentials(
        &self,
        credentials: &StripeCredentials,
        owner: CredentialOwner<'_>,
    ) -> ProviderResult<SealedCredentials> {
        credentials
            .seal(&self.cipher, owner)
            .map_err(|e| internal(format!("cannot seal the Stripe credentials: {e}")))
    }

    /// A connection's credentials, opened: its mode and its own webhook secret, for the
    /// webhook receiver. `None` when the connection holds none (never connected, or
    /// disconnected).
    pub fn open_credentials(
        &self,
        connection: &Connection,
    ) -> ProviderResult<Option<StripeCredentials>> {
        connection
            .credentials
            .as_ref()
            .map(|sealed| {
                StripeCredentials::open(sealed, &self.cipher, connection.credential_owner())
                    .map_err(|e| internal(format!("cannot open the Stripe credentials: {e}")))
            })
            .transpose()
    }

    async fn billing_records(
        &self,
        session: &StripeSession,
        customers: Vec<Customer>,
        now: Timestamp,
    ) -> ProviderResult<Vec<SourceRecord>> {
        let concurrency = self.client.config().concurrency.max(1);
        let results: Vec<ProviderResult<SourceRecord>> = futures::stream::iter(customers)
            .map(|customer| async move {
                let subscriptions = self
                    .client
                    .customer_subscriptions(session, &customer.id)
                    .await?;
                match self
                    .client
                    .billing_of(customer, subscriptions, now, &self.policy)
                {
                    CustomerBilling::Found {
                        customer, summary, ..
                    } => customer_record(&customer, &summary, now),
                    CustomerBilling::Deleted { id } | CustomerBilling::Missing { id } => {
                        Err(internal(format!("customer {id} vanished while listing")))
                    }
                }
            })
            .buffered(concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

fn only_billing_customers(kind: ObjectKind) -> ProviderResult<()> {
    if kind == ObjectKind::BillingCustomer {
        Ok(())
    } else {
        Err(internal(format!(
            "Stripe serves billing customers only (subscriptions come with their customer), not {kind}"
        )))
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> ProviderResult<String> {
    serde_json::to_string(value).map_err(|e| internal(e.to_string()))
}

/// A Stripe customer with its billing fields as a source record. The version is the
/// computation time: Stripe objects carry no modification time, and the state read
/// later is the newer one.
pub fn customer_record(
    customer: &Customer,
    summary: &BillingSummary,
    computed_at: Timestamp,
) -> ProviderResult<SourceRecord> {
    let id = SourceId::parse(customer.id.clone())
        .map_err(|e| internal(format!("unusable Stripe customer id: {e}")))?;
    let mut p: BTreeMap<String, Option<String>> = BTreeMap::new();
    p.insert(property::NAME.into(), customer.name.clone());
    p.insert(property::EMAIL.into(), customer.email.clone());
    p.insert(property::DESCRIPTION.into(), customer.description.clone());
    p.insert(
        property::CURRENCY.into(),
        customer.currency.as_ref().map(|c| c.to_ascii_uppercase()),
    );
    p.insert(
        property::DELINQUENT.into(),
        customer.delinquent.map(|d| d.to_string()),
    );
    p.insert(
        property::LIVEMODE.into(),
        Some(customer.livemode.to_string()),
    );
    for (key, value) in &customer.metadata {
        p.insert(
            format!("{}{key}", property::METADATA_PREFIX),
            Some(value.clone()),
        );
    }
    let billing = summary.clone().into_billing(computed_at);
    p.insert(property::BILLING.into(), Some(json_text(&billing)?));
    p.insert(property::MRR.into(), Some(json_text(&summary.mrr)?));
    p.insert(
        property::SUBSCRIPTION_STATUS.into(),
        summary.subscription_status.clone(),
    );
    p.insert(
        property::PLAN_NAMES.into(),
        Some(json_text(&summary.plan_names)?),
    );
    p.insert(
        property::NEXT_RENEWAL.into(),
        summary.next_renewal.map(Timestamp::to_rfc3339),
    );
    p.insert(
        property::SCHEDULED_CANCEL_AT.into(),
        summary.scheduled_cancel_at.map(Timestamp::to_rfc3339),
    );
    p.insert(
        property::MRR_DETAIL.into(),
        Some(json_text(&summary.mrr_detail)?),
    );
    p.insert(
        property::MRR_COMPUTED_AT.into(),
        Some(computed_at.to_rfc3339()),
    );
    Ok(SourceRecord {
        kind: ObjectKind::BillingCustomer,
        id,
        version: SourceVersion(computed_at.as_millis()),
        archived: false,
        properties: p,
        associated_companies: Vec::new(),
        merged_from: Vec::new(),
        property_times: Default::default(),
    })
}

#[async_trait]
impl SourceProvider for StripeProvider {
    fn provider(&self) -> Provider {
        Provider::Stripe
    }

    async fn list_page(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        _properties: &[&str],
        cursor: Option<&str>,
    ) -> ProviderResult<SourcePage> {
        only_billing_customers(kind)?;
        let session = self.session(connection)?;
        let page = self.client.list_customers(&session, cursor).await?;
        let next_cursor = page.next_cursor();
        let records = self
            .billing_records(&session, page.data, Timestamp::now())
            .await?;
        Ok(SourcePage {
            records,
            next_cursor,
        })
    }

    async fn fetch(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
        _properties: &[&str],
    ) -> ProviderResult<Vec<(SourceId, Fetched)>> {
        only_billing_customers(kind)?;
        let session = self.session(connection)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let now = Timestamp::now();
            let fetched = match self
                .client
                .customer_billing(&session, id.as_str(), now, &self.policy)
                .await?
            {
                CustomerBilling::Found {
                    customer, summary, ..
                } => Fetched::Found(customer_record(&customer, &summary, now)?),
                CustomerBilling::Deleted { .. } | CustomerBilling::Missing { .. } => Fetched::Gone,
            };
            out.push((id.clone(), fetched));
        }
        Ok(out)
    }

    /// Existence only: one customer read each (several at once), not the subscriptions.
    async fn recheck(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
        _properties: &[&str],
    ) -> ProviderResult<Vec<(SourceId, Fetched)>> {
        only_billing_customers(kind)?;
        let session = self.session(connection)?;
        let session = session.as_ref();
        let concurrency = self.client.config().concurrency.max(1);
        let now = Timestamp::now();
        let results: Vec<ProviderResult<(SourceId, Fetched)>> =
            futures::stream::iter(ids.iter().cloned())
                .map(|id| async move {
                    let fetched = match self.client.retrieve_customer(session, id.as_str()).await? {
                        RetrievedCustomer::Found(_) => Fetched::Found(SourceRecord {
                            kind,
                            id: id.clone(),
                            version: SourceVersion(now.as_millis()),
                            archived: false,
                            properties: BTreeMap::new(),
                            associated_companies: Vec::new(),
                            merged_from: Vec::new(),
                            property_times: Default::default(),
                        }),
                        RetrievedCustomer::Deleted { .. } | RetrievedCustomer::Missing { .. } => {
                            Fetched::Gone
                        }
                    };
                    Ok((id, fetched))
                })
                .buffered(concurrency)
                .collect()
                .await;
        results.into_iter().collect()
    }

    async fn filter_members(
        &self,
        _connection: &Connection,
        ids: &[SourceId],
    ) -> ProviderResult<BTreeMap<SourceId, bool>> {
        // Stripe connections have no company filter: every customer is in.
        Ok(ids.iter().map(|id| (id.clone(), true)).collect())
    }

    async fn updated_credentials(
        &self,
        connection: &Connection,
    ) -> ProviderResult<Option<SealedCredentials>> {
        self.take_updated_credentials(connection).await
    }

    async fn properties(
        &self,
        _connection: &Connection,
        kind: ObjectKind,
    ) -> ProviderResult<Vec<PropertySchema>> {
        only_billing_customers(kind)?;
        let schema = |name: &str, ty: &str, label: &str| PropertySchema {
            name: name.to_owned(),
            property_type: ty.to_owned(),
            label: Some(label.to_owned()),
            read_only: false,
        };
        Ok(vec![
            schema(property::NAME, "string", "Name"),
            schema(property::EMAIL, "string", "Email"),
            schema(property::DESCRIPTION, "string", "Description"),
            schema(property::CURRENCY, "string", "Default currency"),
            schema(property::DELINQUENT, "bool", "Delinquent"),
            schema(property::LIVEMODE, "bool", "Live mode"),
            schema(property::BILLING, "json", "Billing"),
            schema(property::MRR, "json", "MRR per currency"),
            schema(
                property::SUBSCRIPTION_STATUS,
                "string",
                "Subscription status",
            ),
            schema(property::PLAN_NAMES, "json", "Plans"),
            schema(property::NEXT_RENEWAL, "datetime", "Next renewal"),
            schema(property::SCHEDULED_CANCEL_AT, "datetime", "Cancels on"),
            schema(property::MRR_DETAIL, "json", "MRR breakdown"),
            schema(property::MRR_COMPUTED_AT, "datetime", "MRR computed at"),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mrr::billing_summary;

    #[test]
    fn a_customer_record_carries_name_email_metadata_and_billing() {
        let customer: Customer = serde_json::from_str(
            r#"{"id":"cus_1","object":"customer","name":"Acme","email":"ap@acme.test","metadata":{"hubspot_id":"512"},"currency":"usd","livemode":false}"#,
        )
        .expect("parses");
        let now = Timestamp::from_secs(1_750_000_000);
        let summary = billing_summary(&[], None, now, &MrrPolicy::default());
        let record = customer_record(&customer, &summary, now).expect("record");
        assert_eq!(record.kind, ObjectKind::BillingCustomer);
        assert_eq!(record.id.as_str(), "cus_1");
        assert_eq!(record.properties["name"].as_deref(), Some("Acme"));
        assert_eq!(record.properties["email"].as_deref(), Some("ap@acme.test"));
        assert_eq!(
            record.properties["metadata.hubspot_id"].as_deref(),
            Some("512")
        );
        let billing: connector::Billing =
            serde_json::from_str(record.properties["billing"].as_deref().expect("billing"))
                .expect("billing JSON");
        assert_eq!(billing.updated_at, Some(now));
        assert!(billing.mrr.is_empty());
        assert_eq!(record.version, SourceVersion(now.as_millis()));
    }
}
