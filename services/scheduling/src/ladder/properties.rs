//! Property tests of the ladder: whatever the due date, zone, window, rules and steps, every
//! reminder fires where the planner says it may, in the debtor's own local time: on a day and at
//! an hour the operator's window allows, and, whenever the window and the debtor's rule packs
//! share any moment of the week, at a moment the packs allow too (`next_allowed_by` falls back to
//! the window alone only when they never meet). And no configuration that loads makes planning
//! panic.

use std::sync::OnceLock;

use chrono::{Offset, TimeZone, Timelike};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use recobro_common::time::PLANNABLE_YEARS;
use recobro_rules::{Channel, Rulebook, WeekHours};

use super::*;
use crate::strategy::{Action, Strategies, Strategy as LadderStrategy};

/// Enough cases to hit the odd zones often, few enough to keep the suite fast.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn rulebook() -> &'static Rulebook {
    static BOOK: OnceLock<Rulebook> = OnceLock::new();
    BOOK.get_or_init(|| Rulebook::shipped().expect("every shipped pack parses"))
}

fn shipped_arms() -> Vec<Vec<Step>> {
    let strategies = Strategies::load(None).expect("the shipped strategies load");
    let mut arms = Vec::new();
    for strategy in strategies.all() {
        for arm in &strategy.arms {
            arms.push(arm.steps.clone());
        }
    }
    arms
}

/// Zones and years where local times were skipped or repeated in unusual ways: a whole local
/// day skipped (Apia 2011, Kwajalein 1993, Kiritimati 1994), DST changes at midnight (Santiago,
/// Havana, Asunción, São Paulo in 2018), half-hour DST (Lord Howe), DST suspended for Ramadan
/// (Casablanca). Uniform draws would almost never land there. (The rules crate's properties
/// keep the same list: test helpers are not shared between crates.)
const ODD_ZONES: &[(Tz, i32)] = &[
    (chrono_tz::Pacific::Apia, 2011),
    (chrono_tz::Pacific::Kwajalein, 1993),
    (chrono_tz::Pacific::Kiritimati, 1994),
    (chrono_tz::America::Santiago, 2026),
    (chrono_tz::America::Havana, 2026),
    (chrono_tz::America::Asuncion, 2024),
    (chrono_tz::America::Sao_Paulo, 2018),
    (chrono_tz::Australia::Lord_Howe, 2026),
    (chrono_tz::Africa::Casablanca, 2026),
];

/// Every change of `tz`'s UTC offset during `year`, to the second.
fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |at: DateTime<Utc>| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    let Some(mut at) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else {
        return Vec::new();
    };
    let end = at + chrono::Duration::days(366);
    let mut found = Vec::new();
    while at < end {
        let next = at + chrono::Duration::hours(6);
        if offset(at) != offset(next) {
            let (mut before, mut after) = (at, next);
            while after - before > chrono::Duration::seconds(1) {
                let middle = before + chrono::Duration::seconds((after - before).num_seconds() / 2);
                if offset(middle) == offset(before) {
                    before = middle;
                } else {
                    after = middle;
                }
            }
            found.push(after);
        }
        at = next;
    }
    found
}

/// The local date, in `tz`, of one of its offset changes in `year` (or 1 July if it has none),
/// moved by `days`: steps a few days from the due date then land on the day of the change.
fn near_transition(tz: Tz, year: i32, pick: Index, days: i64) -> NaiveDate {
    let found = transitions(tz, year);
    let day = if found.is_empty() {
        NaiveDate::from_ymd_opt(year, 7, 1).expect("1 July exists")
    } else {
        found[pick.index(found.len())].with_timezone(&tz).date_naive()
    };
    day + chrono::Duration::days(days)
}

fn zone() -> impl Strategy<Value = Tz> {
    select(chrono_tz::TZ_VARIANTS.to_vec())
}

/// Any date Recobro plans with (accounts and `Change::parse` refuse the others).
fn plannable_date() -> impl Strategy<Value = NaiveDate> {
    let day = |year: i32, month, day| {
        NaiveDate::from_ymd_opt(year, month, day)
            .expect("a date")
            .num_days_from_ce()
    };
    let first = day(*PLANNABLE_YEARS.start(), 1, 1);
    let last = day(*PLANNABLE_YEARS.end(), 12, 31);
    (first..=last).prop_map(|n| NaiveDate::from_num_days_from_ce_opt(n).expect("a plannable day"))
}

/// A zone and a due date: any plannable date, or a few days from one of the zone's offset
/// changes (or from an odd zone's).
fn zone_and_due_date() -> impl Strategy<Value = (Tz, NaiveDate)> {
    prop_oneof![
        (zone(), plannable_date()),
        (zone(), 1900..2100, any::<Index>(), -12_i64..12)
            .prop_map(|(tz, year, pick, days)| (tz, near_transition(tz, year, pick, days))),
        (select(ODD_ZONES), any::<Index>(), -12_i64..12)
            .prop_map(|((tz, year), pick, days)| (tz, near_transition(tz, year, pick, days))),
    ]
}

