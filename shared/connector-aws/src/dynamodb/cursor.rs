//! Page cursors: URL-safe base64 of a small JSON document.
//!
//! A cursor carries only sort-key positions, never a partition key: the partitions are
//! always recomputed from the caller's own tenant, so a cursor handed to another tenant's
//! call can only ever page through that tenant's own items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use connector::ports::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

/// Where a listing that walks its partitions one after another continues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequentialCursor {
    /// Index of the partition to continue in.
    #[serde(rename = "p")]
    pub partition: usize,
    /// The sort key of the last item returned from it, if any.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// Where one shard of a merged (time-ordered) listing stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardPosition {
    /// Nothing taken from this shard yet.
    #[serde(rename = "s")]
    Start,
    /// Continue after (in the listing's order) this sort key.
    #[serde(rename = "a")]
    After(String),
    /// Every item of this shard has been returned.
    #[serde(rename = "d")]
    Done,
}

/// Where a listing that merges its shards by sort key continues: one position per shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedCursor {
    #[serde(rename = "s")]
    pub shards: Vec<ShardPosition>,
}

/// A cursor this adapter did not make (or made for another listing).
fn invalid() -> StoreError {
    StoreError::BadCursor
}

pub fn encode<T: Serialize>(cursor: &T) -> StoreResult<String> {
    let json = serde_json::to_vec(cursor).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

pub fn decode<T: for<'de> Deserialize<'de>>(raw: &str) -> StoreResult<T> {
    let json = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    serde_json::from_slice(&json).map_err(|_| invalid())
}

impl SequentialCursor {
    /// Decodes a cursor for a listing over `partitions` partitions.
    pub fn parse(raw: Option<&str>, partitions: usize) -> StoreResult<Self> {
        let Some(raw) = raw else {
            return Ok(Self {
                partition: 0,
                after: None,
            });
        };
        let cursor: Self = decode(raw)?;
        if cursor.partition >= partitions {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

impl MergedCursor {
    /// Decodes a cursor for a listing merged from `shards` shards.
    pub fn parse(raw: Option<&str>, shards: usize) -> StoreResult<Self> {
        let Some(raw) = raw else {
            return Ok(Self {
                shards: vec![ShardPosition::Start; shards],
            });
        };
        let cursor: Self = decode(raw)?;
        if cursor.shards.len() != shards {
            return Err(invalid());
        }
        Ok(cursor)
    }

    pub fn is_done(&self) -> bool {
        self.shards.iter().all(|s| *s == ShardPosition::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_url_safe_text() {
        let seq = SequentialCursor {
            partition: 3,
            after: Some("0190a#x/y+z".into()),
        };
        let raw = encode(&seq).expect("encodes");
        assert!(
            raw.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(
            SequentialCursor::parse(Some(&raw), 16).expect("parses"),
            seq
        );

        let merged = MergedCursor {
            shards: vec![
                ShardPosition::Start,
                ShardPosition::After("k".into()),
                ShardPosition::Done,
            ],
        };
        let raw = encode(&merged).expect("encodes");
        assert_eq!(MergedCursor::parse(Some(&raw), 3).expect("parses"), merged);
    }

    #[test]
    fn no_cursor_means_the_first_page() {
        assert_eq!(
            SequentialCursor::parse(None, 16).expect("first page"),
            SequentialCursor {
                partition: 0,
                after: None
            }
        );
        let merged = MergedCursor::parse(None, 4).expect("first page");
        assert_eq!(merged.shards, vec![ShardPosition::Start; 4]);
        assert!(!merged.is_done());
    }

    #[test]
    fn garbage_and_mismatched_cursors_are_rejected() {
        assert!(matches!(
            SequentialCursor::parse(Some("not base64 !"), 16),
            Err(StoreError::BadCursor)
        ));
        assert!(SequentialCursor::parse(Some(&URL_SAFE_NO_PAD.encode("{}")), 16).is_err());
        let out_of_range = encode(&SequentialCursor {
            partition: 16,
            after: None,
        })
        .expect("encodes");
        assert!(SequentialCursor::parse(Some(&out_of_range), 16).is_err());
        let two = encode(&MergedCursor {
            shards: vec![ShardPosition::Start; 2],
        })
        .expect("encodes");
        assert!(MergedCursor::parse(Some(&two), 16).is_err());
    }
}
