//! Admin API authentication: a bearer token that names one tenant, signed with the
//! service's admin secret (HMAC-SHA256) and carrying its expiry. Every admin call acts for
//! that tenant only.
//!
//! Format: `v1.<tenant>.<expires epoch seconds>.<hex signature of "v1.<tenant>.<expires>">`.

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

#[derive(Clone)]
pub struct AdminAuth {
    secret: Secret,
}

impl AdminAuth {
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    fn sign(&self, payload: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn issue(&self, tenant: &TenantId, expires_at: Timestamp) -> Secret {
        let payload = format!("v1.{tenant}.{}", expires_at.as_secs());
        Secret::new(format!("{payload}.{}", hex::encode(self.sign(&payload))))
    }

    /// The tenant a token speaks for, after checking its signature (in constant time) and expiry.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<TenantId, AuthError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(tenant), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let given = hex::decode(signature).map_err(|_| AuthError::Malformed)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| AuthError::BadSignature)?;
        let expires: i64 = expires.parse().map_err(|_| AuthError::Malformed)?;
        if now.as_secs() >= expires {
            return Err(AuthError::Expired);
        }
        TenantId::parse(tenant).map_err(|_| AuthError::Malformed)
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
}
