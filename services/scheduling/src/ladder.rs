//! The collection ladder and the debtor's contact window: when each step fires, in the
//! debtor's own time zone.

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use recobro_rules::{Applied, local_instant};

pub use crate::strategy::Step;

/// Days of the week and hours of the day, in the debtor's local time, when contact is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactWindow {
    /// Indexed by `Weekday::num_days_from_monday`.
    days: [bool; 7],
    /// Minutes after local midnight; `end` is exclusive and may be 1440 (midnight).
    start: u32,
    end: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct WindowError(String);

impl ContactWindow {
    /// Parses days like `mon-fri` or `mon,wed,sat` and hours like `09:00-18:00`.
    pub fn parse(days: &str, hours: &str) -> Result<ContactWindow, WindowError> {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let index = |name: &str| {
            names
                .iter()
                .position(|n| *n == name.trim().to_ascii_lowercase())
                .ok_or_else(|| WindowError(format!("unknown day {name:?}, use mon..sun")))
        };
        let mut allowed = [false; 7];
        for part in days.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (index(from)?, index(to)?);
                    let mut day = from;
                    loop {
                        allowed[day] = true;
                        if day == to {
                            break;
                        }
                        day = (day + 1) % 7;
                    }
                }
                None => allowed[index(part)?] = true,
            }
        }
        let minutes = |text: &str| -> Result<u32, WindowError> {
            let bad = || WindowError(format!("{text:?} is not a time like 09:00"));
            let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            // `h > 24` first: a huge hour would overflow `h * 60` (a panic, or a wrapped "valid" time).
            if m > 59 || h > 24 || h * 60 + m > 1440 {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let (start, end) = hours
            .split_once('-')
            .ok_or_else(|| WindowError(format!("{hours:?} is not a range like 09:00-18:00")))?;
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start >= end {
            return Err(WindowError(format!("{hours:?} ends before it starts")));
        }
        Ok(ContactWindow {
            days: allowed,
            start,
            end,
        })
    }

    /// The earliest instant at or after `at` that falls inside the window in `tz`.
    pub fn next_allowed(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local_date = at.with_timezone(&tz).date_naive();
        // Two weeks: each allowed weekday comes twice, in case its hours were skipped once.
        for ahead in 0..15 {
            let Some(day) = local_date.checked_add_days(Days::new(ahead)) else {
                break;
            };
            if !self.days[day.weekday().num_days_from_monday() as usize] {
                continue;
            }
            let opens = local_instant(tz, day, self.start);
            let closes = local_instant(tz, day, self.end);
            if opens >= closes {
                // The window's hours were skipped that day (Apia skipped 30 December 2011):
                // `opens` is already past them, on a day the window may not allow.
                continue;
            }
            if at < opens {
                return opens;
            }
            if at < closes {
                return at;
            }
        }
        // Unreachable with at least one allowed day; fall back to not moving the time.
        at
    }

    /// The earliest instant at or after `at` inside both this window and the debtor's contact
    /// rules (hours, holidays). Falls back to this window alone if the rules never open.
    pub fn next_allowed_by(&self, rules: &Applied<'_>, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let mut candidate = self.next_allowed(at, tz);
        for _ in 0..64 {
            let Some((open, _)) = rules.next_open(candidate, tz) else {
                return candidate;
            };
            if open == candidate {
                return candidate;
            }
            candidate = self.next_allowed(open, tz);
        }
        candidate
    }
}

/// When an instalment reminder fires: two days before the instalment is due, at the first
/// allowed moment, or now if that has passed.
pub fn instalment_fire_at(
    due: NaiveDate,
    tz: Tz,
    window: &ContactWindow,
    rules: &Applied<'_>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let opens = local_instant(tz, due - chrono::Duration::days(2), window.start);
    window.next_allowed_by(rules, opens.max(now), tz)
}

/// A step with its moment, and whether it is skipped because a later step is already due.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub step: Step,
    pub fire_at: DateTime<Utc>,
    pub skipped: bool,
}

