//! Development access tokens, signed with the local stack's key (`deploy/local/pki.sh`), the
//! way a real issuer would sign them: JWT with `typ: at+jwt` (RFC 9068), ES256, the tenant
//! and scopes as claims, and optionally bound to a client certificate (RFC 8705). Production
//! tokens come from the bank's own issuer; only its issuer, audience and JWKS URL are set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use recobro_common::identity::certificate_thumbprint;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Map, Value, json};

/// What a token says.
#[derive(Clone, Debug)]
pub struct Claims {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
    /// The claim that carries the tenant, and the tenant (none for an admin token).
    pub tenant_claim: String,
    pub tenant: Option<String>,
    /// Space-separated, e.g. "recobro:read recobro:write".
    pub scope: String,
    pub lifetime: Duration,
    /// How long ago it was issued (zero for a new token; tests use it for expired ones).
    pub age: Duration,
    /// A PEM client certificate the token is bound to (RFC 8705 `cnf.x5t#S256`).
    pub bound_to: Option<Vec<u8>>,
}

/// The signing key and its id in the JWKS.
pub struct Signer {
    key: EncodingKey,
    kid: String,
}

impl Signer {
    /// A P-256 key in PKCS#8 PEM, as `openssl genpkey -algorithm EC` writes it.
    pub fn from_pem(pem: &[u8], kid: &str) -> anyhow::Result<Signer> {
        Ok(Signer {
            key: EncodingKey::from_ec_pem(pem)?,
            kid: kid.to_string(),
        })
    }

    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() - claims.age.as_secs();
        let mut body = Map::new();
        body.insert("iss".into(), json!(claims.issuer));
        body.insert("aud".into(), json!(claims.audience));
        body.insert("sub".into(), json!(claims.subject));
        body.insert("client_id".into(), json!(claims.subject));
        body.insert("iat".into(), json!(now));
        body.insert("nbf".into(), json!(now));
        body.insert("exp".into(), json!(now + claims.lifetime.as_secs()));
        body.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        body.insert("scope".into(), json!(claims.scope));
        if let Some(tenant) = &claims.tenant {
            body.insert(claims.tenant_claim.clone(), json!(tenant));
        }
        if let Some(pem) = &claims.bound_to {
            let cert = CertificateDer::from_pem_slice(pem)?;
            body.insert(
                "cnf".into(),
                json!({ "x5t#S256": certificate_thumbprint(cert.as_ref()) }),
            );
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &Value::Object(body), &self.key)?)
    }
}
