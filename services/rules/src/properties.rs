//! Property tests of the rule packs. Whatever the instant, the zone and the packs, `next_open`
//! answers an instant that the packs' own hours and holidays allow, never one before the
//! instant asked about; and no pack text, however broken, makes parsing panic (tenant packs are
//! files an operator writes, read at start).

use std::sync::OnceLock;

use chrono::{Offset, Timelike};
use proptest::prelude::*;
use proptest::sample::{Index, select};

use super::*;

/// Enough cases to hit the odd zones often, few enough to keep the suite fast.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn book() -> &'static Rulebook {
    static BOOK: OnceLock<Rulebook> = OnceLock::new();
    BOOK.get_or_init(|| Rulebook::shipped().expect("every shipped pack parses"))
}

/// Zones and years where local times were skipped or repeated in unusual ways: a whole local
/// day skipped (Apia 2011, Kwajalein 1993, Kiritimati 1994, Kanton 1994), DST changes at
/// midnight (Santiago, Havana, Asunción, Beirut, São Paulo in 2018), half-hour DST (Lord
/// Howe), DST suspended for Ramadan (Casablanca). Uniform draws would almost never land there.
const ODD_ZONES: &[(Tz, i32)] = &[
    (chrono_tz::Pacific::Apia, 2011),
    (chrono_tz::Pacific::Kwajalein, 1993),
    (chrono_tz::Pacific::Kiritimati, 1994),
    (chrono_tz::Pacific::Kanton, 1994),
    (chrono_tz::America::Santiago, 2026),
    (chrono_tz::America::Havana, 2026),
    (chrono_tz::America::Asuncion, 2024),
    (chrono_tz::Asia::Beirut, 2026),
    (chrono_tz::America::Sao_Paulo, 2018),
    (chrono_tz::Australia::Lord_Howe, 2026),
    (chrono_tz::Africa::Casablanca, 2026),
];

