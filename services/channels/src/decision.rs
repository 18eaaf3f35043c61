//! What the contact rules say about one reminder, as pure functions of the rules and the
//! time: no I/O, so every verdict and its reason is unit-tested. The dispatcher asks them in
//! order (the ledger's word on the recipient first, see `recipient`; then provider
//! eligibility and the packs' channels, hours, and, after the contact budget in Redis
//! answered, what a full cap means) and records the verdict.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use recobro_rules::{Applied, Channel, Closed};

use crate::budget::FullCap;

/// WhatsApp's customer-service window, less a margin for the webhook that told us of the
/// debtor's message arriving late.
pub const WHATSAPP_WINDOW: chrono::Duration = chrono::Duration::minutes(24 * 60 - 10);

/// A rule that stops a contact, now or for good, with the pack that says so and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Never to be sent (no consented recipient, a legal hold, a channel the law or the
    /// provider does not allow, no contact time at all).
    Suppressed {
        rule: String,
        pack: String,
        reason: String,
    },
    /// Not now: the earliest moment it would be allowed.
    Deferred {
        until: DateTime<Utc>,
        rule: String,
        pack: String,
        reason: String,
    },
}

impl Verdict {
    /// The name the audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Suppressed { .. } => "suppressed",
            Verdict::Deferred { .. } => "deferred",
        }
    }
}

fn suppressed(rule: &str, pack: String, reason: String) -> Verdict {
    Verdict::Suppressed {
        rule: rule.to_string(),
        pack,
        reason,
    }
}

/// Whether a pack that applies allows collection on `channel` at all. `None` when it does.
pub fn channel_allowed(rules: &Applied<'_>, channel: Channel) -> Option<Verdict> {
    let pack = rules.channel_refused_by(channel)?;
    Some(suppressed(
        "channels",
        pack.label(),
        format!("{} does not allow collection by {channel}", pack.title),
    ))
}

/// Hours and holidays in the debtor's own time zone: `None` when `now` is open.
pub fn at_this_hour(rules: &Applied<'_>, tz: Tz, now: DateTime<Utc>) -> Option<Verdict> {
    let country = rules.country.label();
    match rules.next_open(now, tz) {
        None => Some(suppressed(
            "hours",
            country,
            "the rules allow no contact time within a year".into(),
        )),
        Some((until, Some(closed))) if until > now => {
            let (rule, reason) = match closed {
                Closed::Holiday { source } => (
                    "holiday",
                    format!("public holiday in the debtor's calendar ({source})"),
                ),
                Closed::Hours { source } => {
                    ("hours", format!("outside the allowed hours in {tz} ({source})"))
                }
            };
            Some(Verdict::Deferred {
                until,
                rule: rule.into(),
                pack: country,
                reason,
            })
        }
        Some(_) => None,
    }
}

/// A cap is full: the reminder waits for the first allowed moment after the cap has room.
pub fn budget_full(rules: &Applied<'_>, full: FullCap, tz: Tz) -> Verdict {
    let Some((until, _)) = rules.next_open(full.room_at, tz) else {
        return suppressed(
            &full.cap,
            full.pack,
            "the rules allow no contact time within a year".into(),
        );
    };
    Verdict::Deferred {
        until,
        reason: format!("contact budget: {} per {} already used", full.max, full.window),
        rule: full.cap,
        pack: full.pack,
    }
}

