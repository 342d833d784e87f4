//! The one trait every provider (HubSpot, Stripe) is reached through by the engine.
//! Implementations live in their own crates (`connector-hubspot`, ...); they own OAuth,
//! token refresh, rate limiting and the mapping of provider errors onto [`ErrorCode`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::*;

/// A failed provider call, already classified into the log's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProviderError {
    pub code: ErrorCode,
    pub message: String,
    /// HTTP status, when the provider answered.
    pub status: Option<u16>,
    /// The provider's response body (to be cut before it is logged).
    pub body: Option<String>,
    /// How long the provider asked us to wait (`Retry-After`), for `rate_limited`.
    pub retry_after: Option<Duration>,
    /// The scopes the provider said the call needs, for `permission_denied`.
    pub missing_scopes: Vec<String>,
    /// What a refused write names (boxed: most errors have none).
    pub refusal: Option<Box<Refusal>>,
}

/// What the provider named when it refused a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusal {
    /// Each property refused, for `field_mapping_invalid` and `invalid_property_value`.
    pub invalid_values: Vec<InvalidValue>,
    /// The record that already holds the key a create used, for `contact_exists`.
    pub existing_id: Option<SourceId>,
}

/// One property value the provider refused in a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidValue {
    pub property: String,
    /// The value as written, when the provider echoed it.
    pub value: Option<String>,
    /// The provider's code (HubSpot `INVALID_OPTION`, `PROPERTY_DOESNT_EXIST`, ...).
    pub reason: String,
    pub message: String,
    /// An enumeration's allowed values, when the provider listed them.
    pub allowed: Vec<String>,
}

impl ProviderError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: None,
            body: None,
            retry_after: None,
            missing_scopes: Vec::new(),
            refusal: None,
        }
    }

    pub fn invalid_values(&self) -> &[InvalidValue] {
        self.refusal
            .as_ref()
            .map_or(&[], |r| r.invalid_values.as_slice())
    }

    pub fn existing_id(&self) -> Option<&SourceId> {
        self.refusal.as_ref().and_then(|r| r.existing_id.as_ref())
    }
}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// One provider record as the engine sees it: its id, version and raw property values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub kind: ObjectKind,
    pub id: SourceId,
    /// Last-modified time at the provider (epoch ms): orders writes.
    pub version: SourceVersion,
    /// Archived / deleted at the provider.
    pub archived: bool,
    /// Property values as the provider sends them (text); `None` = present but empty.
    pub properties: BTreeMap<String, Option<String>>,
    /// For contacts: the companies the contact is associated with, primary first.
    #[serde(default)]
    pub associated_companies: Vec<SourceId>,
    /// Ids that were merged into this record (they no longer exist on their own).
    #[serde(default)]
    pub merged_from: Vec<SourceId>,
    /// When each property got its value at the provider (HubSpot's property history),
    /// for the properties a two-way connection resolves field by field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub property_times: BTreeMap<String, Timestamp>,
}

/// A page of a full listing, and where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePage {
    pub records: Vec<SourceRecord>,
    pub next_cursor: Option<String>,
}

/// The outcome of fetching one record by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    Found(SourceRecord),
    /// The provider has no such record any more (hard-deleted, or merged away with no
    /// survivor known).
    Gone,
}

/// A property in the provider's schema, for validating a field mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertySchema {
    pub name: String,
    /// The provider's type name (HubSpot `string`, `number`, `enumeration`, `datetime`, ...).
    pub property_type: String,
    pub label: Option<String>,
    /// The provider computes or guards the value (HubSpot `calculated` or
    /// `modificationMetadata.readOnlyValue`): it is never written.
    #[serde(default)]
    pub read_only: bool,
}

/// The provider as the engine uses it, on behalf of one connection. Implementations
/// refresh tokens, respect rate limits and classify errors themselves; the engine only
/// sees records and [`ProviderError`]s.
#[async_trait]
pub trait SourceProvider: Send + Sync {
    fn provider(&self) -> Provider;

    /// One page of every record of `kind` (archived ones excluded), with the mapped
    /// properties, from `cursor` (`None`: the first page).
    async fn list_page(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        properties: &[&str],
        cursor: Option<&str>,
    ) -> ProviderResult<SourcePage>;

