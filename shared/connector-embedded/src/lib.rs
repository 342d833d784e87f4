//! Embedded adapters of the connector's ports, for local runs: the state store and the
//! job queue live in one SQLite file (WAL mode), each opening its own connection to it.

pub mod queue;
pub mod store;
