//! Stripe provider: API-key and OAuth auth, a paged client with rate limiting,
//! `Stripe-Signature` checks, and MRR normalisation.

pub mod mrr;
pub mod ratio;
pub mod types;
pub mod webhook;