/// The steps of a shipped arm, or generated ones a few days around the due date.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let generated = prop::collection::vec(-15_i64..45, 1..7).prop_map(|offsets| {
        let mut steps = Vec::new();
        for (n, offset_days) in offsets.into_iter().enumerate() {
            steps.push(Step {
                name: format!("step-{n}"),
                offset_days,
                action: Action::Message {
                    channels: vec![Channel::Email],
                    template: "overdue".into(),
                    roles: Vec::new(),
                },
            });
        }
        steps
    });
    prop_oneof![select(shipped_arms()), generated]
}

/// An operator's window, written as `RECOBRO_CONTACT_DAYS` and `RECOBRO_CONTACT_HOURS` would be:
/// any days (at least one), any hours, often from midnight, where DST changes skip local times.
fn window() -> impl Strategy<Value = ContactWindow> {
    let start = prop_oneof![Just(0_u32), 0_u32..1440];
    let hours = start.prop_flat_map(|start| (Just(start), start + 1..=1440));
    let days =
        prop::array::uniform7(any::<bool>()).prop_filter("at least one day", |days| days.contains(&true));
    (days, hours).prop_map(|(days, (start, end))| {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let listed: Vec<&str> = (0..7).filter(|d| days[*d]).map(|d| names[d]).collect();
        let hours = format!(
            "{:02}:{:02}-{:02}:{:02}",
            start / 60,
            start % 60,
            end / 60,
            end % 60
        );
        let window = ContactWindow::parse(&listed.join(","), &hours).expect("a window as written");
        assert_eq!((window.days, window.start, window.end), (days, start, end));
        window
    })
}

/// A debtor's country (an unknown one gets the default pack) and region.
fn debtor_place() -> impl Strategy<Value = (&'static str, Option<&'static str>)> {
    select(vec![
        ("CO", None),
        ("PE", None),
        ("MX", None),
        ("CL", None),
        ("ES", None),
        ("US", None),
        ("BR", None),
        ("BR", Some("BR-RJ")),
        ("ZZ", None),
    ])
}

/// Why `at` is outside `window` in `tz`, read off its days and minutes in local time.
fn outside_window(window: &ContactWindow, at: DateTime<Utc>, tz: Tz) -> Option<String> {
    let local = at.with_timezone(&tz);
    if !window.days[local.weekday().num_days_from_monday() as usize] {
        return Some(format!("{local} is a {} the window leaves out", local.weekday()));
    }
    let minute = local.hour() * 60 + local.minute();
    if !(window.start..window.end).contains(&minute) {
        return Some(format!(
            "{local} is outside the window's minutes {}..{}",
            window.start, window.end
        ));
    }
    None
}

/// Whether the rules allow `at` (the rules crate's own properties check `next_open` against the
/// packs).
fn rules_allow(rules: &Applied<'_>, at: DateTime<Utc>, tz: Tz) -> bool {
    rules.next_open(at, tz).is_some_and(|(open, _)| open == at)
}

/// Whether the window and the packs' weekly hours share a moment on some weekday: only then
/// can a reminder be inside both.
fn window_meets_rules(window: &ContactWindow, rules: &Applied<'_>) -> bool {
    let country = rules
        .region
        .as_ref()
        .and_then(|region| rules.country.regions.get(region))
        .or(rules.country.hours.as_ref())
        .or(rules.baseline.hours.as_ref());
    let tenant = rules.tenant.and_then(|pack| pack.hours.as_ref());
    let schedules: Vec<&WeekHours> = country.into_iter().chain(tenant).collect();
    (0..7).any(|weekday| {
        if !window.days[weekday] {
            return false;
        }
        let (mut start, mut end) = (window.start, window.end);
        for hours in &schedules {
            let Some((from, to)) = hours.days[weekday] else {
                return false;
            };
            (start, end) = (start.max(from), end.min(to));
        }
        start < end
    })
}

