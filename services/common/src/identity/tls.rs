//! TLS for the gRPC port: the server certificate (and the client CA) come from files that are
//! re-read when they change, since Kubernetes rotates mounted secrets in place. New
//! connections use the new files; open ones keep the certificate they were made with.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::IdentitySettings;

/// How often the certificate files are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// A TLS handshake that takes longer is dropped: a slow client cannot hold a task for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The files a server's TLS is made of, and the config made from them last.
pub struct ReloadingTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_cert_required: bool,
    current: RwLock<(Arc<ServerConfig>, Vec<Option<SystemTime>>)>,
}

impl ReloadingTls {
    /// Loads the files now: a server whose certificate cannot be read does not start.
    pub fn load(settings: &IdentitySettings) -> Result<Arc<ReloadingTls>, TlsError> {
        let cert = settings.tls_cert.clone();
        let key = settings.tls_key.clone();
        let client_ca = settings.client_ca.clone();
        let config = build(&cert, &key, client_ca.as_deref(), settings.client_cert_required)?;
        let stamps = stamps(&cert, &key, client_ca.as_deref());
        Ok(Arc::new(ReloadingTls {
            cert,
            key,
            client_ca,
            client_cert_required: settings.client_cert_required,
            current: RwLock::new((config, stamps)),
        }))
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(current) => current.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// Rebuilds the config if a file changed; a file caught half-written is tried again at
    /// the next check, and meanwhile the previous certificate keeps serving.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.cert, &self.key, self.client_ca.as_deref());
        let changed = match self.current.read() {
            Ok(current) => current.1 != now,
            Err(poisoned) => poisoned.into_inner().1 != now,
        };
        if !changed {
            return false;
        }
        match build(
            &self.cert,
            &self.key,
            self.client_ca.as_deref(),
            self.client_cert_required,
        ) {
            Ok(config) => {
                if let Ok(mut current) = self.current.write() {
                    *current = (config, now);
                }
                tracing::info!("TLS certificate files changed: new connections use them");
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "TLS certificate files changed but cannot be used yet");
                false
            }
        }
    }
}

