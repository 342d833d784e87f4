//! Authorization codes, access tokens and refresh tokens of the installed app.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use crate::config::DEFAULT_SCOPES;
use crate::error::correlation_id;

const CODE_TTL_MS: i64 = 10 * 60 * 1000;

#[derive(Clone, Debug)]
pub struct AuthCode {
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub expires_ms: i64,
}

#[derive(Clone, Debug)]
pub struct AccessToken {
    pub refresh_token: String,
    pub scopes: Vec<String>,
    pub expires_ms: i64,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub scopes: Vec<String>,
    pub revoked: bool,
}

/// Why a bearer token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Unknown,
    Expired { expired_ms: i64 },
}

/// A token-endpoint failure: HTTP 400 with both the legacy and the RFC 6749 fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub status: &'static str,
    pub message: String,
}

impl OAuthError {
    fn new(error: &'static str, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            error,
            status,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "error": self.error,
            "error_description": self.message,
            "status": self.status,
            "message": self.message,
            "correlationId": correlation_id(),
        })
    }
}

/// Minted tokens, in the shape of the token endpoint's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub scopes: Vec<String>,
}

#[derive(Default)]
pub struct OAuthState {
    pub codes: HashMap<String, AuthCode>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    /// Scopes taken away from the installation (every token, present and future).
    pub removed_scopes: BTreeSet<String>,
}

