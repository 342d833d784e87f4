//! The HubSpot provider: OAuth install and token refresh, a CRM v3 client with a
//! per-portal rate limiter, and webhook signature checks and event parsing.
//!
//! Facts about HubSpot's API are in `shared/contracts/hubspot.md`.

mod config;
mod error;
mod http;
mod oauth;
mod provider;
pub mod webhook;
mod wire;
mod writes;

pub use config::{HubSpotConfig, OPTIONAL_SCOPES, REQUIRED_SCOPES};
pub use error::MAX_KEPT_BODY;
pub use oauth::{AuthorizedAccount, StoredTokens};
pub use provider::{HubSpotProvider, Owner};
