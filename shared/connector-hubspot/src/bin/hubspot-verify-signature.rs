//! Checks one HubSpot webhook signature with our verifier, for cross-checks against
//! HubSpot's official SDKs (`tests_py/test_official_signatures.py`).
//!
//! stdin: `{"version":"v3","method":"POST","uri":"https://...","body":"...","secret":"...",
//!          "timestamp":"1700000000000","signature":"...","now_ms":1700000000000}`
//! (`timestamp`/`signature` may be null or absent). Exit 0: valid; 1: refused, the
//! error's name on stderr; 2: the request description itself is unusable.

use std::io::Read;
use std::process::ExitCode;

use connector::{Secret, Timestamp};
use connector_hubspot::webhook::{SignatureHeaders, verify_request};
use serde::Deserialize;

#[derive(Deserialize)]
struct Described {
    version: String,
    #[serde(default = "post")]
    method: String,
    uri: String,
    #[serde(default)]
    body: String,
    secret: String,
    timestamp: Option<String>,
    signature: Option<String>,
    now_ms: Option<i64>,
}

fn post() -> String {
    "POST".to_owned()
}

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    let described: Described = match serde_json::from_str(&input) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("not a request description: {e}");
            return ExitCode::from(2);
        }
    };
    let headers = if described.version.eq_ignore_ascii_case("v3") {
        SignatureHeaders {
            signature_v3: described.signature.as_deref(),
            timestamp: described.timestamp.as_deref(),
            ..Default::default()
        }
    } else {
        SignatureHeaders {
            signature: described.signature.as_deref(),
            signature_version: Some(described.version.as_str()),
            ..Default::default()
        }
    };
    let now = described
        .now_ms
        .map_or_else(Timestamp::now, Timestamp::from_millis);
    match verify_request(
        &described.method,
        &described.uri,
        described.body.as_bytes(),
        &headers,
        &Secret::new(described.secret),
        now,
    ) {
        Ok(version) => {
            println!("valid ({version:?})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", e.name());
            ExitCode::from(1)
        }
    }
}
