//! The integration sync service's domain, with no Lambda or AWS types in it.
//!
//! - [`model`]: what the service stores (tenants, connections, customers, contacts,
//!   source links, log entries, pending matches, sync runs) and the values inside them.
//! - [`ports`]: the state store and the job queue, each with a DynamoDB/SQS adapter
//!   (`connector-aws`) and an embedded SQLite adapter (`connector-embedded`).

pub mod backoff;
pub mod crypto;
pub mod engine;
pub mod model;
pub mod ports;
pub mod provider;
pub mod rate_limit;

pub use model::*;
