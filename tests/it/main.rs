//! All integration tests in one binary (one link, one moto_server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_queries;
mod artifacts;
mod conformance_queue;
mod conformance_store;
mod e2e_hubspot;
mod e2e_push;
mod e2e_stripe;
mod engine_intake;
mod engine_passes;
mod record_batches;
mod simulation;
