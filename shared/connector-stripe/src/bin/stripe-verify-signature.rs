//! Verifies one Stripe webhook delivery with our verifier, for contract tests against the
//! official SDK. Reads `{"payload", "header", "secrets": [..], "now_s", "tolerance_s"}` as
//! JSON on stdin; exits 0 when valid, else 1 with the error's name on stderr (2 when the
//! input itself is unusable).

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use connector::{Secret, Timestamp};
use connector_stripe::webhook::{DEFAULT_TOLERANCE, verify};
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {
    payload: String,
    header: String,
    secrets: Vec<String>,
    now_s: i64,
    #[serde(default)]
    tolerance_s: Option<u64>,
}

fn main() -> ExitCode {
    let mut raw = String::new();
    if std::io::stdin().read_to_string(&mut raw).is_err() {
        eprintln!("InvalidInput: stdin is not UTF-8");
        return ExitCode::from(2);
    }
    let input: Input = match serde_json::from_str(&raw) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("InvalidInput: {e}");
            return ExitCode::from(2);
        }
    };
    let secrets: Vec<Secret> = input.secrets.into_iter().map(Secret::new).collect();
    let tolerance = input
        .tolerance_s
        .map_or(DEFAULT_TOLERANCE, Duration::from_secs);
    match verify(
        input.payload.as_bytes(),
        &input.header,
        &secrets,
        tolerance,
        Timestamp::from_secs(input.now_s),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.name());
            ExitCode::from(1)
        }
    }
}
