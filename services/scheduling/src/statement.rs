//! Statements: when a strategy consolidates the debtor's kind, the debtor's message reminders
//! falling due on the same local day go out as one message per channel and recipient that
//! covers every invoice, instead of one message per invoice competing for the same contact
//! budget. Channels renders the list and counts the statement as one contact.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

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
    let tomorrow = now.with_timezone(&tz).date_naive().succ_opt()?;
    // A zone may skip midnight (a daylight-saving jump at 00:00): the first hour that exists.
    (0..3)
        .filter_map(|hour| tomorrow.and_hms_opt(hour, 0, 0))
        .find_map(|local| tz.from_local_datetime(&local).earliest())
        .map(|start| start.with_timezone(&Utc))
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
    fn members_are_grouped_by_key_in_order() {
        let groups = group([("d1", 1), ("d2", 2), ("d1", 3), ("d3", 4), ("d2", 5)]);
        assert_eq!(groups, vec![vec![1, 3], vec![2, 5], vec![4]]);
        assert!(group(Vec::<(u8, u8)>::new()).is_empty());
    }
}
