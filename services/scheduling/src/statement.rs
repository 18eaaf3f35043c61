//! Statements: when a strategy consolidates the debtor's kind, the debtor's message reminders
//! falling due in the same window (their local day, or up to a week when the strategy's
//! `statement_window_days` says so) go out as one message per channel and recipient that
//! covers every invoice, instead of one message per invoice competing for the same contact
//! budget. Channels renders the list and counts the statement as one contact.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

/// The first key of the advisory lock a replica holds on a debtor while it forms their statement
/// (`pg_try_advisory_xact_lock(LOCK_KEY, hashtext(debtor_id::text))`): a namespace of its own,
/// apart from the one-key locks of the outbox relay and the migrations.
pub const LOCK_KEY: i32 = 0x5354_4d54;

/// The namespace of statement ids (a random constant: no other id is derived in it).
const STATEMENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a5e_93d4_4b7a_8e21_5c0d_f3a9_7b14);

/// The statement's id, from the reminders it covers: the same set, in any order, gives the same
/// id, so a statement emitted again (a crash before the outbox row was marked) is recognised by
/// channels' send claim and never sent twice; a different set is a different statement.
pub fn statement_id(covered: &[Uuid]) -> Uuid {
    let mut ids = covered.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let bytes: Vec<u8> = ids.iter().flat_map(|id| *id.as_bytes()).collect();
    Uuid::new_v5(&STATEMENT_NAMESPACE, &bytes)
}

/// The first instant after the debtor's local day that `now` falls in: a statement takes in
/// the reminders due before it. `None` where the calendar cannot say (never for real zones).
pub fn end_of_local_day(now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    end_of_window(now, tz, 1)
}

/// The first instant after the `days` local days starting with the one `now` falls in (a
/// strategy's statement window; 1 is the day itself).
pub fn end_of_window(now: DateTime<Utc>, tz: Tz, days: u32) -> Option<DateTime<Utc>> {
    let tomorrow = now
        .with_timezone(&tz)
        .date_naive()
        .checked_add_days(chrono::Days::new(u64::from(days.max(1))))?;
    // A zone may skip midnight (a daylight-saving jump at 00:00): the first hour that exists.
    (0..3)
        .filter_map(|hour| tomorrow.and_hms_opt(hour, 0, 0))
        .find_map(|local| tz.from_local_datetime(&local).earliest())
        .map(|start| start.with_timezone(&Utc))
}

/// A planned reminder that may go out in a statement, as a preview sees it.
pub struct Candidate<K> {
    /// What must match to share a statement: the debtor, the channel and the contact roles.
    pub key: K,
    pub fire_at: DateTime<Utc>,
    pub zone: Tz,
    /// The window of a statement it leads (its strategy's `statement_window_days`).
    pub window_days: u32,
}

/// The statements planned reminders will go out in, as the timers form them: per key, the
/// earliest reminder leads one at its moment, those due before its window ends join it, and the
/// next one left leads the next. Returns the candidates' indexes, a group per statement; a
/// reminder alone in its window goes alone and is in none.
pub fn windows<K: Ord>(candidates: &[Candidate<K>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|a, b| {
        let (a, b) = (&candidates[*a], &candidates[*b]);
        (&a.key, a.fire_at).cmp(&(&b.key, b.fire_at))
    });
    let mut statements = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut ends = None;
    for index in order {
        let candidate = &candidates[index];
        let joins = current.first().is_some_and(|lead| {
            candidates[*lead].key == candidate.key && ends.is_some_and(|end| candidate.fire_at < end)
        });
        if !joins {
            if current.len() > 1 {
                statements.push(std::mem::take(&mut current));
            }
            current.clear();
            ends = end_of_window(candidate.fire_at, candidate.zone, candidate.window_days);
        }
        current.push(index);
    }
    if current.len() > 1 {
        statements.push(current);
    }
    statements
}

