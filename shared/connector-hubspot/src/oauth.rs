//! OAuth: the authorize URL, the code exchange, and access tokens refreshed before they
//! expire, one refresh at a time per connection.

use std::time::Duration;

use connector::crypto::{CredentialOwner, CryptoError};
use connector::ports::StoreError;
use connector::provider::{ProviderError, ProviderResult};
use connector::{Connection, ErrorCode, ProviderAccountId, SealedCredentials, Secret, Timestamp};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::error;
use crate::http::{Budget, Call, ErrorStyle};
use crate::wire::{AccessTokenInfo, TokenResponse, id_text};
use crate::{HubSpotConfig, HubSpotProvider};

/// What an install produced: the portal, the scopes granted and the sealed tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedAccount {
    /// The portal (hub) id, from token introspection.
    pub account_id: ProviderAccountId,
    pub scopes: Vec<String>,
    pub credentials: SealedCredentials,
}

/// The tokens as sealed into [`Connection::credentials`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub access_token: Secret,
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub refresh_token: Secret,
    pub expires_at: Timestamp,
}

impl StoredTokens {
    fn from_response(
        response: TokenResponse,
        previous_refresh: Option<&Secret>,
        now: Timestamp,
    ) -> ProviderResult<Self> {
        let refresh_token = match (response.refresh_token, previous_refresh) {
            (Some(r), _) => Secret::new(r),
            // HubSpot keeps the refresh token; if the answer omits it, the old one stands.
            (None, Some(previous)) => previous.clone(),
            (None, None) => {
                return Err(error::internal(
                    "HubSpot's token answer has no refresh_token",
                ));
            }
        };
        let lifetime = Duration::from_secs(u64::try_from(response.expires_in).unwrap_or(0));
        Ok(Self {
            access_token: Secret::new(response.access_token),
            refresh_token,
            expires_at: now.plus(lifetime),
        })
    }

    fn usable_at(&self, now: Timestamp, margin: Duration) -> bool {
        now.plus(margin) < self.expires_at
    }
}

/// `quote(s, safe='')`: everything but letters, digits and `_.-~` is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

fn revoked(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::OauthRevoked, message)
}

fn store_failure(e: &StoreError) -> ProviderError {
    error::internal(format!("reading or writing the connection's tokens: {e}"))
}

fn unreadable(e: &CryptoError) -> ProviderError {
    // Tokens we cannot open (the key changed, or they were damaged) are as good as
    // revoked: the admin has to connect again.
    revoked(format!("stored tokens cannot be opened: {e}"))
}

/// Built like HubSpot's own SDK builds it (`hubspot.utils.oauth.get_auth_url`), with
/// `extra_scopes` (the write scopes a pushing connection needs) required too.
fn authorize_url(config: &HubSpotConfig, state: &str, extra_scopes: &[String]) -> String {
    let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    let mut scopes = config.scopes.clone();
    for extra in extra_scopes {
        if !scopes.contains(extra) {
            scopes.push(extra.clone());
        }
    }
    let mut url = format!(
        "{}/oauth/authorize?client_id={}&redirect_uri={}&scope={}",
        config.authorize_base,
        enc(&config.client_id),
        enc(&config.redirect_uri),
        enc(&scopes.join(" ")),
    );
    if !config.optional_scopes.is_empty() {
        url.push_str("&optional_scope=");
        url.push_str(&enc(&config.optional_scopes.join(" ")));
    }
    url.push_str("&state=");
    url.push_str(&enc(state));
    url
}

impl HubSpotProvider {
    /// Where to send the admin's browser to install the app (asking for `extra_scopes`
    /// beside the read scopes). `state` comes back unchanged.
    pub fn authorize_url(&self, state: &str, extra_scopes: &[String]) -> String {
        authorize_url(&self.inner.config, state, extra_scopes)
    }

