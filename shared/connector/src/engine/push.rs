//! Outbound sync: one of our contacts pushed into the provider in steps. The contact
//! step writes the contact (by the id an earlier push got, else by email, else by phone,
//! else as a new one); the optional company step finds or creates the company by domain
//! and associates the two; the optional list step adds the contact to a static list.
//! Each step's result goes on the job's log row.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::apply::{Applied, Outcome};
use super::mapping::Schema;
use super::worker::{Disposition, retry_of};
use super::{Engine, EngineError, account_of, source_of};
use crate::model::{
    CONTACT_KEY_PROPERTY, Connection, ConnectionStatus, Contact, ContactId, Domain, ErrorCode, Job,
    JobCause, JobKind, LogEntry, LogStatus, ObjectKind, OnStepFailure, PushStep, PushStepKind,
    PushedRecord, SourceRef, StepResult, SyncDirection, TargetField, Timestamp,
};
use crate::ports::StoreError;
use crate::provider::{ContactKey, ListAdd, OwnKey, ProviderError, RecordWriter, Written};

/// The company property the service owns and keys pushed companies by (their domain):
/// HubSpot does not deduplicate companies by domain, so without it every push of a new
/// contact could create its company again.
pub const COMPANY_KEY_PROPERTY: &str = "sync_company_key";

/// Why a push failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection is gone, disconnected, waiting for Reauthorize, or no longer pushes.
    #[error("{0}")]
    NotConnected(String),
    #[error("the contact has no email, and \"sync without email\" is off")]
    MissingEmail,
    #[error("every mapped field of the contact is empty: there is nothing to push")]
    NothingToSync,
    /// A mapped property the provider's schema no longer has.
    #[error("mapped property {0:?} does not exist at the provider")]
    MappingInvalid(String),
    #[error("contact {0} does not exist in the store")]
    ContactGone(ContactId),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<ProviderError> for PushError {
    fn from(e: ProviderError) -> Self {
        PushError::Engine(e.into())
    }
}

impl From<StoreError> for PushError {
    fn from(e: StoreError) -> Self {
        PushError::Engine(e.into())
    }
}