    /// Fetches records fresh by id (batched by the implementation), archived ones included
    /// where the provider allows; one outcome per requested id, in request order.
    async fn fetch(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
        properties: &[&str],
    ) -> ProviderResult<Vec<(SourceId, Fetched)>>;

    /// Whether mirrored records still exist, for the reconciler's re-check after a listing.
    /// The default fetches them; a provider whose fetch is costly (Stripe reads every
    /// subscription to compute billing) answers from a cheaper read, and its `Found`
    /// records may then carry no properties.
    async fn recheck(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
        properties: &[&str],
    ) -> ProviderResult<Vec<(SourceId, Fetched)>> {
        self.fetch(connection, kind, ids, properties).await
    }

    /// Whether each company passes the connection's company filter. For `CompanyFilter::All`
    /// every id passes.
    async fn filter_members(
        &self,
        connection: &Connection,
        ids: &[SourceId],
    ) -> ProviderResult<BTreeMap<SourceId, bool>>;

    /// The lists, lifecycle stages and pipelines the account offers for the company filter.
    /// Providers without a company filter offer none.
    async fn filter_choices(&self, _connection: &Connection) -> ProviderResult<FilterChoices> {
        Ok(FilterChoices::default())
    }

    /// Credentials the provider changed since `connection` was read (a refresh token that
    /// rotated), sealed. The engine stores them on the connection after each job or page;
    /// providers whose tokens do not rotate keep the default.
    async fn updated_credentials(
        &self,
        _connection: &Connection,
    ) -> ProviderResult<Option<SealedCredentials>> {
        Ok(None)
    }

    /// The provider's schema for one object kind.
    async fn properties(
        &self,
        connection: &Connection,
        kind: ObjectKind,
    ) -> ProviderResult<Vec<PropertySchema>>;
}

/// How a pushed contact finds one the provider has already.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKey {
    /// Update the contact with this email, or create it (the default).
    Email,
    /// Not by email: update the contact whose key property holds our key (one an earlier
    /// attempt of this push created), or create it; an existing email is
    /// `contact_exists`. A create retried after its answer was lost so finds the contact
    /// it made instead of making a second one.
    Own(OwnKey),
    /// No email to go by: update the contact with this phone number, or else as `Own`.
    Phone(OwnKey),
    /// The provider's contact an earlier push wrote: update it.
    Id(SourceId),
}

/// A unique contact property the service owns (created on first use) and our value of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnKey {
    pub property: String,
    pub value: String,
}

/// A record a write created or updated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub id: SourceId,
    pub created: bool,
    /// The provider's last-modified time after the write: what its echo carries.
    pub version: SourceVersion,
}

/// What adding a contact to a list did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListAdd {
    Added,
    AlreadyMember,
    /// The list is kept by the provider from its filters: it cannot be written.
    SkippedDynamic,
}

/// Writes into the provider on behalf of one connection, for outbound and two-way sync.
/// Every method is safe to repeat: contacts and companies are written by a key (upserts),
/// associations and list memberships are set, not appended.
#[async_trait]
pub trait RecordWriter: Send + Sync {
    /// The scopes pushes in `direction` under `settings` need (the contact step always,
    /// the company and list steps when they are on).
    fn write_scopes(&self, direction: SyncDirection, settings: &PushSettings) -> Vec<String>;

    /// Creates or updates a contact by `key`; `properties` hold the provider's property
    /// names and the values to write (`""` clears).
    async fn write_contact(
        &self,
        connection: &Connection,
        key: ContactKey,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written>;

    /// Creates or updates the company whose `key_property` (a unique property the
    /// service owns, created on first use) holds `key`.
    async fn write_company(
        &self,
        connection: &Connection,
        key_property: &str,
        key: &str,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written>;

    /// Associates the contact with the company (unlabeled; already associated is fine).
    async fn associate_company(
        &self,
        connection: &Connection,
        contact: &SourceId,
        company: &SourceId,
    ) -> ProviderResult<()>;

    /// Adds the contact to a list.
    async fn add_to_list(
        &self,
        connection: &Connection,
        list_id: &str,
        contact: &SourceId,
    ) -> ProviderResult<ListAdd>;

    /// Archives a contact (the test lead, once the admin is done with it).
    async fn archive_contact(&self, connection: &Connection, id: &SourceId) -> ProviderResult<()>;
}
