//! How a tenant's Stripe account is reached, and the per-connection session that holds it
//! while calls are made (OAuth tokens refresh, and their refresh tokens rotate).

use std::sync::atomic::{AtomicBool, Ordering};

use connector::crypto::{CredentialOwner, CryptoError, TokenCipher};
use connector::{ProviderAccountId, SealedCredentials, Secret, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A Connect OAuth grant. `refresh_token` rotates on every refresh: only the newest works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokens {
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub access_token: Secret,
    #[serde(serialize_with = "Secret::serialize_exposed_option")]
    pub refresh_token: Option<Secret>,
    /// `stripe_user_id`: the connected account.
    pub account: ProviderAccountId,
    pub livemode: bool,
    pub scope: Option<String>,
    /// When `access_token` was issued (for proactive refresh of hour-long tokens).
    pub obtained_at: Timestamp,
}

/// The credentials of one connection; sealed with [`TokenCipher`] into the connection's
/// `credentials`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum StripeAuth {
    /// A restricted (`rk_...`) or secret key of the tenant's account, pasted by the admin.
    ApiKey(#[serde(serialize_with = "Secret::serialize_exposed")] Secret),
    /// An OAuth grant; calls use its access token.
    OAuth(OAuthTokens),
    /// Our platform key acting on a connected account with `Stripe-Account`.
    ConnectedAccount {
        account: ProviderAccountId,
        livemode: bool,
    },
}

impl StripeAuth {
    /// Live or test mode: from the key's prefix, or what the grant said.
    pub fn livemode(&self) -> bool {
        match self {
            StripeAuth::ApiKey(key) => key_is_live(key),
            StripeAuth::OAuth(tokens) => tokens.livemode,
            StripeAuth::ConnectedAccount { livemode, .. } => *livemode,
        }
    }

    /// The Stripe account, when the credentials name it (an API key does not).
    pub fn account_id(&self) -> Option<&ProviderAccountId> {
        match self {
            StripeAuth::ApiKey(_) => None,
            StripeAuth::OAuth(tokens) => Some(&tokens.account),
            StripeAuth::ConnectedAccount { account, .. } => Some(account),
        }
    }
}

/// What a Stripe connection's `credentials` hold once sealed: how to reach the account
/// and, for an API-key connection, the signing secret of that account's own webhook
/// endpoint (`whsec_...`). Sealed bare [`StripeAuth`] values open as credentials without
/// a webhook secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeCredentials {
    #[serde(flatten)]
    pub auth: StripeAuth,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "Secret::serialize_exposed_option"
    )]
    pub webhook_secret: Option<Secret>,
}

impl StripeCredentials {
    pub fn new(auth: StripeAuth, webhook_secret: Option<Secret>) -> Self {
        Self {
            auth,
            webhook_secret,
        }
    }

    pub fn seal(
        &self,
        cipher: &TokenCipher,
        owner: CredentialOwner<'_>,
    ) -> Result<SealedCredentials, CryptoError> {
        cipher.seal(self, owner)
    }

    pub fn open(
        sealed: &SealedCredentials,
        cipher: &TokenCipher,
        owner: CredentialOwner<'_>,
    ) -> Result<Self, CryptoError> {
        cipher.open(sealed, owner)
    }
}

/// `sk_live_...` / `rk_live_...` are live keys; everything else is test mode.
pub fn key_is_live(key: &Secret) -> bool {
    let k = key.expose();
    k.starts_with("sk_live_") || k.starts_with("rk_live_")
}

/// What one request is sent with.
#[derive(Clone, Debug)]
pub(crate) struct RequestAuth {
    pub bearer: Secret,
    pub stripe_account: Option<String>,
    /// Set when the bearer is an OAuth access token that a refresh could replace.
    pub refreshable: bool,
}

