//! The two ports of the engine. Each has a DynamoDB/SQS adapter (`connector-aws`) and an
//! embedded SQLite adapter (`connector-embedded`); one conformance suite
//! (`tests/src/conformance`) runs against both.

mod queue;
mod store;

pub use queue::*;
pub use store::*;