/// Expands the ladder for an invoice due on `due_date`. Steps whose moment has passed are
/// skipped, except the latest message among them, which fires at the next allowed moment: a
/// debtor whose invoice reaches us late gets one reminder, not a burst of stale ones. The
/// latest passed escalation after that message is kept too, and like every escalation it waits
/// `escalation_grace` after each message planned before it: the debtor hears the final notice
/// before the case is handed on, never at the same moment.
pub fn plan(
    steps: &[Step],
    escalation_grace: chrono::Duration,
    due_date: NaiveDate,
    tz: Tz,
    window: &ContactWindow,
    rules: &Applied<'_>,
    now: DateTime<Utc>,
) -> Vec<Planned> {
    let mut planned: Vec<Planned> = steps
        .iter()
        .map(|step| {
            let day = due_date + chrono::Duration::days(step.offset_days);
            let opens = local_instant(tz, day, window.start);
            Planned {
                step: step.clone(),
                fire_at: window.next_allowed_by(rules, opens, tz),
                skipped: false,
            }
        })
        .collect();
    planned.sort_by_key(|p| p.fire_at);
    let passed = |p: &Planned| p.fire_at <= now;
    let latest_message = planned.iter().rposition(|p| passed(p) && p.step.is_message());
    // An escalation that passed before the latest message is as stale as an earlier message.
    let latest_escalation = planned
        .iter()
        .rposition(|p| passed(p) && !p.step.is_message())
        .filter(|escalation| latest_message.is_none_or(|message| *escalation > message));
    for (index, step) in planned.iter_mut().enumerate() {
        if Some(index) == latest_message || Some(index) == latest_escalation {
            step.fire_at = window.next_allowed_by(rules, now, tz);
        } else if passed(step) {
            step.skipped = true;
        }
    }
    space_escalations(&mut planned, escalation_grace, tz, window, rules);
    planned.sort_by_key(|p| p.fire_at);
    planned
}

