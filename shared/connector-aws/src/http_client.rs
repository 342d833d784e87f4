//! The AWS SDK's HTTP client on reqwest: the client the HubSpot and Stripe adapters
//! already link, so a function carries one HTTP/1.1 stack instead of two (the SDK's own
//! client brings hyper's legacy client wrappers and h2, about 0.5 MB of every bootstrap).
//! The crates that do this today pull in aws-config or reqwest 0.13, so it is written
//! here; the SDK sends small, fully buffered bodies to DynamoDB and SQS, so that is all
//! it supports.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// The SDK's own default connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// A reqwest client as the SDK's [`HttpClient`].
#[derive(Clone, Debug)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
}

impl ReqwestHttpClient {
    /// A client trusting only the PEM roots given (AWS's), with no proxy (as the SDK's
    /// own client), and HTTP without TLS for a loopback endpoint.
    pub fn trusting(roots_pem: &[u8]) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT);
        for root in reqwest::Certificate::from_pem_bundle(roots_pem)? {
            builder = builder.add_root_certificate(root);
        }
        Ok(Self {
            client: builder.build()?,
        })
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            client: self.client.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: reqwest::Client,
    /// Applied to the whole exchange: reqwest has no per-request read timeout.
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::new(send(self.client.clone(), request, self.read_timeout))
    }
}

async fn send(
    client: reqwest::Client,
    request: HttpRequest,
    timeout: Option<Duration>,
) -> Result<HttpResponse, ConnectorError> {
    let (parts, body) = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?
        .into_parts();
    let body = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?
        .to_vec();
    let mut outgoing = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body);
    if let Some(timeout) = timeout {
        outgoing = outgoing.timeout(timeout);
    }
    let mut response = outgoing.send().await.map_err(connector_error)?;
    let mut answer = http::Response::builder().status(response.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = std::mem::take(response.headers_mut());
    }
    let bytes = response.bytes().await.map_err(connector_error)?;
    let answer = answer
        .body(SdkBody::from(bytes))
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
}

/// How the SDK's retry classifier should read a failure: a timeout and a broken
/// connection are retried as transient.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}
