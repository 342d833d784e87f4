//! The domain model. Every external value enters through a `parse` constructor.

mod conflict;
mod connection;
mod contact;
mod customer;
mod direction;
mod error_code;
mod ids;
mod job;
mod log;
mod mapping;
mod matching;
mod money;
mod notification;
mod secret;
mod source_link;
mod sync_run;
mod tenant;
mod timestamp;

pub use conflict::*;
pub use connection::*;
pub use contact::*;
pub use customer::*;
pub use direction::*;
pub use error_code::*;
pub use ids::*;
pub use job::*;
pub use log::*;
pub use mapping::*;
pub use matching::*;
pub use money::*;
pub use notification::*;
pub use secret::*;
pub use source_link::*;
pub use sync_run::*;
pub use tenant::*;
pub use timestamp::*;

/// A value from outside that does not parse into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct ParseError {
    pub what: &'static str,
    pub reason: String,
}

impl ParseError {
    pub fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}
