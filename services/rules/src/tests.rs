use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("RFC 3339")
}

fn book() -> Rulebook {
    Rulebook::shipped().expect("every shipped pack parses and cites its sources")
}

/// (when it opens next, why `at` was closed) for a debtor of `country` in `tz`.
fn open(country: &str, region: Option<&str>, tz: Tz, at: &str) -> (DateTime<Utc>, Option<Closed>) {
    book()
        .for_debtor("acme", country, region)
        .next_open(utc(at), tz)
        .expect("opens within a year")
}

fn is_open(country: &str, region: Option<&str>, tz: Tz, at: &str) -> bool {
    open(country, region, tz, at).0 == utc(at)
}

#[test]
fn every_pack_is_shipped_with_a_version_and_sources() {
    let book = book();
    let ids: HashSet<String> = book.packs().map(|p| p.id.clone()).collect();
    for id in ["BASELINE", "DEFAULT", "US", "CO", "PE", "MX", "CL", "ES", "BR"] {
        assert!(ids.contains(id), "{id} pack missing");
    }
    for pack in book.packs() {
        assert!(
            !pack.version.is_empty() && !pack.sources.is_empty(),
            "{}",
            pack.id
        );
        for language in ["es", "pt", "en"] {
            let applied = book.for_debtor("acme", &pack.id, None);
            assert!(
                applied.opt_out_sentence(language).is_some(),
                "{} has no {language} opt-out",
                pack.id
            );
        }
    }
}

#[test]
fn a_pack_citing_an_unknown_source_is_refused() {
    let text = r#"
        id = "XX"
        version = "1"
        title = "broken"
        channels = ["email"]
        [[sources]]
        id = "real"
        citation = "A law"
        [[caps]]
        id = "one-a-day"
        window = "local_day"
        channels = "all"
        max = 1
        source = "imaginary"
    "#;
    let err = Pack::parse("xx.toml", text).expect_err("unknown source");
    assert!(err.to_string().contains("imaginary"), "{err}");
    assert!(Pack::parse("xx.toml", &text.replace("imaginary", "real")).is_ok());
    assert!(Pack::parse("xx.toml", &text.replace("local_day", "fortnight")).is_err());
}

#[test]
fn colombia_last_allowed_minute_saturday_sunday_and_holidays() {
    let bogota = chrono_tz::America::Bogota; // UTC-5, no DST
    // Friday 27 Nov 2026 18:59 is allowed; 19:00 is not, and Saturday opens at 08:00.
    assert!(is_open("CO", None, bogota, "2026-11-27T23:59:00Z"));
    let (next, closed) = open("CO", None, bogota, "2026-11-28T00:00:00Z");
    assert_eq!(next, utc("2026-11-28T13:00:00Z"));
    assert!(matches!(closed, Some(Closed::Hours { .. })));
    // Saturday closes at 15:00; Sunday is closed; Monday 30 Nov opens at 07:00.
    assert!(is_open("CO", None, bogota, "2026-11-28T19:59:00Z"));
    assert_eq!(
        open("CO", None, bogota, "2026-11-28T20:00:00Z").0,
        utc("2026-11-30T12:00:00Z")
    );
    // Tuesday 8 Dec 2026 (Inmaculada Concepción) is a holiday: Wednesday 07:00.
    let (next, closed) = open("CO", None, bogota, "2026-12-08T15:00:00Z");
    assert_eq!(next, utc("2026-12-09T12:00:00Z"));
    assert!(matches!(closed, Some(Closed::Holiday { .. })));
}

#[test]
fn colombia_allows_one_channel_a_week_and_one_contact_a_day() {
    let book = book();
    let colombia = book.for_debtor("acme", "CO", None);
    let caps: Vec<&Cap> = colombia.country.caps.iter().collect();
    assert!(
        caps.iter()
            .any(|c| c.kind == CapKind::DistinctChannels && c.window == Window::LocalWeek && c.max == 1)
    );
    assert!(
        caps.iter()
            .any(|c| c.kind == CapKind::Contacts && c.window == Window::LocalDay && c.max == 1)
    );
}

