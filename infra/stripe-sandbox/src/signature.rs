//! `Stripe-Signature` generation: `t=<unix>,v1=<hex hmac-sha256(secret, "t.payload")>`, one `v1`
//! per active secret (during a rotation), plus a fake `v0` as Stripe adds on test events.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex HMAC-SHA256 of `"{t}.{payload}"`, keyed with the whole secret (`whsec_` included).
pub fn v1_signature(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty tag regardless.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// The header value for `payload` signed with each secret in order.
pub fn signature_header(
    secrets: &[String],
    timestamp: i64,
    payload: &[u8],
    livemode: bool,
) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&v1_signature(secret, timestamp, payload));
    }
    if !livemode {
        // Stripe's v0 on test events is a signature with a secret nobody has: receivers must ignore it.
        header.push_str(",v0=");
        header.push_str(&v1_signature("whsec_sandbox_v0_decoy", timestamp, payload));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"id":"evt_test_webhook","object":"event"}"#;

    #[test]
    fn the_contract_test_vector_signs_to_the_documented_v1() {
        assert_eq!(
            v1_signature("whsec_test_secret", 1_700_000_000, PAYLOAD.as_bytes()),
            "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
        );
    }

    #[test]
    fn a_utf8_payload_signs_over_its_bytes() {
        let payload = r#"{"id":"evt_1","object":"event","data":{"object":{"id":"cus_1","object":"customer","name":"Zoë"}}}"#;
        assert_eq!(
            v1_signature("whsec_test_secret", 1_700_000_000, payload.as_bytes()),
            "3d58792416a6272db17c8fc2c033a3725103fb3fe3cffbb01875de2638401af7"
        );
    }

    #[test]
    fn a_rotation_header_carries_one_v1_per_secret_in_order() {
        let secrets = vec![
            "whsec_rotated_secret".to_owned(),
            "whsec_test_secret".to_owned(),
        ];
        let header = signature_header(&secrets, 1_700_000_000, PAYLOAD.as_bytes(), true);
        assert_eq!(
            header,
            "t=1700000000,v1=e2bff083fec7577d1157ff09cbdb4504baf653937eef5e4dad80ea63dbcf65e3,\
             v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
        );
    }

    #[test]
    fn test_mode_headers_add_a_v0_that_is_not_a_real_signature() {
        let secrets = vec!["whsec_test_secret".to_owned()];
        let header = signature_header(&secrets, 1_700_000_000, PAYLOAD.as_bytes(), false);
        let v0 = header.split(",v0=").nth(1).unwrap();
        assert_ne!(
            v0,
            v1_signature("whsec_test_secret", 1_700_000_000, PAYLOAD.as_bytes())
        );
    }
}
