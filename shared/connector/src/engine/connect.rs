//! Connecting a connection once the provider has authorized it (OAuth callback or a pasted
//! API key): one active connection per provider account per tenant.

use super::Engine;
use super::admin::{AdminError, AdminResult};
use super::reconcile::StartError;
use crate::model::{
    Connection, ConnectionFlags, ConnectionId, ConnectionStatus, LogEntry, LogStatus, Provider,
    ProviderAccountId, SealedCredentials, SyncTrigger, TenantId, Timestamp,
};
use crate::ports::{OAUTH_STATE_TTL, OAuthState};

/// What a successful authorization produced, whichever way it was obtained.
#[derive(Clone, Debug)]
pub struct Authorized {
    /// Webhooks are routed to the connection by it, and its links are keyed by it.
    pub account_id: ProviderAccountId,
    pub scopes: Vec<String>,
    pub credentials: SealedCredentials,
}

impl Engine {
    /// Starts an authorization of a connection (read for its tenant): stores the
    /// single-use `state` the provider hands back, for [`OAUTH_STATE_TTL`].
    pub async fn begin_authorization(
        &self,
        connection: &Connection,
        state: String,
    ) -> AdminResult<OAuthState> {
        let now = Timestamp::now();
        let state = OAuthState {
            state,
            tenant_id: connection.tenant_id.clone(),
            connection_id: connection.id.clone(),
            provider: connection.provider,
            code_verifier: None,
            created_at: now,
            expires_at: now.plus(OAUTH_STATE_TTL),
        };
        self.store.put_oauth_state(&state).await?;
        Ok(state)
    }

    /// Takes a state once: `None` when it is unknown, used, expired, or was issued for
    /// another provider.
    pub async fn take_authorization(
        &self,
        state: &str,
        provider: Provider,
    ) -> AdminResult<Option<OAuthState>> {
        Ok(self
            .store
            .take_oauth_state(state, Timestamp::now())
            .await?
            .filter(|s| s.provider == provider))
    }

    /// Stores the credentials, sets the connection Connected (clearing its warnings) and
    /// starts the initial sync (one already running is fine). Any other connection of the
    /// tenant to the same account is superseded: it becomes Disconnected, so webhooks and
    /// passes have one connection per account to go to, and the links it wrote (keyed by
    /// the account) carry on under this one. Other tenants' connections are untouched.
    /// A connection that already syncs one account is never moved to another.
    pub async fn connect(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        authorized: Authorized,
    ) -> AdminResult<Connection> {
        // Reauthorizing into another portal would strand every link keyed by the first:
        // that is a new connection, not this one.
        let existing = self.admin_connection(tenant, id).await?;
        if let Some(known) = existing
            .account_id
            .as_ref()
            .filter(|known| **known != authorized.account_id)
        {
            return Err(AdminError::Conflict(format!(
                "wrong account: this connection syncs {provider} account {known}, but you authorized account {}. Sign in to {known} and reauthorize, or use Connect for a new connection to {}",
                authorized.account_id,
                authorized.account_id,
                provider = existing.provider,
            )));
        }
        let connection = self
            .update_connection(tenant, id, |c| {
                c.status = ConnectionStatus::Connected;
                c.account_id = Some(authorized.account_id.clone());
                c.scopes = authorized.scopes.clone();
                c.credentials = Some(authorized.credentials.clone());
                c.flags = ConnectionFlags::default();
                true
            })
            .await?
            .ok_or(AdminError::NotFound("connection"))?;
        self.supersede_others(&connection).await?;
        match self
            .start_sync(&connection, SyncTrigger::Initial, false)
            .await
        {
            Ok(_) | Err(StartError::AlreadyRunning(_) | StartError::OutboundOnly) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(connection)
    }

    async fn supersede_others(&self, current: &Connection) -> AdminResult<()> {
        let others = self.store.list_connections(&current.tenant_id).await?;
        for other in others.into_iter().filter(|o| {
            o.id != current.id
                && o.provider == current.provider
                && o.account_id == current.account_id
                && o.status != ConnectionStatus::Disconnected
        }) {
            self.update_connection(&other.tenant_id, &other.id, |c| {
                c.status = ConnectionStatus::Disconnected;
                c.credentials = None;
                true
            })
            .await?;
            let mut entry = LogEntry::new(
                other.tenant_id.clone(),
                other.id.clone(),
                other.provider,
                LogStatus::Unchanged,
                Timestamp::now(),
            );
            entry.message = Some(format!(
                "disconnected: connection {} now connects the same {} account",
                current.id, current.provider
            ));
            self.log(entry).await;
        }
        Ok(())
    }
}