impl PushError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PushError::NotConnected(_) => ErrorCode::NotConnected,
            PushError::MissingEmail => ErrorCode::MissingEmail,
            PushError::NothingToSync | PushError::ContactGone(_) => ErrorCode::NothingToSync,
            PushError::MappingInvalid(_) => ErrorCode::FieldMappingInvalid,
            PushError::Engine(e) => e.code(),
        }
    }

    fn provider(&self) -> Option<&ProviderError> {
        match self {
            PushError::Engine(EngineError::Provider(e)) => Some(e),
            _ => None,
        }
    }

    /// The failure in words for the admin, with what the provider named: each refused
    /// property with its value and allowed options, the contact holding the email, the
    /// scopes missing.
    pub fn describe(&self) -> String {
        let Some(e) = self.provider() else {
            return self.to_string();
        };
        let mut parts = Vec::new();
        for refused in e.invalid_values() {
            let mut part = format!("property {}", refused.property);
            if let Some(value) = &refused.value {
                part.push_str(&format!(" refused {value:?}"));
            }
            part.push_str(&format!(" ({})", refused.reason));
            if !refused.allowed.is_empty() {
                part.push_str(&format!("; allowed: {}", refused.allowed.join(", ")));
            }
            parts.push(part);
        }
        if let Some(existing) = e.existing_id() {
            parts.push(format!(
                "HubSpot contact {existing} already has this email (dedupe by email is off)"
            ));
        }
        if !e.missing_scopes.is_empty() {
            parts.push(format!("missing scopes: {}", e.missing_scopes.join(", ")));
        }
        if parts.is_empty() {
            e.to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// Whether the pushed contact is one of our stored records (a test lead is not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stored {
    Yes,
    No,
}

/// What one push did, step by step, and the failure that ended it, if one did.
#[derive(Debug, Default)]
pub struct PushReport {
    pub steps: Vec<PushStep>,
    /// The provider's contact, once the contact step wrote it.
    pub contact: Option<Written>,
    pub failure: Option<PushError>,
}

impl PushReport {
    fn failed(error: PushError) -> Self {
        Self {
            failure: Some(error),
            ..Self::default()
        }
    }

    fn step(&mut self, step: PushStepKind, result: StepResult, written: Option<&Written>) {
        self.steps.push(PushStep {
            step,
            result,
            record_id: written.map(|w| w.id.clone()),
            error_code: None,
            detail: None,
        });
    }

    fn step_failed(&mut self, step: PushStepKind, error: &PushError) {
        self.steps.push(PushStep {
            step,
            result: StepResult::Failed,
            record_id: None,
            error_code: Some(error.code()),
            detail: Some(error.describe()),
        });
    }

    fn step_skipped(&mut self, step: PushStepKind, why: impl Into<String>) {
        self.steps.push(PushStep {
            step,
            result: StepResult::Skipped,
            record_id: None,
            error_code: None,
            detail: Some(why.into()),
        });
    }
}

/// The provider properties a push writes: every mapped contact field whose direction
/// pushes and that has a value, never a read-only property. A mapped property the schema
/// no longer has fails the push, naming it. Empty values are not sent: a push never
/// clears what the provider holds.
pub fn outbound_properties(
    connection: &Connection,
    contact: &Contact,
    schema: &Schema,
) -> Result<BTreeMap<String, String>, PushError> {
    let mut properties = BTreeMap::new();
    for entry in connection.field_mapping.for_object(ObjectKind::Contact) {
        if !connection.direction.narrowed_by(entry.direction).pushes() {
            continue;
        }
        let Some(found) = schema.get(&entry.source_property) else {
            return Err(PushError::MappingInvalid(entry.source_property.clone()));
        };
        if found.read_only {
            continue;
        }
        if let Some(value) = contact.value_of(&entry.target) {
            properties.insert(entry.source_property.clone(), value.to_owned());
        }
    }
    Ok(properties)
}

/// The property a mapped field of ours is pushed to, when it is.
fn pushed_property<'a>(
    connection: &'a Connection,
    target: &TargetField,
    properties: &BTreeMap<String, String>,
) -> Option<&'a str> {
    connection
        .field_mapping
        .for_object(ObjectKind::Contact)
        .find(|e| e.target == *target && properties.contains_key(&e.source_property))
        .map(|e| e.source_property.as_str())
}

/// How the contact step finds the provider's contact. The writer keys by the provider's
/// `email` and `phone` properties, so those must be what our email and phone push to.
pub fn contact_key(
    connection: &Connection,
    contact: &ContactId,
    earlier: Option<&PushedRecord>,
    properties: &BTreeMap<String, String>,
) -> Result<ContactKey, PushError> {
    let own = || OwnKey {
        property: CONTACT_KEY_PROPERTY.to_owned(),
        value: contact.to_string(),
    };
    if properties.is_empty() {
        return Err(PushError::NothingToSync);
    }
    if let Some(earlier) = earlier {
        return Ok(ContactKey::Id(earlier.source_id.clone()));
    }
    let settings = &connection.push;
    if pushed_property(connection, &TargetField::Email, properties) == Some("email") {
        // Two-way contacts carry our key, so one read back before we stored its id is
        // still known as ours; dedupe by email then updates the contact with the email.
        return Ok(
            if settings.dedupe_by_email && connection.direction != SyncDirection::TwoWay {
                ContactKey::Email
            } else {
                ContactKey::Own(own())
            },
        );
    }
    if !settings.sync_without_email {
        return Err(PushError::MissingEmail);
    }
    if settings.phone_fallback
        && pushed_property(connection, &TargetField::Phone, properties) == Some("phone")
    {
        return Ok(ContactKey::Phone(own()));
    }
    Ok(ContactKey::Own(own()))
}

fn written_result(written: &Written) -> StepResult {
    if written.created {
        StepResult::Created
    } else {
        StepResult::Updated
    }
}