#[test]
fn united_states_eight_to_nine_in_the_debtors_zone_not_the_tenants() {
    let los_angeles = chrono_tz::America::Los_Angeles;
    // 20:59 in Los Angeles is allowed even though it is 23:59 for a tenant in New York.
    assert!(is_open("US", None, los_angeles, "2026-11-25T04:59:00Z"));
    // 21:00 is not; 08:00 next morning is.
    assert_eq!(
        open("US", None, los_angeles, "2026-11-25T05:00:00Z").0,
        utc("2026-11-25T16:00:00Z")
    );
    // 07:59 in New York is too early.
    assert_eq!(
        open("US", None, chrono_tz::America::New_York, "2026-11-25T12:59:00Z").0,
        utc("2026-11-25T13:00:00Z")
    );
}

#[test]
fn united_states_on_the_day_clocks_spring_forward() {
    // 8 Mar 2026: New York moves from EST (UTC-5) to EDT (UTC-4) at 02:00.
    let new_york = chrono_tz::America::New_York;
    assert_eq!(
        open("US", None, new_york, "2026-03-08T06:00:00Z").0,
        utc("2026-03-08T12:00:00Z"),
        "08:00 EDT"
    );
    let (name, next_day) = Window::LocalDay
        .period(utc("2026-03-08T16:00:00Z"), new_york)
        .expect("calendar");
    assert_eq!(name, "2026-03-08");
    assert_eq!(
        next_day,
        utc("2026-03-09T04:00:00Z"),
        "a 23-hour local day ends at midnight EDT"
    );
}

#[test]
fn peru_never_on_weekends() {
    let lima = chrono_tz::America::Lima;
    assert!(
        is_open("PE", None, lima, "2026-11-27T00:59:00Z"),
        "Thursday 19:59"
    );
    assert_eq!(
        open("PE", None, lima, "2026-11-28T15:00:00Z").0,
        utc("2026-11-30T12:00:00Z"),
        "Saturday -> Monday 07:00"
    );
}

#[test]
fn mexico_until_ten_at_night() {
    let mexico = chrono_tz::America::Mexico_City; // UTC-6, no DST since 2022
    assert!(
        is_open("MX", None, mexico, "2026-11-26T03:59:00Z"),
        "Wednesday 21:59"
    );
    assert_ne!(
        open("MX", None, mexico, "2026-11-26T04:00:00Z").0,
        utc("2026-11-26T04:00:00Z"),
        "22:00 is closed"
    );
}

#[test]
fn chile_saturdays_yes_sundays_no_and_two_days_apart() {
    let santiago = chrono_tz::America::Santiago; // UTC-3 in November (DST)
    assert!(
        is_open("CL", None, santiago, "2026-11-28T22:59:00Z"),
        "Saturday 19:59"
    );
    assert_eq!(
        open("CL", None, santiago, "2026-11-29T15:00:00Z").0,
        utc("2026-11-30T11:00:00Z"),
        "Sunday -> Monday 08:00"
    );
    let book = book();
    let chile = book.for_debtor("acme", "CL", None);
    assert!(
        chile
            .country
            .caps
            .iter()
            .any(|c| c.window == Window::Rolling(Duration::hours(48)) && c.max == 1)
    );
}

#[test]
fn brazil_hours_depend_on_the_state() {
    let sao_paulo = chrono_tz::America::Sao_Paulo; // UTC-3
    // Saturday 28 Nov 2026 10:00: allowed in São Paulo, not in Rio de Janeiro.
    assert!(is_open("BR", Some("BR-SP"), sao_paulo, "2026-11-28T13:00:00Z"));
    assert!(!is_open("BR", Some("BR-RJ"), sao_paulo, "2026-11-28T13:00:00Z"));
    // Rio opens at 09:00 on weekdays; São Paulo at 08:00 (Tuesday 1 Dec 2026).
    assert!(!is_open("BR", Some("BR-RJ"), sao_paulo, "2026-12-01T11:30:00Z"));
    assert!(is_open("BR", Some("BR-SP"), sao_paulo, "2026-12-01T11:30:00Z"));
}

