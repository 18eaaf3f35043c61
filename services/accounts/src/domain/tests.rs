use recobro_common::grpc::Refusal;
use recobro_proto::v1::InvoiceEventKind;

use super::input::{MAX_CONTACTS, MAX_POINTS_PER_CONTACT};
use super::*;
use crate::error::AccountsError;

pub fn valid_event() -> pb::InvoiceEvent {
    pb::InvoiceEvent {
        event_id: "evt-1".into(),
        tenant_id: "acme".into(),
        kind: InvoiceEventKind::Issued as i32,
        version: 1,
        occurred_at: None,
        debtor: Some(pb::DebtorRecord {
            external_id: "C-1".into(),
            name: "Ferretería El Tornillo SAS".into(),
            kind: pb::DebtorKind::Company as i32,
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            country: "CO".into(),
            email: "tesoreria@tornillo.example".into(),
            phone: "+573001234567".into(),
            region: String::new(),
            ..Default::default()
        }),
        invoice: Some(pb::InvoiceRecord {
            external_id: "F-100".into(),
            number: "FE-100".into(),
            amount: Some(pb::Money {
                amount_minor: 125_000_00,
                currency: "COP".into(),
            }),
            issue_date: Some(pb::Date {
                year: 2026,
                month: 10,
                day: 1,
            }),
            due_date: Some(pb::Date {
                year: 2026,
                month: 10,
                day: 31,
            }),
        }),
        credit_note: None,
    }
}

