//! Property tests of `Change::parse`, the edge between accounts' events and the ladder. Any
//! bytes on the topic, and any values in an invoice change's fields, give either a change the
//! planner can rely on (a plannable due date, a real zone) or a reason to park the event; never
//! a panic, which would stop the consumer for every tenant. A change that parses plans without
//! panicking, each reminder at a moment the window and the debtor's rules allow.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use prost::Message as _;
use recobro_common::time::{self, PLANNABLE_YEARS};
use recobro_rules::Rulebook;

use recobro_proto::v1::{self as pb, account_event};
use uuid::Uuid;

use crate::change::Change;
use crate::ladder::{self, ContactWindow};
use crate::planner;
use crate::strategy::Strategies;

/// Few enough to keep the suite fast; each case plans a whole ladder.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

struct Planning {
    strategies: Strategies,
    rulebook: Rulebook,
    window: ContactWindow,
}

/// What the service plans with when no operator settings are given.
fn planning() -> &'static Planning {
    static PLANNING: OnceLock<Planning> = OnceLock::new();
    PLANNING.get_or_init(|| Planning {
        strategies: Strategies::load(None).expect("the shipped strategies load"),
        rulebook: Rulebook::shipped().expect("every shipped pack parses"),
        window: ContactWindow::parse("mon-fri", "09:00-18:00").expect("the default window"),
    })
}

/// A date field: sometimes missing or impossible (any three numbers), often near the plannable
/// years' edges (with months and days a little out of range too), often a plannable date.
fn date() -> impl Strategy<Value = Option<pb::Date>> {
    let any_numbers = (any::<i32>(), any::<i32>(), any::<i32>()).prop_map(|(year, month, day)| pb::Date {
        year,
        month,
        day,
    });
    let near_the_edges = (prop_oneof![1890..1910, 2990..3010], 0..14, 0..33)
        .prop_map(|(year, month, day)| pb::Date { year, month, day });
    let plannable =
        (PLANNABLE_YEARS, 1..=12, 1..=28).prop_map(|(year, month, day)| pb::Date { year, month, day });
    prop::option::weighted(
        0.95,
        prop_oneof![1 => any_numbers, 2 => near_the_edges, 3 => plannable],
    )
}

fn uuid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        1 => "\\PC{0,40}",
    ]
}

fn zone_name() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    prop_oneof![
        4 => select(names).prop_map(str::to_string),
        1 => "\\PC{0,30}",
    ]
}

fn money() -> impl Strategy<Value = Option<pb::Money>> {
    prop::option::of(
        (any::<i64>(), "[A-Z]{3}").prop_map(|(amount_minor, currency)| pb::Money {
            amount_minor,
            currency,
        }),
    )
}

fn invoice() -> impl Strategy<Value = pb::Invoice> {
    let ids = (uuid_text(), uuid_text(), "[a-z0-9-]{0,12}");
    let status = prop_oneof![1 => 0..5, 3 => 1..4];
    let state = (status, any::<i64>(), any::<i64>(), any::<bool>(), date());
    let amounts = (
        money(),
        money(),
        date(),
        prop_oneof![Just(String::new()), uuid_text()],
    );
    let instalments = prop::collection::vec(
        (date(), money()).prop_map(|(due_date, amount)| pb::Instalment { due_date, amount }),
        0..4,
    );
    (ids, state, amounts, instalments, "[a-z]{0,8}").prop_map(
        |(
            (invoice_id, debtor_id, tenant_id),
            (status, version, revision, disputed, due_date),
            (amount, outstanding, promised_date, payment_plan_id),
            instalments,
            segment,
        )| pb::Invoice {
            invoice_id,
            debtor_id,
            tenant_id,
            status,
            version,
            revision,
            disputed,
            due_date,
            amount,
            outstanding,
            promised_date,
            payment_plan_id,
            instalments,
            segment,
            ..Default::default()
        },
    )
}

fn debtor() -> impl Strategy<Value = pb::Debtor> {
    let country = select(vec!["CO", "PE", "MX", "CL", "ES", "US", "BR", "ZZ", ""]);
    let region = select(vec!["", "BR-SP", "BR-RJ", "XX-1"]);
    (
        zone_name(),
        country,
        region,
        -1..4,
        prop::option::of(any::<i32>()),
        any::<bool>(),
    )
        .prop_map(
            |(time_zone, country, region, kind, risk_score, legal_hold)| pb::Debtor {
                time_zone,
                country: country.into(),
                region: region.into(),
                kind,
                risk_score,
                legal_hold,
                ..Default::default()
            },
        )
}

