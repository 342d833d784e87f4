//! Stripe provider: API-key and OAuth auth, a paged client with rate limiting,
//! `Stripe-Signature` checks, and MRR normalisation.
//!
//! - [`mrr`]: pure MRR per currency from subscriptions ([`mrr::compute_mrr`]) and the
//!   customer page's billing fields ([`mrr::billing_summary`]).
//! - [`webhook`]: [`webhook::verify`] over the raw body, [`webhook::parse_event`].
//! - [`client`]: [`client::StripeClient`] (lists, retrieves, the events feed) used with a
//!   per-connection [`auth::StripeSession`]; [`oauth`] adds the Connect OAuth flow.
//! - [`api_key`]: checks a pasted key before it is stored.
//! - [`provider`]: [`provider::StripeProvider`], the engine's `SourceProvider`.

pub mod api_key;
pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod mrr;
pub mod oauth;
pub mod provider;
pub mod ratio;
pub mod types;
pub mod webhook;

pub use auth::{OAuthTokens, StripeAuth, StripeCredentials, StripeSession};
pub use client::StripeClient;
pub use config::{STRIPE_VERSION, StripeConfig};
pub use provider::StripeProvider;