/// `members` grouped by key, groups in the order their first member came, members in their
/// order within each group.
pub fn group<K: Eq + Hash, T>(members: impl IntoIterator<Item = (K, T)>) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut index: HashMap<K, usize> = HashMap::new();
    for (key, member) in members {
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(member);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_covered_reminders_in_any_order_are_the_same_statement() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(statement_id(&[a, b, c]), statement_id(&[c, a, b]));
        assert_eq!(
            statement_id(&[a, b, b]),
            statement_id(&[b, a]),
            "a reminder counts once"
        );
        assert_ne!(
            statement_id(&[a, b, c]),
            statement_id(&[a, b]),
            "one left out: another statement"
        );
        for id in [a, b, c] {
            assert_ne!(statement_id(&[a, b, c]), id, "never one of the covered ids");
        }
    }

    #[test]
    fn the_local_day_ends_at_the_debtors_midnight() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("instant");
        // 22:00 in Bogotá (UTC-5) on the 1st: the day ends at 05:00 UTC on the 2nd.
        assert_eq!(
            end_of_local_day(at("2026-12-02T03:00:00Z"), chrono_tz::America::Bogota),
            Some(at("2026-12-02T05:00:00Z"))
        );
        // The same instant is already the 2nd in Madrid: its day ends on the 3rd.
        assert_eq!(
            end_of_local_day(at("2026-12-02T03:00:00Z"), chrono_tz::Europe::Madrid),
            Some(at("2026-12-02T23:00:00Z"))
        );
        // Santiago skipped 2022-09-11 00:00 (clocks went to 01:00): the day starts at 01:00.
        assert_eq!(
            end_of_local_day(at("2022-09-10T15:00:00Z"), chrono_tz::America::Santiago),
            Some(at("2022-09-11T04:00:00Z"))
        );
    }

    #[test]
    fn planned_reminders_share_a_statement_within_the_leads_window() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("instant");
        let bogota = chrono_tz::America::Bogota;
        let candidate = |key: &'static str, fire_at: &str, window_days: u32| Candidate {
            key,
            fire_at: at(fire_at),
            zone: bogota,
            window_days,
        };
        // Bogotá is UTC-5: the 1st ends at 05:00 UTC on the 2nd.
        let day = [
            candidate("d1", "2026-12-01T19:00:00Z", 1),
            candidate("d1", "2026-12-01T14:00:00Z", 1),
            candidate("d2", "2026-12-01T14:00:00Z", 1),
            candidate("d1", "2026-12-02T04:59:00Z", 1),
            candidate("d1", "2026-12-02T05:00:00Z", 1),
            candidate("d1", "2026-12-02T15:00:00Z", 1),
            candidate("d1", "2026-12-09T15:00:00Z", 1),
        ];
        assert_eq!(
            windows(&day),
            vec![vec![1, 0, 3], vec![4, 5]],
            "the 1st's three together, the 2nd's two together, d2 and the 9th alone"
        );
        // A three-day window from the first: the 1st, 2nd and 3rd together; the 4th leads anew.
        let wide = [
            candidate("d1", "2026-12-01T14:00:00Z", 3),
            candidate("d1", "2026-12-03T14:00:00Z", 3),
            candidate("d1", "2026-12-04T04:00:00Z", 3),
            candidate("d1", "2026-12-04T14:00:00Z", 3),
            candidate("d1", "2026-12-05T14:00:00Z", 3),
        ];
        assert_eq!(windows(&wide), vec![vec![0, 1, 2], vec![3, 4]]);
        assert!(windows::<&str>(&[]).is_empty());
    }

    #[test]
    fn the_window_ends_after_its_days() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("instant");
        let bogota = chrono_tz::America::Bogota;
        assert_eq!(
            end_of_window(at("2026-12-02T03:00:00Z"), bogota, 3),
            Some(at("2026-12-04T05:00:00Z")),
            "22:00 on the 1st: the 1st, 2nd and 3rd"
        );
        assert_eq!(
            end_of_window(at("2026-12-02T03:00:00Z"), bogota, 0),
            end_of_local_day(at("2026-12-02T03:00:00Z"), bogota),
            "no window is a day"
        );
    }

    #[test]
    fn members_are_grouped_by_key_in_order() {
        let groups = group([("d1", 1), ("d2", 2), ("d1", 3), ("d3", 4), ("d2", 5)]);
        assert_eq!(groups, vec![vec![1, 3], vec![2, 5], vec![4]]);
        assert!(group(Vec::<(u8, u8)>::new()).is_empty());
    }
}
