//! The issuer's signing keys (a JWKS), cached. A token signed with a key we do not know makes
//! us look again, so an issuer can rotate keys without a restart; a key the issuer removed is
//! forgotten at the next look (a changed file at once, a URL within `URL_REFRESH`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::KeySource;

/// A file is looked at no more than this often.
const FILE_CHECK: Duration = Duration::from_secs(1);
/// An issuer's URL is asked again for an unknown key no more than this often.
const URL_RETRY: Duration = Duration::from_secs(10);
/// And at least this often, to forget removed keys.
const URL_REFRESH: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS {source_name}: {reason}")]
    Unreadable { source_name: String, reason: String },
}

/// A verification key and the one algorithm it may be used with.
#[derive(Clone)]
pub struct SigningKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

struct Cached {
    keys: HashMap<String, SigningKey>,
    looked_at: Instant,
    fetched_at: Instant,
    modified: Option<SystemTime>,
}

pub struct KeyCache {
    source: KeySource,
    http: reqwest::Client,
    cached: RwLock<Cached>,
    /// One refresh at a time: a burst of tokens with an unknown key asks the issuer once.
    refreshing: Mutex<()>,
}

impl KeyCache {
    /// Loads the keys now: a service that cannot read them does not start.
    pub async fn load(source: KeySource, extra_root: Option<PathBuf>) -> Result<KeyCache, JwksError> {
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(path) = extra_root {
            let unreadable = |reason: String| JwksError::Unreadable {
                source_name: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(&path).map_err(|err| unreadable(err.to_string()))?;
            let root = reqwest::Certificate::from_pem(&pem).map_err(|err| unreadable(err.to_string()))?;
            http = http.add_root_certificate(root);
        }
        let http = http.build().map_err(|err| JwksError::Unreadable {
            source_name: "HTTP client".into(),
            reason: err.to_string(),
        })?;
        let (keys, modified) = fetch(&source, &http).await?;
        let now = Instant::now();
        Ok(KeyCache {
            source,
            http,
            cached: RwLock::new(Cached {
                keys,
                looked_at: now,
                fetched_at: now,
                modified,
            }),
            refreshing: Mutex::new(()),
        })
    }

    /// The key with this id, looking again at the source when it is due or the key unknown.
    pub async fn key(&self, kid: &str) -> Option<SigningKey> {
        {
            let cached = self.cached.read().await;
            let due = match self.source {
                KeySource::File(_) => cached.looked_at.elapsed() >= FILE_CHECK,
                KeySource::Url(_) => cached.fetched_at.elapsed() >= URL_REFRESH,
            };
            if !due && let Some(key) = cached.keys.get(kid) {
                return Some(key.clone());
            }
        }
        self.refresh().await;
        self.cached.read().await.keys.get(kid).cloned()
    }

    async fn refresh(&self) {
        let _one_at_a_time = self.refreshing.lock().await;
        let (modified, looked_at, fetched_at) = {
            let cached = self.cached.read().await;
            (cached.modified, cached.looked_at, cached.fetched_at)
        };
        match &self.source {
            KeySource::File(path) => {
                if looked_at.elapsed() < FILE_CHECK {
                    return;
                }
                let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                if now == modified {
                    self.cached.write().await.looked_at = Instant::now();
                    return;
                }
            }
            KeySource::Url(_) => {
                if fetched_at.elapsed() < URL_RETRY {
                    return;
                }
            }
        }
        match fetch(&self.source, &self.http).await {
            Ok((keys, modified)) => {
                let now = Instant::now();
                *self.cached.write().await = Cached {
                    keys,
                    looked_at: now,
                    fetched_at: now,
                    modified,
                };
                tracing::info!("token signing keys reloaded");
            }
            Err(err) => {
                // The keys we have keep working; the next unknown key tries again.
                let mut cached = self.cached.write().await;
                cached.looked_at = Instant::now();
                cached.fetched_at = Instant::now();
                tracing::warn!(error = %err, "token signing keys could not be reloaded");
            }
        }
    }
}

async fn fetch(
    source: &KeySource,
    http: &reqwest::Client,
) -> Result<(HashMap<String, SigningKey>, Option<SystemTime>), JwksError> {
    let (name, text, modified) = match source {
        KeySource::File(path) => {
            let name = path.display().to_string();
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let text = std::fs::read_to_string(path).map_err(|err| JwksError::Unreadable {
                source_name: name.clone(),
                reason: err.to_string(),
            })?;
            (name, text, modified)
        }
        KeySource::Url(url) => {
            let unreadable = |reason: String| JwksError::Unreadable {
                source_name: url.clone(),
                reason,
            };
            let response = http
                .get(url)
                .send()
                .await
                .map_err(|err| unreadable(err.to_string()))?;
            if !response.status().is_success() {
                return Err(unreadable(format!("HTTP {}", response.status())));
            }
            let text = response.text().await.map_err(|err| unreadable(err.to_string()))?;
            (url.clone(), text, None)
        }
    };
    let set: JwkSet = serde_json::from_str(&text).map_err(|err| JwksError::Unreadable {
        source_name: name.clone(),
        reason: err.to_string(),
    })?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        // A key we cannot use (no id, symmetric, an encryption key) is skipped, not fatal:
        // issuers publish keys for other purposes in the same set.
        match signing_key(jwk) {
            Some((kid, key)) => {
                keys.insert(kid, key);
            }
            None => tracing::debug!(kid = ?jwk.common.key_id, "JWKS entry skipped"),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::Unreadable {
            source_name: name,
            reason: "no usable signing key (ES256, RS256 or EdDSA, with a kid)".into(),
        });
    }
    Ok((keys, modified))
}

/// The algorithm a key may verify: the one it names, else the one its type implies. Only
/// asymmetric signatures: a shared secret in a public key set would let anyone sign.
fn signing_key(jwk: &Jwk) -> Option<(String, SigningKey)> {
    let kid = jwk.common.key_id.clone()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|usage| *usage != jsonwebtoken::jwk::PublicKeyUse::Signature)
    {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Algorithm::ES256,
        Some(KeyAlgorithm::ES384) if implied == Algorithm::ES384 => Algorithm::ES384,
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Algorithm::RS256,
        Some(KeyAlgorithm::RS384) if implied == Algorithm::RS256 => Algorithm::RS384,
        Some(KeyAlgorithm::RS512) if implied == Algorithm::RS256 => Algorithm::RS512,
        Some(KeyAlgorithm::PS256) if implied == Algorithm::RS256 => Algorithm::PS256,
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Algorithm::EdDSA,
        Some(_) => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, SigningKey { key, algorithm }))
}
