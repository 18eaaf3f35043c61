//! Where a debtor's state lives in Redis: one place names every key, so the contact budget,
//! the send claims and the gRPC views of them can never disagree on a format.
//!
//! Every key of a debtor shares the `{d:<debtor id>}` hash tag, so the scripts that touch
//! several of them run on Redis Cluster.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use recobro_rules::{Cap, Pack};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct DebtorKeys {
    prefix: String,
}

impl DebtorKeys {
    pub fn new(prefix: &str) -> DebtorKeys {
        DebtorKeys {
            prefix: prefix.to_string(),
        }
    }

    fn debtor(&self, debtor_id: Uuid, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}:{{d:{debtor_id}}}:{rest}", self.prefix)
    }

    /// What a reminder reserved of the budget: its channel, then one line per key to undo.
    pub fn reservation(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        self.debtor(debtor_id, format_args!("reminder:{reminder_id}"))
    }

    /// One cap's use in the calendar period (or rolling window) that contains `now`, and when
    /// that period ends (None for a rolling window).
    pub fn cap(
        &self,
        debtor_id: Uuid,
        pack: &Pack,
        cap: &Cap,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> (String, Option<DateTime<Utc>>) {
        let period = cap.window.period(now, tz);
        let period_name = period.as_ref().map_or("rolling", |(name, _)| name.as_str());
        let key = self.debtor(
            debtor_id,
            format_args!("cap:{}:{}:{period_name}", pack.id, cap.id),
        );
        (key, period.map(|(_, end)| end))
    }

    /// Present while Redis holds the debtor's whole budget: written once it was rebuilt from the
    /// delivery records, gone when Redis lost its data (a restart without persistence).
    pub fn budget_known(&self, debtor_id: Uuid) -> String {
        self.debtor(debtor_id, format_args!("budget-known"))
    }

    /// A reminder's "sent" mark: the provider's message id.
    pub fn sent(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        self.debtor(debtor_id, format_args!("sent:{reminder_id}"))
    }

    /// A reminder's send claim: a token, or "calling:<token>:<ms>" once its call began.
    pub fn claim(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        self.debtor(debtor_id, format_args!("sending:{reminder_id}"))
    }

    /// Attempts through the current channel's provider.
    pub fn attempts(&self, debtor_id: Uuid, reminder_id: Uuid) -> String {
        self.debtor(debtor_id, format_args!("attempts:{reminder_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_debtor_shares_its_hash_tag() {
        let keys = DebtorKeys::new("recobro");
        let (debtor, reminder) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let tag = format!("recobro:{{d:{debtor}}}:");
        for key in [
            keys.reservation(debtor, reminder),
            keys.sent(debtor, reminder),
            keys.claim(debtor, reminder),
            keys.attempts(debtor, reminder),
        ] {
            assert!(key.starts_with(&tag), "{key}");
            assert!(key.ends_with(&reminder.to_string()), "{key}");
        }
        assert!(keys.budget_known(debtor).starts_with(&tag));
        assert_ne!(keys.sent(debtor, reminder), keys.claim(debtor, reminder));
    }

    #[test]
    fn a_cap_key_names_its_pack_cap_and_period() {
        let book = recobro_rules::Rulebook::shipped().expect("packs");
        let rules = book.for_debtor("t", "CO", None);
        let (pack, cap) = rules
            .caps_for(recobro_rules::Channel::Email)
            .find(|(_, cap)| cap.window == recobro_rules::Window::LocalDay)
            .expect("a daily cap");
        let now: DateTime<Utc> = "2026-11-25T15:00:00Z".parse().expect("time");
        let (key, end) = DebtorKeys::new("p").cap(Uuid::nil(), pack, cap, chrono_tz::America::Bogota, now);
        assert!(
            key.starts_with(&format!("p:{{d:{}}}:cap:{}:{}:", Uuid::nil(), pack.id, cap.id)),
            "{key}"
        );
        assert!(
            end.is_some_and(|end| end > now),
            "a day's counter ends with the local day"
        );
    }
}
