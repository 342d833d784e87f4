use std::sync::Arc;

use connector::Secret;
use connector::engine::Engine;
use connector_hubspot::HubSpotProvider;

use crate::auth::AdminAuth;

/// Everything the handlers need, built once per process.
pub struct App {
    pub engine: Engine,
    pub hubspot: Option<HubSpotProvider>,
    /// The HubSpot app's client secret: signs its webhooks.
    pub hubspot_client_secret: Option<Secret>,
    pub admin_auth: AdminAuth,
    /// The public base URL the providers call (`https://api.example.com`): webhook
    /// signatures cover the full URL. When unset it is rebuilt from the request's headers.
    pub public_base_url: Option<String>,
}

pub type SharedApp = Arc<App>;
