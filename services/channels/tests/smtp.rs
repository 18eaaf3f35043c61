//! SMTP submission against a local relay stand-in that speaks ESMTP as RFC 5321, 3207
//! (STARTTLS) and 4954 (AUTH) describe it: it refuses AUTH before TLS and mail before AUTH,
//! and answers RCPT with the reply codes real relays use.
//!
//! The fixtures are a test CA and a relay certificate for localhost and 127.0.0.1 it signed,
//! valid for a hundred years (openssl req -x509 / openssl x509 -req, P-256).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use recobro_channels::provider::{OutgoingEmail, ProviderError, Smtp, SmtpSettings};
use recobro_channels::unsubscribe::{Link, UnsubscribeKeys, UnsubscribeLinks};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use uuid::Uuid;

const CA: &[u8] = include_bytes!("fixtures/smtp-test-ca.pem");
const RELAY_CERT: &[u8] = include_bytes!("fixtures/smtp-relay.pem");
const RELAY_KEY: &[u8] = include_bytes!("fixtures/smtp-relay.key");

/// One message as the relay received it.
#[derive(Debug, Clone)]
struct Received {
    user: String,
    password: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

#[derive(Clone, Default)]
struct Relay(Arc<Mutex<Vec<Received>>>);

/// What a dialogue ended with.
enum End<S> {
    StartTls(S),
    Closed,
}

impl Relay {
    /// STARTTLS (port 587 style), or TLS from the first byte (`implicit`, port 465 style).
    async fn start(self, implicit: bool) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let certs = vec![CertificateDer::from_pem_slice(RELAY_CERT).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(RELAY_KEY).expect("key");
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("tls config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let (relay, acceptor) = (self.clone(), acceptor.clone());
                tokio::spawn(async move {
                    if implicit {
                        let mut tls = acceptor.accept(tcp).await.ok()?;
                        tls.write_all(b"220 relay.test ESMTP stand-in\r\n").await.ok()?;
                        relay.converse(tls, true).await;
                        return Some(());
                    }
                    tcp.write_all(b"220 relay.test ESMTP stand-in\r\n").await.ok()?;
                    if let End::StartTls(tcp) = relay.converse(tcp, false).await {
                        let tls = acceptor.accept(tcp).await.ok()?;
                        relay.converse(tls, true).await;
                    }
                    Some(())
                });
            }
        });
        port
    }

    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, secure: bool) -> End<S> {
        let mut stream = BufReader::new(stream);
        let mut auth = None;
        let mut mail_from = String::new();
        let mut rcpt_to = Vec::new();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return End::Closed;
            }
            let line = line.trim_end();
            let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" if secure => "250-relay.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".to_string(),
                "EHLO" => "250-relay.test\r\n250-STARTTLS\r\n250 8BITMIME".to_string(),
                "STARTTLS" if !secure => {
                    stream.write_all(b"220 2.0.0 Ready to start TLS\r\n").await.ok();
                    return End::StartTls(stream.into_inner());
                }
                "AUTH" if !secure => "530 5.7.0 Must issue a STARTTLS command first".to_string(),
                "AUTH" => {
                    let encoded = line.strip_prefix("AUTH PLAIN ").unwrap_or_default();
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .unwrap_or_default();
                    let parts: Vec<String> = decoded
                        .split(|b| *b == 0)
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    if parts.len() == 3 && parts[1] == "recobro" && parts[2] == "s3cr3t" {
                        auth = Some((parts[1].clone(), parts[2].clone()));
                        "235 2.7.0 Authentication successful".to_string()
                    } else {
                        "535 5.7.8 Authentication credentials invalid".to_string()
                    }
                }
                "MAIL" if auth.is_none() => "530 5.7.0 Authentication required".to_string(),
                "MAIL" => {
                    mail_from = line.to_string();
                    rcpt_to.clear();
                    "250 2.1.0 Ok".to_string()
                }
                "RCPT" if line.contains("nobody@") => {
                    "550 5.1.1 <nobody@cliente.example>: Recipient address rejected: User unknown".to_string()
                }
                "RCPT" if line.contains("later@") => {
                    "451 4.3.0 Temporary lookup failure, try again later".to_string()
                }
                "RCPT" => {
                    rcpt_to.push(line.to_string());
                    "250 2.1.5 Ok".to_string()
                }
                "DATA" => {
                    stream
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await
                        .ok();
                    let mut data = String::new();
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return End::Closed;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    let (user, password) = auth.clone().unwrap_or_default();
                    self.0.lock().expect("lock").push(Received {
                        user,
                        password,
                        mail_from: mail_from.clone(),
                        rcpt_to: rcpt_to.clone(),
                        data,
                    });
                    "250 2.0.0 Ok: queued as 4F2A1C0B7E".to_string()
                }
                "RSET" | "NOOP" => "250 2.0.0 Ok".to_string(),
                "QUIT" => {
                    stream.write_all(b"221 2.0.0 Bye\r\n").await.ok();
                    return End::Closed;
                }
                _ => "502 5.5.2 Error: command not recognized".to_string(),
            };
            if stream.write_all(format!("{reply}\r\n").as_bytes()).await.is_err() {
                return End::Closed;
            }
        }
    }
}

fn settings(port: u16, trust_test_ca: bool) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        implicit_tls: false,
        username: "recobro".into(),
        password: recobro_common::secret::Secret::new("s3cr3t"),
        from: "Cobranza ACME <cobranza@acme.example>".into(),
        extra_root_pem: trust_test_ca.then(|| CA.to_vec()),
    }
}

/// The key the tests sign unsubscribe links with.
const KEY: &str = "smtp-test-key-0123456789-abcdefghijklmnopqrstuvwxyz";

