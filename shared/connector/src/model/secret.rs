use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A value that must never reach a log or an API response: tokens, client secrets.
/// `Debug` and `Display` print a placeholder; read it with [`Secret::expose`]. It is not
/// `Serialize`: a struct holding one cannot end up in a JSON answer by accident. The few
/// that must write it out (what is sealed, the PKCE verifier at rest) say so per field
/// with [`Secret::serialize_exposed`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `#[serde(serialize_with = "Secret::serialize_exposed")]`: writes the value itself.
    pub fn serialize_exposed<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&secret.0)
    }

    /// [`Secret::serialize_exposed`] for an optional secret.
    pub fn serialize_exposed_option<S: Serializer>(
        secret: &Option<Secret>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(&secret.0),
            None => s.serialize_none(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Credentials sealed (encrypted) by the provider layer before they are stored: the
/// store only ever sees this opaque text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedCredentials(pub String);

impl fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedCredentials({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("pat-na1-123");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "pat-na1-123");
    }

    #[test]
    fn a_field_that_says_so_writes_the_value_and_reads_it_back() {
        #[derive(Serialize, Deserialize)]
        struct Sealed {
            #[serde(serialize_with = "Secret::serialize_exposed")]
            token: Secret,
            #[serde(serialize_with = "Secret::serialize_exposed_option")]
            spare: Option<Secret>,
        }
        let sealed = Sealed {
            token: Secret::new("t-1"),
            spare: None,
        };
        let text = serde_json::to_string(&sealed).expect("serialises");
        assert_eq!(text, r#"{"token":"t-1","spare":null}"#);
        let back: Sealed = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.token, Secret::new("t-1"));
    }
}