fn stamps(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Vec<Option<SystemTime>> {
    [Some(cert), Some(key), client_ca]
        .into_iter()
        .flatten()
        .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .collect()
}

fn build(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    client_cert_required: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|err| file_error(cert, err))?
        .collect::<Result<_, _>>()
        .map_err(|err| file_error(cert, err))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|err| file_error(key, err))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let mut config = match client_ca {
        None => builder.with_no_client_auth().with_single_cert(chain, key)?,
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for root in CertificateDer::pem_file_iter(path).map_err(|err| file_error(path, err))? {
                roots.add(root.map_err(|err| file_error(path, err))?)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            // Optional mTLS: a client without a certificate still gets in, and a token bound to
            // a certificate (RFC 8705) then fails; a certificate that is presented must verify.
            let verifier = if client_cert_required {
                verifier.build()?
            } else {
                verifier.allow_unauthenticated().build()?
            };
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections on `listener` and completes their TLS handshakes (each in a task of
/// its own, bounded in time), yielding the streams tonic serves; watches the certificate files
/// meanwhile. A failed handshake is logged and dropped: it never stops the listener.
pub fn accept_tls(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (streams, incoming) = tokio::sync::mpsc::channel(64);
    let watched = tls.clone();
    let watching = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                _ = watching.cancelled() => return,
                _ = every.tick() => { watched.reload_if_changed(); }
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = TlsAcceptor::from(tls.config());
            let streams = streams.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = streams.send(Ok(stream)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake refused"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(incoming)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::ServerName;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ca() -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
    }

    /// A new server certificate for localhost in `dir`; returns its DER.
    fn issue(dir: &Path, ca: &CertifiedIssuer<'_, KeyPair>) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, ca)
            .expect("sign");
        // Written beside and renamed, as Kubernetes swaps a mounted secret.
        std::fs::write(dir.join("next.pem"), cert.pem()).expect("cert");
        std::fs::write(dir.join("next.key"), key.serialize_pem()).expect("key");
        std::fs::rename(dir.join("next.key"), dir.join("server.key")).expect("key in place");
        std::fs::rename(dir.join("next.pem"), dir.join("server.pem")).expect("cert in place");
        cert.der().to_vec()
    }

    fn settings(dir: &Path) -> IdentitySettings {
        super::super::settings::for_tests(dir)
    }

    /// The certificate a client is shown by a server with this config.
    async fn served(config: Arc<ServerConfig>, ca: &CertifiedIssuer<'_, KeyPair>) -> Vec<u8> {
        handshake(config, ca).await.expect("handshake")
    }

    /// A handshake without a client certificate: the server's certificate, or why it failed.
    async fn handshake(
        config: Arc<ServerConfig>,
        ca: &CertifiedIssuer<'_, KeyPair>,
    ) -> Result<Vec<u8>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let client =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server =
            tokio::spawn(async move { TlsAcceptor::from(config).accept(server_io).await.map(|_| ()) });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let connected = connector
            .connect(ServerName::try_from("localhost").expect("name"), client_io)
            .await;
        // TLS 1.3: the client may finish before the server refuses it; the server's word counts.
        let accepted = server.await.expect("server task");
        let stream = connected.map_err(|err| err.to_string())?;
        accepted.map_err(|err| err.to_string())?;
        Ok(stream.get_ref().1.peer_certificates().expect("certificate")[0].to_vec())
    }

    #[tokio::test]
    async fn a_rotated_certificate_is_served_to_new_connections_and_a_broken_one_is_not() {
        let dir = Dir(std::env::temp_dir().join(format!("recobro-tls-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(&dir.0).expect("dir");
        let ca = ca();
        let first = issue(&dir.0, &ca);
        let tls = ReloadingTls::load(&settings(&dir.0)).expect("loads");
        assert_eq!(served(tls.config(), &ca).await, first);
        assert!(!tls.reload_if_changed(), "nothing changed");

        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = issue(&dir.0, &ca);
        assert!(tls.reload_if_changed(), "the files changed");
        assert_eq!(
            served(tls.config(), &ca).await,
            second,
            "new connections get the new certificate"
        );

        // A file caught half-written keeps the previous certificate serving.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.0.join("server.pem"), "-----BEGIN CERTIFICATE-----\ntruncated").expect("write");
        assert!(!tls.reload_if_changed());
        assert_eq!(served(tls.config(), &ca).await, second);
    }

    #[tokio::test]
    async fn client_certificates_are_optional_unless_required() {
        let dir = Dir(std::env::temp_dir().join(format!("recobro-tls-mtls-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(&dir.0).expect("dir");
        let ca = ca();
        issue(&dir.0, &ca);
        std::fs::write(dir.0.join("ca.pem"), ca.pem()).expect("client CA");
        let mut optional = settings(&dir.0);
        optional.client_ca = Some(dir.0.join("ca.pem"));
        let tls = ReloadingTls::load(&optional).expect("loads");
        assert!(
            handshake(tls.config(), &ca).await.is_ok(),
            "no certificate, optional mTLS"
        );
        let mut required = optional.clone();
        required.client_cert_required = true;
        let tls = ReloadingTls::load(&required).expect("loads");
        assert!(
            handshake(tls.config(), &ca).await.is_err(),
            "no certificate, mTLS required"
        );
    }

    #[test]
    fn a_server_without_its_certificate_does_not_start() {
        let dir = std::env::temp_dir().join(format!("recobro-tls-missing-{}", uuid::Uuid::new_v4()));
        let err = ReloadingTls::load(&settings(&dir)).err().expect("no files");
        assert!(err.to_string().contains("server.pem"), "{err}");
    }
}
