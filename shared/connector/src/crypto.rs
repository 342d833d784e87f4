//! Encryption of provider tokens at rest: AES-256-GCM with a random 96-bit nonce per seal.
//!
//! Sealed text is `v2.<nonce>.<ciphertext>` (URL-safe base64 without padding). The
//! version, the tenant and the connection are bound into the authentication tag as
//! associated data, so sealed credentials copied onto another connection, or into another
//! tenant, do not open there. `v1` text (sealed before the binding, with only the version
//! as associated data) still opens, so deployed connections keep working; it is sealed
//! again as `v2` at its next token refresh or reauthorization.
//! Where the key comes from (Secrets Manager, SSM, an env var locally) is the caller's
//! business: this module only takes it.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Connection, ConnectionId, SealedCredentials, TenantId};

const VERSION: &str = "v2";
const UNBOUND_VERSION: &str = "v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid token key: {0}")]
    InvalidKey(&'static str),
    /// Not in the `v1.<nonce>.<ciphertext>` shape.
    #[error("sealed credentials are malformed")]
    Malformed,
    #[error("sealed credentials use an unknown format version")]
    UnsupportedVersion,
    /// Wrong key, or the text was altered.
    #[error("sealed credentials do not open with this key (wrong key or tampered)")]
    Decrypt,
    #[error("credentials do not (de)serialize: {0}")]
    Serialization(String),
}

/// The connection sealed credentials belong to.
#[derive(Clone, Copy, Debug)]
pub struct CredentialOwner<'a> {
    pub tenant: &'a TenantId,
    pub connection: &'a ConnectionId,
}

impl CredentialOwner<'_> {
    /// Unambiguous whatever the ids contain: a JSON array.
    fn associated_data(&self) -> Vec<u8> {
        serde_json::to_vec(&[VERSION, self.tenant.as_str(), self.connection.as_str()])
            .unwrap_or_default()
    }
}

impl Connection {
    pub fn credential_owner(&self) -> CredentialOwner<'_> {
        CredentialOwner {
            tenant: &self.tenant_id,
            connection: &self.id,
        }
    }
}

/// Seals and opens credentials. `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCipher(***)")
    }
}

impl TokenCipher {
    /// A cipher from a base64 (standard or URL-safe) encoded 32-byte key.
    pub fn from_base64_key(key: &str) -> Result<Self, CryptoError> {
        let key = key.trim();
        let bytes = STANDARD
            .decode(key)
            .or_else(|_| URL_SAFE.decode(key))
            .or_else(|_| URL_SAFE_NO_PAD.decode(key))
            .map_err(|_| CryptoError::InvalidKey("not base64"))?;
        Self::from_key_bytes(&bytes)
    }