/// Free-form text goes by SMS, or by WhatsApp only inside the 24 hours after that number
/// last wrote to us (Meta refuses it otherwise); email uses templates. `Err(reason)` when it
/// may not go.
pub fn free_form_allowed(
    channel: Channel,
    last_inbound: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    match channel {
        Channel::Email => Err("free-form text goes by SMS or WhatsApp; email uses templates".into()),
        Channel::Sms => Ok(()),
        Channel::Whatsapp => {
            if last_inbound.is_some_and(|at| now - at <= WHATSAPP_WINDOW) {
                return Ok(());
            }
            let since = last_inbound.map_or("never".to_string(), |at| format!("last on {}", at.to_rfc3339()));
            Err(format!(
                "outside WhatsApp's 24-hour customer-service window (the number wrote {since}): \
                 free-form text is not allowed, use a template"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recobro_rules::Rulebook;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("RFC 3339")
    }

    fn book() -> Rulebook {
        Rulebook::shipped().expect("packs")
    }

    const BOGOTA: Tz = chrono_tz::America::Bogota;

    #[test]
    fn a_channel_the_law_refuses_is_suppressed_with_its_pack() {
        let book = book();
        let tenant = r#"
            id = "acme"
            version = "1"
            title = "Acme's own rules"
            channels = ["email", "sms"]
            [[sources]]
            id = "policy"
            citation = "Acme policy"
        "#;
        let dir = std::env::temp_dir().join(format!("recobro-decision-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("acme.toml"), tenant).expect("pack");
        let book = book.with_tenant_packs(&dir).expect("tenant pack");
        let rules = book.for_debtor("acme", "CO", None);
        let Some(Verdict::Suppressed { rule, pack, reason }) = channel_allowed(&rules, Channel::Whatsapp)
        else {
            panic!("whatsapp is refused by acme's pack")
        };
        assert_eq!((rule.as_str(), pack.as_str()), ("channels", "acme@1"));
        assert_eq!(reason, "Acme's own rules does not allow collection by whatsapp");
        assert_eq!(channel_allowed(&rules, Channel::Sms), None);
    }

    #[test]
    fn at_night_the_reminder_waits_for_the_morning_in_the_debtors_zone() {
        let book = book();
        let rules = book.for_debtor("acme", "CO", None);
        // 21:00 in Bogotá on a Wednesday: Colombia allows 07:00-19:00 on weekdays.
        let verdict = at_this_hour(&rules, BOGOTA, utc("2026-11-26T02:00:00Z"));
        let Some(Verdict::Deferred {
            until,
            rule,
            pack,
            reason,
        }) = verdict
        else {
            panic!("deferred: {verdict:?}")
        };
        assert_eq!(until, utc("2026-11-26T12:00:00Z"));
        assert_eq!(rule, "hours");
        assert!(pack.starts_with("CO@"), "{pack}");
        assert!(reason.contains("America/Bogota"), "{reason}");
        // 10:00 in Bogotá is open.
        assert_eq!(at_this_hour(&rules, BOGOTA, utc("2026-11-26T15:00:00Z")), None);
    }

    #[test]
    fn a_holiday_defers_with_its_own_rule() {
        let book = book();
        let rules = book.for_debtor("acme", "CO", None);
        // 8 December is a public holiday in Colombia (Inmaculada Concepción).
        let verdict = at_this_hour(&rules, BOGOTA, utc("2026-12-08T15:00:00Z"));
        let Some(Verdict::Deferred { rule, until, .. }) = verdict else {
            panic!("deferred: {verdict:?}")
        };
        assert_eq!(rule, "holiday");
        assert!(until > utc("2026-12-08T15:00:00Z"));
    }

    #[test]
    fn a_full_cap_defers_to_the_first_open_moment_after_it_has_room() {
        let book = book();
        let rules = book.for_debtor("acme", "CO", None);
        let full = FullCap {
            pack: "BASELINE@2026.1".into(),
            cap: "one-a-day".into(),
            window: "local day".into(),
            max: 1,
            // Midnight in Bogotá: closed, so the reminder waits for 07:00.
            room_at: utc("2026-11-26T05:00:00Z"),
        };
        let Verdict::Deferred {
            until,
            rule,
            pack,
            reason,
        } = budget_full(&rules, full, BOGOTA)
        else {
            panic!("deferred")
        };
        assert_eq!(until, utc("2026-11-26T12:00:00Z"));
        assert_eq!((rule.as_str(), pack.as_str()), ("one-a-day", "BASELINE@2026.1"));
        assert_eq!(reason, "contact budget: 1 per local day already used");
    }

    #[test]
    fn free_form_text_goes_by_sms_or_inside_whatsapps_window() {
        let now = utc("2026-11-26T15:00:00Z");
        assert!(free_form_allowed(Channel::Sms, None, now).is_ok());
        assert!(free_form_allowed(Channel::Email, Some(now), now).is_err());
        let recent = now - chrono::Duration::hours(23);
        assert!(free_form_allowed(Channel::Whatsapp, Some(recent), now).is_ok());
        let stale = now - chrono::Duration::hours(24);
        let reason = free_form_allowed(Channel::Whatsapp, Some(stale), now).expect_err("window closed");
        assert!(reason.contains("24-hour"), "{reason}");
        assert!(free_form_allowed(Channel::Whatsapp, None, now).is_err());
    }
}
