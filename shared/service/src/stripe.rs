//! Connecting Stripe with an API key the admin pasted (a restricted `rk_...` key, or a
//! secret key), instead of Connect OAuth. The key is checked with two cheap reads before it
//! is stored, sealed together with the signing secret of the account's own webhook
//! endpoint (`POST /webhooks/stripe/{tenant}/{connection}`); neither is ever returned.

use connector::engine::admin::AdminError;
use connector::{
    Connection, ConnectionId, ErrorCode, Provider, ProviderAccountId, Secret, TenantId,
};
use connector_stripe::api_key::looks_like_api_key;
use connector_stripe::{StripeAuth, StripeCredentials};

use crate::app::App;
use connector::engine::connect::Authorized;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("Stripe is not configured in this deployment")]
    NotConfigured,
    #[error("{0}")]
    Invalid(String),
    #[error("Stripe refused the API key: {0}")]
    KeyRefused(String),
    #[error("the API key lacks a permission the sync needs: {0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Checks `api_key`, seals it (with `webhook_secret`, the endpoint secret of the account's
/// own webhook endpoint) on the Stripe connection, sets it Connected and starts its initial
/// sync. The connection's account id is the Stripe account when the key may read it
/// (`account_read`), else `apikey:<connection id>`, which routes nothing but its own
/// webhook endpoint.
pub async fn connect_api_key(
    app: &App,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    api_key: Secret,
    webhook_secret: Option<Secret>,
) -> Result<Connection, ApiKeyError> {
    let stripe = app.stripe.as_ref().ok_or(ApiKeyError::NotConfigured)?;
    let connection = app.engine.admin_connection(tenant, connection_id).await?;
    if connection.provider != Provider::Stripe {
        return Err(ApiKeyError::Invalid(format!(
            "API keys connect Stripe connections; this one is {}",
            connection.provider
        )));
    }
    if !looks_like_api_key(api_key.expose()) {
        return Err(ApiKeyError::Invalid(
            "api_key must be a Stripe secret (sk_...) or restricted (rk_...) key".into(),
        ));
    }
    if let Some(secret) = &webhook_secret
        && !secret.expose().starts_with("whsec_")
    {
        return Err(ApiKeyError::Invalid(
            "webhook_secret must be the endpoint's signing secret (whsec_...)".into(),
        ));
    }
    let check = stripe
        .client()
        .check_api_key(&api_key)
        .await
        .map_err(|e| match e.code {
            ErrorCode::OauthRevoked => ApiKeyError::KeyRefused(e.message),
            ErrorCode::PermissionDenied => ApiKeyError::PermissionDenied(e.message),
            _ => ApiKeyError::Admin(AdminError::Engine(e.into())),
        })?;
    let account_id = match check.account {
        Some(account) => account,
        None => ProviderAccountId::parse(format!("apikey:{connection_id}"))
            .map_err(|e| AdminError::Invalid(e.to_string()))?,
    };
    let credentials = stripe
        .seal_credentials(
            &StripeCredentials::new(StripeAuth::ApiKey(api_key), webhook_secret),
            connection.credential_owner(),
        )
        .map_err(|e| AdminError::Engine(e.into()))?;
    let authorized = Authorized {
        account_id,
        scopes: Vec::new(),
        credentials,
    };
    Ok(app
        .engine
        .connect(tenant, connection_id, authorized)
        .await?)
}
