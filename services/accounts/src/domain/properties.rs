//! Property tests of the ERP event path: bytes off a tenant's topic are decoded as a
//! `recobro.v1.InvoiceEvent` and checked by `InvoiceEvent::parse`. Whatever the bytes or the
//! field values, the result is an event that keeps every rule the ledger relies on, or an
//! `InvalidArgument` naming the field (the event is parked); never a panic, which would stop
//! ingestion for every tenant.

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use prost::Message as _;
use recobro_common::time::{PLANNABLE_YEARS, YEARS_AHEAD};

use super::tests::valid_event;
use recobro_common::grpc::Refusal;

use super::*;
use crate::error::AccountsError;

/// Enough cases to reach every check often, few enough to keep the suite fast.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// A field's valid value `weight` times in `weight + 4`, else anything: blank, padded, too
/// long, with control characters, or any text at all.
fn text(valid: &'static str, weight: u32) -> BoxedStrategy<String> {
    prop_oneof![
        weight => Just(valid.to_string()),
        1 => "\\PC{0,12}",
        1 => "[ \\t\\x00\\x07a-zA-Z0-9_@+.-]{0,10}",
        1 => "[a-z]{195,205}",
        1 => Just(format!("  {valid} ")),
    ]
    .boxed()
}

/// The valid date, a date near today (the ledger takes dates up to 50 years ahead, and the
/// numbers go a little out of range), one near the plannable years' edges, any three numbers,
/// or none.
fn date(valid: (i32, i32, i32), weight: u32) -> BoxedStrategy<Option<pb::Date>> {
    let near_today = (1990..2090, 0..14, 0..33);
    let near_the_edges = (prop_oneof![1895..1905, 2995..3005], 1..13, 1..29);
    let numbers = prop_oneof![
        weight => Just(valid),
        2 => near_today,
        1 => near_the_edges,
        1 => (any::<i32>(), any::<i32>(), any::<i32>()),
    ];
    let date = numbers.prop_map(|(year, month, day)| pb::Date { year, month, day });
    prop::option::weighted(0.97, date).boxed()
}

fn money(currency: &'static str, weight: u32) -> BoxedStrategy<Option<pb::Money>> {
    let amount = prop_oneof![weight => 0_i64..10_000_000_00, 1 => any::<i64>()];
    let code = prop_oneof![weight => Just(currency.to_string()), 1 => "[A-Za-z]{0,4}"];
    let money = (amount, code).prop_map(|(amount_minor, currency)| pb::Money {
        amount_minor,
        currency,
    });
    prop::option::weighted(0.97, money).boxed()
}

fn debtor(weight: u32) -> BoxedStrategy<Option<pb::DebtorRecord>> {
    let names = (
        text("C-1", weight),
        text("Ferretería El Tornillo SAS", weight),
        prop_oneof![weight => 1..3, 1 => any::<i32>()],
    );
    let zone = prop_oneof![
        weight => Just("America/Bogota".to_string()),
        2 => select(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name().to_string()).collect::<Vec<_>>()),
        1 => "\\PC{0,20}",
    ];
    let place = (
        zone,
        prop_oneof![
            weight => text("es-CO", weight),
            1 => select(vec!["pt_BR", "en", "fr-CA", "ES-co", ""]).prop_map(String::from),
        ],
        prop_oneof![weight => text("CO", weight), 1 => "[A-Za-z]{0,3}"],
        prop_oneof![weight => Just(String::new()), 1 => text("CO-DC", weight), 1 => "CO-[A-Z0-9]{0,4}"],
    );
    let reach = (
        prop_oneof![weight => text("tesoreria@tornillo.example", weight), 1 => Just(String::new())],
        prop_oneof![
            weight => text("+573001234567", weight),
            1 => Just(String::new()),
            1 => "\\+[0-9]{0,17}",
        ],
        text("smb", weight),
        prop::option::of(prop_oneof![weight => 0..=100, 1 => any::<i32>()]),
    );
    let record = (names, place, reach).prop_map(
        |(
            (external_id, name, kind),
            (time_zone, locale, country, region),
            (email, phone, segment, risk_score),
        )| {
            pb::DebtorRecord {
                external_id,
                name,
                kind,
                time_zone,
                locale,
                country,
                email,
                phone,
                region,
                segment,
                risk_score,
            }
        },
    );
    prop::option::weighted(0.97, record).boxed()
}

