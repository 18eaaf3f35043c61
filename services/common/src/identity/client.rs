//! The client side, for Recobro's own tools, the demo and the tests: a TLS channel trusting a
//! CA (with a client certificate for mTLS and bound tokens) and a bearer token on every call.

use std::path::Path;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A channel whose every call carries the token.
pub type Authorized = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to each call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// `None` sends no token (to see a refusal, in tests).
    pub fn new(token: Option<&str>) -> Result<Bearer, ClientError> {
        let value = token
            .map(|token| format!("Bearer {token}").parse().map_err(|_| ClientError::Token))
            .transpose()?;
        Ok(Bearer(value))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("the token is not a valid header value")]
    Token,
    #[error("gRPC connection: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// What a client trusts and shows: the CA of the servers, and optionally its own certificate.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    /// (certificate PEM, key PEM) for mTLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|err| ClientError::File {
        path: path.display().to_string(),
        reason: err.to_string(),
    })
}

impl ClientTls {
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTls, ClientError> {
        Ok(ClientTls {
            ca_pem: read(ca)?,
            identity: match identity {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            },
        })
    }
}

/// Connects to `url` (https://host:port) over TLS and attaches `token` to every call.
pub async fn connect(url: &str, tls: &ClientTls, token: Option<&str>) -> Result<Authorized, ClientError> {
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(url.to_string())
        .map_err(|err| ClientError::File {
            path: url.to_string(),
            reason: err.to_string(),
        })?
        .tls_config(config)?
        .connect_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await?;
    Ok(InterceptedService::new(channel, Bearer::new(token)?))
}