    async fn token_call(&self, form: Vec<(&'static str, String)>) -> ProviderResult<TokenResponse> {
        let call = Call::post_form("/oauth/v1/token", form);
        self.inner
            .api
            .send("oauth", Budget::Unmetered, None, &call, ErrorStyle::Token)
            .await?
            .json()
    }

    /// Exchanges the code from the OAuth redirect for tokens, and learns the portal and
    /// the granted scopes from the token's metadata.
    pub async fn exchange_code(
        &self,
        code: &str,
        owner: CredentialOwner<'_>,
    ) -> ProviderResult<AuthorizedAccount> {
        let config = &self.inner.config;
        let now = Timestamp::now();
        let response = self
            .token_call(vec![
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", config.client_id.clone()),
                ("client_secret", config.client_secret.expose().to_owned()),
                ("redirect_uri", config.redirect_uri.clone()),
                ("code", code.to_owned()),
            ])
            .await?;
        let tokens = StoredTokens::from_response(response, None, now)?;
        let info: AccessTokenInfo = self
            .inner
            .api
            .send(
                "oauth",
                Budget::Unmetered,
                None,
                &Call::get(format!(
                    "/oauth/v1/access-tokens/{}",
                    utf8_percent_encode(tokens.access_token.expose(), QUERY_VALUE)
                )),
                ErrorStyle::Token,
            )
            .await?
            .json()?;
        let hub_id = id_text(&info.hub_id)
            .ok_or_else(|| error::internal("token metadata without hub_id"))?;
        let account_id =
            ProviderAccountId::parse(hub_id).map_err(|e| error::internal(e.to_string()))?;
        let credentials = self
            .inner
            .cipher
            .seal(&tokens, owner)
            .map_err(|e| error::internal(format!("sealing tokens: {e}")))?;
        Ok(AuthorizedAccount {
            account_id,
            scopes: info.scopes,
            credentials,
        })
    }

    fn open_tokens(&self, connection: &Connection) -> ProviderResult<StoredTokens> {
        let sealed = connection
            .credentials
            .as_ref()
            .ok_or_else(|| revoked("the connection has no tokens"))?;
        self.inner
            .cipher
            .open(sealed, connection.credential_owner())
            .map_err(|e| unreadable(&e))
    }

    /// The connection's tokens, or fresher ones this process refreshed since `connection`
    /// was read.
    fn known_tokens(&self, connection: &Connection) -> ProviderResult<StoredTokens> {
        let own = self.open_tokens(connection)?;
        let cached = self.inner.tokens.lock().get(&connection.id).cloned();
        Ok(match cached {
            Some(cached) if cached.expires_at > own.expires_at => cached,
            _ => own,
        })
    }

    fn remember(&self, connection: &Connection, tokens: &StoredTokens) {
        self.inner
            .tokens
            .lock()
            .insert(connection.id.clone(), tokens.clone());
    }

    /// A usable access token for `connection`, refreshed first when it has less than the
    /// configured margin left.
    pub async fn access_token(&self, connection: &Connection) -> ProviderResult<Secret> {
        let tokens = self.known_tokens(connection)?;
        if tokens.usable_at(Timestamp::now(), self.inner.config.refresh_margin) {
            return Ok(tokens.access_token);
        }
        self.refresh(connection, &tokens.access_token).await
    }

    /// Replaces `stale` (expiring, or just refused with a 401) with a fresh access token.
    ///
    /// Single flight: in this process one refresh per connection runs at a time, and whoever
    /// waited finds the new token. Across processes, the store's version check decides: the
    /// loser of the write re-reads the connection and uses the winner's tokens.
    pub(crate) async fn refresh(
        &self,
        connection: &Connection,
        stale: &Secret,
    ) -> ProviderResult<Secret> {
        let lock = self
            .inner
            .refresh_locks
            .lock()
            .entry(connection.id.clone())
            .or_default()
            .clone();
        let _only_one = lock.lock().await;
        let margin = self.inner.config.refresh_margin;

        if let Some(cached) = self.inner.tokens.lock().get(&connection.id).cloned()
            && cached.access_token != *stale
            && cached.usable_at(Timestamp::now(), margin)
        {
            return Ok(cached.access_token);
        }
        let mut stored = self.read_connection(connection).await?;
        let current = self.open_tokens(&stored)?;
        if current.access_token != *stale && current.usable_at(Timestamp::now(), margin) {
            self.remember(connection, &current);
            return Ok(current.access_token);
        }

        let now = Timestamp::now();
        let config = &self.inner.config;
        tracing::info!(connection_id = %connection.id, "refreshing the HubSpot access token");
        let response = self
            .token_call(vec![
                ("grant_type", "refresh_token".to_owned()),
                ("client_id", config.client_id.clone()),
                ("client_secret", config.client_secret.expose().to_owned()),
                ("refresh_token", current.refresh_token.expose().to_owned()),
            ])
            .await?;
        let fresh = StoredTokens::from_response(response, Some(&current.refresh_token), now)?;
        let sealed = self
            .inner
            .cipher
            .seal(&fresh, connection.credential_owner())
            .map_err(|e| error::internal(format!("sealing tokens: {e}")))?;

        for _ in 0..5 {
            stored.credentials = Some(sealed.clone());
            match self.inner.store.put_connection(&stored).await {
                Ok(_) => {
                    self.remember(connection, &fresh);
                    return Ok(fresh.access_token);
                }
                Err(StoreError::VersionConflict { .. }) => {
                    stored = self.read_connection(connection).await?;
                    let theirs = self.open_tokens(&stored)?;
                    if theirs.access_token != current.access_token
                        && theirs.usable_at(Timestamp::now(), margin)
                    {
                        // Another process refreshed first: its tokens are the stored ones.
                        self.remember(connection, &theirs);
                        return Ok(theirs.access_token);
                    }
                    // Someone changed something else on the connection: write ours again.
                }
                Err(e) => return Err(store_failure(&e)),
            }
        }
        Err(error::internal(
            "the connection kept changing while its tokens were refreshed",
        ))
    }

    async fn read_connection(&self, connection: &Connection) -> ProviderResult<Connection> {
        self.inner
            .store
            .get_connection(&connection.tenant_id, &connection.id)
            .await
            .map_err(|e| store_failure(&e))?
            .ok_or_else(|| revoked("the connection no longer exists"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_matches_the_official_sdks() {
        let mut config =
            HubSpotConfig::production("cid", Secret::new("s"), "https://app.example.com/cb");
        config.scopes = vec!["oauth".into(), "crm.objects.companies.read".into()];
        config.optional_scopes = vec!["crm.lists.read".into()];
        assert_eq!(
            authorize_url(&config, "xyz", &[]),
            "https://app.hubspot.com/oauth/authorize?client_id=cid&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=oauth%20crm.objects.companies.read&optional_scope=crm.lists.read&state=xyz"
        );
        config.optional_scopes.clear();
        assert!(!authorize_url(&config, "a b", &[]).contains("optional_scope"));
        assert!(authorize_url(&config, "a b", &[]).ends_with("&state=a%20b"));
        let writes = ["crm.objects.contacts.write".to_owned(), "oauth".to_owned()];
        assert!(
            authorize_url(&config, "s", &writes)
                .contains("scope=oauth%20crm.objects.companies.read%20crm.objects.contacts.write&")
        );
    }

    #[test]
    fn tokens_need_the_margin_left_to_be_usable() {
        let t = StoredTokens {
            access_token: Secret::new("a"),
            refresh_token: Secret::new("r"),
            expires_at: Timestamp::from_secs(1_000),
        };
        let margin = Duration::from_secs(300);
        assert!(t.usable_at(Timestamp::from_secs(699), margin));
        assert!(!t.usable_at(Timestamp::from_secs(700), margin));
    }

    #[test]
    fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
        let response = TokenResponse {
            access_token: "new".into(),
            refresh_token: None,
            expires_in: 1800,
        };
        let old = Secret::new("rt-old");
        let t = StoredTokens::from_response(response, Some(&old), Timestamp::from_secs(0))
            .expect("valid");
        assert_eq!(t.refresh_token, old);
        assert_eq!(t.expires_at, Timestamp::from_secs(1800));
    }
}
