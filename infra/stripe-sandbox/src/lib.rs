//! A stateful fake Stripe on loopback, close enough that the official clients work against it:
//! customers, products, prices, coupons, subscriptions (all statuses), events with a 30-day
//! horizon, Connect OAuth with rotating refresh tokens, restricted keys, `Stripe-Account`,
//! rate limits, injected faults and signed webhooks with retries.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use stripe_sandbox::{Sandbox, SandboxConfig, SeedRequest};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let report = sandbox.control().seed(&SeedRequest { customers: Some(30), ..Default::default() }).await?;
//! // GET {base_url}/v1/customers with `Authorization: Bearer {sandbox.secret_key()}`
//! # let _ = report; Ok(()) }
//! ```

#![recursion_limit = "256"]

pub mod api;
pub mod client;
pub mod config;
pub mod control;
pub mod error;
pub mod expand;
pub mod form;
pub mod list;
pub mod model;
pub mod oauth;
pub mod render;
pub mod search;
pub mod seed;
pub mod server;
pub mod signature;
pub mod store;
pub mod webhooks;
pub mod world;

pub use client::{ControlClient, ControlError};
pub use config::{RateLimits, SandboxConfig, WebhookConfig};
pub use control::{CouponRequest, KeyRequest, PriceRequest, Target, WebhookSettings};
pub use model::{
    CouponDuration, CustomerInput, Interval, ItemInput, ItemUpdate, Metadata, Recurring,
    SubscriptionInput, SubscriptionStatus, SubscriptionUpdate, UsageType,
};
pub use seed::{
    CompanySeed, SeedReport, SeedRequest, SeededCustomer, SeededPrice, SeededSubscription,
};
pub use server::{RunningSandbox, Sandbox};
pub use signature::{signature_header, v1_signature};
pub use world::{DeliveryReport, Faults, RequestCounters};
