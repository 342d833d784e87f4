//! The port conformance suites: the same checks, run once per adapter by the macros in
//! `tests/it/conformance_*.rs`.

pub mod queue;
pub mod store;
