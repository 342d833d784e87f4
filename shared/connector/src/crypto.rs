//! Encryption of provider tokens at rest: AES-256-GCM with a random 96-bit nonce per seal.
//!
//! Sealed text is `v1.<nonce>.<ciphertext>` (URL-safe base64 without padding); the
//! version prefix is also bound into the authentication tag, so it cannot be swapped.
//! Where the key comes from (Secrets Manager, SSM, an env var locally) is the caller's
//! business: this module only takes it.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::SealedCredentials;

const VERSION: &str = "v1";
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

    pub fn seal<T: Serialize>(&self, value: &T) -> Result<SealedCredentials, CryptoError> {
        let plaintext =
            serde_json::to_vec(value).map_err(|e| CryptoError::Serialization(e.to_string()))?;
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: VERSION.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(SealedCredentials(format!(
            "{VERSION}.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ciphertext)
        )))
    }

    pub fn open<T: DeserializeOwned>(&self, sealed: &SealedCredentials) -> Result<T, CryptoError> {
        let mut parts = sealed.0.split('.');
        let (Some(version), Some(nonce), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        if version != VERSION {
            return Err(CryptoError::UnsupportedVersion);
        }
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
                    aad: VERSION.as_bytes(),
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

    fn cipher() -> TokenCipher {
        TokenCipher::from_base64_key(&TokenCipher::generate_key_base64()).expect("valid key")
    }

    #[test]
    fn sealed_tokens_open_to_the_same_value() {
        let c = cipher();
        let sealed = c.seal(&tokens()).expect("seals");
        assert!(sealed.0.starts_with("v1."));
        assert!(!sealed.0.contains("at-123"));
        assert_eq!(c.open::<Tokens>(&sealed), Ok(tokens()));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let c = cipher();
        let a = c.seal(&tokens()).expect("seals");
        let b = c.seal(&tokens()).expect("seals");
        assert_ne!(a, b);
    }

    #[test]
    fn another_key_does_not_open_it() {
        let sealed = cipher().seal(&tokens()).expect("seals");
        assert_eq!(cipher().open::<Tokens>(&sealed), Err(CryptoError::Decrypt));
    }

    #[test]
    fn a_tampered_ciphertext_is_refused() {
        let c = cipher();
        let sealed = c.seal(&tokens()).expect("seals");
        let (head, last) = sealed.0.split_at(sealed.0.len() - 2);
        let flipped = if last.starts_with('A') { "B" } else { "A" };
        let tampered = SealedCredentials(format!("{head}{flipped}{}", &last[1..]));
        assert_eq!(c.open::<Tokens>(&tampered), Err(CryptoError::Decrypt));
    }

    #[test]
    fn malformed_and_unknown_versions_are_named() {
        let c = cipher();
        let sealed = c.seal(&tokens()).expect("seals");
        let v2 = SealedCredentials(sealed.0.replacen("v1.", "v2.", 1));
        assert_eq!(c.open::<Tokens>(&v2), Err(CryptoError::UnsupportedVersion));
        for bad in ["", "v1", "v1.abc", "v1.a.b.c", "v1.!!.abc", "v1.AAAA.AAAA"] {
            assert_eq!(
                c.open::<Tokens>(&SealedCredentials(bad.into())),
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
