//! What withdraws consent must really come from the debtor: a one-click unsubscribe counts only
//! with a link we signed for that email and withdraws only the point it went to, once; and where
//! every channel has a real provider, the unsigned sandbox webhook is not there to forge replies.

use std::time::Duration;

use recobro_proto::v1 as pb;

use crate::HOP;
use crate::channels::{sendgrid, sendgrid_stand_in, whatsapp_cloud};
use crate::helpers::{Stack, post_json};
use crate::ledger::{ledger_invoice, until_channels_knows_invoice, us_company};
use crate::recipients::{email, points, suppressed_because, twilio, until_withdrawn};

/// Posts what a mail client's one-click unsubscribe posts (RFC 8058); returns the HTTP status.
async fn unsubscribe(stack: &Stack, path: &str) -> u16 {
    post_json(stack.http_port, path, "List-Unsubscribe=One-Click")
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_click_unsubscribe_withdraws_only_its_point_once_and_forged_links_change_nothing() {
    let (base, mail) = sendgrid_stand_in(Duration::ZERO).await;
    let mut providers = sendgrid(base);
    providers.extend(twilio("http://127.0.0.1:9".into()));
    providers.extend(whatsapp_cloud("http://127.0.0.1:9".into()));
    let stack = Stack::start_configured(None, providers).await;

    // No channel uses the sandbox: its unsigned reply webhook does not exist.
    let (status, _) = post_json(
        stack.http_port,
        "/webhooks/sandbox/replies",
        &format!(r#"{{"reminder_id":"{}","text":"STOP"}}"#, uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!(
        status, 404,
        "the sandbox webhook is served only when the sandbox is used"
    );

    let responses = stack.follow(&stack.topics.responses);
    let stored = stack.ledger_debtor(us_company("D-UNSUB", "es-US")).await;
    let debtor = stored.debtor.as_ref().expect("debtor").debtor_id.clone();
    let email_point = points(&stored)
        .into_iter()
        .find(|p| p.channel() == pb::Channel::Email)
        .expect("an email point");
    let invoice = ledger_invoice(&stack, "D-UNSUB", "INV-UNSUB", "FE-UNSUB", 60)
        .await
        .invoice_id;
    let mut channels = stack.channels().await;
    until_channels_knows_invoice(&mut channels, &email(&stack, "email-1", &debtor, &invoice)).await;
    let sent = channels
        .send_message(email(&stack, "email-1", &debtor, &invoice))
        .await
        .expect("sent")
        .into_inner()
        .record
        .expect("record");
    assert_eq!(sent.status(), pb::DeliveryStatus::Sent, "{sent:?}");

    // The email carried a signed link on our public URL, with no address in it.
    let link = mail.unsubscribe_links.lock().expect("lock")[0].clone();
    let ours = format!("<http://127.0.0.1:{}", stack.http_port);
    let path = link
        .strip_prefix(&ours)
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or_else(|| panic!("{link} is not on our public URL"))
        .to_string();
    assert!(path.starts_with("/unsubscribe/"), "{path}");
    assert!(!path.contains('@') && !path.contains("%40"), "{path}");

    // Forged links: a changed signature, and something that is no token at all.
    let mut forged = path.clone();
    let last = forged.pop().expect("a token");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(unsubscribe(&stack, &forged).await, 403);
    assert_eq!(unsubscribe(&stack, "/unsubscribe/not-a-token").await, 403);
    assert!(
        responses.drain(Duration::from_secs(2)).await.is_empty(),
        "a forged link withdraws nothing"
    );

    // The real one, posted twice (mail scanners post links again): one withdrawal.
    assert_eq!(unsubscribe(&stack, &path).await, 200);
    assert_eq!(unsubscribe(&stack, &path).await, 200);
    let response: pb::DebtorResponse = responses.find(HOP, |_| true).await.decode();
    assert_eq!(
        (
            response.intent(),
            response.point_id.as_str(),
            response.reminder_id.as_str(),
            response.source.as_str()
        ),
        (
            pb::ResponseIntent::OptOut,
            email_point.point_id.as_str(),
            sent.reminder_id.as_str(),
            "one-click unsubscribe"
        )
    );
    assert!(
        responses.drain(Duration::from_secs(2)).await.is_empty(),
        "one withdrawal per link"
    );

    // The ledger withdraws that point, and only it.
    let record = until_withdrawn(&stack, &debtor, &email_point.point_id).await;
    let others: Vec<_> = points(&record)
        .into_iter()
        .filter(|p| p.point_id != email_point.point_id)
        .collect();
    assert!(
        !others.is_empty() && others.iter().all(|p| p.consent() != pb::Consent::Withdrawn),
        "{others:?}"
    );

    // No more email to that point.
    let again = channels
        .send_message(email(&stack, "email-2", &debtor, &invoice))
        .await
        .expect("answered")
        .into_inner()
        .record
        .expect("record");
    suppressed_because(&again, "consent", "withdrawn");
    assert_eq!(mail.recipients.lock().expect("lock").len(), 1, "no second email");
}