#[test]
fn a_country_without_a_pack_gets_the_conservative_default() {
    let book = book();
    let argentina = book.for_debtor("acme", "AR", None);
    assert_eq!(argentina.country.id, "DEFAULT");
    assert!(
        !is_open(
            "AR",
            None,
            chrono_tz::America::Argentina::Buenos_Aires,
            "2026-11-29T15:00:00Z"
        ),
        "Sunday"
    );
}

#[test]
fn the_baseline_caps_every_debtor() {
    let book = book();
    for country in ["US", "CO", "ES", "AR"] {
        let applied = book.for_debtor("acme", country, None);
        let day_caps = applied
            .caps_for(Channel::Email)
            .filter(|(_, c)| c.window == Window::LocalDay)
            .count();
        assert!(day_caps >= 1, "{country}: no daily cap");
        assert!(
            applied
                .caps_for(Channel::Whatsapp)
                .any(|(p, c)| p.id == "BASELINE" && c.counts(Channel::Whatsapp) && c.channels.is_some())
        );
    }
}

#[test]
fn calendar_windows_follow_the_local_calendar() {
    let bogota = chrono_tz::America::Bogota;
    // Monday 30 Nov 2026 03:00 UTC is still Sunday 29 Nov in Bogotá: ISO week 48.
    let (week, next) = Window::LocalWeek
        .period(utc("2026-11-30T03:00:00Z"), bogota)
        .expect("calendar");
    assert_eq!(week, "2026-W48");
    assert_eq!(next, utc("2026-11-30T05:00:00Z"));
    let (month, next) = Window::LocalMonth
        .period(utc("2026-12-31T23:00:00Z"), bogota)
        .expect("calendar");
    assert_eq!(month, "2026-12");
    assert_eq!(next, utc("2027-01-01T05:00:00Z"));
    assert!(
        Window::Rolling(Duration::hours(48))
            .period(utc("2026-12-31T23:00:00Z"), bogota)
            .is_none()
    );
}

fn tenant_pack(hours: &str, extra_cap: &str) -> String {
    format!(
        r#"
        id = "acme"
        version = "3"
        title = "Acme's own rules"
        channels = ["email", "sms"]
        [[sources]]
        id = "acme-policy"
        citation = "Acme collections policy v3"
        [hours]
        source = "acme-policy"
        mon = "{hours}"
        tue = "{hours}"
        wed = "{hours}"
        thu = "{hours}"
        fri = "{hours}"
        sat = "{hours}"
        sun = "{hours}"
        {extra_cap}
        "#
    )
}