/// Moves each escalation to `grace` after every message planned at or before it. A moved
/// escalation may pass another message, so this repeats until nothing moves (at most once per
/// message, as escalations only move later).
fn space_escalations(
    planned: &mut [Planned],
    grace: chrono::Duration,
    tz: Tz,
    window: &ContactWindow,
    rules: &Applied<'_>,
) {
    let messages: Vec<DateTime<Utc>> = planned
        .iter()
        .filter(|p| !p.skipped && p.step.is_message())
        .map(|p| p.fire_at)
        .collect();
    for escalation in planned.iter_mut().filter(|p| !p.skipped && !p.step.is_message()) {
        for _ in 0..=messages.len() {
            let Some(last_before) = messages.iter().filter(|m| **m <= escalation.fire_at).max() else {
                break;
            };
            let Some(not_before) = last_before.checked_add_signed(grace) else {
                break;
            };
            if escalation.fire_at >= not_before {
                break;
            }
            escalation.fire_at = window.next_allowed_by(rules, not_before, tz);
        }
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use recobro_rules::Rulebook;

    /// The shipped catch-all strategy's ladder.
    fn standard() -> Vec<Step> {
        let strategies = crate::strategy::Strategies::load(None).expect("shipped strategies");
        strategies.get("standard").expect("shipped").arms[0].steps.clone()
    }

    /// The shipped ladder, a 3-day grace, for a debtor in Bogotá on weekdays, 09:00-18:00.
    fn standard_in_bogota(due: NaiveDate, now: DateTime<Utc>) -> Vec<Planned> {
        let rulebook = Rulebook::shipped().expect("packs");
        plan(
            &standard(),
            chrono::Duration::days(3),
            due,
            chrono_tz::America::Bogota,
            &weekdays(),
            &rulebook.for_debtor("acme", "CO", None),
            now,
        )
    }

    fn weekdays() -> ContactWindow {
        ContactWindow::parse("mon-fri", "09:00-18:00").expect("valid")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("RFC 3339")
    }

    #[test]
    fn parses_ranges_lists_and_wrapping_days() {
        let window = ContactWindow::parse("sat-mon", "00:00-24:00").expect("valid");
        assert_eq!(window.days, [true, false, false, false, false, true, true]);
        assert_eq!(window.end, 1440);
        assert!(ContactWindow::parse("mon-fri", "18:00-09:00").is_err());
        assert!(ContactWindow::parse("funday", "09:00-18:00").is_err());
        assert!(ContactWindow::parse("mon", "9-18").is_err());
    }

    #[test]
    fn inside_the_window_is_now() {
        // Wednesday 10:00 in Bogotá (UTC-5).
        let at = utc("2026-11-25T15:00:00Z");
        assert_eq!(weekdays().next_allowed(at, chrono_tz::America::Bogota), at);
    }

    #[test]
    fn after_hours_moves_to_the_next_morning_local_time() {
        // Wednesday 18:00 in Bogotá is closed; Thursday 09:00 Bogotá is 14:00 UTC.
        let at = utc("2026-11-25T23:00:00Z");
        assert_eq!(
            weekdays().next_allowed(at, chrono_tz::America::Bogota),
            utc("2026-11-26T14:00:00Z")
        );
    }

    #[test]
    fn the_weekend_moves_to_monday_in_the_debtors_zone_not_the_servers() {
        // Friday 23:30 UTC is already Saturday 07:30 in Manila.
        let at = utc("2026-11-27T23:30:00Z");
        let next = weekdays().next_allowed(at, chrono_tz::Asia::Manila);
        assert_eq!(next, utc("2026-11-30T01:00:00Z"), "Monday 09:00 in Manila");
    }

    #[test]
    fn a_local_time_skipped_by_dst_moves_forward() {
        // Santiago de Chile springs forward at 00:00 on 2026-09-06: midnight does not exist.
        let window = ContactWindow::parse("mon-sun", "00:00-24:00").expect("valid");
        let day = NaiveDate::from_ymd_opt(2026, 9, 6).expect("date");
        let at = local_instant(chrono_tz::America::Santiago, day, 0);
        let local = at.with_timezone(&chrono_tz::America::Santiago);
        assert_eq!((local.hour(), local.minute()), (1, 0));
        assert_eq!(window.next_allowed(at, chrono_tz::America::Santiago), at);
    }

    #[test]
    fn a_future_invoice_gets_every_step_in_order() {
        let now = utc("2026-11-02T12:00:00Z");
        let due = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        let rulebook = Rulebook::shipped().expect("packs");
        let plan = plan(
            &standard(),
            chrono::Duration::days(3),
            due,
            chrono_tz::Europe::Madrid,
            &weekdays(),
            &rulebook.for_debtor("acme", "ES", None),
            now,
        );
        assert!(plan.iter().all(|p| !p.skipped));
        let names: Vec<&str> = plan.iter().map(|p| p.step.name.as_str()).collect();
        assert_eq!(
            names,
            ["preventive", "overdue-1", "overdue-7", "final-15", "collector-20"]
        );
        // D-3 is Tuesday 17 Nov, 09:00 in Madrid (UTC+1).
        assert_eq!(plan[0].fire_at, utc("2026-11-17T08:00:00Z"));
        // D+1 is Saturday 21 Nov: moved to Monday 23 Nov 09:00.
        assert_eq!(plan[1].fire_at, utc("2026-11-23T08:00:00Z"));
    }

    #[test]
    fn a_late_invoice_gets_only_the_latest_due_step_now() {
        let now = utc("2026-11-25T15:00:00Z");
        let due = NaiveDate::from_ymd_opt(2026, 11, 15).expect("date");
        let plan = standard_in_bogota(due, now);
        let by_name = |name: &str| plan.iter().find(|p| p.step.name == name).expect("step");
        assert!(by_name("preventive").skipped);
        assert!(by_name("overdue-1").skipped);
        assert!(!by_name("overdue-7").skipped);
        assert_eq!(by_name("overdue-7").fire_at, now);
        assert!(by_name("final-15").fire_at > now);
    }

    #[test]
    fn an_invoice_arriving_20_days_overdue_gets_the_final_notice_first_and_the_escalation_after_the_grace() {
        // Due Thursday 5 Nov; now is Wednesday 25 Nov, 10:00 in Bogotá: day 20, after 09:00.
        let now = utc("2026-11-25T15:00:00Z");
        let due = NaiveDate::from_ymd_opt(2026, 11, 5).expect("date");
        let plan = standard_in_bogota(due, now);
        let by_name = |name: &str| plan.iter().find(|p| p.step.name == name).expect("step");
        for stale in ["preventive", "overdue-1", "overdue-7"] {
            assert!(by_name(stale).skipped, "{stale}");
        }
        let (last, escalation) = (by_name("final-15"), by_name("collector-20"));
        assert!(!last.skipped && !escalation.skipped);
        assert_eq!(last.fire_at, now, "the final notice goes now");
        // Saturday 28 Nov, 10:00 is three days on; the window moves it to Monday 09:00.
        assert_eq!(escalation.fire_at, utc("2026-11-30T14:00:00Z"));
        assert_eq!(
            plan.iter().map(|p| p.step.name.as_str()).collect::<Vec<_>>(),
            ["preventive", "overdue-1", "overdue-7", "final-15", "collector-20"],
            "in the order they fire"
        );
    }

    #[test]
    fn an_escalation_waits_the_grace_after_the_message_before_it() {
        let now = utc("2026-11-02T12:00:00Z");
        let due = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        let rulebook = Rulebook::shipped().expect("packs");
        let rules = rulebook.for_debtor("acme", "ES", None);
        let madrid = chrono_tz::Europe::Madrid;
        let at = |grace: i64, name: &str| {
            plan(
                &standard(),
                chrono::Duration::days(grace),
                due,
                madrid,
                &weekdays(),
                &rules,
                now,
            )
            .into_iter()
            .find(|p| p.step.name == name)
            .expect("step")
            .fire_at
        };
        // final-15 is Saturday 5 Dec, moved to Monday 7 Dec; collector-20 is Thursday 10 Dec.
        assert_eq!(at(3, "final-15"), utc("2026-12-07T08:00:00Z"));
        assert_eq!(
            at(3, "collector-20"),
            utc("2026-12-10T08:00:00Z"),
            "already 3 days after"
        );
        // A 10-day grace moves it to Thursday 17 Dec, 09:00.
        assert_eq!(at(10, "collector-20"), utc("2026-12-17T08:00:00Z"));
    }

    #[test]
    fn a_public_holiday_in_the_debtors_country_moves_the_step() {
        // Monday 16 Nov 2026 is a Colombian holiday (Independencia de Cartagena, moved to Monday).
        let rulebook = Rulebook::shipped().expect("packs");
        let colombia = rulebook.for_debtor("acme", "CO", None);
        let now = utc("2026-11-02T12:00:00Z");
        let due = NaiveDate::from_ymd_opt(2026, 11, 15).expect("date");
        let plan = plan(
            &standard(),
            chrono::Duration::days(3),
            due,
            chrono_tz::America::Bogota,
            &weekdays(),
            &colombia,
            now,
        );
        let overdue = plan.iter().find(|p| p.step.name == "overdue-1").expect("step");
        assert_eq!(
            overdue.fire_at,
            utc("2026-11-17T14:00:00Z"),
            "Tuesday 09:00 in Bogotá"
        );
    }

    #[test]
    fn the_stricter_of_window_and_rules_wins() {
        // Peru allows no contact on Saturdays even if the tenant's window does.
        let rulebook = Rulebook::shipped().expect("packs");
        let every_day = ContactWindow::parse("mon-sun", "09:00-18:00").expect("valid");
        let saturday_noon_lima = utc("2026-11-28T17:00:00Z");
        let next = every_day.next_allowed_by(
            &rulebook.for_debtor("acme", "PE", None),
            saturday_noon_lima,
            chrono_tz::America::Lima,
        );
        assert_eq!(next, utc("2026-11-30T14:00:00Z"), "Monday 09:00 in Lima");
    }
}