fn field_of(err: AccountsError) -> String {
    match err {
        AccountsError::Refused(Refusal::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn a_valid_event_parses_with_stable_ids() {
    let parsed = InvoiceEvent::parse(&valid_event()).expect("valid");
    assert_eq!(parsed.invoice.status, InvoiceStatus::Open);
    assert_eq!(parsed.debtor.debtor_id, debtor_id("acme", "C-1"));
    assert_eq!(parsed.invoice.debtor_id, parsed.debtor.debtor_id);
    assert_ne!(debtor_id("acme", "C-1"), debtor_id("other", "C-1"));
}

/// Breaks one field of a valid event.
type Breaker = Box<dyn Fn(&mut pb::InvoiceEvent)>;

#[test]
fn each_bad_field_is_named() {
    let cases: Vec<(&str, Breaker)> = vec![
        ("tenant_id", Box::new(|e| e.tenant_id = "a b".into())),
        ("kind", Box::new(|e| e.kind = 0)),
        ("version", Box::new(|e| e.version = 0)),
        (
            "debtor.time_zone",
            Box::new(|e| e.debtor.as_mut().unwrap().time_zone = "Mars/Base".into()),
        ),
        (
            "debtor.phone",
            Box::new(|e| e.debtor.as_mut().unwrap().phone = "3001234567".into()),
        ),
        (
            "debtor.email",
            Box::new(|e| e.debtor.as_mut().unwrap().email = "nobody".into()),
        ),
        (
            "debtor.locale",
            Box::new(|e| e.debtor.as_mut().unwrap().locale = "fr".into()),
        ),
        (
            "debtor.name",
            Box::new(|e| e.debtor.as_mut().unwrap().name = "El Tornillo\0SAS".into()),
        ),
        (
            "invoice.number",
            Box::new(|e| e.invoice.as_mut().unwrap().number = "FE-1\u{7}".into()),
        ),
        (
            "debtor.country",
            Box::new(|e| e.debtor.as_mut().unwrap().country = "Colombia".into()),
        ),
        (
            "invoice.amount.currency",
            Box::new(|e| e.invoice.as_mut().unwrap().amount.as_mut().unwrap().currency = "PESOS".into()),
        ),
        (
            "invoice.amount.amount_minor",
            Box::new(|e| e.invoice.as_mut().unwrap().amount.as_mut().unwrap().amount_minor = -1),
        ),
        (
            "invoice.due_date",
            Box::new(|e| {
                e.invoice.as_mut().unwrap().due_date = Some(pb::Date {
                    year: 2026,
                    month: 9,
                    day: 1,
                })
            }),
        ),
        (
            "invoice.issue_date",
            Box::new(|e| {
                e.invoice.as_mut().unwrap().issue_date = Some(pb::Date {
                    year: 2026,
                    month: 2,
                    day: 30,
                })
            }),
        ),
    ];
    for (field, break_it) in cases {
        let mut event = valid_event();
        break_it(&mut event);
        let err = InvoiceEvent::parse(&event).expect_err(field);
        assert_eq!(field_of(err), field);
    }
}

#[test]
fn a_debtor_needs_a_way_to_be_reached() {
    let mut event = valid_event();
    let debtor = event.debtor.as_mut().expect("set");
    debtor.email.clear();
    debtor.phone.clear();
    assert_eq!(
        field_of(InvoiceEvent::parse(&event).expect_err("unreachable")),
        "debtor.email"
    );
}

#[test]
fn paid_and_cancelled_events_set_the_status() {
    let mut event = valid_event();
    event.kind = InvoiceEventKind::Paid as i32;
    assert_eq!(
        InvoiceEvent::parse(&event).expect("valid").invoice.status,
        InvoiceStatus::Paid
    );
    event.kind = InvoiceEventKind::Cancelled as i32;
    assert_eq!(
        InvoiceEvent::parse(&event).expect("valid").invoice.status,
        InvoiceStatus::Cancelled
    );
}

#[test]
fn an_erp_record_is_one_primary_contact_whose_consent_comes_from_the_erp() {
    let parsed = InvoiceEvent::parse(&valid_event()).expect("valid");
    let debtor = &parsed.debtor;
    assert_eq!(debtor.contacts.len(), 1);
    let contact = &debtor.contacts[0];
    assert_eq!(contact.contact_id, primary_contact_id(debtor.debtor_id));
    let points: Vec<(Channel, &str, bool)> = contact
        .points
        .iter()
        .map(|p| (p.channel, p.source.as_str(), p.preferred))
        .collect();
    assert_eq!(
        points,
        [(Channel::Email, "erp", true), (Channel::Sms, "erp", false)],
        "the email is preferred when there is one"
    );
}

fn debtor_input(consent_source: &str) -> pb::DebtorInput {
    pb::DebtorInput {
        external_id: "C-1".into(),
        name: "Riverside Supplies LLC".into(),
        kind: pb::DebtorKind::Company as i32,
        time_zone: "America/New_York".into(),
        locale: "en-US".into(),
        country: "US".into(),
        contacts: vec![pb::Contact {
            name: "Accounts payable".into(),
            role: pb::ContactRole::AccountsPayable as i32,
            points: vec![pb::ContactPoint {
                channel: pb::Channel::Email as i32,
                address: "ap@riverside.example".into(),
                consent_source: consent_source.into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn consent_not_sourced_says_which_way_it_came_in() {
    let source_of = |input: &pb::DebtorInput, default: &str| {
        let debtor = parse_debtor_input("acme", Some(input), default).expect("valid");
        debtor.contacts[0].points[0].source.clone()
    };
    assert_eq!(source_of(&debtor_input(""), "import"), "import");
    assert_eq!(source_of(&debtor_input("  "), "api"), "api");
    assert_eq!(
        source_of(&debtor_input("signed contract"), "import"),
        "signed contract"
    );
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("a time")
}

/// A debtor with a granted, a withdrawn and a retired point.
fn debtor_with_history() -> Debtor {
    let mut debtor = parse_debtor_input("acme", Some(&debtor_input("")), "api").expect("valid");
    let granted = debtor.contacts[0].points[0].clone();
    let withdrawn = Point {
        point_id: Uuid::from_u128(2),
        channel: Channel::Sms,
        address: "+13055550123".into(),
        consent: Consent::Withdrawn,
        source: "reply".into(),
        consent_at: Some(at(1_790_000_000)),
        preferred: false,
        retired: None,
    };
    let retired = Point {
        point_id: Uuid::from_u128(3),
        address: "old@riverside.example".into(),
        consent_at: Some(at(1_700_000_000)),
        retired: Some(Retirement {
            at: at(1_790_000_100),
            reason: "replaced by the ERP record".into(),
        }),
        ..granted.clone()
    };
    debtor.contacts[0].points = vec![granted, withdrawn, retired];
    debtor
}

#[test]
fn only_granted_points_that_were_not_retired_are_usable() {
    let debtor = debtor_with_history();
    let usable: Vec<bool> = debtor.contacts[0].points.iter().map(Point::usable).collect();
    assert_eq!(usable, [true, false, false]);
}

#[test]
fn routes_are_where_a_message_may_go_now_by_point_id() {
    let mut debtor = debtor_with_history();
    let proto = debtor.to_proto();
    assert_eq!(proto.routes.len(), 1, "{:?}", proto.routes);
    let route = &proto.routes[0];
    assert_eq!(route.point_id, debtor.contacts[0].points[0].point_id.to_string());
    assert_eq!(route.address, "ap@riverside.example");
    assert_eq!(route.role, "accounts_payable");
    assert!(!proto.legal_hold);
    debtor.legal_hold = Some(LegalHold {
        reason: "bankruptcy".into(),
        source: "court notice".into(),
        since: at(1_790_000_000),
    });
    assert!(debtor.to_proto().legal_hold);
}

#[test]
fn a_contact_shows_every_point_with_when_and_why() {
    let debtor = debtor_with_history();
    let contact = debtor.contacts[0].to_proto();
    assert_eq!(contact.points.len(), 3);
    let withdrawn = &contact.points[1];
    assert_eq!(withdrawn.consent(), pb::Consent::Withdrawn);
    assert_eq!(withdrawn.consent_source, "reply");
    assert_eq!(withdrawn.consent_at.map(|t| t.seconds), Some(1_790_000_000));
    assert!(withdrawn.retired_at.is_none());
    let retired = &contact.points[2];
    assert_eq!(retired.consent(), pb::Consent::Granted);
    assert_eq!(retired.retired_at.map(|t| t.seconds), Some(1_790_000_100));
    assert_eq!(retired.retired_reason, "replaced by the ERP record");
    assert_eq!(contact.points[0].consent_at, None, "not stored yet: no time");
}

#[test]
fn a_debtor_with_more_contacts_or_points_than_the_limit_is_refused_naming_the_limit() {
    let mut many_contacts = debtor_input("");
    let contact = many_contacts.contacts[0].clone();
    many_contacts.contacts = (0..=MAX_CONTACTS)
        .map(|n| pb::Contact {
            name: format!("Contact {n}"),
            ..contact.clone()
        })
        .collect();
    let err = parse_debtor_input("acme", Some(&many_contacts), "api").expect_err("too many contacts");
    assert!(err.to_string().contains(&MAX_CONTACTS.to_string()), "{err}");
    assert_eq!(field_of(err), "debtor.contacts");

    let mut many_points = debtor_input("");
    let point = many_points.contacts[0].points[0].clone();
    many_points.contacts[0].points = (0..=MAX_POINTS_PER_CONTACT)
        .map(|n| pb::ContactPoint {
            address: format!("ap{n}@riverside.example"),
            ..point.clone()
        })
        .collect();
    let err = parse_debtor_input("acme", Some(&many_points), "api").expect_err("too many points");
    assert_eq!(field_of(err), "debtor.contacts[0].points");
    let mut at_the_limit = debtor_input("");
    at_the_limit.contacts[0].points = many_points.contacts[0].points[..MAX_POINTS_PER_CONTACT].to_vec();
    assert!(parse_debtor_input("acme", Some(&at_the_limit), "api").is_ok());
}