/// Where a push wrote one of our contacts, as the contact remembers it.
pub(crate) fn pushed_record(source: &SourceRef, written: &Written) -> PushedRecord {
    PushedRecord {
        provider: source.provider,
        account_id: source.account.clone(),
        source_id: written.id.clone(),
        version: written.version,
    }
}

/// A push of one of our contacts through one connection.
pub(crate) fn push_job(
    connection: &Connection,
    contact_id: &ContactId,
    cause: JobCause,
    now: Timestamp,
) -> Job {
    Job::new(
        connection.tenant_id.clone(),
        connection.id.clone(),
        connection.provider,
        JobKind::PushContact {
            contact_id: contact_id.clone(),
            cause,
        },
        now,
    )
}

impl Engine {
    /// Queues the push an apply asked for: on a two-way connection, our side of the
    /// record held newer values.
    pub(crate) async fn push_back(
        &self,
        connection: &Connection,
        applied: &Applied,
    ) -> Result<(), EngineError> {
        if let Outcome::Pushed(contact_id) = &applied.outcome {
            let job = push_job(
                connection,
                contact_id,
                JobCause::Resolution,
                Timestamp::now(),
            );
            self.enqueue_records(&[job]).await?;
        }
        Ok(())
    }

    /// Runs one push job and books it: a `pushed` row, a `retrying` row with the time
    /// of the next attempt, or after the last attempt a `failed` row with a Retry.
    pub(crate) async fn run_push(&self, job: &Job) -> Result<Disposition, EngineError> {
        let JobKind::PushContact { contact_id, .. } = &job.kind else {
            return Ok(Disposition::Done);
        };
        let started = Instant::now();
        let connection = self
            .store
            .get_connection(&job.tenant_id, &job.connection_id)
            .await?;
        let report = match &connection {
            Some(c) if c.status == ConnectionStatus::Reauthorize => PushReport::failed(
                PushError::Engine(EngineError::Provider(ProviderError::new(
                    ErrorCode::OauthRevoked,
                    "the provider no longer accepts our access: Reauthorize, then press Retry",
                ))),
            ),
            Some(c) if c.accepts_jobs() && c.pushes() => self.push_contact(c, contact_id).await,
            Some(c) if c.accepts_jobs() => PushReport::failed(PushError::NotConnected(
                "the connection no longer pushes (its direction is inbound)".into(),
            )),
            _ => PushReport::failed(PushError::NotConnected(
                "the connection is not connected: connect it, then press Retry".into(),
            )),
        };
        self.persist_rotated_credentials_of(connection.as_ref())
            .await?;
        self.book_push(
            connection.as_ref(),
            job,
            contact_id,
            report,
            started.elapsed(),
        )
        .await
    }

    async fn persist_rotated_credentials_of(
        &self,
        connection: Option<&Connection>,
    ) -> Result<(), EngineError> {
        match connection {
            Some(c) if c.account_id.is_some() => self.persist_rotated_credentials(c).await,
            _ => Ok(()),
        }
    }

    /// The three steps for one stored contact.
    pub async fn push_contact(
        &self,
        connection: &Connection,
        contact_id: &ContactId,
    ) -> PushReport {
        let mut report = PushReport::default();
        let pushed = async {
            let contact = self
                .store
                .get_contact(&connection.tenant_id, contact_id)
                .await?
                .ok_or_else(|| PushError::ContactGone(contact_id.clone()))?;
            self.push_steps(connection, &contact, Stored::Yes, &mut report)
                .await
        };
        if let Err(e) = pushed.await {
            report.failure = Some(e);
        }
        report
    }

