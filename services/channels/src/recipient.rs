//! Whom a message may go to, decided from channels' view of the ledger alone: the debtor's
//! contact points with their consent, retirement and legal hold as accounts published them,
//! and the opt-outs channels received since. Pure functions, so every refusal and its reason
//! is unit-tested; a reason names point ids, never an address.

use chrono::{DateTime, Utc};
use recobro_proto::v1 as pb;
use recobro_rules::Channel;
use uuid::Uuid;

use crate::decision::Verdict;

/// The contact point a message goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub point_id: Uuid,
    pub address: String,
}

/// What the view says about one debtor: their record, and the opt-outs channels received for
/// their points (by point id: when and from what).
pub struct DebtorView<'a> {
    pub record: &'a pb::DebtorChanged,
    pub withdrawn_here: &'a (dyn Fn(Uuid) -> Option<(String, DateTime<Utc>)> + Sync),
}

fn suppressed(rule: &str, reason: String) -> Verdict {
    Verdict::Suppressed {
        rule: rule.into(),
        pack: "ledger".into(),
        reason,
    }
}

/// A legal hold stops every extrajudicial contact, whatever the channel.
pub fn under_hold(record: &pb::DebtorChanged) -> Option<Verdict> {
    let hold = record.legal_hold.as_ref()?;
    let since = hold
        .since
        .as_ref()
        .and_then(recobro_common::time::from_timestamp)
        .map_or_else(|| "an unknown date".to_string(), |at| at.date_naive().to_string());
    // The hold's reason is the bank's free text: it stays in accounts, the record cites the source.
    Some(suppressed(
        "legal-hold",
        format!(
            "a legal hold stands since {since} (source: {}): no extrajudicial contact",
            hold.source
        ),
    ))
}

/// The name a contact role has in ladders and reminders.
pub fn role_name(role: pb::ContactRole) -> Option<&'static str> {
    match role {
        pb::ContactRole::Treasury => Some("treasury"),
        pb::ContactRole::AccountsPayable => Some("accounts_payable"),
        pb::ContactRole::Purchasing => Some("purchasing"),
        pb::ContactRole::DecisionMaker => Some("decision_maker"),
        pb::ContactRole::Other => Some("other"),
        pb::ContactRole::Unspecified => None,
    }
}

/// Why a point may not be used now, if it may not.
fn unusable(view: &DebtorView<'_>, point: &pb::ContactPoint, point_id: Uuid) -> Option<String> {
    if let Some(at) = point
        .retired_at
        .as_ref()
        .and_then(recobro_common::time::from_timestamp)
    {
        return Some(format!(
            "point {point_id} was retired on {} ({})",
            at.date_naive(),
            point.retired_reason
        ));
    }
    let consent_at = point
        .consent_at
        .as_ref()
        .and_then(recobro_common::time::from_timestamp);
    if point.consent() != pb::Consent::Granted {
        let on = consent_at.map_or_else(|| "an unknown date".to_string(), |at| at.date_naive().to_string());
        return Some(format!(
            "consent for point {point_id} was withdrawn on {on} ({})",
            point.consent_source
        ));
    }
    // An opt-out channels received counts until accounts records a later consent.
    if let Some((source, at)) = (view.withdrawn_here)(point_id)
        && consent_at.is_none_or(|granted| granted < at)
    {
        return Some(format!(
            "consent for point {point_id} was withdrawn on {} ({source})",
            at.date_naive()
        ));
    }
    None
}

