//! The OAuth connect flow: the admin asks for the provider's URL (a single-use `state` is
//! stored for 10 minutes), the provider redirects back with a code, the callback takes the
//! state exactly once, exchanges the code, seals the tokens and starts the initial sync.

use base64::Engine as _;
use rand::RngCore;

use connector::engine::admin::AdminError;
use connector::engine::reconcile::StartError;
use connector::ports::{OAUTH_STATE_TTL, OAuthState};
use connector::{
    Connection, ConnectionFlags, ConnectionId, ConnectionStatus, Provider, SyncTrigger, TenantId,
    Timestamp,
};

use crate::app::App;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the provider reported an error: {0}")]
    Denied(String),
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    #[error("unknown, used or expired state")]
    BadState,
    #[error("{0} is not configured")]
    NotConfigured(Provider),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The provider URL the admin's browser goes to.
pub async fn start(
    app: &App,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<String, OAuthError> {
    let connection = app.engine.admin_connection(tenant, connection_id).await?;
    let hubspot = match connection.provider {
        Provider::Hubspot => app
            .hubspot
            .as_ref()
            .ok_or(OAuthError::NotConfigured(Provider::Hubspot))?,
        other => return Err(OAuthError::NotConfigured(other)),
    };
    let now = Timestamp::now();
    let state = OAuthState {
        state: new_state(),
        tenant_id: tenant.clone(),
        connection_id: connection_id.clone(),
        provider: connection.provider,
        code_verifier: None,
        created_at: now,
        expires_at: now.plus(OAUTH_STATE_TTL),
    };
    app.engine
        .store
        .put_oauth_state(&state)
        .await
        .map_err(AdminError::from)?;
    Ok(hubspot.authorize_url(&state.state))
}

/// The provider's redirect back to us.
pub async fn complete(
    app: &App,
    provider: Provider,
    code: Option<&str>,
    state: Option<&str>,
    error: Option<&str>,
) -> Result<Connection, OAuthError> {
    if let Some(error) = error {
        return Err(OAuthError::Denied(error.to_owned()));
    }
    let state = state.ok_or(OAuthError::MissingParameter("state"))?;
    let code = code.ok_or(OAuthError::MissingParameter("code"))?;
    let taken = app
        .engine
        .store
        .take_oauth_state(state, Timestamp::now())
        .await
        .map_err(AdminError::from)?
        .filter(|s| s.provider == provider)
        .ok_or(OAuthError::BadState)?;
    let hubspot = app
        .hubspot
        .as_ref()
        .ok_or(OAuthError::NotConfigured(provider))?;
    let account = hubspot
        .exchange_code(code)
        .await
        .map_err(|e| AdminError::Engine(e.into()))?;
    let connection = app
        .engine
        .update_connection(&taken.tenant_id, &taken.connection_id, |c| {
            c.status = ConnectionStatus::Connected;
            c.account_id = Some(account.account_id.clone());
            c.scopes = account.scopes.clone();
            c.credentials = Some(account.credentials.clone());
            c.flags = ConnectionFlags::default();
            true
        })
        .await
        .map_err(AdminError::from)?
        .ok_or(AdminError::NotFound("connection"))?;
    match app
        .engine
        .start_sync(&connection, SyncTrigger::Initial, false)
        .await
    {
        Ok(_) | Err(StartError::AlreadyRunning(_)) => {}
        Err(e) => return Err(AdminError::from(e).into()),
    }
    Ok(connection)
}
