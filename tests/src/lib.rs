//! The test harness shared by every integration test: moto_server for DynamoDB and SQS,
//! factories for each port adapter, and the conformance suites run against all of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod adapters;
pub mod bare_rig;
pub mod captured_logs;
pub mod conformance;
pub mod faults;
pub mod lambda;
pub mod moto;
pub mod sim;
pub mod waiting;