/// The contract every reminder's moment keeps, whatever fired it.
fn check_allowed(
    window: &ContactWindow,
    rules: &Applied<'_>,
    at: DateTime<Utc>,
    tz: Tz,
) -> Result<(), TestCaseError> {
    if let Some(why) = outside_window(window, at, tz) {
        return Err(TestCaseError::fail(format!("{tz}: fires at {at}, but {why}")));
    }
    if window_meets_rules(window, rules) && !rules_allow(rules, at, tz) {
        let local = at.with_timezone(&tz);
        return Err(TestCaseError::fail(format!(
            "{tz}: fires at {at} ({local}), which the debtor's rules do not allow"
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// The ladder's contract: every step is planned, each at a moment the window (and, when they
    /// meet, the rules) allow in the debtor's zone, and only skipped steps lie in the past.
    #[test]
    fn every_planned_reminder_fires_inside_the_window_and_the_rules_in_the_debtors_zone(
        (tz, due) in zone_and_due_date(),
        steps in steps(),
        window in window(),
        (country, region) in debtor_place(),
        now_minutes in -90_i64 * 1440..90 * 1440,
        grace_days in 1_i64..=60,
    ) {
        let rules = rulebook().for_debtor("acme", country, region);
        let now = local_instant(tz, due, 0) + chrono::Duration::minutes(now_minutes);
        let grace = chrono::Duration::days(grace_days);
        let planned = plan(&steps, grace, due, tz, &window, &rules, now);
        prop_assert_eq!(planned.len(), steps.len());
        // Escalations keep their grace after every message planned before them, and a late
        // invoice still gets a message if any of its passed steps was one.
        let live = || planned.iter().filter(|p| !p.skipped);
        for escalation in live().filter(|p| !p.step.is_message()) {
            for message in live().filter(|p| p.step.is_message() && p.fire_at <= escalation.fire_at) {
                prop_assert!(
                    escalation.fire_at >= message.fire_at + grace,
                    "{} at {} is within {grace_days} days of {} at {}",
                    escalation.step.name, escalation.fire_at, message.step.name, message.fire_at
                );
            }
        }
        let stale_message = planned.iter().any(|p| p.skipped && p.step.is_message());
        prop_assert!(!stale_message || live().any(|p| p.step.is_message()), "a late invoice lost every message");
        for reminder in &planned {
            prop_assert!(steps.contains(&reminder.step));
            check_allowed(&window, &rules, reminder.fire_at, tz)
                .map_err(|err| TestCaseError::fail(format!("{} due {due}, {}: {err}", reminder.step.name, country)))?;
            prop_assert!(
                reminder.skipped || reminder.fire_at >= now,
                "{} fires at {} before now ({now}) without being skipped",
                reminder.step.name,
                reminder.fire_at
            );
        }
    }

    /// A payment plan's instalment reminder keeps the same contract, and never fires before now.
    #[test]
    fn an_instalment_reminder_fires_inside_the_window_and_the_rules_and_not_before_now(
        (tz, due) in zone_and_due_date(),
        window in window(),
        (country, region) in debtor_place(),
        now_minutes in -30_i64 * 1440..30 * 1440,
    ) {
        let rules = rulebook().for_debtor("acme", country, region);
        let now = local_instant(tz, due, 0) + chrono::Duration::minutes(now_minutes);
        let fire_at = instalment_fire_at(due, tz, &window, &rules, now);
        check_allowed(&window, &rules, fire_at, tz)?;
        prop_assert!(fire_at >= now, "fires at {fire_at}, before now ({now})");
    }

    /// A window that parses is the days and times written: no hour so large that its minutes
    /// wrap around into a valid-looking time; and no text makes parsing panic.
    #[test]
    fn a_contact_window_that_parses_is_the_hours_written_and_no_text_panics(
        (h1, m1, h2, m2) in prop_oneof![
            (any::<u32>(), 0_u32..100, any::<u32>(), 0_u32..100),
            (0_u32..30, 0_u32..70, 0_u32..30, 0_u32..70),
        ],
        days in "\\PC{0,20}",
        hours in "\\PC{0,20}",
    ) {
        let written = format!("{h1}:{m1:02}-{h2}:{m2:02}");
        if let Ok(window) = ContactWindow::parse("mon-fri", &written) {
            let minutes = |h: u32, m: u32| u64::from(h) * 60 + u64::from(m);
            prop_assert_eq!(u64::from(window.start), minutes(h1, m1), "{}", written);
            prop_assert_eq!(u64::from(window.end), minutes(h2, m2), "{}", written);
            prop_assert!(window.start < window.end && window.end <= 1440, "{}", written);
        }
        if let Ok(window) = ContactWindow::parse(&days, &hours) {
            prop_assert!(window.days.contains(&true), "{days:?} allows no day");
            prop_assert!(window.start < window.end && window.end <= 1440, "{hours:?}");
        }
    }

    /// An operator's strategy file is checked once at start: one that loads never makes
    /// planning panic, for any plannable due date (first and last plannable days included).
    #[test]
    fn a_strategy_that_loads_never_makes_the_ladder_panic(
        offset_days in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -5000_i64..5000],
        due in prop_oneof![
            Just(NaiveDate::from_ymd_opt(*PLANNABLE_YEARS.start(), 1, 1).expect("a date")),
            Just(NaiveDate::from_ymd_opt(*PLANNABLE_YEARS.end(), 12, 31).expect("a date")),
            plannable_date(),
        ],
        tz in zone(),
    ) {
        let text = include_str!("../../strategies/default.toml")
            .replace("offset_days = 7", &format!("offset_days = {offset_days}"));
        let Ok(strategy) = LadderStrategy::parse("operator.toml", &text) else {
            return Ok(());
        };
        let window = ContactWindow::parse("mon-fri", "09:00-18:00").expect("the default window");
        let rules = rulebook().for_debtor("acme", "CO", None);
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).single().expect("an instant");
        let planned = plan(&strategy.arms[0].steps, strategy.escalation_grace, due, tz, &window, &rules, now);
        prop_assert_eq!(planned.len(), strategy.arms[0].steps.len());
    }
}