fn invoice(weight: u32) -> BoxedStrategy<Option<pb::InvoiceRecord>> {
    let record = (
        text("F-100", weight),
        text("FE-100", weight),
        money("COP", weight),
        date((2026, 10, 1), weight),
        date((2026, 10, 31), weight),
    )
        .prop_map(
            |(external_id, number, amount, issue_date, due_date)| pb::InvoiceRecord {
                external_id,
                number,
                amount,
                issue_date,
                due_date,
            },
        );
    prop::option::weighted(0.97, record).boxed()
}

fn credit_note(weight: u32) -> BoxedStrategy<Option<pb::CreditNoteRecord>> {
    let record = (
        text("NC-1", weight),
        money("COP", weight),
        prop::option::of(date((2026, 10, 15), weight)),
    )
        .prop_map(|(external_id, amount, issue_date)| pb::CreditNoteRecord {
            external_id,
            amount,
            issue_date: issue_date.flatten(),
        });
    prop::option::of(record).boxed()
}

/// An ERP event with each field valid or not: half of them with nearly every field valid, so
/// that the later checks are reached, half with many fields wrong at once.
fn invoice_event() -> impl Strategy<Value = pb::InvoiceEvent> {
    prop_oneof![event_with(60), event_with(4)]
}

fn event_with(weight: u32) -> BoxedStrategy<pb::InvoiceEvent> {
    let header = (
        text("evt-1", weight),
        prop_oneof![weight => text("acme", weight), 1 => "[a-zA-Z0-9_ -]{0,6}"],
        prop_oneof![weight => 1..6, 1 => any::<i32>()],
        prop_oneof![weight => 1..1_000_i64, 1 => any::<i64>()],
        prop::option::of((any::<i64>(), any::<i32>())),
    );
    (header, debtor(weight), invoice(weight), credit_note(weight))
        .prop_map(
            |((event_id, tenant_id, kind, version, occurred_at), debtor, invoice, credit_note)| {
                pb::InvoiceEvent {
                    event_id,
                    tenant_id,
                    kind,
                    version,
                    occurred_at: occurred_at.map(|(seconds, nanos)| {
                        // Any two numbers, as a producer may send them (prost_types is not ours to name).
                        let mut at = time::timestamp(chrono::Utc::now());
                        (at.seconds, at.nanos) = (seconds, nanos);
                        at
                    }),
                    debtor,
                    invoice,
                    credit_note,
                }
            },
        )
        .boxed()
}

fn plain(text: &str) -> bool {
    !text.is_empty() && text.len() <= 200 && !text.chars().any(char::is_control) && text.trim() == text
}

