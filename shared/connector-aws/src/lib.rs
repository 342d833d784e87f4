//! AWS adapters of the connector's ports: the state store on one DynamoDB table and the
//! job queue on SQS (with its dead-letter queue).

pub mod dynamodb;
pub mod sqs;

use aws_config::ConfigLoader;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The SDK's HTTP client for `loader`: rustls on ring, the TLS stack reqwest uses too, so a
/// function carries one (the SDK's default would add aws-lc). Needed: this build of the
/// SDK has no default client. Plain HTTP (a loopback endpoint) works too.
pub fn with_http_client(loader: ConfigLoader) -> ConfigLoader {
    loader.http_client(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https(),
    )
}
