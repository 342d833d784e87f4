//! HubSpot's webhook signatures: v1 and v2 (SHA-256 hex over secret-prefixed text) and
//! v3 (base64 HMAC-SHA256 keyed with the app secret over method + URI + body + timestamp).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// `hex(sha256(secret + body))`.
pub fn v1(client_secret: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(client_secret.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// `hex(sha256(secret + method + uri + body))`.
pub fn v2(client_secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(client_secret.as_bytes());
    hasher.update(method.as_bytes());
    hasher.update(uri.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// `base64(hmac_sha256(secret, method + uri + body + timestamp))`; `uri` as signed (see
/// [`v3_uri`]).
pub fn v3(client_secret: &str, method: &str, uri: &str, body: &[u8], timestamp_ms: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URI as v3 signs it: these twelve percent-escapes decoded, every other one kept.
pub fn v3_uri(url: &str) -> String {
    const DECODED: &[(&str, char)] = &[
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos + 1..pos + 3).map(str::to_ascii_uppercase);
        match escape.and_then(|e| DECODED.iter().find(|(code, _)| *code == e)) {
            Some((_, c)) => {
                out.push(*c);
                rest = &rest[pos + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URI: &str = "https://www.example.com/webhook_uri";
    const SINGLE_QUOTED: &[u8] = b"{'example_field':'example_value'}";
    const DOUBLE_QUOTED: &[u8] = br#"{"example_field":"example_value"}"#;
    const V1A_BODY: &[u8] = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    #[test]
    fn v3_matches_the_sdk_vectors() {
        assert_eq!(
            v3(SECRET, "POST", URI, SINGLE_QUOTED, "1693657560000"),
            "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
        );
        assert_eq!(
            v3(SECRET, "POST", URI, SINGLE_QUOTED, "15000000"),
            "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
        );
        assert_eq!(
            v3(SECRET, "POST", URI, DOUBLE_QUOTED, "1693657560000"),
            "oaA3M5dEtt6kFsseJD/Hv/x+JNl1vsoxFj4oxmwP6Go="
        );
        assert_eq!(
            v3(SECRET, "POST", URI, V1A_BODY, "1700000000000"),
            "/pXDSgWeGksQpwCsgqd43P0eY6gBIse9UX0tfkudUrE="
        );
        assert_eq!(
            v3(
                SECRET,
                "POST",
                URI,
                r#"[{"propertyName":"name","propertyValue":"Café Zürich"}]"#.as_bytes(),
                "1700000000000"
            ),
            "mtl/vjqTGvyQAX9mRE42Oqleh42VepWiJrmd28ZGbWs="
        );
    }

    #[test]
    fn v3_decodes_only_the_listed_escapes_in_the_uri() {
        let header_url = "https://www.example.com/hooks/hubspot?tenant=acme%3Aeu&sig=a%2Cb%20c";
        let signed = v3_uri(header_url);
        assert_eq!(
            signed,
            "https://www.example.com/hooks/hubspot?tenant=acme:eu&sig=a,b%20c"
        );
        assert_eq!(
            v3(SECRET, "POST", &signed, V1A_BODY, "1700000000000"),
            "x+GxqhP85gJY4j6KgZhNVu2nj/tvmyPrR3wIPKw2cC8="
        );
        assert_eq!(
            v3(SECRET, "POST", header_url, V1A_BODY, "1700000000000"),
            "/Nib2ZP8qB9VrUh+k6RPNr5qzmw2aDbJeKaHtC4XS/Q="
        );
    }

    #[test]
    fn v1_and_v2_match_the_published_vectors() {
        assert_eq!(
            v1(SECRET, V1A_BODY),
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
        assert_eq!(
            v1(SECRET, SINGLE_QUOTED),
            "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
        );
        assert_eq!(
            v2(SECRET, "GET", URI, b""),
            "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
        );
        assert_eq!(
            v2(SECRET, "POST", URI, DOUBLE_QUOTED),
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
        );
        assert_eq!(
            v2(SECRET, "POST", URI, SINGLE_QUOTED),
            "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
        );
    }
}
