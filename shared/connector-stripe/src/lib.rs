//! Stripe provider (in progress).