fn book_with_tenant(text: &str) -> Rulebook {
    let dir = std::env::temp_dir().join(format!("recobro-tenant-packs-{}", std::process::id()));
    let dir = dir.join(format!("{:x}", text.len()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("acme.toml"), text).expect("write pack");
    let book = Rulebook::shipped()
        .expect("packs")
        .with_tenant_packs(&dir)
        .expect("tenant pack parses");
    std::fs::remove_dir_all(&dir).expect("clean up");
    book
}

#[test]
fn a_tenant_pack_narrows_hours_and_adds_caps() {
    let cap = r#"
        [[caps]]
        id = "acme-weekly"
        window = "local_week"
        channels = "all"
        max = 1
        source = "acme-policy"
    "#;
    let book = book_with_tenant(&tenant_pack("10:00-16:00", cap));
    let bogota = chrono_tz::America::Bogota;
    let acme = book.for_debtor("acme", "CO", None);
    // Colombia opens at 07:00; Acme only at 10:00 (15:00 UTC).
    assert_eq!(
        acme.next_open(utc("2026-11-25T12:00:00Z"), bogota)
            .expect("opens")
            .0,
        utc("2026-11-25T15:00:00Z")
    );
    // Saturday: Colombia closes at 15:00, Acme at 16:00: the earlier wins.
    let saturday = acme
        .next_open(utc("2026-11-28T20:30:00Z"), bogota)
        .expect("opens")
        .0;
    assert_eq!(saturday, utc("2026-11-30T15:00:00Z"), "Monday 10:00");
    assert!(
        acme.caps_for(Channel::Email)
            .any(|(pack, cap)| pack.id == "acme" && cap.id == "acme-weekly")
    );
    assert!(
        acme.channel_refused_by(Channel::Whatsapp)
            .is_some_and(|pack| pack.id == "acme")
    );
    // Another tenant is untouched.
    let other = book.for_debtor("other", "CO", None);
    assert_eq!(
        other
            .next_open(utc("2026-11-25T12:00:00Z"), bogota)
            .expect("opens")
            .0,
        utc("2026-11-25T12:00:00Z")
    );
}

#[test]
fn a_tenant_pack_cannot_widen_the_law() {
    // Acme would contact at any hour, every day: Colombia still closes Sundays and at 19:00.
    let book = book_with_tenant(&tenant_pack("00:00-24:00", ""));
    let bogota = chrono_tz::America::Bogota;
    let acme = book.for_debtor("acme", "CO", None);
    assert_eq!(
        acme.next_open(utc("2026-11-26T01:00:00Z"), bogota)
            .expect("opens")
            .0,
        utc("2026-11-26T12:00:00Z")
    );
    assert_eq!(
        acme.next_open(utc("2026-11-29T15:00:00Z"), bogota)
            .expect("opens")
            .0,
        utc("2026-11-30T12:00:00Z")
    );
    let colombia_caps = book
        .for_debtor("other", "CO", None)
        .caps_for(Channel::Email)
        .count();
    assert_eq!(
        acme.caps_for(Channel::Email).count(),
        colombia_caps,
        "no cap is removed"
    );
}

#[test]
fn a_cap_naming_a_channel_that_does_not_exist_is_refused() {
    // A typo in a cap's channels used to switch that legal cap off without a word.
    let text = r#"
        id = "XX"
        version = "1"
        title = "typo"
        channels = ["email", "sms"]
        [[sources]]
        id = "law"
        citation = "A law"
        [[caps]]
        id = "sms-a-day"
        window = "local_day"
        channels = ["smss"]
        max = 1
        source = "law"
    "#;
    let err = Pack::parse("xx.toml", text).expect_err("a cap on a channel that does not exist");
    assert!(err.to_string().contains("cap sms-a-day"), "{err}");
    assert!(err.to_string().contains("smss"), "{err}");
    let fixed = Pack::parse("xx.toml", &text.replace("smss", "sms")).expect("a real channel");
    assert_eq!(fixed.caps[0].channels, Some(vec![Channel::Sms]));
    assert!(Pack::parse("xx.toml", &text.replace(r#"["email", "sms"]"#, r#"["fax"]"#)).is_err());
}

#[test]
fn every_pack_file_in_the_folder_is_shipped() {
    // A pack file added to `packs/` but not registered would leave its country on the
    // default pack without anyone noticing.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packs");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("packs folder")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut shipped: Vec<String> = SHIPPED.iter().map(|(file, _)| file.to_string()).collect();
    shipped.sort();
    assert_eq!(
        on_disk, shipped,
        "every packs/*.toml is listed in SHIPPED, and only those"
    );
    // And each one is reachable: its id names a country the rulebook answers for.
    let book = book();
    for (file, text) in SHIPPED {
        let pack = Pack::parse(file, text).expect("parses");
        if pack.id != "BASELINE" && pack.id != "DEFAULT" {
            assert_eq!(book.for_debtor("t", &pack.id, None).country.id, pack.id, "{file}");
        }
    }
}
