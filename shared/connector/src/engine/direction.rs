//! Changing which way a connection syncs, validated like a mapping change: against the
//! provider's live schema (read-only properties are never pushed) and the connection's
//! scopes (pushes need write scopes, requested at Connect or Reauthorize).

use super::Engine;
use super::admin::{AdminError, AdminResult};
use crate::model::{
    Connection, ConnectionId, ConnectionStatus, PushSettings, SyncDirection, TenantId,
};

impl Engine {
    /// The scopes a connection needs for its pushes, beyond what it was granted.
    pub fn missing_write_scopes(
        &self,
        connection: &Connection,
        direction: SyncDirection,
        push: &PushSettings,
    ) -> Vec<String> {
        let Some(writer) = self.writer(connection.provider) else {
            return Vec::new();
        };
        writer
            .write_scopes(direction, push)
            .into_iter()
            .filter(|s| !connection.scopes.contains(s))
            .collect()
    }

    /// The scopes to ask for at Connect or Reauthorize on top of the read scopes: the
    /// write scopes when the connection pushes or the admin asks for them ahead of a
    /// direction change.
    pub fn write_scopes_to_request(&self, connection: &Connection, asked: bool) -> Vec<String> {
        match self.writer(connection.provider) {
            Some(writer) if asked => {
                writer.write_scopes(SyncDirection::TwoWay, &PushSettings::every_step())
            }
            Some(writer) if connection.pushes() => {
                writer.write_scopes(connection.direction, &connection.push)
            }
            _ => Vec::new(),
        }
    }

    /// Sets a connection's direction and push settings. Refused (422) when the provider
    /// cannot take writes, the settings are malformed, a mapped field would push a
    /// read-only property, or a connected connection lacks the write scopes (each named:
    /// Reauthorize with write scopes grants them).
    pub async fn set_direction(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        direction: SyncDirection,
        push: PushSettings,
    ) -> AdminResult<Connection> {
        let connection = self.admin_connection(tenant, id).await?;
        let mut problems = push.shape_problems();
        if direction.pushes() && self.writer(connection.provider).is_none() {
            problems.push(format!(
                "{} connections are inbound only: the service does not write into {}",
                connection.provider, connection.provider
            ));
        }
        if !problems.is_empty() {
            return Err(AdminError::Invalid(problems.join("; ")));
        }
        let connected = connection.status == ConnectionStatus::Connected;
        if direction.pushes() && connected {
            let missing = self.missing_write_scopes(&connection, direction, &push);
            if !missing.is_empty() {
                return Err(AdminError::MissingScopes(missing));
            }
            let problems = self
                .mapping_problems(&connection, &connection.field_mapping, direction)
                .await?;
            if !problems.is_empty() {
                return Err(AdminError::InvalidMapping(problems));
            }
        }
        self.update_connection(tenant, id, |c| {
            c.direction = direction;
            c.push = push.clone();
            true
        })
        .await?
        .ok_or(AdminError::NotFound("connection"))
    }
}
