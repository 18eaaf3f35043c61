//! Webhook signatures, computed as the providers document them and compared in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// How Twilio signed a webhook: HMAC-SHA1 with the auth token by default, or the algorithm a
/// Webhooks Setting names (with its shared key) in `X-Twilio-Webhooks-Signature-Settings`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TwilioAlgorithm {
    Sha1,
    Sha256,
}

/// Reads `X-Twilio-Webhooks-Signature-Settings` ("key=...,algorithm=HMAC_SHA256"): None when it
/// names an algorithm we do not know (the webhook is then refused).
pub fn twilio_algorithm(settings: &str) -> Option<TwilioAlgorithm> {
    let algorithm = settings
        .split(',')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "algorithm")
        .map(|(_, value)| value.trim())?;
    match algorithm {
        "HMAC_SHA1" => Some(TwilioAlgorithm::Sha1),
        "HMAC_SHA256" => Some(TwilioAlgorithm::Sha256),
        _ => None,
    }
}

/// Twilio's `X-Twilio-Signature`: base64(HMAC(secret, the full public URL followed by every
/// POST parameter, sorted by name, as name then value)). Every parameter received counts,
/// since Twilio adds new ones without notice.
pub fn twilio_valid(
    secret: &str,
    algorithm: TwilioAlgorithm,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    match algorithm {
        TwilioAlgorithm::Sha1 => twilio_mac::<Hmac<sha1::Sha1>>(secret, url, &sorted, &expected),
        TwilioAlgorithm::Sha256 => twilio_mac::<Hmac<sha2::Sha256>>(secret, url, &sorted, &expected),
    }
}

fn twilio_mac<M: Mac + hmac::digest::KeyInit>(
    secret: &str,
    url: &str,
    sorted: &[&(String, String)],
    expected: &[u8],
) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(expected).is_ok()
}

/// Meta's `X-Hub-Signature-256`: "sha256=" + hex(HMAC-SHA256(app secret, the raw body)).
pub fn meta_valid(app_secret: &str, body: &[u8], header: &str) -> bool {
    let Some(expected) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex| hex::decode(hex).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Why a payment webhook's signature was refused (answered to the provider, never with a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Forged,
    Stale,
}

/// Stripe's `Stripe-Signature` ("t=<unix seconds>,v1=<hex>[,v1=...]"): HMAC-SHA256 with the
/// endpoint's signing secret over "<t>.<raw body>"; any v1 may match (several while the secret
/// rolls). A timestamp more than `tolerance` from `now` (either way) is a replay.
pub fn stripe_valid(
    signing_secret: &str,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance: std::time::Duration,
) -> Result<(), Refused> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v1)) => signatures.push(hex::decode(v1).map_err(|_| Refused::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Refused::Malformed)?;
    if signatures.is_empty() {
        return Err(Refused::Malformed);
    }
    let signed = |expected: &[u8]| {
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(signing_secret.as_bytes()) else {
            return false;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(expected).is_ok()
    };
    if !signatures.iter().any(|expected| signed(expected)) {
        return Err(Refused::Forged);
    }
    if (now - timestamp).unsigned_abs() > tolerance.as_secs() {
        return Err(Refused::Stale);
    }
    Ok(())
}

/// Mercado Pago's `x-signature` ("ts=<time>,v1=<hex>"): HMAC-SHA256 with the application's
/// webhook secret over the manifest "id:<data.id>;request-id:<x-request-id>;ts:<ts>;", where
/// data.id is the query string's (lower-cased when alphanumeric). `ts` may be in seconds or
/// milliseconds; more than `tolerance` from `now` (seconds) is a replay.
pub fn mercadopago_valid(
    webhook_secret: &str,
    data_id: &str,
    request_id: &str,
    header: &str,
    now: i64,
    tolerance: std::time::Duration,
) -> Result<(), Refused> {
    let mut ts = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("ts", value)) => ts = Some(value.trim().to_string()),
            Some(("v1", value)) => v1 = Some(hex::decode(value.trim()).map_err(|_| Refused::Malformed)?),
            _ => {}
        }
    }
    let (Some(ts), Some(expected)) = (ts, v1) else {
        return Err(Refused::Malformed);
    };
    let seconds = ts.parse::<i64>().map_err(|_| Refused::Malformed)?;
    let seconds = if seconds > 100_000_000_000 {
        seconds / 1000
    } else {
        seconds
    };
    let data_id = if data_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        data_id.to_ascii_lowercase()
    } else {
        data_id.to_string()
    };
    let manifest = format!("id:{data_id};request-id:{request_id};ts:{ts};");
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(webhook_secret.as_bytes()) else {
        return Err(Refused::Forged);
    };
    mac.update(manifest.as_bytes());
    mac.verify_slice(&expected).map_err(|_| Refused::Forged)?;
    if (now - seconds).unsigned_abs() > tolerance.as_secs() {
        return Err(Refused::Stale);
    }
    Ok(())
}