fn account_event() -> impl Strategy<Value = pb::AccountEvent> {
    let change = prop_oneof![
        8 => (prop::option::weighted(0.9, invoice()), prop::option::weighted(0.9, debtor())).prop_map(|(invoice, debtor)| {
            account_event::Change::InvoiceChanged(pb::InvoiceChanged {
                invoice,
                debtor,
                reason: "erp".into(),
            })
        }),
        1 => Just(account_event::Change::DebtorChanged(pb::DebtorChanged::default())),
        1 => (0..4).prop_map(|role| account_event::Change::TenantChanged(pb::TenantChanged { role })),
    ];
    prop::option::weighted(0.95, change).prop_map(|change| pb::AccountEvent {
        change,
        ..Default::default()
    })
}

/// An instant from 1900 to 2100: when the planner runs.
fn now() -> impl Strategy<Value = DateTime<Utc>> {
    (-2_208_988_800_i64..4_102_444_800)
        .prop_map(|seconds| DateTime::from_timestamp(seconds, 0).expect("within chrono's range"))
}

/// What `Change::parse` promises for one event, and that planning what it accepts keeps the
/// ladder's contract.
fn check(event: &pb::AccountEvent, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    let change = match Change::parse(event) {
        Err(reason) => {
            prop_assert!(!reason.is_empty(), "a parked event says why");
            return Ok(());
        }
        Ok(None) => {
            prop_assert!(matches!(
                event.change,
                Some(account_event::Change::DebtorChanged(_) | account_event::Change::TenantChanged(_))
            ));
            return Ok(());
        }
        Ok(Some(change)) => change,
    };
    let Some(account_event::Change::InvoiceChanged(changed)) = &event.change else {
        return Err(TestCaseError::fail(
            "a change parsed from an event with no invoice change",
        ));
    };
    let invoice = changed.invoice.as_ref().expect("parsed, so present");
    let debtor = changed.debtor.as_ref().expect("parsed, so present");
    prop_assert!(
        PLANNABLE_YEARS.contains(&change.due_date.year()),
        "{}",
        change.due_date
    );
    prop_assert_eq!(
        Some(change.due_date),
        invoice.due_date.as_ref().and_then(time::from_date)
    );
    prop_assert_eq!(change.time_zone.name(), debtor.time_zone.as_str());
    if let Some((_, instalments)) = &change.plan {
        prop_assert_eq!(instalments.len(), invoice.instalments.len());
        for (due, _) in instalments {
            prop_assert!(PLANNABLE_YEARS.contains(&due.year()), "instalment due {}", due);
        }
    }

    let planning = planning();
    let tz = change.time_zone;
    let rules =
        planning
            .rulebook
            .for_debtor(&change.tenant_id, &change.country, Some(change.region.as_str()));
    // The default window (weekdays 09:00-18:00) meets every shipped pack's hours, so each
    // reminder must be inside both.
    let allowed = |at: DateTime<Utc>| {
        planning.window.next_allowed(at, tz) == at
            && rules.next_open(at, tz).is_some_and(|(open, _)| open == at)
    };
    let (_, _, plan) = planner::schedule(
        &planning.strategies,
        &planning.rulebook,
        &planning.window,
        &change,
        None,
        now,
    )
    .expect("the catch-all strategy always applies");
    for planned in &plan {
        let local = planned.fire_at.with_timezone(&tz);
        prop_assert!(allowed(planned.fire_at), "{} at {local}", planned.step.name);
    }
    for (due, _) in change.plan.iter().flat_map(|(_, instalments)| instalments) {
        let fire_at = ladder::instalment_fire_at(*due, tz, &planning.window, &rules, now);
        prop_assert!(
            allowed(fire_at),
            "instalment due {due} at {}",
            fire_at.with_timezone(&tz)
        );
        prop_assert!(fire_at >= now);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the fields hold, the event is parsed or parked with a reason, and what parses
    /// has a plannable due date and the debtor's own zone, and plans inside the allowed hours.
    #[test]
    fn any_invoice_change_parses_to_a_plannable_change_or_a_reason(
        event in account_event(),
        now in now(),
    ) {
        check(&event, now)?;
    }

    /// Bytes off the topic: random ones, and real events with a few bytes changed, dropped or
    /// cut short, so decoding reaches nested fields. Decoding fails or parsing keeps its promise.
    #[test]
    fn any_bytes_on_the_topic_decode_and_parse_without_panicking(
        event in account_event(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3), 0..4),
        random in prop::collection::vec(any::<u8>(), 0..200),
        cut in any::<prop::sample::Index>(),
        now in now(),
    ) {
        if let Ok(decoded) = pb::AccountEvent::decode(random.as_slice()) {
            check(&decoded, now)?;
        }
        let mut bytes = event.encode_to_vec();
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
        if let Ok(decoded) = pb::AccountEvent::decode(bytes.as_slice()) {
            check(&decoded, now)?;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Ok(decoded) = pb::AccountEvent::decode(&bytes[..cut]) {
            check(&decoded, now)?;
        }
    }
}
