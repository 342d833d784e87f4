//! Send test lead: check every pushed property against the provider's live schema, then
//! push a disposable contact (`sync-test+<random>@example.com`, never stored here)
//! through the same steps as a real push, and delete it when the admin is done.

use rand::Rng;
use serde::Serialize;

use super::admin::{AdminError, AdminResult};
use super::mapping::{self, Schema};
use super::push::{PushReport, Stored};
use super::{Engine, EngineError};
use crate::model::{
    Connection, ConnectionId, Contact, ErrorCode, ErrorExplained, ObjectKind, PushStep, SourceId,
    TargetField, TenantId, Timestamp,
};
use crate::provider::Fetched;

const TEST_EMAIL_PREFIX: &str = "sync-test+";
const TEST_EMAIL_DOMAIN: &str = "@example.com";

/// One mapped property as the live schema judges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyCheck {
    pub property: String,
    pub target: TargetField,
    /// Whether the push writes it (a field narrowed to inbound, or a read-only
    /// property, is not written).
    pub pushed: bool,
    /// What is wrong with it; `None`: fine.
    pub problem: Option<String>,
}

/// What Send test lead found and did.
#[derive(Clone, Debug, Serialize)]
pub struct TestLeadReport {
    pub properties: Vec<PropertyCheck>,
    pub email: String,
    pub steps: Vec<PushStep>,
    /// The provider's test contact, when the contact step wrote it: delete it with
    /// `DELETE /admin/connections/{id}/test-lead/{contact}`.
    pub contact: Option<SourceId>,
    pub error: Option<ErrorExplained>,
    pub message: Option<String>,
}

/// Every mapped contact property against the schema: gone, retyped, read-only.
pub fn check_properties(connection: &Connection, schema: &Schema) -> Vec<PropertyCheck> {
    connection
        .field_mapping
        .for_object(ObjectKind::Contact)
        .map(|entry| {
            let direction = connection.direction.narrowed_by(entry.direction);
            let found = schema.get(&entry.source_property);
            let problem = mapping::check_entry(entry, schema)
                .map(|p| p.reason)
                .or_else(|| {
                    found
                        .filter(|p| p.read_only && direction.pushes())
                        .map(|_| "read-only at the provider: it is never written".to_owned())
                });
            PropertyCheck {
                property: entry.source_property.clone(),
                target: entry.target.clone(),
                pushed: direction.pushes() && found.is_some_and(|p| !p.read_only),
                problem,
            }
        })
        .collect()
}

/// A contact that exists nowhere but in this test.
fn test_contact(connection: &Connection) -> Contact {
    let tag: u32 = rand::thread_rng().gen_range(100_000..1_000_000);
    let mut contact = Contact::new(connection.tenant_id.clone(), Timestamp::now());
    contact.email = Some(format!("{TEST_EMAIL_PREFIX}{tag}{TEST_EMAIL_DOMAIN}"));
    contact.first_name = Some("Sync".into());
    contact.last_name = Some("Test".into());
    contact.job_title = Some("Test lead".into());
    contact
}

fn is_test_email(email: &str) -> bool {
    let email = email.to_ascii_lowercase();
    email.starts_with(TEST_EMAIL_PREFIX) && email.ends_with(TEST_EMAIL_DOMAIN)
}

impl Engine {
    async fn pushing_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<Connection> {
        let connection = self.admin_connection(tenant, id).await?;
        if !connection.accepts_jobs() {
            return Err(AdminError::NotConnected);
        }
        if !connection.pushes() {
            return Err(AdminError::Invalid(
                "the connection does not push: set its direction to outbound first".into(),
            ));
        }
        Ok(connection)
    }

    /// Checks the mapping and pushes a disposable test contact through every step.
    pub async fn send_test_lead(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<TestLeadReport> {
        let connection = self.pushing_connection(tenant, id).await?;
        self.forget_schemas(id);
        let schema = self.schema(&connection, ObjectKind::Contact).await?;
        let contact = test_contact(&connection);
        let mut report = PushReport::default();
        let failure = self
            .push_steps(&connection, &contact, Stored::No, &mut report)
            .await
            .err();
        if let Some(e) = &failure {
            let code = e.code();
            if code == ErrorCode::Internal {
                tracing::error!(error = ?e, connection = %id, "the test lead failed with an internal error");
            }
        }
        Ok(TestLeadReport {
            properties: check_properties(&connection, &schema),
            email: contact.email.unwrap_or_default(),
            steps: report.steps,
            contact: report.contact.map(|w| w.id),
            error: failure.as_ref().map(|e| e.code().explained()),
            message: failure.map(|e| e.describe()),
        })
    }

    /// Deletes (archives) a test lead at the provider; refused for any contact whose
    /// email is not a test lead's, so a real record is never touched.
    pub async fn delete_test_lead(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        contact: &SourceId,
    ) -> AdminResult<()> {
        let connection = self.pushing_connection(tenant, id).await?;
        let provider = self.provider(connection.provider)?;
        let fetched = provider
            .fetch(
                &connection,
                ObjectKind::Contact,
                std::slice::from_ref(contact),
                &["email"],
            )
            .await
            .map_err(EngineError::from)?;
        let email = match fetched.into_iter().next() {
            Some((_, Fetched::Found(record))) => record.properties.get("email").cloned().flatten(),
            _ => return Err(AdminError::NotFound("test lead")),
        };
        if !email.as_deref().is_some_and(is_test_email) {
            return Err(AdminError::Conflict(format!(
                "contact {contact} is not a test lead ({TEST_EMAIL_PREFIX}…{TEST_EMAIL_DOMAIN}): it is left alone"
            )));
        }
        let writer = self
            .writer(connection.provider)
            .ok_or(AdminError::Invalid("the provider takes no writes".into()))?;
        writer
            .archive_contact(&connection, contact)
            .await
            .map_err(EngineError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_test_leads_address_counts_as_one() {
        assert!(is_test_email("sync-test+123456@example.com"));
        assert!(is_test_email("Sync-Test+1@Example.com"));
        assert!(!is_test_email("ana@acme.com"));
        assert!(!is_test_email("sync-test+1@example.com.evil.io"));
    }
}
