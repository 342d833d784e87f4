//! Connecting a connection. OAuth: the admin asks for the provider's URL (a single-use
//! `state` is stored for 10 minutes), the provider redirects back with a code, the callback
//! takes the state exactly once and exchanges the code. Either way (OAuth, or a pasted
//! Stripe API key: [`crate::stripe`]) the engine's connect use case stores the sealed
//! credentials, sets the connection Connected and starts its initial sync.

use base64::Engine as _;
use rand::RngCore;

use connector::crypto::CredentialOwner;
use connector::engine::admin::AdminError;
use connector::engine::connect::Authorized;
use connector::{Connection, ConnectionId, Provider, TenantId};
use connector_stripe::StripeCredentials;
use connector_stripe::oauth::OAuthScope;

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

/// Whether this deployment can connect `provider` through OAuth (Stripe needs the
/// platform's Connect client id).
pub fn can_authorize(app: &App, provider: Provider) -> bool {
    match provider {
        Provider::Hubspot => app.hubspot.is_some(),
        Provider::Stripe => app
            .stripe
            .as_ref()
            .is_some_and(|s| s.client().config().client_id.is_some()),
    }
}

/// The provider URL the admin's browser goes to.
/// Asks for the write scopes too when the connection pushes, or when `with_writes` (the
/// admin means to turn pushing on).
pub async fn start(
    app: &App,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    with_writes: bool,
) -> Result<String, OAuthError> {
    let connection = app.engine.admin_connection(tenant, connection_id).await?;
    let provider = connection.provider;
    // Refuse before a state is stored when the provider cannot do OAuth here.
    if !can_authorize(app, provider) {
        return Err(OAuthError::NotConfigured(provider));
    }
    let state = app
        .engine
        .begin_authorization(&connection, new_state())
        .await?;
    match (provider, &app.hubspot, &app.stripe) {
        (Provider::Hubspot, Some(hubspot), _) => {
            let writes = app.engine.write_scopes_to_request(&connection, with_writes);
            Ok(hubspot.authorize_url(&state.state, &writes))
        }
        (Provider::Stripe, _, Some(stripe)) => stripe
            .client()
            // Read-only: the sync never writes to Stripe.
            .authorize_url(&state.state, OAuthScope::ReadOnly)
            .map_err(|e| AdminError::Engine(e.into()).into()),
        _ => Err(OAuthError::NotConfigured(provider)),
    }
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
        .take_authorization(state, provider)
        .await?
        .ok_or(OAuthError::BadState)?;
    let owner = CredentialOwner {
        tenant: &taken.tenant_id,
        connection: &taken.connection_id,
    };
    let authorized = exchange_code(app, provider, code, owner).await?;
    Ok(app
        .engine
        .connect(&taken.tenant_id, &taken.connection_id, authorized)
        .await?)
}

/// The provider-specific step: the code for sealed credentials and the account.
async fn exchange_code(
    app: &App,
    provider: Provider,
    code: &str,
    owner: CredentialOwner<'_>,
) -> Result<Authorized, OAuthError> {
    let provider_error = |e: connector::provider::ProviderError| AdminError::Engine(e.into());
    match provider {
        Provider::Hubspot => {
            let hubspot = app
                .hubspot
                .as_ref()
                .ok_or(OAuthError::NotConfigured(provider))?;
            let account = hubspot
                .exchange_code(code, owner)
                .await
                .map_err(provider_error)?;
            Ok(Authorized {
                account_id: account.account_id,
                scopes: account.scopes,
                credentials: account.credentials,
            })
        }
        Provider::Stripe => {
            let stripe = app
                .stripe
                .as_ref()
                .ok_or(OAuthError::NotConfigured(provider))?;
            let grant = stripe
                .client()
                .exchange_code(code)
                .await
                .map_err(provider_error)?;
            let credentials = stripe
                .seal_credentials(&StripeCredentials::new(grant.auth, None), owner)
                .map_err(provider_error)?;
            Ok(Authorized {
                account_id: grant.account,
                scopes: grant.scope.into_iter().collect(),
                credentials,
            })
        }
    }
}