fn links() -> UnsubscribeLinks {
    UnsubscribeLinks {
        public_url: "https://recobro.example".into(),
        keys: Arc::new(UnsubscribeKeys::parse(KEY).expect("key")),
    }
}

/// The contact point every test email goes to.
const POINT: Uuid = Uuid::from_u128(0x5e11_0000_0000_0000_0000_0000_0000_0001);

fn email(to: &str, reminder_id: Uuid) -> OutgoingEmail<'_> {
    OutgoingEmail {
        reminder_id,
        point_id: POINT,
        to,
        subject: "Recordatorio de pago: factura FE-1001",
        body: "Hola Comercial Andina, la factura FE-1001 por $ 1.250.000,00 venció el 10/11/2026.",
    }
}

#[tokio::test]
async fn smtp_submits_over_starttls_with_auth_and_one_click_unsubscribe_headers() {
    let relay = Relay::default();
    let port = relay.clone().start(false).await;
    let smtp = Smtp::new(&settings(port, true), links()).expect("smtp");
    let reminder_id = Uuid::new_v4();

    let message_id = smtp
        .send(&email("cartera@cliente.example", reminder_id))
        .await
        .expect("accepted");

    assert_eq!(message_id, format!("<{reminder_id}@acme.example>"));
    let received = relay.0.lock().expect("lock").clone();
    assert_eq!(received.len(), 1, "{received:?}");
    let mail = &received[0];
    // The relay only takes AUTH after STARTTLS, and mail only after AUTH.
    assert_eq!(
        (mail.user.as_str(), mail.password.as_str()),
        ("recobro", "s3cr3t")
    );
    assert_eq!(mail.mail_from, "MAIL FROM:<cobranza@acme.example>");
    assert_eq!(mail.rcpt_to, ["RCPT TO:<cartera@cliente.example>"]);
    let headers = mail.data.split("\r\n\r\n").next().unwrap_or_default();
    // The link is a token bound to this reminder and point, signed with our key.
    let link = headers
        .lines()
        .find_map(|line| line.strip_prefix("List-Unsubscribe: <https://recobro.example/unsubscribe/"))
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or_else(|| panic!("no one-click link in:\n{headers}"));
    assert_eq!(
        UnsubscribeKeys::parse(KEY).expect("key").verify(link),
        Some(Link {
            reminder_id,
            point_id: POINT,
            channel: recobro_common::Channel::Email,
        })
    );
    assert!(
        !headers.contains("cartera%40"),
        "no address in the link: {headers}"
    );
    for expected in [
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_string(),
        format!("Message-ID: <{reminder_id}@acme.example>"),
        "Subject: Recordatorio de pago: factura FE-1001".to_string(),
        "To: cartera@cliente.example".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
    ] {
        assert!(headers.contains(&expected), "missing {expected:?} in:\n{headers}");
    }
    assert!(
        headers.contains("From: \"Cobranza ACME\" <cobranza@acme.example>"),
        "{headers}"
    );
    assert!(mail.data.contains("FE-1001"), "{}", mail.data);
}

#[tokio::test]
async fn smtp_refusals_are_permanent_and_deferrals_transient() {
    let relay = Relay::default();
    let port = relay.clone().start(false).await;
    let smtp = Smtp::new(&settings(port, true), links()).expect("smtp");

    let unknown = smtp.send(&email("nobody@cliente.example", Uuid::new_v4())).await;
    assert!(
        matches!(&unknown, Err(ProviderError::Permanent(reason)) if reason.contains("550")),
        "{unknown:?}"
    );
    let later = smtp.send(&email("later@cliente.example", Uuid::new_v4())).await;
    assert!(
        matches!(&later, Err(ProviderError::Transient(reason)) if reason.contains("451")),
        "{later:?}"
    );
    let invalid = smtp.send(&email("not an address", Uuid::new_v4())).await;
    assert!(matches!(invalid, Err(ProviderError::Permanent(_))), "{invalid:?}");

    // A wrong password is our setup, not the debtor's address: retried, never charged to them.
    let mut wrong = settings(port, true);
    wrong.password = recobro_common::secret::Secret::new("wrong");
    let smtp = Smtp::new(&wrong, links()).expect("smtp");
    let refused = smtp.send(&email("cartera@cliente.example", Uuid::new_v4())).await;
    assert!(
        matches!(&refused, Err(ProviderError::Transient(reason)) if reason.contains("535")),
        "{refused:?}"
    );
    assert!(relay.0.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn smtp_submits_over_implicit_tls_on_a_465_style_port() {
    let relay = Relay::default();
    let port = relay.clone().start(true).await;
    let mut implicit = settings(port, true);
    implicit.implicit_tls = true;
    let smtp = Smtp::new(&implicit, links()).expect("smtp");
    let reminder_id = Uuid::new_v4();

    let message_id = smtp
        .send(&email("cartera@cliente.example", reminder_id))
        .await
        .expect("accepted");

    assert_eq!(message_id, format!("<{reminder_id}@acme.example>"));
    let received = relay.0.lock().expect("lock").clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].user, "recobro");
}

#[tokio::test]
async fn smtp_never_sends_to_a_relay_whose_certificate_it_cannot_verify() {
    let relay = Relay::default();
    let port = relay.clone().start(false).await;
    // The relay's certificate is signed by the test CA, which is not trusted here.
    let smtp = Smtp::new(&settings(port, false), links()).expect("smtp");

    let refused = smtp.send(&email("cartera@cliente.example", Uuid::new_v4())).await;

    assert!(matches!(refused, Err(ProviderError::Transient(_))), "{refused:?}");
    assert!(
        relay.0.lock().expect("lock").is_empty(),
        "nothing may leave without TLS"
    );
}