/// Every change of `tz`'s UTC offset during `year`, to the second: local times are skipped or
/// repeated there, which is where contact hours go wrong if anywhere.
fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |at: DateTime<Utc>| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    let Some(mut at) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else {
        return Vec::new();
    };
    let end = at + Duration::days(366);
    let mut found = Vec::new();
    while at < end {
        let next = at + Duration::hours(6);
        if offset(at) != offset(next) {
            let (mut before, mut after) = (at, next);
            while after - before > Duration::seconds(1) {
                let middle = before + Duration::seconds((after - before).num_seconds() / 2);
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

/// An instant within a day and a half of one of `tz`'s offset changes in `year`, or in the
/// middle of the year if it has none.
fn near_transition(tz: Tz, year: i32, pick: Index, minutes: i64) -> DateTime<Utc> {
    let found = transitions(tz, year);
    let base = if found.is_empty() {
        Utc.with_ymd_and_hms(year, 7, 1, 0, 0, 0)
            .single()
            .expect("1 July exists")
    } else {
        found[pick.index(found.len())]
    };
    base + Duration::minutes(minutes)
}

fn zone() -> impl Strategy<Value = Tz> {
    select(chrono_tz::TZ_VARIANTS.to_vec())
}

/// A zone and an instant in it: anywhere from 1900 to 2100, near one of that zone's offset
/// changes, or near one of the odd zones' changes.
fn zoned_instant() -> impl Strategy<Value = (Tz, DateTime<Utc>)> {
    let from_1900_to_2100 = -2_208_988_800_i64..4_102_444_800;
    prop_oneof![
        (zone(), from_1900_to_2100).prop_map(|(tz, seconds)| {
            let at = DateTime::from_timestamp(seconds, 0).expect("within chrono's range");
            (tz, at)
        }),
        (zone(), 1900..2100, any::<Index>(), -2160_i64..2160)
            .prop_map(|(tz, year, pick, minutes)| (tz, near_transition(tz, year, pick, minutes))),
        (select(ODD_ZONES), any::<Index>(), -2160_i64..2160)
            .prop_map(|((tz, year), pick, minutes)| (tz, near_transition(tz, year, pick, minutes))),
    ]
}

/// A debtor's country (an unknown one gets the default pack) and region (Brazil has some; an
/// unknown region falls back to the country's hours).
fn debtor_place() -> impl Strategy<Value = (&'static str, Option<&'static str>)> {
    select(vec![
        ("CO", None),
        ("PE", None),
        ("MX", None),
        ("CL", None),
        ("ES", None),
        ("US", None),
        ("BR", None),
        ("BR", Some("BR-SP")),
        ("BR", Some("BR-RJ")),
        ("BR", Some("BR-ES")),
        ("BR", Some("BR-AM")),
        ("BR", Some("BR-XX")),
        ("ZZ", None),
    ])
}

/// Why `at` is closed for `rules` in `tz`, read straight off the packs rather than through the
/// engine: a holiday of any pack, or a local time outside any weekly schedule that applies.
fn closed_by_packs(rules: &Applied<'_>, at: DateTime<Utc>, tz: Tz) -> Option<String> {
    let local = at.with_timezone(&tz);
    let date = local.date_naive();
    for pack in rules.packs() {
        if pack.holidays.contains(&date) {
            return Some(format!("{date} is a holiday in {}", pack.id));
        }
    }
    let minute = local.hour() * 60 + local.minute();
    for hours in rules.hours() {
        match hours.days[date.weekday().num_days_from_monday() as usize] {
            None => return Some(format!("{} closes {}s", hours.source, date.weekday())),
            Some((start, end)) if !(start..end).contains(&minute) => {
                return Some(format!(
                    "{local} is outside minutes {start}..{end} ({})",
                    hours.source
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Whether some weekday has a moment every schedule allows: if so, contact opens within a
/// week of any instant (holidays aside, and the generated ones are few).
fn some_weekday_opens(rules: &Applied<'_>) -> bool {
    (0..7).any(|weekday| {
        let (mut start, mut end) = (0, 24 * 60);
        for hours in rules.hours() {
            let Some((from, to)) = hours.days[weekday] else {
                return false;
            };
            (start, end) = (start.max(from), end.min(to));
        }
        start < end
    })
}

/// Local opening hours on one day: often from midnight, where DST changes skip local times.
fn day_hours() -> impl Strategy<Value = Option<(u32, u32)>> {
    let start = prop_oneof![Just(0_u32), 0_u32..24 * 60];
    let range = start.prop_flat_map(|start| (Just(start), start + 1..=24 * 60));
    prop::option::of(range)
}

/// A tenant pack of generated hours, with holidays near `around`.
fn tenant_pack(days: [Option<(u32, u32)>; 7], holidays: &[i64], around: NaiveDate) -> Pack {
    let source = "tenant-policy".to_string();
    Pack {
        id: "acme".into(),
        version: "1".into(),
        title: "generated".into(),
        notes: Vec::new(),
        channels: vec![Channel::Email, Channel::Sms, Channel::Whatsapp],
        sources: HashMap::from([(
            source.clone(),
            Source {
                citation: "generated".into(),
                url: None,
            },
        )]),
        hours: Some(WeekHours {
            days,
            source: source.clone(),
        }),
        regions: HashMap::new(),
        holidays: holidays
            .iter()
            .filter_map(|days| around.checked_add_signed(Duration::days(*days)))
            .collect(),
        holiday_source: Some(source),
        caps: Vec::new(),
        opt_out: HashMap::new(),
    }
}

/// What a pack line may be replaced with: anything, or a line a pack really has with arbitrary
/// numbers in it (times, windows, caps), since those are what parsing does arithmetic on.
fn pack_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(h1, m1, h2, m2)| format!("mon = \"{h1}:{m1:02}-{h2}:{m2:02}\"")),
        (0_u32..30, 0_u32..70, 0_u32..30, 0_u32..70)
            .prop_map(|(h1, m1, h2, m2)| format!("sat = \"{h1:02}:{m1:02}-{h2:02}:{m2:02}\"")),
        any::<i64>().prop_map(|hours| format!("window = \"rolling:{hours}h\"")),
        any::<u32>().prop_map(|max| format!("max = {max}")),
        "[0-9-]{0,12}".prop_map(|date| format!("dates = [\"{date}\"]")),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// The engine's promise: the earliest allowed instant at or after the one asked about.
    /// Whatever it answers must be allowed by every pack, and nothing just before it (after the
    /// instant asked about) may have been.
    #[test]
    fn next_open_is_never_earlier_than_asked_and_is_open_by_every_pack(
        (tz, at) in zoned_instant(),
        (country, region) in debtor_place(),
    ) {
        let rules = book().for_debtor("acme", country, region);
        let (open, _) = rules.next_open(at, tz).expect("every shipped pack opens every week");
        prop_assert!(open >= at, "{open} is before {at}");
        if let Some(why) = closed_by_packs(&rules, open, tz) {
            prop_assert!(false, "{country} {region:?} {tz}: {at} opens at {open}, but {why}");
        }
        let just_before = open - Duration::seconds(1);
        prop_assert!(
            open == at || closed_by_packs(&rules, just_before, tz).is_some(),
            "{country} {region:?} {tz}: {at} opens at {open}, yet {just_before} was open already"
        );
        // Asked again at that instant, it is open, with nothing closed to cite.
        prop_assert_eq!(rules.next_open(open, tz), Some((open, None)));
    }

    /// A tenant's own hours and holidays intersect the country's: whatever they are, the answer
    /// is open by every pack, and there is no answer only when no weekday opens at all.
    #[test]
    fn with_any_tenant_pack_next_open_is_open_by_every_pack_or_none_if_nothing_ever_opens(
        (tz, at) in zoned_instant(),
        (country, region) in debtor_place(),
        days in prop::array::uniform7(day_hours()),
        holidays in prop::collection::vec(-3_i64..10, 0..4),
    ) {
        let book = book();
        let tenant = tenant_pack(days, &holidays, at.with_timezone(&tz).date_naive());
        let rules = Applied { tenant: Some(&tenant), ..book.for_debtor("acme", country, region) };
        match rules.next_open(at, tz) {
            Some((open, _)) => {
                prop_assert!(open >= at, "{open} is before {at}");
                if let Some(why) = closed_by_packs(&rules, open, tz) {
                    prop_assert!(false, "{country} {region:?} {tz} {days:?}: {at} opens at {open}, but {why}");
                }
            }
            None => prop_assert!(
                !some_weekday_opens(&rules),
                "{country} {region:?} {tz} {days:?}: nothing opens after {at}, yet some weekday is open"
            ),
        }
    }

    /// Budget windows count contacts per local day, week or month: the period an instant is in
    /// ends after it, and the next one is another period.
    #[test]
    fn a_calendar_period_ends_after_the_instant_and_the_next_is_another(
        (tz, at) in zoned_instant(),
        window in select(vec![Window::LocalDay, Window::LocalWeek, Window::LocalMonth]),
    ) {
        let (name, next_start) = window.period(at, tz).expect("a calendar window has periods");
        prop_assert!(next_start > at, "{window:?} {tz}: period {name} of {at} ends at {next_start}");
        let (next_name, _) = window.period(next_start, tz).expect("a calendar window has periods");
        prop_assert_ne!(&next_name, &name, "{:?} {}: {} starts no new period", window, tz, next_start);
    }

    /// An operator's typo in a tenant pack stops the service at start with the file named; it
    /// never panics.
    #[test]
    fn parsing_any_text_as_a_pack_never_panics_and_errors_name_the_file(text in "\\PC{0,200}") {
        if let Err(err) = Pack::parse("tenant.toml", &text) {
            prop_assert!(err.to_string().starts_with("rule pack tenant.toml: "), "{err}");
        }
    }

    /// Shipped packs with one line replaced reach far deeper into parsing than random text:
    /// whatever is accepted has hours inside the day, positive rolling windows and caps above 0.
    #[test]
    fn a_shipped_pack_with_one_line_replaced_never_panics_and_what_parses_is_sane(
        pack in 0..SHIPPED.len(),
        line in any::<Index>(),
        replacement in pack_line(),
    ) {
        let (file, text) = SHIPPED[pack];
        let mut lines: Vec<&str> = text.lines().collect();
        let at = line.index(lines.len());
        lines[at] = &replacement;
        let edited = lines.join("\n");
        match Pack::parse(file, &edited) {
            Err(err) => prop_assert!(err.to_string().starts_with(&format!("rule pack {file}: ")), "{err}"),
            Ok(pack) => {
                let schedules = pack.hours.iter().chain(pack.regions.values());
                for (start, end) in schedules.flat_map(|hours| hours.days.iter().flatten()) {
                    prop_assert!(start < end && *end <= 24 * 60, "{file}: {replacement:?} gives {start}..{end}");
                }
                for cap in &pack.caps {
                    prop_assert!(cap.max > 0, "{file}: {replacement:?}");
                    if let Window::Rolling(span) = cap.window {
                        prop_assert!(span > Duration::zero(), "{file}: {replacement:?}");
                    }
                }
            }
        }
    }

    /// A range of hours that parses is exactly the times written, inside one day: no number
    /// is so large that its minutes wrap around into a valid-looking time.
    #[test]
    fn an_hours_range_that_parses_is_the_times_written_inside_the_day(
        (h1, m1, h2, m2) in prop_oneof![
            (any::<u32>(), 0_u32..100, any::<u32>(), 0_u32..100),
            (0_u32..30, 0_u32..70, 0_u32..30, 0_u32..70),
        ],
    ) {
        let text = format!("{h1}:{m1:02}-{h2}:{m2:02}");
        if let Ok(Some((start, end))) = parse_range(&text) {
            let minutes = |h: u32, m: u32| u64::from(h) * 60 + u64::from(m);
            prop_assert_eq!(u64::from(start), minutes(h1, m1), "{}", text);
            prop_assert_eq!(u64::from(end), minutes(h2, m2), "{}", text);
            prop_assert!(start < end && end <= 24 * 60, "{}", text);
        }
    }
}
