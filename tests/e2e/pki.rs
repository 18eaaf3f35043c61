//! The identity a test stack runs with, made fresh by each test run: a CA, a server
//! certificate for 127.0.0.1, two client certificates, and per stack its own token signing
//! keys and JWKS file (so a test can rotate them).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use recobro_common::identity::client::{Authorized, ClientTls, connect};
use recobro_token::{Claims, Signer};

pub const ISSUER: &str = "https://issuer.e2e.recobro.test";
pub const AUDIENCE: &str = "recobro";
pub const ALL_SCOPES: &str = "recobro:read recobro:write recobro:send recobro:templates recobro:admin";

/// Files shared by every stack of this test run.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// (certificate, key) of two different clients.
    pub client: (PathBuf, PathBuf),
    pub other_client: (PathBuf, PathBuf),
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write PKI file");
}

fn leaf(
    name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertifiedIssuer<'_, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(sans).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// The run's PKI, made once.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("recobro-e2e-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("PKI dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Recobro e2e CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let file = |name: &str| dir.join(name);
        write(&file("ca.pem"), &ca.pem());
        let (cert, key) = leaf(
            "recobro e2e server",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        );
        write(&file("server.pem"), &cert);
        write(&file("server.key"), &key);
        for name in ["client", "other-client"] {
            let (cert, key) = leaf(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, &ca);
            write(&file(&format!("{name}.pem")), &cert);
            write(&file(&format!("{name}.key")), &key);
        }
        Pki {
            ca: file("ca.pem"),
            server_cert: file("server.pem"),
            server_key: file("server.key"),
            client: (file("client.pem"), file("client.key")),
            other_client: (file("other-client.pem"), file("other-client.key")),
            dir,
        }
    })
}

/// A token signing key and its id.
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
}

impl SigningKey {
    pub fn generate() -> SigningKey {
        SigningKey::with_kid(&format!(
            "e2e-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
    }

    /// A new key under an id that may already name another (a forger's key).
    pub fn with_kid(kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.to_string(),
            pair: KeyPair::generate().expect("key"),
        }
    }

    /// Its public half as a JWK (P-256: the point is 0x04 || x || y).
    pub fn jwk(&self) -> serde_json::Value {
        let point = self.pair.public_key_raw();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        })
    }

    pub fn signer(&self) -> Signer {
        Signer::from_pem(self.pair.serialize_pem().as_bytes(), &self.kid).expect("signer")
    }
}

/// Writes a JWKS file with these keys (atomically: the services may be reading it).
pub fn write_jwks(path: &Path, keys: &[&SigningKey]) {
    let set = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, set.to_string()).expect("JWKS");
    std::fs::rename(&temp, path).expect("JWKS in place");
}

/// A token's claims for a tenant (or none) with these scopes, valid for an hour.
pub fn claims(tenant: Option<&str>, scope: &str) -> Claims {
    Claims {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        subject: "e2e-client".into(),
        tenant_claim: "tenant_id".into(),
        tenant: tenant.map(str::to_string),
        scope: scope.into(),
        lifetime: Duration::from_secs(3600),
        age: Duration::ZERO,
        bound_to: None,
    }
}

/// Which client certificate a connection presents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClientCert {
    None,
    Client,
}

/// A TLS channel to `port` presenting `cert`, with `token` on every call.
pub async fn channel(port: u16, cert: ClientCert, token: Option<&str>) -> Authorized {
    let pki = pki();
    let identity = match cert {
        ClientCert::None => None,
        ClientCert::Client => Some((pki.client.0.as_path(), pki.client.1.as_path())),
    };
    let tls = ClientTls::from_files(&pki.ca, identity).expect("client TLS files");
    connect(&format!("https://localhost:{port}"), &tls, token)
        .await
        .expect("connect gRPC over TLS")
}
