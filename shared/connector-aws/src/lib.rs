//! AWS adapters of the connector's ports: the state store on one DynamoDB table and the
//! job queue on SQS (with its dead-letter queue).

pub mod dynamodb;
mod http_client;
pub mod sqs;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_types::SdkConfig;
use aws_types::sdk_config::SharedCredentialsProvider;

/// The roots AWS's own endpoints chain to (Amazon Trust Services), bundled so that a cold
/// start does not read and parse the system's whole certificate store (about 4 ms of a
/// 7 ms init, measured by `lambda-init`).
const AWS_ROOTS: &[u8] = include_bytes!("../roots/amazon-trust-services.pem");

/// Where and as whom the clients call.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Overrides the service endpoints (`AWS_ENDPOINT_URL`: moto in tests).
    pub endpoint_url: Option<String>,
}

/// The clients' shared config: fixed credentials (a Lambda function's role credentials
/// come in its environment), and the HTTP client on reqwest (rustls with ring), the one
/// the provider adapters use too, so a function carries one HTTP and TLS stack (the SDK's
/// default would add its own client, h2 and aws-lc), trusting the Amazon Trust Services
/// roots. Plain HTTP (a loopback endpoint) works too. Built by hand rather than by
/// aws-config, whose provider chains (profiles, SSO, STS, IMDS) no function uses.
pub fn sdk_config(settings: &AwsSettings) -> Result<SdkConfig, reqwest::Error> {
    let http = http_client::ReqwestHttpClient::trusting(AWS_ROOTS)?;
    let credentials = Credentials::new(
        &settings.access_key_id,
        &settings.secret_access_key,
        settings.session_token.clone(),
        None,
        "environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http);
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    if let Some(url) = &settings.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn the_bundled_roots_are_the_five_amazon_trust_services_certificates() {
        let text = std::str::from_utf8(super::AWS_ROOTS).unwrap();
        let bodies: Vec<&str> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|rest| rest.split("-----END CERTIFICATE-----").next().unwrap())
            .collect();
        assert_eq!(bodies.len(), 5);
        for body in bodies {
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.split_whitespace().collect::<String>())
                .unwrap();
            // A DER certificate: a SEQUENCE with a two-byte length.
            assert_eq!(&der[..2], &[0x30, 0x82]);
        }
    }
}
