//! Connect OAuth (contract §1.2): the authorize URL, the code exchange, refreshes (whose
//! refresh tokens rotate: the newest is always kept) and deauthorization. Token calls are
//! authenticated with the platform's secret key.

use connector::provider::{ProviderError, ProviderResult};
use connector::{ErrorCode, ProviderAccountId, Timestamp};
use url::Url;

use crate::auth::{OAuthTokens, StripeAuth};
use crate::client::StripeClient;
use crate::error::{RetryHints, classify_oauth, internal, transport};
use crate::types::OAuthToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthScope {
    ReadOnly,
    ReadWrite,
}

impl OAuthScope {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthScope::ReadOnly => "read_only",
            OAuthScope::ReadWrite => "read_write",
        }
    }
}

/// A completed authorization: what to store on the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthGrant {
    /// Seal this into the connection's `credentials`.
    pub auth: StripeAuth,
    /// `stripe_user_id`: the connection's `account_id`; webhooks are routed by it.
    pub account: ProviderAccountId,
    pub livemode: bool,
    pub scope: Option<String>,
}

impl StripeClient {
    /// Where to send the admin to connect their Stripe account. `state` is the caller's
    /// single-use CSRF token; Stripe echoes it on the redirect.
    pub fn authorize_url(&self, state: &str, scope: OAuthScope) -> ProviderResult<String> {
        let config = self.config();
        let client_id = config
            .client_id
            .as_deref()
            .ok_or_else(|| internal("Stripe OAuth needs a client_id (ca_...)"))?;
        let mut url = Url::parse(&format!("{}/oauth/authorize", config.connect_base))
            .map_err(|e| internal(format!("connect_base is not a URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", client_id);
            q.append_pair("scope", scope.as_str());
            q.append_pair("state", state);
            if let Some(redirect) = &config.redirect_uri {
                q.append_pair("redirect_uri", redirect);
            }
        }
        Ok(url.to_string())
    }

    /// Exchanges the `code` from the redirect for tokens.
    pub async fn exchange_code(&self, code: &str) -> ProviderResult<OAuthGrant> {
        let token = self
            .token_call(&[("grant_type", "authorization_code"), ("code", code)])
            .await?;
        let account = ProviderAccountId::parse(token.stripe_user_id.clone())
            .map_err(|e| internal(format!("Stripe sent an unusable stripe_user_id: {e}")))?;
        let tokens = OAuthTokens {
            access_token: token.access_token,
            refresh_token: token.refresh_token,
            account: account.clone(),
            livemode: token.livemode,
            scope: token.scope.clone(),
            obtained_at: Timestamp::now(),
        };
        Ok(OAuthGrant {
            auth: StripeAuth::OAuth(tokens),
            account,
            livemode: token.livemode,
            scope: token.scope,
        })
    }

    /// New tokens for `tokens`. The answer's refresh token replaces the old one (which
    /// Stripe has just invalidated); a refused refresh is `oauth_revoked`.
    pub async fn refresh_tokens(&self, tokens: &OAuthTokens) -> ProviderResult<OAuthTokens> {
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(ProviderError::new(
                ErrorCode::OauthRevoked,
                "the Stripe access token was refused and there is no refresh token",
            ));
        };
        let token = self
            .token_call(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ])
            .await?;
        if token.stripe_user_id != tokens.account.as_str() {
            return Err(internal("Stripe refreshed a token for another account"));
        }
        Ok(OAuthTokens {
            access_token: token.access_token,
            // Rotation: keep the newest; fall back to the old one only if none was sent.
            refresh_token: token.refresh_token.or_else(|| tokens.refresh_token.clone()),
            account: tokens.account.clone(),
            livemode: token.livemode,
            scope: token.scope.or_else(|| tokens.scope.clone()),
            obtained_at: Timestamp::now(),
        })
    }

    /// Disconnects an account from the platform (the admin pressed Disconnect).
    pub async fn deauthorize(&self, account: &ProviderAccountId) -> ProviderResult<()> {
        let config = self.config();
        let client_id = config
            .client_id
            .as_deref()
            .ok_or_else(|| internal("Stripe OAuth needs a client_id (ca_...)"))?;
        self.oauth_post(
            "/oauth/deauthorize",
            &[
                ("client_id", client_id),
                ("stripe_user_id", account.as_str()),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> ProviderResult<OAuthToken> {
        let body = self.oauth_post("/oauth/token", form).await?;
        // The answer carries tokens: the parser's message (which quotes values) is not kept.
        serde_json::from_str(&body).map_err(|e| {
            internal(format!(
                "unexpected OAuth token response (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    async fn oauth_post(&self, path: &str, form: &[(&str, &str)]) -> ProviderResult<String> {
        let config = self.config();
        let response = self
            .http()
            .post(format!("{}{}", config.connect_base, path))
            .bearer_auth(config.secret_key.expose())
            .form(form)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let hints = RetryHints::from_headers(response.headers());
        let body = response.text().await.map_err(|e| transport(&e))?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            // Never keep an auth endpoint's body: the error's message says what it refused.
            let mut refused = classify_oauth(status, &body, hints);
            refused.body = None;
            Err(refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StripeConfig;
    use connector::Secret;

    #[test]
    fn the_authorize_url_carries_client_id_scope_and_state() {
        let mut config = StripeConfig::new(Secret::new("sk_test_platform"));
        config.client_id = Some("ca_123".into());
        config.redirect_uri = Some("https://app.example/oauth/stripe/callback".into());
        let client = StripeClient::new(config).expect("client builds");
        let url = client
            .authorize_url("st&ate=1", OAuthScope::ReadOnly)
            .expect("url");
        let parsed = Url::parse(&url).expect("valid url");
        assert_eq!(parsed.host_str(), Some("connect.stripe.com"));
        assert_eq!(parsed.path(), "/oauth/authorize");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("client_id".into(), "ca_123".into())));
        assert!(pairs.contains(&("scope".into(), "read_only".into())));
        assert!(pairs.contains(&("state".into(), "st&ate=1".into())));
        assert!(pairs.contains(&("response_type".into(), "code".into())));
    }

    #[test]
    fn without_a_client_id_there_is_no_authorize_url() {
        let client =
            StripeClient::new(StripeConfig::new(Secret::new("sk_test_x"))).expect("client builds");
        assert!(client.authorize_url("s", OAuthScope::ReadOnly).is_err());
    }
}
