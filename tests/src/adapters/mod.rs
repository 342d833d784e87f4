//! One factory per adapter, each giving a fresh, isolated instance (own file, table or queue).

mod dynamodb_store;
mod embedded_store;
mod queues;

pub use dynamodb_store::*;
pub use embedded_store::*;
pub use queues::*;
