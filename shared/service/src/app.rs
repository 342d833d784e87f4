use std::sync::Arc;

use connector::Secret;
use connector::engine::Engine;
use connector_hubspot::HubSpotProvider;
use connector_stripe::StripeProvider;

use crate::auth::AdminAuth;

/// Everything the handlers need, built once per process.
pub struct App {
    pub engine: Engine,
    pub hubspot: Option<HubSpotProvider>,
    /// The HubSpot app's client secret: signs its webhooks.
    pub hubspot_client_secret: Option<Secret>,
    /// The same provider the engine holds (one session cache, so rotated tokens are shared).
    pub stripe: Option<Arc<StripeProvider>>,
    /// Signing secrets of the platform's Connect webhook endpoint (rotation: any may match).
    /// API-key connections keep their own, sealed in their credentials.
    pub stripe_webhook_secrets: Vec<Secret>,
    /// Only the admin API's process holds the admin token secret.
    pub admin_auth: Option<AdminAuth>,
    /// The public base URL the providers call (`https://api.example.com`): webhook
    /// signatures cover the full URL. When unset it is rebuilt from the request's headers.
    pub public_base_url: Option<String>,
}

pub type SharedApp = Arc<App>;
