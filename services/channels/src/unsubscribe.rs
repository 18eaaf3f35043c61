//! One-click unsubscribe tokens (RFC 8058): what an email's `List-Unsubscribe` link carries.
//!
//! A token binds one reminder, its channel and the contact point it went to, signed with
//! HMAC-SHA256 (crate::link_keys) so that nobody can make one for someone else's address. The
//! keys come from a file (`RECOBRO_UNSUBSCRIBE_KEYS_FILE`, default `unsubscribe-keys` in the
//! secrets folder), one per line: the first signs, every one listed verifies.
//!
//! Token: URL-safe base64 without padding of
//! `version (1) | key id (4) | reminder id (16) | point id (16) | channel (1) | HMAC-SHA256 (32)`,
//! the HMAC over everything before it. Ids only: no address is in it.

use recobro_common::Channel;
use recobro_common::config::{ConfigError, Env};
use uuid::Uuid;

#[cfg(test)]
use crate::link_keys::KEY_ID_LEN;
use crate::link_keys::LinkKeys;

const VERSION: u8 = 1;
#[cfg(test)]
const SIGNED_LEN: usize = 1 + KEY_ID_LEN + 16 + 16 + 1;
#[cfg(test)]
const TOKEN_LEN: usize = SIGNED_LEN + 32;
const BODY_LEN: usize = 16 + 16 + 1;
/// Where the keys are read from unless `RECOBRO_UNSUBSCRIBE_KEYS_FILE` names a file.
pub const KEYS_FILE_SETTING: &str = "RECOBRO_UNSUBSCRIBE_KEYS_FILE";
const KEYS_FILE_NAME: &str = "unsubscribe-keys";
const PURPOSE: &str = "unsubscribe";

/// What a token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub reminder_id: Uuid,
    pub point_id: Uuid,
    pub channel: Channel,
}

/// The signing keys, first one signing.
pub struct UnsubscribeKeys(LinkKeys);

impl UnsubscribeKeys {
    /// The keys file named by `RECOBRO_UNSUBSCRIBE_KEYS_FILE`, else `unsubscribe-keys` in the
    /// secrets folder; a missing, empty or malformed file stops the service at start.
    pub fn from_env(env: &impl Env) -> Result<UnsubscribeKeys, ConfigError> {
        LinkKeys::from_env(env, KEYS_FILE_SETTING, KEYS_FILE_NAME, PURPOSE).map(UnsubscribeKeys)
    }

    /// One key per line (blank lines and `#` comments skipped). The reason for a refusal never
    /// holds a key.
    pub fn parse(text: &str) -> Result<UnsubscribeKeys, String> {
        LinkKeys::parse(text, PURPOSE).map(UnsubscribeKeys)
    }

    /// A key of its own, known to nobody: links signed with it verify nowhere else (for
    /// benchmarks and tests that never unsubscribe).
    pub fn ephemeral() -> UnsubscribeKeys {
        UnsubscribeKeys(LinkKeys::ephemeral(PURPOSE))
    }

    /// The token for `link`, signed with the first key.
    pub fn mint(&self, link: &Link) -> String {
        let mut body = Vec::with_capacity(BODY_LEN);
        body.extend_from_slice(link.reminder_id.as_bytes());
        body.extend_from_slice(link.point_id.as_bytes());
        body.push(channel_byte(link.channel));
        self.0.seal(VERSION, &body)
    }

    /// What `token` is bound to, if one of our keys signed it (checked in constant time);
    /// `None` for anything else, without saying why.
    pub fn verify(&self, token: &str) -> Option<Link> {
        let body = self.0.open(VERSION, token)?;
        if body.len() != BODY_LEN {
            return None;
        }
        let id = |at: usize| Uuid::from_slice(&body[at..at + 16]).ok();
        Some(Link {
            reminder_id: id(0)?,
            point_id: id(16)?,
            channel: channel_from_byte(body[BODY_LEN - 1])?,
        })
    }
}

/// The URL of a one-click unsubscribe link, on our public base URL.
pub struct UnsubscribeLinks {
    pub public_url: String,
    pub keys: std::sync::Arc<UnsubscribeKeys>,
}

