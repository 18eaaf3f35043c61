//! Access tokens: JWTs (RFC 9068) signed by the configured issuer, for this audience, in their
//! validity window (60 s of leeway for clock skew), carrying the caller's tenant and scopes,
//! and, when bound to a client certificate (RFC 8705), presented over a TLS connection made
//! with that very certificate. Signatures are checked by `jsonwebtoken`, never by hand.

use std::collections::BTreeSet;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use rustls::pki_types::CertificateDer;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tonic::Status;

use super::jwks::{JwksError, KeyCache};
use super::{Caller, IdentitySettings, Scope};

const LEEWAY_SECONDS: u64 = 60;

pub struct Verifier {
    keys: KeyCache,
    issuer: String,
    audience: String,
    tenant_claim: String,
    require_bound_tokens: bool,
    allow_untyped_tokens: bool,
}

/// RFC 8705's `x5t#S256`: the base64url SHA-256 of a certificate's DER.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

fn refused(why: &'static str) -> Status {
    Status::unauthenticated(why)
}

impl Verifier {
    pub async fn load(settings: &IdentitySettings) -> Result<Verifier, JwksError> {
        Ok(Verifier {
            keys: KeyCache::load(settings.keys.clone(), settings.keys_ca.clone()).await?,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            tenant_claim: settings.tenant_claim.clone(),
            require_bound_tokens: settings.require_bound_tokens,
            allow_untyped_tokens: settings.allow_untyped_tokens,
        })
    }

    /// Checks a call's `authorization` header value and the client certificate of its
    /// connection; `UNAUTHENTICATED` with the reason when anything is off.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        client_cert: Option<&CertificateDer<'_>>,
    ) -> Result<Caller, Status> {
        let token = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| refused("a bearer token is required"))?;
        let header = decode_header(token).map_err(|_| refused("the token is not a JWT"))?;
        let typed = match header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("at+jwt") | Some("application/at+jwt") => true,
            Some("jwt") | None => false,
            Some(_) => return Err(refused("the token is not an access token (typ)")),
        };
        if !typed && !self.allow_untyped_tokens {
            return Err(refused("the token is not an access token (typ must be at+jwt)"));
        }
        let kid = header
            .kid
            .ok_or_else(|| refused("the token names no signing key (kid)"))?;
        let key = self
            .keys
            .key(&kid)
            .await
            .ok_or_else(|| refused("the token is signed with a key the issuer does not publish"))?;
        if header.alg != key.algorithm {
            return Err(refused("the token's algorithm is not its key's"));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|err| {
                refused(match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::InvalidIssuer => "the token's issuer is not trusted",
                    ErrorKind::InvalidAudience => "the token is not for this service (aud)",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks exp, iss, aud or sub",
                    ErrorKind::InvalidSignature => "the token's signature is invalid",
                    _ => "the token is invalid",
                })
            })?
            .claims;
        self.check_binding(&claims, client_cert)?;
        Ok(Caller {
            tenant: claims
                .get(&self.tenant_claim)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|tenant| !tenant.is_empty())
                .map(str::to_string),
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            scopes: scopes(&claims),
        })
    }

    /// RFC 8705: a token carrying `cnf.x5t#S256` is good only on a connection made with the
    /// certificate it names.
    fn check_binding(
        &self,
        claims: &Map<String, Value>,
        client_cert: Option<&CertificateDer<'_>>,
    ) -> Result<(), Status> {
        let bound_to = claims
            .get("cnf")
            .and_then(|cnf| cnf.get("x5t#S256"))
            .and_then(Value::as_str);
        match (bound_to, client_cert) {
            (None, _) if self.require_bound_tokens => Err(refused("a certificate-bound token is required")),
            (None, _) => Ok(()),
            (Some(_), None) => Err(refused(
                "the token is bound to a client certificate and none was presented",
            )),
            (Some(thumbprint), Some(cert)) => {
                if certificate_thumbprint(cert.as_ref()) == thumbprint {
                    Ok(())
                } else {
                    Err(refused("the token is bound to another client certificate"))
                }
            }
        }
    }
}