/// One connection's credentials while it is being synced. Concurrent calls share it; a
/// refresh happens once (under the lock) and every caller then uses the new token. After
/// a refresh, [`StripeSession::take_updated`] hands the new credentials to whoever stores
/// them: the old refresh token no longer works.
#[derive(Debug)]
pub struct StripeSession {
    auth: tokio::sync::Mutex<StripeAuth>,
    updated: AtomicBool,
    rate_key: String,
    livemode: bool,
    /// Kept so that credentials re-sealed after a refresh still carry it.
    webhook_secret: Option<Secret>,
}

impl StripeSession {
    pub fn new(auth: StripeAuth) -> Self {
        let rate_key = match (&auth, auth.account_id()) {
            (_, Some(account)) => account.as_str().to_owned(),
            // No account id with a bare key: key the limiter by a digest of the key.
            (StripeAuth::ApiKey(key), None) => {
                let digest = Sha256::digest(key.expose().as_bytes());
                format!("key:{}", hex::encode(&digest[..8]))
            }
            (_, None) => "unknown".to_owned(),
        };
        Self {
            livemode: auth.livemode(),
            auth: tokio::sync::Mutex::new(auth),
            updated: AtomicBool::new(false),
            rate_key,
            webhook_secret: None,
        }
    }

    /// A session from a connection's sealed credentials ([`StripeCredentials`]).
    pub fn open(
        sealed: &SealedCredentials,
        cipher: &TokenCipher,
        owner: CredentialOwner<'_>,
    ) -> Result<Self, CryptoError> {
        let credentials = StripeCredentials::open(sealed, cipher, owner)?;
        let mut session = Self::new(credentials.auth);
        session.webhook_secret = credentials.webhook_secret;
        Ok(session)
    }

    /// The connection's own webhook signing secret, when it has one.
    pub fn webhook_secret(&self) -> Option<&Secret> {
        self.webhook_secret.as_ref()
    }

    pub fn livemode(&self) -> bool {
        self.livemode
    }

    /// The key the client-side rate limiter counts this account under.
    pub fn rate_key(&self) -> &str {
        &self.rate_key
    }

    pub async fn auth(&self) -> StripeAuth {
        self.auth.lock().await.clone()
    }

    /// The credentials as they are now, if a refresh changed them since the last call.
    pub async fn take_updated(&self) -> Option<StripeAuth> {
        if self.updated.swap(false, Ordering::AcqRel) {
            Some(self.auth.lock().await.clone())
        } else {
            None
        }
    }

    pub(crate) fn lock(&self) -> &tokio::sync::Mutex<StripeAuth> {
        &self.auth
    }

    pub(crate) fn mark_updated(&self) {
        self.updated.store(true, Ordering::Release);
    }

    pub(crate) async fn request_auth(&self, platform_key: &Secret) -> RequestAuth {
        request_auth(&*self.auth.lock().await, platform_key)
    }
}