/// SendGrid's signed event webhook: an ECDSA P-256 (SHA-256) signature, base64 DER, over the
/// timestamp header followed by the raw body, checked with the account's public key (base64
/// DER). A timestamp more than `max_age` old (or from the future) is a replay and refused.
pub fn sendgrid_valid(
    public_key: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: chrono::DateTime<chrono::Utc>,
    max_age: chrono::Duration,
) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::DecodePublicKey as _;
    let engine = &base64::engine::general_purpose::STANDARD;
    let Some(sent_at) = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    else {
        return false;
    };
    if now - sent_at > max_age || sent_at - now > chrono::Duration::minutes(5) {
        return false;
    }
    let Some(key) = engine
        .decode(public_key.trim())
        .ok()
        .and_then(|der| p256::ecdsa::VerifyingKey::from_public_key_der(&der).ok())
    else {
        return false;
    };
    let Some(signature) = engine
        .decode(signature.trim())
        .ok()
        .and_then(|der| p256::ecdsa::Signature::from_der(&der).ok())
    else {
        return false;
    };
    let mut signed = timestamp.trim().as_bytes().to_vec();
    signed.extend_from_slice(body);
    key.verify(&signed, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Expected values computed independently with Python's hmac module:
    //   base64(hmac.new(b"12345", url + "".join(k + v for k, v in sorted(p)), sha1).digest())
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const TWILIO_PARAMS: &[(&str, &str)] = &[
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+14158675310"),
        ("Caller", "+14158675310"),
        ("CallSid", "CA1234567890ABCDE"),
    ];

    #[test]
    fn twilio_accepts_its_own_signature_and_nothing_else() {
        let valid = "GvWf1cFY/Q7PnoempGyD5oXAezc=";
        assert!(twilio_valid(
            "12345",
            TwilioAlgorithm::Sha1,
            URL,
            &params(TWILIO_PARAMS),
            valid
        ));
        assert!(
            !twilio_valid(
                "wrong-token",
                TwilioAlgorithm::Sha1,
                URL,
                &params(TWILIO_PARAMS),
                valid
            ),
            "another account's token"
        );
        assert!(!twilio_valid(
            "12345",
            TwilioAlgorithm::Sha1,
            "https://attacker.example/myapp.php?foo=1&bar=2",
            &params(TWILIO_PARAMS),
            valid
        ));
        let mut tampered = params(TWILIO_PARAMS);
        tampered[0].1 = "9999".into();
        assert!(
            !twilio_valid("12345", TwilioAlgorithm::Sha1, URL, &tampered, valid),
            "a changed parameter"
        );
        assert!(!twilio_valid(
            "12345",
            TwilioAlgorithm::Sha1,
            URL,
            &params(TWILIO_PARAMS),
            "not base64!"
        ));
    }

    #[test]
    fn twilio_webhook_settings_switch_to_hmac_sha256_with_the_shared_key() {
        // base64(hmac.new(b"shared-key-secret", <same string>, sha256).digest())
        let valid = "ya/v4jc3oAtNFDX8hRf7j8TrCsQwG1Md/5mX8ogshlo=";
        let algorithm = twilio_algorithm("key=KS0123,algorithm=HMAC_SHA256").expect("known");
        assert_eq!(algorithm, TwilioAlgorithm::Sha256);
        assert!(twilio_valid(
            "shared-key-secret",
            algorithm,
            URL,
            &params(TWILIO_PARAMS),
            valid
        ));
        assert!(!twilio_valid(
            "12345",
            algorithm,
            URL,
            &params(TWILIO_PARAMS),
            valid
        ));
        assert!(
            !twilio_valid(
                "shared-key-secret",
                TwilioAlgorithm::Sha1,
                URL,
                &params(TWILIO_PARAMS),
                valid
            ),
            "the algorithm is part of the check"
        );
        assert_eq!(
            twilio_algorithm("key=KS0123,algorithm=HMAC_SHA1"),
            Some(TwilioAlgorithm::Sha1)
        );
        assert_eq!(twilio_algorithm("key=KS0123,algorithm=MD5"), None);
        assert_eq!(twilio_algorithm("key=KS0123"), None);
    }

    #[test]
    fn meta_accepts_its_own_signature_and_nothing_else() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let expected = META_SIGNATURE;
        assert!(meta_valid("app-secret", body, expected));
        assert!(!meta_valid("other-secret", body, expected));
        assert!(!meta_valid(
            "app-secret",
            br#"{"object":"whatsapp_business_account","entry":[{}]}"#,
            expected
        ));
        assert!(
            !meta_valid("app-secret", body, expected.trim_start_matches("sha256=")),
            "the prefix is required"
        );
        assert!(!meta_valid("app-secret", body, "sha256=zz"));
    }

    #[test]
    fn sendgrid_accepts_a_fresh_signature_and_refuses_forged_and_stale_ones() {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        let engine = &base64::engine::general_purpose::STANDARD;
        let signing = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).expect("key");
        let public = engine.encode(
            signing
                .verifying_key()
                .to_public_key_der()
                .expect("der")
                .as_bytes(),
        );
        let body = br#"[{"email":"ap@example.com","event":"bounce","reminder_id":"x"}]"#;
        let now = chrono::Utc::now();
        let timestamp = now.timestamp().to_string();
        let sign = |ts: &str, body: &[u8]| {
            let mut signed = ts.as_bytes().to_vec();
            signed.extend_from_slice(body);
            let signature: p256::ecdsa::Signature = signing.sign(&signed);
            engine.encode(signature.to_der().as_bytes())
        };
        let ten_minutes = chrono::Duration::minutes(10);
        assert!(sendgrid_valid(
            &public,
            &timestamp,
            body,
            &sign(&timestamp, body),
            now,
            ten_minutes
        ));
        assert!(
            !sendgrid_valid(
                &public,
                &timestamp,
                b"[]",
                &sign(&timestamp, body),
                now,
                ten_minutes
            ),
            "another body"
        );
        let other = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).expect("key");
        let forged: p256::ecdsa::Signature = other.sign(&[timestamp.as_bytes(), body].concat());
        assert!(!sendgrid_valid(
            &public,
            &timestamp,
            body,
            &engine.encode(forged.to_der().as_bytes()),
            now,
            ten_minutes
        ));
        let old = (now - chrono::Duration::minutes(11)).timestamp().to_string();
        assert!(
            !sendgrid_valid(&public, &old, body, &sign(&old, body), now, ten_minutes),
            "a replayed, stale event"
        );
    }

    // hmac.new(b"app-secret", b'{"object":"whatsapp_business_account","entry":[]}', sha256).hexdigest()
    const META_SIGNATURE: &str = "sha256=d3e4f9da0ce6c71ab3dba55929b8eeeee2455349e534924ead19f98d143e904f";

    fn hmac_hex(secret: &str, message: &str) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn stripe_signatures_are_checked_with_their_timestamp() {
        let tolerance = std::time::Duration::from_secs(300);
        let body = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
        let now = 1_800_000_000;
        let signature = hmac_hex(
            "whsec_test",
            &format!("{now}.{}", std::str::from_utf8(body).expect("utf8")),
        );
        let header = format!("t={now},v1={signature}");
        assert_eq!(
            stripe_valid("whsec_test", body, &header, now + 10, tolerance),
            Ok(())
        );
        // Several v1 while the secret rolls: any may match.
        let rolling = format!("t={now},v1={},v1={signature}", "00".repeat(32));
        assert_eq!(stripe_valid("whsec_test", body, &rolling, now, tolerance), Ok(()));
        assert_eq!(
            stripe_valid("whsec_other", body, &header, now, tolerance),
            Err(Refused::Forged)
        );
        assert_eq!(
            stripe_valid("whsec_test", b"{}", &header, now, tolerance),
            Err(Refused::Forged)
        );
        assert_eq!(
            stripe_valid("whsec_test", body, &header, now + 301, tolerance),
            Err(Refused::Stale),
            "replayed after five minutes"
        );
        assert_eq!(
            stripe_valid("whsec_test", body, "v1=abc", now, tolerance),
            Err(Refused::Malformed)
        );
        assert_eq!(
            stripe_valid("whsec_test", body, "", now, tolerance),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn mercadopago_signatures_cover_the_resource_the_request_and_the_time() {
        let tolerance = std::time::Duration::from_secs(300);
        let now = 1_800_000_000;
        let manifest = format!("id:123456;request-id:req-1;ts:{now};");
        let header = format!("ts={now},v1={}", hmac_hex("mp-secret", &manifest));
        assert_eq!(
            mercadopago_valid("mp-secret", "123456", "req-1", &header, now, tolerance),
            Ok(())
        );
        assert_eq!(
            mercadopago_valid("mp-secret", "123457", "req-1", &header, now, tolerance),
            Err(Refused::Forged),
            "another payment"
        );
        assert_eq!(
            mercadopago_valid("mp-secret", "123456", "req-2", &header, now, tolerance),
            Err(Refused::Forged),
            "another request"
        );
        assert_eq!(
            mercadopago_valid("mp-secret", "123456", "req-1", &header, now + 600, tolerance),
            Err(Refused::Stale)
        );
        // Milliseconds, and an alphanumeric id lower-cased as documented.
        let ms = now * 1000;
        let manifest = format!("id:abc123;request-id:req-1;ts:{ms};");
        let header = format!("ts={ms},v1={}", hmac_hex("mp-secret", &manifest));
        assert_eq!(
            mercadopago_valid("mp-secret", "ABC123", "req-1", &header, now, tolerance),
            Ok(())
        );
        assert_eq!(
            mercadopago_valid("mp-secret", "1", "req-1", "ts=1", now, tolerance),
            Err(Refused::Malformed)
        );
    }
}