pub fn parse_scopes(raw: Option<&str>) -> Vec<String> {
    raw.map(|s| {
        s.split([' ', '+', ','])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn random_token(rng: &mut StdRng, prefix: &str, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.r#gen::<u8>()).collect();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

fn random_uuid(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.r#gen();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl OAuthState {
    pub fn issue_code(
        &mut self,
        rng: &mut StdRng,
        redirect_uri: &str,
        scopes: Vec<String>,
        now_ms: i64,
    ) -> String {
        let code = random_uuid(rng);
        let scopes = if scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            scopes
        };
        self.codes.insert(
            code.clone(),
            AuthCode {
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                expires_ms: now_ms + CODE_TTL_MS,
            },
        );
        code
    }

    fn mint_access(
        &mut self,
        rng: &mut StdRng,
        refresh_token: &str,
        scopes: &[String],
        ttl_secs: u64,
        now_ms: i64,
    ) -> String {
        let access = random_token(rng, "CN", 96);
        self.access.insert(
            access.clone(),
            AccessToken {
                refresh_token: refresh_token.to_owned(),
                scopes: scopes.to_vec(),
                expires_ms: now_ms + ttl_secs as i64 * 1000,
                revoked: false,
            },
        );
        access
    }

    /// A fresh refresh + access token pair for `scopes` (also used by the control API).
    pub fn grant(
        &mut self,
        rng: &mut StdRng,
        scopes: Vec<String>,
        ttl_secs: u64,
        now_ms: i64,
    ) -> Grant {
        let refresh_token = random_uuid(rng);
        self.refresh.insert(
            refresh_token.clone(),
            RefreshToken {
                scopes: scopes.clone(),
                revoked: false,
            },
        );
        let access_token = self.mint_access(rng, &refresh_token, &scopes, ttl_secs, now_ms);
        Grant {
            access_token,
            refresh_token,
            expires_in: ttl_secs,
            scopes: self.effective(&scopes),
        }
    }

    pub fn exchange_code(
        &mut self,
        rng: &mut StdRng,
        code: &str,
        redirect_uri: Option<&str>,
        ttl_secs: u64,
        now_ms: i64,
    ) -> Result<Grant, OAuthError> {
        let Some(issued) = self.codes.remove(code) else {
            return Err(OAuthError::new(
                "invalid_grant",
                "BAD_AUTH_CODE",
                "missing or unknown auth code",
            ));
        };
        if issued.expires_ms < now_ms {
            return Err(OAuthError::new(
                "invalid_grant",
                "BAD_AUTH_CODE",
                "auth code is expired",
            ));
        }
        if redirect_uri != Some(issued.redirect_uri.as_str()) {
            return Err(OAuthError::new(
                "invalid_grant",
                "BAD_REDIRECT_URI",
                "redirect_uri does not match the one used to authorize",
            ));
        }
        Ok(self.grant(rng, issued.scopes, ttl_secs, now_ms))
    }

    /// Refreshing keeps the refresh token (HubSpot returns the same value).
    pub fn refresh(
        &mut self,
        rng: &mut StdRng,
        refresh_token: &str,
        ttl_secs: u64,
        now_ms: i64,
    ) -> Result<Grant, OAuthError> {
        let Some(stored) = self.refresh.get(refresh_token).filter(|r| !r.revoked) else {
            return Err(OAuthError::new(
                "invalid_grant",
                "BAD_REFRESH_TOKEN",
                "refresh token is invalid, expired or revoked",
            ));
        };
        let scopes = stored.scopes.clone();
        let access_token = self.mint_access(rng, refresh_token, &scopes, ttl_secs, now_ms);
        Ok(Grant {
            access_token,
            refresh_token: refresh_token.to_owned(),
            expires_in: ttl_secs,
            scopes: self.effective(&scopes),
        })
    }

    pub fn effective(&self, scopes: &[String]) -> Vec<String> {
        scopes
            .iter()
            .filter(|s| !self.removed_scopes.contains(*s))
            .cloned()
            .collect()
    }

    /// Checks a bearer token and returns its effective scopes.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<String>, TokenProblem> {
        let token = token.ok_or(TokenProblem::Missing)?;
        let stored = self
            .access
            .get(token)
            .filter(|t| !t.revoked)
            .ok_or(TokenProblem::Unknown)?;
        if stored.expires_ms <= now_ms {
            return Err(TokenProblem::Expired {
                expired_ms: stored.expires_ms,
            });
        }
        Ok(self.effective(&stored.scopes))
    }

    /// Revokes one refresh token (and the access tokens minted from it), or everything.
    pub fn revoke(&mut self, refresh_token: Option<&str>) -> usize {
        let mut count = 0;
        for (value, token) in &mut self.refresh {
            if refresh_token.is_none_or(|r| r == value) && !token.revoked {
                token.revoked = true;
                count += 1;
            }
        }
        for token in self.access.values_mut() {
            if refresh_token.is_none_or(|r| r == token.refresh_token) {
                token.revoked = true;
            }
        }
        count
    }

    /// Makes every live access token expire now (as if 30 minutes had passed).
    pub fn expire_access_tokens(&mut self, now_ms: i64) -> usize {
        let mut count = 0;
        for token in self.access.values_mut() {
            if token.expires_ms > now_ms {
                token.expires_ms = now_ms;
                count += 1;
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn scopes() -> Vec<String> {
        vec!["oauth".into(), "crm.objects.companies.read".into()]
    }

    #[test]
    fn a_code_is_single_use_and_bound_to_its_redirect() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut s = OAuthState::default();
        let code = s.issue_code(&mut rng, "http://127.0.0.1:9/cb", scopes(), 0);
        let wrong = s.exchange_code(&mut rng, &code, Some("http://127.0.0.1:9/other"), 1800, 1);
        assert_eq!(wrong.map_err(|e| e.status), Err("BAD_REDIRECT_URI"));
        let code = s.issue_code(&mut rng, "http://127.0.0.1:9/cb", scopes(), 0);
        let grant = s.exchange_code(&mut rng, &code, Some("http://127.0.0.1:9/cb"), 1800, 1);
        assert!(grant.is_ok());
        let again = s.exchange_code(&mut rng, &code, Some("http://127.0.0.1:9/cb"), 1800, 1);
        assert_eq!(again.map_err(|e| e.error), Err("invalid_grant"));
    }

    #[test]
    fn tokens_expire_refresh_keeps_the_refresh_token_and_revocation_is_permanent() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut s = OAuthState::default();
        let grant = s.grant(&mut rng, scopes(), 1800, 0);
        assert_eq!(
            s.authenticate(Some(&grant.access_token), 1_799_999),
            Ok(scopes())
        );
        assert_eq!(
            s.authenticate(Some(&grant.access_token), 1_800_000),
            Err(TokenProblem::Expired {
                expired_ms: 1_800_000
            })
        );
        let refreshed = s.refresh(&mut rng, &grant.refresh_token, 1800, 1_800_000);
        assert_eq!(
            refreshed.as_ref().map(|g| g.refresh_token.clone()),
            Ok(grant.refresh_token.clone())
        );
        s.revoke(None);
        assert_eq!(
            s.refresh(&mut rng, &grant.refresh_token, 1800, 0)
                .map_err(|e| e.status),
            Err("BAD_REFRESH_TOKEN")
        );
        assert_eq!(s.authenticate(None, 0), Err(TokenProblem::Missing));
    }

    #[test]
    fn a_removed_scope_disappears_from_every_token() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut s = OAuthState::default();
        let grant = s.grant(&mut rng, scopes(), 1800, 0);
        s.removed_scopes.insert("crm.objects.companies.read".into());
        assert_eq!(
            s.authenticate(Some(&grant.access_token), 1),
            Ok(vec!["oauth".to_owned()])
        );
    }
}
