use serde::{Deserialize, Serialize};

use super::{TenantId, Timestamp};

/// A workspace of the B2B product. Every other item is stored under its tenant and no
/// admin call crosses from one tenant into another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}