pub(crate) fn request_auth(auth: &StripeAuth, platform_key: &Secret) -> RequestAuth {
    match auth {
        StripeAuth::ApiKey(key) => RequestAuth {
            bearer: key.clone(),
            stripe_account: None,
            refreshable: false,
        },
        StripeAuth::OAuth(tokens) => RequestAuth {
            bearer: tokens.access_token.clone(),
            stripe_account: None,
            refreshable: tokens.refresh_token.is_some(),
        },
        StripeAuth::ConnectedAccount { account, .. } => RequestAuth {
            bearer: platform_key.clone(),
            stripe_account: Some(account.as_str().to_owned()),
            refreshable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use connector::{Connection, Provider, TenantId};

    use super::*;

    fn tokens() -> OAuthTokens {
        OAuthTokens {
            access_token: Secret::new("sk_test_access"),
            refresh_token: Some(Secret::new("rt_1")),
            account: ProviderAccountId::parse("acct_1").expect("valid"),
            livemode: false,
            scope: Some("read_only".into()),
            obtained_at: Timestamp::from_secs(1_700_000_000),
        }
    }

    fn owned() -> Connection {
        Connection::new(
            TenantId::parse("t1").expect("tenant"),
            Provider::Stripe,
            Timestamp::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn credentials_round_trip_through_the_cipher_and_never_show_in_the_sealed_text() {
        let cipher = TokenCipher::from_key_bytes(&[7u8; 32]).expect("valid key");
        let connection = owned();
        for auth in [
            StripeAuth::ApiKey(Secret::new("rk_live_secret_value")),
            StripeAuth::OAuth(tokens()),
            StripeAuth::ConnectedAccount {
                account: ProviderAccountId::parse("acct_2").expect("valid"),
                livemode: true,
            },
        ] {
            let credentials = StripeCredentials::new(auth, None);
            let sealed = credentials
                .seal(&cipher, connection.credential_owner())
                .expect("seals");
            assert!(!sealed.0.contains("secret_value") && !sealed.0.contains("rt_1"));
            assert_eq!(
                StripeCredentials::open(&sealed, &cipher, connection.credential_owner()),
                Ok(credentials)
            );
        }
    }

    #[test]
    fn credentials_keep_the_webhook_secret_and_bare_auth_opens_as_credentials() {
        let cipher = TokenCipher::from_key_bytes(&[7u8; 32]).expect("valid key");
        let connection = owned();
        let owner = connection.credential_owner();
        let with_secret = StripeCredentials::new(
            StripeAuth::ApiKey(Secret::new("rk_test_key")),
            Some(Secret::new("whsec_endpoint")),
        );
        let sealed = with_secret.seal(&cipher, owner).expect("seals");
        assert!(!sealed.0.contains("whsec_endpoint"));
        assert_eq!(
            StripeCredentials::open(&sealed, &cipher, owner),
            Ok(with_secret.clone())
        );
        // A bare auth, as sealed before webhook secrets, opens as credentials without one.
        let bare = cipher
            .seal(&StripeAuth::OAuth(tokens()), owner)
            .expect("seals");
        assert_eq!(
            StripeCredentials::open(&bare, &cipher, owner),
            Ok(StripeCredentials::new(StripeAuth::OAuth(tokens()), None))
        );
        let session = StripeSession::open(&sealed, &cipher, owner).expect("opens");
        assert_eq!(
            session.webhook_secret().map(Secret::expose),
            Some("whsec_endpoint")
        );
    }

    #[test]
    fn the_mode_comes_from_the_key_prefix_or_the_grant() {
        assert!(StripeAuth::ApiKey(Secret::new("rk_live_x")).livemode());
        assert!(StripeAuth::ApiKey(Secret::new("sk_live_x")).livemode());
        assert!(!StripeAuth::ApiKey(Secret::new("rk_test_x")).livemode());
        assert!(!StripeAuth::OAuth(tokens()).livemode());
    }

    #[test]
    fn sessions_are_rate_limited_by_account_or_by_key_digest() {
        assert_eq!(
            StripeSession::new(StripeAuth::OAuth(tokens())).rate_key(),
            "acct_1"
        );
        let a = StripeSession::new(StripeAuth::ApiKey(Secret::new("rk_test_a")));
        let b = StripeSession::new(StripeAuth::ApiKey(Secret::new("rk_test_b")));
        assert!(a.rate_key().starts_with("key:"));
        assert!(!a.rate_key().contains("rk_test"));
        assert_ne!(a.rate_key(), b.rate_key());
    }

    #[test]
    fn connected_account_calls_use_the_platform_key_and_the_account_header() {
        let auth = StripeAuth::ConnectedAccount {
            account: ProviderAccountId::parse("acct_9").expect("valid"),
            livemode: false,
        };
        let r = request_auth(&auth, &Secret::new("sk_test_platform"));
        assert_eq!(r.bearer.expose(), "sk_test_platform");
        assert_eq!(r.stripe_account.as_deref(), Some("acct_9"));
    }
}
