//! Keys that sign the opaque tokens in the links we send (one-click unsubscribe, payment links),
//! with HMAC-SHA256, so nobody can make a link for someone else's address or invoice.
//!
//! The keys come from a file, one per line: the first signs, every one listed verifies, so a key
//! is rotated by putting a new one first and removing the old one once the messages that carry
//! it no longer matter. Each key's id (derived from the key and the keys' purpose, so a line is
//! only the key) travels in the token and picks the key that verifies it.
//!
//! Signed token: URL-safe base64 without padding of `version (1) | key id (4) | body |
//! HMAC-SHA256 (32)`, the HMAC over everything before it. Sealed token (the body unreadable too):
//! `version | key id | nonce (12) | ChaCha20-Poly1305 of the body | tag (16)`. The version byte
//! differs per kind of link, so a token of one kind never reads as another.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use recobro_common::config::{ConfigError, Env};
use recobro_common::secret::Secret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const KEY_ID_LEN: usize = 4;
const TAG_LEN: usize = 32;
/// Long enough that guessing is hopeless (the local stack makes 32 random alphanumerics).
const MIN_KEY_CHARS: usize = 32;

struct Key {
    id: [u8; KEY_ID_LEN],
    secret: Secret,
    /// The sealing key derived from `secret`, made once.
    sealing: ring::aead::LessSafeKey,
}

/// The signing keys of one purpose, first one signing.
pub struct LinkKeys {
    keys: Vec<Key>,
}

impl LinkKeys {
    /// The keys file named by `setting`, else `file_name` in the secrets folder; a missing,
    /// empty or malformed file stops the service at start.
    pub fn from_env(
        env: &impl Env,
        setting: &str,
        file_name: &str,
        purpose: &str,
    ) -> Result<LinkKeys, ConfigError> {
        let file = Secret::from_file(env, setting, file_name)?;
        LinkKeys::parse(file.expose(), purpose).map_err(|reason| ConfigError::Invalid {
            name: setting.into(),
            value: recobro_common::secret::secret_path(env, setting, file_name)
                .display()
                .to_string(),
            reason,
        })
    }

    /// One key per line (blank lines and `#` comments skipped). The reason for a refusal never
    /// holds a key.
    pub fn parse(text: &str, purpose: &str) -> Result<LinkKeys, String> {
        let mut keys: Vec<Key> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.chars().count() < MIN_KEY_CHARS {
                return Err(format!(
                    "the key on line {} is shorter than {MIN_KEY_CHARS} characters",
                    number + 1
                ));
            }
            let id = key_id(purpose, line);
            if keys.iter().any(|key| key.id == id) {
                return Err(format!("the key on line {} is listed twice", number + 1));
            }
            let secret = Secret::new(line);
            let sealing = ring::aead::LessSafeKey::new(
                ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &sealing_key(&secret))
                    .expect("a 32-byte key"),
            );
            keys.push(Key { id, secret, sealing });
        }
        if keys.is_empty() {
            return Err("no key in the file".into());
        }
        Ok(LinkKeys { keys })
    }

    /// A key of its own, known to nobody: links signed with it verify nowhere else (for
    /// benchmarks and tests that never follow them).
    pub fn ephemeral(purpose: &str) -> LinkKeys {
        let key = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        LinkKeys::parse(&key, purpose).expect("two random UUIDs make a long enough key")
    }

    /// `body` under `version`, signed with the first key.
    pub fn seal(&self, version: u8, body: &[u8]) -> String {
        let key = &self.keys[0];
        let mut token = Vec::with_capacity(1 + KEY_ID_LEN + body.len() + TAG_LEN);
        token.push(version);
        token.extend_from_slice(&key.id);
        token.extend_from_slice(body);
        let tag = mac(&key.secret, &token).finalize().into_bytes();
        token.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
    }

    /// The body of `token` if it has this `version` and one of our keys signed it (checked in
    /// constant time); `None` for anything else, without saying why.
    pub fn open(&self, version: u8, token: &str) -> Option<Vec<u8>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()?;
        if bytes.len() < 1 + KEY_ID_LEN + TAG_LEN || bytes[0] != version {
            return None;
        }
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let key = self
            .keys
            .iter()
            .find(|key| key.id[..] == signed[1..1 + KEY_ID_LEN])?;
        mac(&key.secret, signed).verify_slice(tag).ok()?;
        Some(signed[1 + KEY_ID_LEN..].to_vec())
    }
}

impl LinkKeys {
    /// `body` under `version`, sealed with the first key (ChaCha20-Poly1305, a key derived from
    /// it): nobody can read the body from the token, or change it. The nonce is synthetic (an
    /// HMAC of the body), so the same body always gives the same token and different bodies
    /// never share a nonce. Token: `version | key id | nonce (12) | sealed body | tag (16)`.
    pub fn seal_private(&self, version: u8, body: &[u8]) -> String {
        use ring::aead::{Aad, Nonce};
        let key = &self.keys[0];
        let mut header = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN);
        header.push(version);
        header.extend_from_slice(&key.id);
        let synthetic = mac(&key.secret, &[&header[..], body].concat())
            .finalize()
            .into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&synthetic[..NONCE_LEN]);
        header.extend_from_slice(&nonce);
        let mut sealed = body.to_vec();
        key.sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..1 + KEY_ID_LEN]),
                &mut sealed,
            )
            .expect("a body this small always seals");
        header.extend_from_slice(&sealed);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header)
    }

    /// The body of a token [`LinkKeys::seal_private`] made with one of our keys; `None` for
    /// anything else, without saying why.
    pub fn open_private(&self, version: u8, token: &str) -> Option<Vec<u8>> {
        use ring::aead::{Aad, Nonce};
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()?;
        if bytes.len() < 1 + KEY_ID_LEN + NONCE_LEN + SEAL_TAG_LEN || bytes[0] != version {
            return None;
        }
        let key = self
            .keys
            .iter()
            .find(|key| key.id[..] == bytes[1..1 + KEY_ID_LEN])?;
        let (header, sealed) = bytes.split_at(1 + KEY_ID_LEN + NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&header[1 + KEY_ID_LEN..]).ok()?;
        let mut sealed = sealed.to_vec();
        let body = key
            .sealing
            .open_in_place(nonce, Aad::from(&header[..1 + KEY_ID_LEN]), &mut sealed)
            .ok()?;
        Some(body.to_vec())
    }
}

const NONCE_LEN: usize = 12;
const SEAL_TAG_LEN: usize = 16;

/// The sealing key: derived from the line's key, so one line serves both signing and sealing.
fn sealing_key(secret: &Secret) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"recobro link sealing key\0")
        .chain_update(secret.expose().as_bytes())
        .finalize()
        .into()
}

fn mac(secret: &Secret, signed: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(signed);
    mac
}

/// A short id derived from the key: which key to verify with, without revealing it.
fn key_id(purpose: &str, key: &str) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::new()
        .chain_update(format!("recobro {purpose} key id\0").as_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut id = [0; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}