/// Our scopes among the token's: `scope` (RFC 9068, space-separated), `scp` (a string or a
/// list, as Entra ID writes delegated permissions) and `roles` (Entra ID's application
/// permissions, for client-credentials tokens). Scopes of other APIs are ignored.
fn scopes(claims: &Map<String, Value>) -> BTreeSet<Scope> {
    let mut names: Vec<&str> = Vec::new();
    for claim in ["scope", "scp", "roles"] {
        match claims.get(claim) {
            Some(Value::String(text)) => names.extend(text.split_whitespace()),
            Some(Value::Array(list)) => names.extend(list.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    names.into_iter().filter_map(|name| name.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_from_scope_and_scp_and_others_are_ignored() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"scope": "openid recobro:read recobro:send", "scp": ["recobro:admin", "User.Read"], "roles": ["recobro:write"]}"#,
        )
        .expect("json");
        assert_eq!(
            scopes(&claims),
            BTreeSet::from([Scope::Read, Scope::Write, Scope::Send, Scope::Admin])
        );
        assert!(scopes(&Map::new()).is_empty());
    }

    #[test]
    fn a_thumbprint_is_base64url_sha256_without_padding() {
        // SHA-256 of the empty input, base64url-encoded.
        assert_eq!(
            certificate_thumbprint(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}

#[cfg(test)]
mod verifier_tests {
    use std::path::PathBuf;
    use std::time::{SystemTime, UNIX_EPOCH};

    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use rcgen::{KeyPair, PKCS_ED25519};
    use serde_json::json;

    use super::*;

    /// A 2048-bit RSA key made for this test only (ring cannot generate RSA keys).
    const RSA_KEY: &str = include_str!("testdata/rsa-test.key");
    const RSA_N: &str = "33mQa9BTJZZhPNXF148ug8BlWq049a8mVlt5osgwozxPmR6awJ1H1zM3lyMRO8rSpdKQytdOkc4ExJ6XK0QhuSXxebOg4cNEM06zJslPD4agMIc7i45Jle_DzJotlSMQzPwYC7udq9P8h7U_1vGTb3p3eVRfnH8iBq6ytaY6P7uaZ49LJE_aoY45RiPODsP_zGm236hGZqMtskvlo_cg7usu5V5gp0FNWo0V87x43sWgKIP5TXJDh14liCiFoB5O9eiPuVme_uR1ppcMhRo9QeXEU0MAxRdVi5EgsB9yl-hySWCWOdcPZ3DzE5xMEGJtWEeNnH7FRS8OFY1E-13f9Q";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    struct Keys {
        ec: KeyPair,
        ed: KeyPair,
        dir: PathBuf,
    }

    impl Drop for Keys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn keys() -> Keys {
        let dir = std::env::temp_dir().join(format!("recobro-jwks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ec = KeyPair::generate().expect("P-256");
        let ed = KeyPair::generate_for(&PKCS_ED25519).expect("Ed25519");
        let point = ec.public_key_raw();
        let set = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key_raw())},
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
            {"kty": "oct", "kid": "shared", "k": b64(b"a shared secret has no place here")},
        ]});
        std::fs::write(dir.join("jwks.json"), set.to_string()).expect("jwks");
        Keys { ec, ed, dir }
    }

    async fn verifier(keys: &Keys) -> Verifier {
        let settings = crate::identity::settings::for_tests(&keys.dir);
        Verifier::load(&settings).await.expect("keys load")
    }

    fn claims(shift: i64) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
            + shift;
        json!({"iss": "https://issuer.example", "aud": "recobro", "sub": "client-1", "exp": now + 600,
               "nbf": now, "iat": now, "tenant_id": "acme", "scope": "recobro:read"})
    }

    fn sign(algorithm: Algorithm, kid: &str, typ: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.into());
        header.typ = typ.map(str::to_string);
        format!("Bearer {}", encode(&header, claims, key).expect("sign"))
    }

    #[tokio::test]
    async fn es256_rs256_and_eddsa_tokens_from_the_issuer_are_accepted() {
        let keys = keys();
        let verifier = verifier(&keys).await;
        let ec = EncodingKey::from_ec_pem(keys.ec.serialize_pem().as_bytes()).expect("ec");
        let ed = EncodingKey::from_ed_pem(keys.ed.serialize_pem().as_bytes()).expect("ed");
        let rsa = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("rsa");
        for (algorithm, kid, key) in [
            (Algorithm::ES256, "ec", &ec),
            (Algorithm::EdDSA, "ed", &ed),
            (Algorithm::RS256, "rsa", &rsa),
        ] {
            let token = sign(algorithm, kid, Some("at+jwt"), key, &claims(0));
            let caller = verifier
                .verify(Some(&token), None)
                .await
                .unwrap_or_else(|err| panic!("{kid}: {err:?}"));
            assert_eq!(caller.tenant.as_deref(), Some("acme"));
            assert_eq!(caller.subject, "client-1");
            assert_eq!(caller.scopes, BTreeSet::from([Scope::Read]));
        }
    }

    #[tokio::test]
    async fn every_wrong_token_is_refused_as_unauthenticated() {
        let keys = keys();
        let verifier = verifier(&keys).await;
        let ec = EncodingKey::from_ec_pem(keys.ec.serialize_pem().as_bytes()).expect("ec");
        let forger = KeyPair::generate().expect("key");
        let forged = EncodingKey::from_ec_pem(forger.serialize_pem().as_bytes()).expect("ec");
        let mut wrong_issuer = claims(0);
        wrong_issuer["iss"] = json!("https://evil.example");
        let mut wrong_audience = claims(0);
        wrong_audience["aud"] = json!("another-api");
        let mut no_subject = claims(0);
        no_subject.as_object_mut().expect("object").remove("sub");
        let cases = [
            ("no header", None),
            ("not bearer", Some("Basic dXNlcjpwYXNz".to_string())),
            ("not a JWT", Some("Bearer not.a.jwt".to_string())),
            (
                "forged",
                Some(sign(Algorithm::ES256, "ec", Some("at+jwt"), &forged, &claims(0))),
            ),
            (
                "unknown kid",
                Some(sign(Algorithm::ES256, "nobody", Some("at+jwt"), &ec, &claims(0))),
            ),
            (
                "expired",
                Some(sign(Algorithm::ES256, "ec", Some("at+jwt"), &ec, &claims(-3600))),
            ),
            (
                "not yet valid",
                Some(sign(Algorithm::ES256, "ec", Some("at+jwt"), &ec, &claims(600))),
            ),
            (
                "wrong issuer",
                Some(sign(Algorithm::ES256, "ec", Some("at+jwt"), &ec, &wrong_issuer)),
            ),
            (
                "wrong audience",
                Some(sign(Algorithm::ES256, "ec", Some("at+jwt"), &ec, &wrong_audience)),
            ),
            (
                "no subject",
                Some(sign(Algorithm::ES256, "ec", Some("at+jwt"), &ec, &no_subject)),
            ),
            (
                "an ID token (typ JWT)",
                Some(sign(Algorithm::ES256, "ec", Some("JWT"), &ec, &claims(0))),
            ),
            (
                "untyped",
                Some(sign(Algorithm::ES256, "ec", None, &ec, &claims(0))),
            ),
            (
                "a symmetric key",
                Some(sign(
                    Algorithm::HS256,
                    "shared",
                    Some("at+jwt"),
                    &EncodingKey::from_secret(b"a shared secret has no place here"),
                    &claims(0),
                )),
            ),
        ];
        for (case, token) in cases {
            let err = verifier.verify(token.as_deref(), None).await.expect_err(case);
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{case}");
        }
        // Within the leeway, a clock a little ahead or behind is fine.
        let skewed = sign(Algorithm::ES256, "ec", Some("at+jwt"), &ec, &claims(30));
        verifier.verify(Some(&skewed), None).await.expect("30 s of skew");
    }
}
