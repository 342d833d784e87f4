//! Admin authentication: tokens that name one tenant, signed with the service's admin
//! secret (HMAC-SHA256) and carrying their expiry. Every admin call acts for that tenant
//! only. Four kinds, never interchangeable: the API's bearer token, the console's session
//! cookie, the console's sign-in link, and the product backend's records credential.
//!
//! Format: `<kind>.<tenant>.<expires epoch seconds>.<hex signature of "<kind>.<tenant>.<expires>">`,
//! with kind `v1` (API), `s1` (console session), `l1` (sign-in link) or `r1` (records).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use connector::{Secret, TenantId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("bad token signature")]
    BadSignature,
    #[error("this deployment's admin API has no token secret (ADMIN_TOKEN_SECRET)")]
    NotConfigured,
}

/// What a token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `Authorization: Bearer` on the admin API; also what an admin pastes to sign in.
    Api,
    /// The console's session cookie.
    ConsoleSession,
    /// A console sign-in link (one use, short-lived).
    SignInLink,
    /// The product backend's credential for the records API: a machine's, never an
    /// admin's, and refused everywhere else.
    Records,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Api => "v1",
            TokenKind::ConsoleSession => "s1",
            TokenKind::SignInLink => "l1",
            TokenKind::Records => "r1",
        }
    }
}

/// A verified token: whom it speaks for and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub tenant: TenantId,
    pub expires_at: Timestamp,
}

#[derive(Clone)]
pub struct AdminAuth {
    secret: Secret,
}

impl AdminAuth {
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    fn sign(&self, payload: &str) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// An admin API token.
    pub fn issue(&self, tenant: &TenantId, expires_at: Timestamp) -> Secret {
        self.issue_kind(TokenKind::Api, tenant, expires_at)
    }

    pub fn issue_kind(&self, kind: TokenKind, tenant: &TenantId, expires_at: Timestamp) -> Secret {
        let payload = format!("{}.{tenant}.{}", kind.prefix(), expires_at.as_secs());
        Secret::new(format!("{payload}.{}", hex::encode(self.sign(&payload))))
    }

    /// The tenant an admin API token speaks for.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<TenantId, AuthError> {
        self.verify_kind(TokenKind::Api, token, now)
            .map(|verified| verified.tenant)
    }

    /// Whom a token of `kind` speaks for, after checking its signature (in constant time)
    /// and expiry.
    pub fn verify_kind(
        &self,
        kind: TokenKind,
        token: &str,
        now: Timestamp,
    ) -> Result<Verified, AuthError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let mut parts = payload.split('.');
        let (Some(prefix), Some(tenant), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        if prefix != kind.prefix() {
            return Err(AuthError::Malformed);
        }
        let given = hex::decode(signature).map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| AuthError::BadSignature)?;
        let expires: i64 = expires.parse().map_err(|_| AuthError::Malformed)?;
        if now.as_secs() >= expires {
            return Err(AuthError::Expired);
        }
        Ok(Verified {
            tenant: TenantId::parse(tenant).map_err(|_| AuthError::Malformed)?,
            expires_at: Timestamp::from_secs(expires),
        })
    }

    /// The console's anti-CSRF token for a session: only a page the session was served
    /// can carry it, and it dies with the session.
    pub fn csrf_token(&self, session: &str) -> String {
        hex::encode(self.sign(&format!("csrf.{session}")))
    }

    pub fn check_csrf(&self, session: &str, given: &str) -> bool {
        let Ok(given) = hex::decode(given) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(format!("csrf.{session}").as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_speaks_for_its_tenant_until_it_expires() {
        let auth = AdminAuth::new(Secret::new("k"));
        let tenant = TenantId::parse("acme").unwrap();
        let token = auth.issue(&tenant, Timestamp::from_secs(1000));
        assert_eq!(
            auth.verify(token.expose(), Timestamp::from_secs(999)),
            Ok(tenant)
        );
        assert_eq!(
            auth.verify(token.expose(), Timestamp::from_secs(1000)),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn a_forged_or_mangled_token_is_refused() {
        let auth = AdminAuth::new(Secret::new("k"));
        let other = AdminAuth::new(Secret::new("other"));
        let token = other.issue(
            &TenantId::parse("acme").unwrap(),
            Timestamp::from_secs(1000),
        );
        assert_eq!(
            auth.verify(token.expose(), Timestamp::from_secs(1)),
            Err(AuthError::BadSignature)
        );
        let swapped = token.expose().replace("acme", "evil");
        assert_eq!(
            auth.verify(&swapped, Timestamp::from_secs(1)),
            Err(AuthError::BadSignature)
        );
        for bad in ["", "v1", "v1.acme.10", "v2.acme.10.00", "v1.acme.10.zz"] {
            assert!(auth.verify(bad, Timestamp::from_secs(1)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_of_one_kind_is_refused_as_another() {
        let auth = AdminAuth::new(Secret::new("k"));
        let tenant = TenantId::parse("acme").unwrap();
        let later = Timestamp::from_secs(1000);
        let now = Timestamp::from_secs(1);
        let session = auth.issue_kind(TokenKind::ConsoleSession, &tenant, later);
        let link = auth.issue_kind(TokenKind::SignInLink, &tenant, later);
        assert!(auth.verify(session.expose(), now).is_err());
        assert!(auth.verify(link.expose(), now).is_err());
        assert!(
            auth.verify_kind(TokenKind::ConsoleSession, link.expose(), now)
                .is_err()
        );
        assert_eq!(
            auth.verify_kind(TokenKind::ConsoleSession, session.expose(), now),
            Ok(Verified {
                tenant,
                expires_at: later
            })
        );
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let auth = AdminAuth::new(Secret::new("k"));
        let csrf = auth.csrf_token("session-a");
        assert!(auth.check_csrf("session-a", &csrf));
        assert!(!auth.check_csrf("session-b", &csrf));
        assert!(!auth.check_csrf("session-a", ""));
        assert!(!auth.check_csrf("session-a", "not hex"));
    }
}
