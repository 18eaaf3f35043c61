use super::*;

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