impl UnsubscribeLinks {
    /// `<public URL>/unsubscribe/<token>`.
    pub fn url(&self, link: &Link) -> String {
        format!(
            "{}/unsubscribe/{}",
            self.public_url.trim_end_matches('/'),
            self.keys.mint(link)
        )
    }
}

fn channel_byte(channel: Channel) -> u8 {
    match channel {
        Channel::Email => 1,
        Channel::Sms => 2,
        Channel::Whatsapp => 3,
    }
}

fn channel_from_byte(byte: u8) -> Option<Channel> {
    match byte {
        1 => Some(Channel::Email),
        2 => Some(Channel::Sms),
        3 => Some(Channel::Whatsapp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "old-key-0123456789abcdefghijklmnopqrstuv";
    const NEW: &str = "new-key-0123456789abcdefghijklmnopqrstuv";

    fn link() -> Link {
        Link {
            reminder_id: Uuid::from_u128(0x1111),
            point_id: Uuid::from_u128(0x2222),
            channel: Channel::Email,
        }
    }

    fn keys(text: &str) -> UnsubscribeKeys {
        UnsubscribeKeys::parse(text).expect("keys")
    }

    /// The token with its raw bytes changed by `change`, re-encoded (the signature kept).
    fn tampered(token: &str, change: impl Fn(&mut Vec<u8>)) -> String {
        use base64::Engine as _;
        let engine = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = engine.decode(token).expect("base64");
        change(&mut bytes);
        engine.encode(bytes)
    }

    #[test]
    fn a_token_round_trips_and_is_url_safe() {
        let keys = keys(NEW);
        let token = keys.mint(&link());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        assert_eq!(keys.verify(&token), Some(link()));
        let url = UnsubscribeLinks {
            public_url: "https://collect.example.com/".into(),
            keys: std::sync::Arc::new(keys),
        }
        .url(&link());
        assert_eq!(url, format!("https://collect.example.com/unsubscribe/{token}"));
    }

    #[test]
    fn a_changed_reminder_point_or_channel_is_refused() {
        let keys = keys(NEW);
        let token = keys.mint(&link());
        let reminder = tampered(&token, |b| b[1 + KEY_ID_LEN] ^= 1);
        let point = tampered(&token, |b| b[1 + KEY_ID_LEN + 16] ^= 1);
        let channel = tampered(&token, |b| b[SIGNED_LEN - 1] = channel_byte(Channel::Sms));
        let signature = tampered(&token, |b| b[TOKEN_LEN - 1] ^= 1);
        let short = tampered(&token, |b| {
            b.pop();
        });
        for forged in [reminder, point, channel, signature, short] {
            assert_eq!(keys.verify(&forged), None, "{forged}");
        }
        assert_eq!(keys.verify("not a token"), None);
        assert_eq!(keys.verify(""), None);
        // Another deployment's key signs a well-formed token that is still not ours.
        assert_eq!(keys.verify(&UnsubscribeKeys::ephemeral().mint(&link())), None);
    }

    #[test]
    fn a_rotated_key_verifies_while_listed_and_not_after() {
        let before = keys(OLD).mint(&link());
        let rotating = keys(&format!("{NEW}\n{OLD}\n"));
        assert_eq!(rotating.verify(&before), Some(link()), "the old key still listed");
        let after = rotating.mint(&link());
        assert_ne!(after, before, "the first key signs");
        assert_eq!(keys(NEW).verify(&after), Some(link()));
        let rotated = keys(&format!("# rotated out {OLD:.3}\n{NEW}\n"));
        assert_eq!(rotated.verify(&before), None, "a removed key is refused");
        assert_eq!(rotated.verify(&after), Some(link()));
    }

    #[test]
    fn short_duplicate_or_missing_keys_stop_the_service() {
        let short = UnsubscribeKeys::parse("tooshort").err().expect("refused");
        assert!(short.contains("line 1") && !short.contains("tooshort"), "{short}");
        let twice = UnsubscribeKeys::parse(&format!("{NEW}\n{NEW}"))
            .err()
            .expect("refused");
        assert!(twice.contains("twice"), "{twice}");
        let empty = UnsubscribeKeys::parse("\n# nothing\n").err().expect("refused");
        assert!(empty.contains("no key"), "{empty}");
    }
}