/// What `InvoiceEvent::parse` promises: an event every later step can rely on, or a refusal
/// naming the field.
fn check(raw: &pb::InvoiceEvent) -> Result<(), TestCaseError> {
    let event = match InvoiceEvent::parse(raw) {
        Ok(event) => event,
        Err(AccountsError::Refused(Refusal::InvalidArgument { field, reason })) => {
            prop_assert!(!field.is_empty() && !reason.is_empty(), "{field:?} {reason:?}");
            return Ok(());
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "not a refusal naming a field: {other:?}"
            )));
        }
    };
    prop_assert!(plain(&event.event_id) && plain(&event.tenant_id));
    prop_assert!(
        event
            .tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    prop_assert_eq!(event.invoice.version, raw.version);
    prop_assert!(event.invoice.version > 0);
    let expected_status = match event.kind {
        ErpKind::Paid => InvoiceStatus::Paid,
        ErpKind::Cancelled => InvoiceStatus::Cancelled,
        ErpKind::Upsert | ErpKind::CreditNote => InvoiceStatus::Open,
    };
    prop_assert_eq!(event.invoice.status, expected_status);

    let debtor = &event.debtor;
    prop_assert!(plain(&debtor.external_id) && plain(&debtor.name));
    prop_assert!(
        debtor.time_zone.parse::<chrono_tz::Tz>().is_ok(),
        "{}",
        debtor.time_zone
    );
    prop_assert!(
        ["es", "pt", "en"].iter().any(|l| debtor.locale.starts_with(l)),
        "{}",
        debtor.locale
    );
    prop_assert!(debtor.country.len() == 2 && debtor.country.chars().all(|c| c.is_ascii_uppercase()));
    if let Some(region) = &debtor.region {
        prop_assert!(region.starts_with(&format!("{}-", debtor.country)), "{region}");
    }
    prop_assert!(debtor.risk_score.is_none_or(|score| (0..=100).contains(&score)));
    prop_assert!(debtor.segment.len() <= 64 && !debtor.segment.chars().any(char::is_control));
    prop_assert!(
        debtor.email.is_some() || debtor.phone.is_some(),
        "no way to reach the debtor"
    );
    if let Some(email) = &debtor.email {
        prop_assert!(
            email.contains('@') && !email.contains(char::is_whitespace),
            "{email}"
        );
    }
    if let Some(phone) = &debtor.phone {
        let digits = phone.strip_prefix('+').unwrap_or_default();
        prop_assert!(
            (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()),
            "{phone}"
        );
    }
    prop_assert_eq!(debtor.debtor_id, debtor_id(&event.tenant_id, &debtor.external_id));

    let invoice = &event.invoice;
    prop_assert!(plain(&invoice.external_id) && plain(&invoice.number));
    prop_assert_eq!(invoice.debtor_id, debtor.debtor_id);
    prop_assert_eq!(
        invoice.invoice_id,
        invoice_id(&event.tenant_id, &invoice.external_id)
    );
    prop_assert!(invoice.amount_minor >= 0);
    prop_assert!(recobro_common::money::minor_unit_digits(&invoice.currency).is_some());
    prop_assert!(invoice.issue_date <= invoice.due_date);
    let last_year = chrono::Utc::now().year() + YEARS_AHEAD;
    for day in [invoice.issue_date, invoice.due_date] {
        prop_assert!(
            PLANNABLE_YEARS.contains(&day.year()) && day.year() <= last_year,
            "{day}"
        );
    }

    prop_assert_eq!(event.credit_note.is_some(), event.kind == ErpKind::CreditNote);
    if let Some(note) = &event.credit_note {
        prop_assert!(note.amount_minor > 0);
        prop_assert!(plain(&note.external_id));
        let on: NaiveDate = note.on;
        prop_assert!(PLANNABLE_YEARS.contains(&on.year()), "{on}");
        let raw_currency = raw
            .credit_note
            .as_ref()
            .and_then(|n| n.amount.as_ref())
            .map(|m| m.currency.as_str());
        prop_assert_eq!(raw_currency, Some(invoice.currency.as_str()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Any field values: a valid event or a refusal naming the field.
    #[test]
    fn any_erp_event_parses_to_a_valid_event_or_a_refusal_naming_the_field(raw in invoice_event()) {
        check(&raw)?;
    }

    /// Bytes off the topic: random ones, and real events with a few bytes changed, inserted,
    /// dropped or cut short, so that decoding reaches the nested records.
    #[test]
    fn any_bytes_on_an_erp_topic_decode_and_parse_without_panicking(
        raw in invoice_event(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0..3), 0..4),
        random in prop::collection::vec(any::<u8>(), 0..200),
        cut in any::<Index>(),
    ) {
        if let Ok(decoded) = pb::InvoiceEvent::decode(random.as_slice()) {
            check(&decoded)?;
        }
        let mut bytes = raw.encode_to_vec();
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at.index(bytes.len());
            match how {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        if let Ok(decoded) = pb::InvoiceEvent::decode(bytes.as_slice()) {
            check(&decoded)?;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Ok(decoded) = pb::InvoiceEvent::decode(&bytes[..cut]) {
            check(&decoded)?;
        }
    }

    /// The valid event with any one text field replaced by any text: still a valid event or a
    /// refusal, and the refusal names a field of the event.
    #[test]
    fn one_field_of_a_valid_event_replaced_by_any_text_is_accepted_or_refused_by_name(
        field in 0_usize..13,
        value in "\\PC{0,30}",
    ) {
        let mut raw = valid_event();
        let debtor = raw.debtor.as_mut().expect("the valid event has a debtor");
        let invoice = raw.invoice.as_mut().expect("the valid event has an invoice");
        let slot = match field {
            0 => &mut raw.event_id,
            1 => &mut raw.tenant_id,
            2 => &mut debtor.external_id,
            3 => &mut debtor.name,
            4 => &mut debtor.time_zone,
            5 => &mut debtor.locale,
            6 => &mut debtor.country,
            7 => &mut debtor.email,
            8 => &mut debtor.phone,
            9 => &mut debtor.region,
            10 => &mut debtor.segment,
            11 => &mut invoice.external_id,
            _ => &mut invoice.number,
        };
        *slot = value;
        check(&raw)?;
    }
}