/// The point a message on `channel` goes to: the named point, else the best consented point of
/// `role` (any role when empty), preferred first. A point that is not the debtor's, not on the
/// channel, retired or withdrawn is refused with why.
pub fn choose(
    view: &DebtorView<'_>,
    channel: Channel,
    role: &str,
    point_id: Option<Uuid>,
) -> Result<Chosen, Verdict> {
    let wire_channel = pb::Channel::from(channel);
    let mut candidates = Vec::new();
    for contact in &view.record.contacts {
        let contact_role = role_name(contact.role()).unwrap_or_default();
        for point in &contact.points {
            let Ok(id) = Uuid::parse_str(&point.point_id) else {
                continue;
            };
            candidates.push((contact_role, id, point));
        }
    }
    if let Some(wanted) = point_id {
        let Some((_, id, point)) = candidates.iter().find(|(_, id, _)| *id == wanted) else {
            return Err(suppressed(
                "recipient",
                format!("point {wanted} is not one of the debtor's contact points"),
            ));
        };
        if point.channel() != wire_channel {
            return Err(suppressed(
                "recipient",
                format!("point {id} is not a {channel} contact point"),
            ));
        }
        if let Some(reason) = unusable(view, point, *id) {
            return Err(suppressed("consent", reason));
        }
        return Ok(Chosen {
            point_id: *id,
            address: point.address.clone(),
        });
    }
    let mut on_channel: Vec<_> = candidates
        .into_iter()
        .filter(|(contact_role, _, point)| {
            point.channel() == wire_channel && (role.is_empty() || *contact_role == role)
        })
        .collect();
    // Preferred points first; the rest in a stable order.
    on_channel.sort_by_key(|(_, id, point)| (!point.preferred, *id));
    let mut first_refusal = None;
    for (_, id, point) in &on_channel {
        match unusable(view, point, *id) {
            None => {
                return Ok(Chosen {
                    point_id: *id,
                    address: point.address.clone(),
                });
            }
            Some(reason) => {
                first_refusal.get_or_insert(reason);
            }
        }
    }
    let whom = if role.is_empty() {
        String::new()
    } else {
        format!(" for the {role} role")
    };
    Err(match first_refusal {
        Some(reason) => suppressed(
            "consent",
            format!("no consented {channel} contact point{whom}: {reason}"),
        ),
        None => suppressed(
            "recipient",
            format!("the debtor has no {channel} contact point{whom}"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use recobro_common::time::timestamp;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("RFC 3339")
    }

    fn point(
        n: u128,
        channel: pb::Channel,
        address: &str,
        consent: pb::Consent,
        preferred: bool,
    ) -> pb::ContactPoint {
        pb::ContactPoint {
            point_id: Uuid::from_u128(n).to_string(),
            channel: channel as i32,
            address: address.into(),
            consent: consent as i32,
            consent_source: "erp".into(),
            consent_at: Some(timestamp(utc("2026-11-01T00:00:00Z"))),
            preferred,
            ..Default::default()
        }
    }

    fn record() -> pb::DebtorChanged {
        pb::DebtorChanged {
            contacts: vec![
                pb::Contact {
                    role: pb::ContactRole::Treasury as i32,
                    points: vec![
                        point(
                            1,
                            pb::Channel::Email,
                            "old@acme.example",
                            pb::Consent::Granted,
                            false,
                        ),
                        point(
                            2,
                            pb::Channel::Email,
                            "pagos@acme.example",
                            pb::Consent::Granted,
                            true,
                        ),
                        point(3, pb::Channel::Sms, "+573001112233", pb::Consent::Withdrawn, true),
                    ],
                    ..Default::default()
                },
                pb::Contact {
                    role: pb::ContactRole::AccountsPayable as i32,
                    points: vec![point(
                        4,
                        pb::Channel::Email,
                        "cxp@acme.example",
                        pb::Consent::Granted,
                        false,
                    )],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn nothing_here(_: Uuid) -> Option<(String, DateTime<Utc>)> {
        None
    }

    #[test]
    fn the_preferred_consented_point_of_the_role_is_chosen() {
        let record = record();
        let view = DebtorView {
            record: &record,
            withdrawn_here: &nothing_here,
        };
        let chosen = choose(&view, Channel::Email, "treasury", None).expect("chosen");
        assert_eq!(chosen.point_id, Uuid::from_u128(2));
        let chosen = choose(&view, Channel::Email, "accounts_payable", None).expect("chosen");
        assert_eq!(chosen.address, "cxp@acme.example");
        assert_eq!(
            choose(&view, Channel::Email, "", None)
                .expect("any role")
                .point_id,
            Uuid::from_u128(2)
        );
    }

    #[test]
    fn withdrawn_retired_unknown_and_other_channel_points_are_refused_by_id() {
        let mut record = record();
        record.contacts[0].points[0].retired_at = Some(timestamp(utc("2026-11-20T10:00:00Z")));
        record.contacts[0].points[0].retired_reason = "replaced by the ERP record".into();
        let view = DebtorView {
            record: &record,
            withdrawn_here: &nothing_here,
        };
        let reason = |verdict: Verdict| match verdict {
            Verdict::Suppressed { reason, .. } => reason,
            other => panic!("suppressed: {other:?}"),
        };
        let retired =
            reason(choose(&view, Channel::Email, "", Some(Uuid::from_u128(1))).expect_err("retired"));
        assert!(retired.contains("retired on 2026-11-20"), "{retired}");
        let withdrawn = reason(choose(&view, Channel::Sms, "", None).expect_err("withdrawn"));
        assert!(withdrawn.contains("withdrawn on 2026-11-01 (erp)"), "{withdrawn}");
        let unknown =
            reason(choose(&view, Channel::Email, "", Some(Uuid::from_u128(9))).expect_err("unknown"));
        assert!(
            unknown.contains("not one of the debtor's contact points"),
            "{unknown}"
        );
        let elsewhere =
            reason(choose(&view, Channel::Sms, "", Some(Uuid::from_u128(2))).expect_err("email point"));
        assert!(elsewhere.contains("not a sms contact point"), "{elsewhere}");
        let nobody = reason(choose(&view, Channel::Whatsapp, "", None).expect_err("no whatsapp"));
        assert_eq!(nobody, "the debtor has no whatsapp contact point");
        for text in [retired, withdrawn, unknown, elsewhere] {
            assert!(
                !text.contains('@') && !text.contains("+57"),
                "no address in {text}"
            );
        }
    }

    #[test]
    fn an_opt_out_received_here_counts_until_accounts_records_a_later_consent() {
        let record = record();
        let here =
            |id: Uuid| (id == Uuid::from_u128(2)).then(|| ("reply".to_string(), utc("2026-11-25T09:00:00Z")));
        let view = DebtorView {
            record: &record,
            withdrawn_here: &here,
        };
        // The preferred point opted out here: the next consented one of the role is used.
        let chosen = choose(&view, Channel::Email, "treasury", None).expect("other point");
        assert_eq!(chosen.point_id, Uuid::from_u128(1));
        assert!(choose(&view, Channel::Email, "", Some(Uuid::from_u128(2))).is_err());

        let mut regranted = record.clone();
        regranted.contacts[0].points[1].consent_at = Some(timestamp(utc("2026-11-26T00:00:00Z")));
        let view = DebtorView {
            record: &regranted,
            withdrawn_here: &here,
        };
        assert_eq!(
            choose(&view, Channel::Email, "", Some(Uuid::from_u128(2)))
                .expect("granted again later")
                .point_id,
            Uuid::from_u128(2)
        );
    }

    #[test]
    fn a_legal_hold_suppresses_and_cites_its_source_not_its_reason() {
        let mut record = record();
        assert_eq!(under_hold(&record), None);
        record.legal_hold = Some(pb::LegalHold {
            reason: "demanda 2026-123 contra Ana Pérez".into(),
            source: "court notice".into(),
            since: Some(timestamp(utc("2026-11-30T12:00:00Z"))),
        });
        let Some(Verdict::Suppressed { rule, reason, .. }) = under_hold(&record) else {
            panic!("suppressed")
        };
        assert_eq!(rule, "legal-hold");
        assert!(
            reason.contains("2026-11-30") && reason.contains("court notice"),
            "{reason}"
        );
        assert!(!reason.contains("Ana"), "{reason}");
    }
}
