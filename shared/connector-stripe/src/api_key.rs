//! Checking an API key an admin pasted, before it is stored: it must read customers and
//! subscriptions (what a sync needs). The account it belongs to is learned when the key
//! may read it (`GET /v1/account`, restricted-key permission `account_read`).

use connector::provider::ProviderResult;
use connector::{ErrorCode, ProviderAccountId, Secret};
use serde::Deserialize;

use crate::auth::{StripeAuth, StripeSession, key_is_live};
use crate::client::StripeClient;

/// What a working key told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyCheck {
    /// `None` when the key may not read its account.
    pub account: Option<ProviderAccountId>,
    pub livemode: bool,
}

/// Secret (`sk_`) and restricted (`rk_`) keys, test or live; publishable keys are useless.
pub fn looks_like_api_key(key: &str) -> bool {
    ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix))
}

#[derive(Deserialize)]
struct AccountObject {
    id: String,
}

impl StripeClient {
    /// Two one-item reads (customers, subscriptions of any status) with `key`. A refused
    /// key fails with `oauth_revoked` (401), a missing permission with `permission_denied`
    /// (403), as the sync itself would.
    pub async fn check_api_key(&self, key: &Secret) -> ProviderResult<ApiKeyCheck> {
        let session = StripeSession::new(StripeAuth::ApiKey(key.clone()));
        let one = |extra: &[(&str, &str)]| {
            let mut q = vec![("limit".to_owned(), "1".to_owned())];
            q.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            q
        };
        self.get_raw(&session, "/v1/customers", &one(&[])).await?;
        self.get_raw(&session, "/v1/subscriptions", &one(&[("status", "all")]))
            .await?;
        let account = match self
            .get::<AccountObject>(&session, "/v1/account", &[])
            .await
        {
            Ok(account) => ProviderAccountId::parse(account.id).ok(),
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::RateLimited | ErrorCode::ProviderUnavailable
                ) =>
            {
                return Err(e);
            }
            Err(e) => {
                tracing::debug!(code = %e.code, "the API key may not read its account");
                None
            }
        };
        Ok(ApiKeyCheck {
            account,
            livemode: key_is_live(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_secret_and_restricted_keys_look_like_api_keys() {
        for good in ["sk_test_1", "rk_live_abc", "sk_live_x", "rk_test_y"] {
            assert!(looks_like_api_key(good), "{good}");
        }
        for bad in ["pk_test_1", "sk_test_", "whsec_1", "", "ca_1", "rk_x"] {
            assert!(!looks_like_api_key(bad), "{bad}");
        }
    }
}
