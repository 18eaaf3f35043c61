//! Identity settings, read once at start; a service without them does not start.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::env::{ConfigError, Env};

/// Where the issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// A JWKS file, re-read when it changes (a Kubernetes-mounted ConfigMap or Secret).
    File(PathBuf),
    /// The issuer's `jwks_uri`, over HTTPS.
    Url(String),
}

#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// PEM certificate chain and PKCS#8 key of the gRPC server; re-read when they change.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// PEM roots that client certificates are verified against (mTLS); none: no client certs.
    pub client_ca: Option<PathBuf>,
    /// Whether a call without a verified client certificate is refused at the handshake.
    pub client_cert_required: bool,
    pub keys: KeySource,
    /// A PEM root to trust for an HTTPS JWKS (an issuer with a private CA).
    pub keys_ca: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    /// The claim that names the tenant (issuers that require namespaced claims use a URL).
    pub tenant_claim: String,
    /// Whether every token must be bound to the call's client certificate (RFC 8705).
    pub require_bound_tokens: bool,
    /// Whether `typ: JWT` (and none) is accepted besides RFC 9068's `at+jwt`, for issuers that
    /// do not type their access tokens.
    pub allow_untyped_tokens: bool,
    /// gRPC reflection on the TLS port (a token is still required to use it).
    pub reflection: bool,
    /// The plaintext port that serves only `grpc.health.v1`, for kubelet's probes.
    pub health_addr: SocketAddr,
    /// Where `GET /metrics` is served (plaintext): `RECOBRO_METRICS_ADDR`, by default the gRPC
    /// port plus 2000 (52051-52053).
    pub metrics_addr: SocketAddr,
}

fn flag(env: &impl Env, name: &str) -> Result<bool, ConfigError> {
    env.parse_or(name, false)
}

impl IdentitySettings {
    pub fn from_env(env: &impl Env, grpc_port: u16) -> Result<IdentitySettings, ConfigError> {
        let keys = env.required("RECOBRO_JWKS")?;
        let keys = if keys.starts_with("https://") {
            KeySource::Url(keys)
        } else if keys.contains("://") {
            return Err(ConfigError::Invalid {
                name: "RECOBRO_JWKS".into(),
                value: keys,
                reason: "a JWKS URL must be https".into(),
            });
        } else {
            KeySource::File(keys.into())
        };
        // Callers pass their fixed default gRPC port (50051-50053).
        let health_port = grpc_port.saturating_add(1000);
        let health_addr = env.parse_or(
            "RECOBRO_HEALTH_ADDR",
            SocketAddr::from(([0, 0, 0, 0], health_port)),
        )?;
        let metrics_addr = env.parse_or(
            "RECOBRO_METRICS_ADDR",
            SocketAddr::from(([0, 0, 0, 0], grpc_port.saturating_add(2000))),
        )?;
        let optional_path = |name: &str| env.get(name).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
        let client_ca = optional_path("RECOBRO_TLS_CLIENT_CA");
        let client_cert_required = flag(env, "RECOBRO_TLS_CLIENT_CERT_REQUIRED")?;
        let require_bound_tokens = flag(env, "RECOBRO_REQUIRE_BOUND_TOKENS")?;
        if (client_cert_required || require_bound_tokens) && client_ca.is_none() {
            return Err(ConfigError::Missing {
                name: "RECOBRO_TLS_CLIENT_CA (client certificates are required)".into(),
            });
        }
        Ok(IdentitySettings {
            tls_cert: env.required("RECOBRO_TLS_CERT")?.into(),
            tls_key: env.required("RECOBRO_TLS_KEY")?.into(),
            client_ca,
            client_cert_required,
            keys,
            keys_ca: optional_path("RECOBRO_JWKS_CA"),
            issuer: env.required("RECOBRO_TOKEN_ISSUER")?,
            audience: env.required("RECOBRO_TOKEN_AUDIENCE")?,
            tenant_claim: env.or("RECOBRO_TENANT_CLAIM", "tenant_id"),
            require_bound_tokens,
            allow_untyped_tokens: flag(env, "RECOBRO_TOKEN_ALLOW_UNTYPED")?,
            reflection: flag(env, "RECOBRO_GRPC_REFLECTION")?,
            health_addr,
            metrics_addr,
        })
    }
}

/// Settings for unit tests of the identity module: files in `dir`, nothing optional.
#[cfg(test)]
pub(crate) fn for_tests(dir: &std::path::Path) -> IdentitySettings {
    IdentitySettings {
        tls_cert: dir.join("server.pem"),
        tls_key: dir.join("server.key"),
        client_ca: None,
        client_cert_required: false,
        keys: KeySource::File(dir.join("jwks.json")),
        keys_ca: None,
        issuer: "https://issuer.example".into(),
        audience: "recobro".into(),
        tenant_claim: "tenant_id".into(),
        require_bound_tokens: false,
        allow_untyped_tokens: false,
        reflection: false,
        health_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::map as env;

    const REQUIRED: [(&str, &str); 5] = [
        ("RECOBRO_TLS_CERT", "/tls/server.pem"),
        ("RECOBRO_TLS_KEY", "/tls/server.key"),
        ("RECOBRO_JWKS", "/keys/jwks.json"),
        ("RECOBRO_TOKEN_ISSUER", "https://issuer.example"),
        ("RECOBRO_TOKEN_AUDIENCE", "recobro"),
    ];

    #[test]
    fn tls_and_tokens_are_required_and_secure_by_default() {
        let settings = IdentitySettings::from_env(&env(&REQUIRED), 50051).expect("valid");
        assert_eq!(settings.keys, KeySource::File("/keys/jwks.json".into()));
        assert_eq!(settings.health_addr, "0.0.0.0:51051".parse().expect("addr"));
        assert_eq!(settings.metrics_addr, "0.0.0.0:52051".parse().expect("addr"));
        assert_eq!(settings.tenant_claim, "tenant_id");
        assert!(!settings.reflection && !settings.allow_untyped_tokens && !settings.require_bound_tokens);
        for (missing, _) in REQUIRED {
            let without: Vec<_> = REQUIRED.iter().copied().filter(|(k, _)| *k != missing).collect();
            let err = IdentitySettings::from_env(&env(&without), 50051).expect_err(missing);
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn a_jwks_url_must_be_https_and_bound_tokens_need_client_certificates() {
        let mut pairs = REQUIRED.to_vec();
        pairs[2] = ("RECOBRO_JWKS", "http://issuer.example/jwks");
        assert!(IdentitySettings::from_env(&env(&pairs), 50051).is_err());
        pairs[2] = ("RECOBRO_JWKS", "https://issuer.example/jwks");
        let settings = IdentitySettings::from_env(&env(&pairs), 50051).expect("https");
        assert_eq!(
            settings.keys,
            KeySource::Url("https://issuer.example/jwks".into())
        );
        pairs.push(("RECOBRO_REQUIRE_BOUND_TOKENS", "true"));
        assert!(IdentitySettings::from_env(&env(&pairs), 50051).is_err());
        pairs.push(("RECOBRO_TLS_CLIENT_CA", "/tls/ca.pem"));
        assert!(
            IdentitySettings::from_env(&env(&pairs), 50051)
                .expect("with a CA")
                .require_bound_tokens
        );
    }
}