    pub fn from_key_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != KEY_LEN {
            return Err(CryptoError::InvalidKey("must be 32 bytes"));
        }
        let cipher = Aes256Gcm::new_from_slice(key)
            .map_err(|_| CryptoError::InvalidKey("must be 32 bytes"))?;
        Ok(Self { cipher })
    }

    /// A fresh random key, standard base64 (for the local stack's config).
    pub fn generate_key_base64() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(OsRng))
    }

    pub fn seal<T: Serialize>(
        &self,
        value: &T,
        owner: CredentialOwner<'_>,
    ) -> Result<SealedCredentials, CryptoError> {
        let plaintext =
            serde_json::to_vec(value).map_err(|e| CryptoError::Serialization(e.to_string()))?;
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &owner.associated_data(),
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(SealedCredentials(format!(
            "{VERSION}.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ciphertext)
        )))
    }

    pub fn open<T: DeserializeOwned>(
        &self,
        sealed: &SealedCredentials,
        owner: CredentialOwner<'_>,
    ) -> Result<T, CryptoError> {
        let mut parts = sealed.0.split('.');
        let (Some(version), Some(nonce), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let associated_data = match version {
            VERSION => owner.associated_data(),
            UNBOUND_VERSION => UNBOUND_VERSION.as_bytes().to_vec(),
            _ => return Err(CryptoError::UnsupportedVersion),
        };
        let nonce = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| CryptoError::Malformed)?;
        if nonce.len() != NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let ciphertext = URL_SAFE_NO_PAD
            .decode(ciphertext)
            .map_err(|_| CryptoError::Malformed)?;
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &associated_data,
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        serde_json::from_slice(&plaintext).map_err(|e| CryptoError::Serialization(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Tokens {
        access: String,
        refresh: String,
        expires_at_ms: i64,
    }

    fn tokens() -> Tokens {
        Tokens {
            access: "at-123".into(),
            refresh: "rt-456".into(),
            expires_at_ms: 1_700_000_000_000,
        }
    }

    fn ids(tenant: &str) -> (TenantId, ConnectionId) {
        (
            TenantId::parse(tenant).expect("tenant"),
            ConnectionId::parse("conn-1").expect("connection"),
        )
    }

    fn owner((tenant, connection): &(TenantId, ConnectionId)) -> CredentialOwner<'_> {
        CredentialOwner { tenant, connection }
    }

    fn cipher() -> TokenCipher {
        TokenCipher::from_base64_key(&TokenCipher::generate_key_base64()).expect("valid key")
    }

    #[test]
    fn sealed_tokens_open_to_the_same_value() {
        let c = cipher();
        let a = ids("tenant-a");
        let sealed = c.seal(&tokens(), owner(&a)).expect("seals");
        assert!(sealed.0.starts_with("v2."));
        assert!(!sealed.0.contains("at-123"));
        assert_eq!(c.open::<Tokens>(&sealed, owner(&a)), Ok(tokens()));
    }

    #[test]
    fn sealed_tokens_open_only_for_their_tenant_and_connection() {
        let c = cipher();
        let a = ids("tenant-a");
        let sealed = c.seal(&tokens(), owner(&a)).expect("seals");
        let other_tenant = ids("tenant-b");
        assert_eq!(
            c.open::<Tokens>(&sealed, owner(&other_tenant)),
            Err(CryptoError::Decrypt)
        );
        let other_connection = (a.0.clone(), ConnectionId::parse("conn-2").expect("id"));
        assert_eq!(
            c.open::<Tokens>(&sealed, owner(&other_connection)),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn credentials_sealed_before_the_binding_still_open() {
        let c = cipher();
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let plaintext = serde_json::to_vec(&tokens()).expect("serialises");
        let ciphertext = c
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: UNBOUND_VERSION.as_bytes(),
                },
            )
            .expect("encrypts");
        let legacy = SealedCredentials(format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ciphertext)
        ));
        assert_eq!(c.open::<Tokens>(&legacy, owner(&ids("t"))), Ok(tokens()));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let c = cipher();
        let a = c.seal(&tokens(), owner(&ids("t"))).expect("seals");
        let b = c.seal(&tokens(), owner(&ids("t"))).expect("seals");
        assert_ne!(a, b);
    }

    #[test]
    fn another_key_does_not_open_it() {
        let t = ids("t");
        let sealed = cipher().seal(&tokens(), owner(&t)).expect("seals");
        assert_eq!(
            cipher().open::<Tokens>(&sealed, owner(&t)),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn a_tampered_ciphertext_is_refused() {
        let c = cipher();
        let t = ids("t");
        let sealed = c.seal(&tokens(), owner(&t)).expect("seals");
        let (head, last) = sealed.0.split_at(sealed.0.len() - 2);
        let flipped = if last.starts_with('A') { "B" } else { "A" };
        let tampered = SealedCredentials(format!("{head}{flipped}{}", &last[1..]));
        assert_eq!(
            c.open::<Tokens>(&tampered, owner(&t)),
            Err(CryptoError::Decrypt)
        );
    }

    #[test]
    fn malformed_and_unknown_versions_are_named() {
        let c = cipher();
        let t = ids("t");
        let sealed = c.seal(&tokens(), owner(&t)).expect("seals");
        let v3 = SealedCredentials(sealed.0.replacen("v2.", "v3.", 1));
        assert_eq!(
            c.open::<Tokens>(&v3, owner(&t)),
            Err(CryptoError::UnsupportedVersion)
        );
        for bad in ["", "v2", "v2.abc", "v2.a.b.c", "v2.!!.abc", "v2.AAAA.AAAA"] {
            assert_eq!(
                c.open::<Tokens>(&SealedCredentials(bad.into()), owner(&t)),
                Err(CryptoError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(TokenCipher::from_base64_key("not base64!").is_err());
        assert!(TokenCipher::from_base64_key(&STANDARD.encode([0u8; 16])).is_err());
        assert!(TokenCipher::from_base64_key(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(TokenCipher::from_base64_key(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
    }

    #[test]
    fn the_cipher_does_not_print_its_key() {
        let key = [9u8; 32];
        let c = TokenCipher::from_key_bytes(&key).expect("valid");
        let shown = format!("{c:?}");
        assert_eq!(shown, "TokenCipher(***)");
    }
}