    /// The steps for `contact`; a stored one remembers where the contact step wrote it.
    pub(super) async fn push_steps(
        &self,
        connection: &Connection,
        contact: &Contact,
        stored: Stored,
        report: &mut PushReport,
    ) -> Result<(), PushError> {
        let writer = self.writer(connection.provider).ok_or_else(|| {
            PushError::NotConnected(format!(
                "{} connections cannot push records",
                connection.provider
            ))
        })?;
        let account = account_of(connection)?;
        let schema = self.schema(connection, ObjectKind::Contact).await?;
        let properties = outbound_properties(connection, contact, &schema)?;
        let earlier = contact.pushed_into(connection.provider, account);
        let key = contact_key(connection, &contact.id, earlier, &properties)?;
        let two_way = connection.direction == SyncDirection::TwoWay && stored == Stored::Yes;
        let step = if two_way {
            self.two_way_contact_step(writer.as_ref(), connection, contact, &schema, key)
                .await
        } else {
            self.write_contact_step(writer.as_ref(), connection, &contact.id, key, &properties)
                .await
        };
        let written = match step {
            Ok(written) => written,
            Err(e) => {
                report.step_failed(PushStepKind::Contact, &e);
                return Err(e);
            }
        };
        report.step(
            PushStepKind::Contact,
            written_result(&written),
            Some(&written),
        );
        report.contact = Some(written.clone());
        if stored == Stored::Yes && !two_way {
            self.remember_push(connection, &contact.id, &written)
                .await?;
        }
        if let Some(on_failure) = connection.push.company_step {
            let company = self
                .company_step(writer.as_ref(), connection, contact, &written, report)
                .await;
            if let Err(e) = company {
                report.step_failed(PushStepKind::Company, &e);
                // A busy or unavailable provider is retried whatever the setting: the
                // contact step is an upsert, so the retry changes nothing twice.
                if on_failure == OnStepFailure::FailSync || e.code().is_busy_or_down() {
                    return Err(e);
                }
            }
        }
        if let Some(list_id) = &connection.push.list_id {
            match writer.add_to_list(connection, list_id, &written.id).await {
                Ok(ListAdd::Added) => report.step(PushStepKind::List, StepResult::Added, None),
                Ok(ListAdd::AlreadyMember) => {
                    report.step(PushStepKind::List, StepResult::AlreadyMember, None)
                }
                Ok(ListAdd::SkippedDynamic) => report.step_skipped(
                    PushStepKind::List,
                    format!("list {list_id} is dynamic: HubSpot keeps its members from its filters, so none can be added"),
                ),
                Err(e) => {
                    let e = PushError::from(e);
                    report.step_failed(PushStepKind::List, &e);
                    if e.code().is_busy_or_down() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// The contact step; a contact an earlier push wrote that the provider no longer has
    /// is written again by the usual keys.
    async fn write_contact_step(
        &self,
        writer: &dyn RecordWriter,
        connection: &Connection,
        contact: &ContactId,
        key: ContactKey,
        properties: &BTreeMap<String, String>,
    ) -> Result<Written, PushError> {
        let by_id = matches!(key, ContactKey::Id(_));
        match writer.write_contact(connection, key, properties).await {
            Err(e) if by_id && e.code == ErrorCode::SourceDeleted => {
                let key = contact_key(connection, contact, None, properties)?;
                Ok(writer.write_contact(connection, key, properties).await?)
            }
            other => Ok(other?),
        }
    }

    /// Finds or creates the contact's company by domain, then associates the two.
    async fn company_step(
        &self,
        writer: &dyn RecordWriter,
        connection: &Connection,
        contact: &Contact,
        written: &Written,
        report: &mut PushReport,
    ) -> Result<(), PushError> {
        let customer = match &contact.customer_id {
            Some(id) => self.store.get_customer(&contact.tenant_id, id).await?,
            None => None,
        };
        let domain = customer
            .as_ref()
            .and_then(|c| c.domain.clone())
            .or_else(|| {
                contact
                    .email
                    .as_deref()
                    .and_then(|e| Domain::from_email(e).ok())
            });
        let Some(domain) = domain else {
            report.step_skipped(
                PushStepKind::Company,
                "the contact has no company domain (no customer with a domain, no email)",
            );
            return Ok(());
        };
        let name = customer
            .map(|c| c.name)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| domain.as_str().to_owned());
        let properties = BTreeMap::from([
            ("name".to_owned(), name),
            ("domain".to_owned(), domain.as_str().to_owned()),
        ]);
        let company = writer
            .write_company(
                connection,
                COMPANY_KEY_PROPERTY,
                domain.as_str(),
                &properties,
            )
            .await?;
        writer
            .associate_company(connection, &written.id, &company.id)
            .await?;
        report.step(
            PushStepKind::Company,
            written_result(&company),
            Some(&company),
        );
        Ok(())
    }

    /// Remembers on our contact which provider record the push wrote, so the next push
    /// updates it by id.
    pub(super) async fn remember_push(
        &self,
        connection: &Connection,
        contact_id: &ContactId,
        written: &Written,
    ) -> Result<(), PushError> {
        let source = source_of(connection, ObjectKind::Contact, &written.id)?;
        let pushed = pushed_record(&source, written);
        for _ in 0..8 {
            let Some(mut contact) = self
                .store
                .get_contact(&connection.tenant_id, contact_id)
                .await?
            else {
                return Err(PushError::ContactGone(contact_id.clone()));
            };
            if contact.pushed_into(pushed.provider, &pushed.account_id) == Some(&pushed) {
                return Ok(());
            }
            contact.remember_push(pushed.clone());
            let expected_version = contact.version;
            match self
                .store
                .write_contact(crate::ports::ContactWrite {
                    contact: &contact,
                    expected_version,
                    link: None,
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contention.into())
    }

    /// The log row of a push, and what the queue does with its message.
    async fn book_push(
        &self,
        connection: Option<&Connection>,
        job: &Job,
        contact_id: &ContactId,
        report: PushReport,
        took: Duration,
    ) -> Result<Disposition, EngineError> {
        let now = Timestamp::now();
        let mut entry = LogEntry::new(
            job.tenant_id.clone(),
            job.connection_id.clone(),
            job.provider,
            LogStatus::Pushed,
            now,
        );
        entry.object_kind = Some(ObjectKind::Contact);
        entry.contact_id = Some(contact_id.clone());
        entry.record_id = report.contact.as_ref().map(|w| w.id.clone());
        entry.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        entry.retry_count = job.attempt;
        entry.steps = report.steps;
        let Some(failure) = report.failure else {
            if let Some(noted) = entry.steps.iter().find(|s| s.result == StepResult::Failed) {
                entry.error_code = noted.error_code;
                entry.message = Some(format!(
                    "the contact was pushed; the {} step failed and was skipped: {}",
                    step_name(noted.step),
                    noted.detail.as_deref().unwrap_or("no detail")
                ));
                entry.retry_job = Some(retry_of(job));
            }
            self.store.append_log(&entry).await?;
            return Ok(Disposition::Done);
        };
        let code = failure.code();
        entry.error_code = Some(code);
        entry.message = Some(failure.describe());
        if let Some(e) = failure.provider() {
            entry.provider_response = e.body.as_deref().map(LogEntry::truncate_response);
        }
        let retry_after = failure.provider().and_then(|e| e.retry_after);
        if let Some((next, delay)) = self.next_try(job, code, retry_after) {
            entry.status = LogStatus::Retrying;
            entry.next_attempt_at = Some(now.plus(delay));
            self.store.append_log(&entry).await?;
            return Ok(Disposition::Retry { job: next, delay });
        }
        let scopes = failure.provider().map(|e| e.missing_scopes.as_slice());
        self.end_failed_job(
            connection,
            job,
            code,
            scopes.unwrap_or_default(),
            entry,
            &failure,
        )
        .await
    }
}

fn step_name(step: PushStepKind) -> &'static str {
    match step {
        PushStepKind::Contact => "contact",
        PushStepKind::Company => "company",
        PushStepKind::List => "list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        FieldMappingEntry, Provider, ProviderAccountId, SourceId, SourceVersion, SyncDirection,
        TenantId,
    };
    use crate::provider::PropertySchema;

    fn schema(read_only: &[&str]) -> Schema {
        let names = [
            "email",
            "firstname",
            "lastname",
            "phone",
            "jobtitle",
            "score",
        ];
        Schema::new(
            names
                .iter()
                .map(|n| PropertySchema {
                    name: (*n).into(),
                    property_type: "string".into(),
                    label: None,
                    read_only: read_only.contains(n),
                })
                .collect(),
        )
    }

    fn outbound() -> Connection {
        let mut c = Connection::new(
            TenantId::parse("acme").expect("tenant"),
            Provider::Hubspot,
            Timestamp::from_millis(0),
        );
        c.direction = SyncDirection::Outbound;
        c
    }

    fn lead() -> Contact {
        let mut contact = Contact::new(
            TenantId::parse("acme").expect("tenant"),
            Timestamp::from_millis(0),
        );
        contact.email = Some("ana@acme.com".into());
        contact.first_name = Some(" Ana ".into());
        contact.custom.insert("score".into(), "7".into());
        contact
    }

    #[test]
    fn a_push_writes_mapped_values_and_never_a_read_only_or_inbound_only_field() {
        let mut c = outbound();
        c.field_mapping.entries.push(FieldMappingEntry {
            object: ObjectKind::Contact,
            source_property: "score".into(),
            target: TargetField::Custom("score".into()),
            source_type: None,
            direction: None,
        });
        let props = outbound_properties(&c, &lead(), &schema(&[])).expect("properties");
        assert_eq!(
            props,
            BTreeMap::from([
                ("email".to_owned(), "ana@acme.com".to_owned()),
                ("firstname".to_owned(), "Ana".to_owned()),
                ("score".to_owned(), "7".to_owned()),
            ])
        );
        let read_only = outbound_properties(&c, &lead(), &schema(&["score"])).expect("ok");
        assert!(!read_only.contains_key("score"));
        c.direction = SyncDirection::TwoWay;
        c.field_mapping.entries.last_mut().expect("entry").direction = Some(SyncDirection::Inbound);
        let inbound_only = outbound_properties(&c, &lead(), &schema(&[])).expect("ok");
        assert!(!inbound_only.contains_key("score"));
        let gone = Schema::new(Vec::new());
        assert!(matches!(
            outbound_properties(&c, &lead(), &gone),
            Err(PushError::MappingInvalid(p)) if p == "email"
        ));
    }

    #[test]
    fn the_contact_key_follows_the_dedupe_and_email_settings() {
        let mut c = outbound();
        let ours = ContactId::generate();
        let own = OwnKey {
            property: CONTACT_KEY_PROPERTY.to_owned(),
            value: ours.to_string(),
        };
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let with_email = props(&[("email", "ana@acme.com")]);
        assert_eq!(
            contact_key(&c, &ours, None, &with_email).ok(),
            Some(ContactKey::Email)
        );
        let earlier = PushedRecord {
            provider: Provider::Hubspot,
            account_id: ProviderAccountId::parse("1").expect("account"),
            source_id: SourceId::parse("77").expect("id"),
            version: SourceVersion(1),
        };
        assert_eq!(
            contact_key(&c, &ours, Some(&earlier), &with_email).ok(),
            Some(ContactKey::Id(earlier.source_id.clone()))
        );
        let phone_only = props(&[("phone", "+1 555")]);
        assert!(matches!(
            contact_key(&c, &ours, None, &phone_only),
            Err(PushError::MissingEmail)
        ));
        assert!(matches!(
            contact_key(&c, &ours, None, &BTreeMap::new()),
            Err(PushError::NothingToSync)
        ));
        c.push.sync_without_email = true;
        assert_eq!(
            contact_key(&c, &ours, None, &phone_only).ok(),
            Some(ContactKey::Own(own.clone()))
        );
        c.push.phone_fallback = true;
        assert_eq!(
            contact_key(&c, &ours, None, &phone_only).ok(),
            Some(ContactKey::Phone(own.clone()))
        );
        c.push.dedupe_by_email = false;
        assert_eq!(
            contact_key(&c, &ours, None, &with_email).ok(),
            Some(ContactKey::Own(own.clone()))
        );
    }
}
