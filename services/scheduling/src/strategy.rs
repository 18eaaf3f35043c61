//! Collection strategies as data a collections manager can read: TOML files under
//! `strategies/` (shipped) and `RECOBRO_STRATEGIES_DIR` (the operator's). A strategy has a
//! segment rule (`when`), a priority, and one or more arms (champion/challenger) with traffic
//! shares; each arm is a ladder of steps relative to the due date. A debtor's arm is a stable
//! hash of the strategy and debtor, so it never flips between invoices or restarts.

use recobro_rules::Channel;
use serde::Deserialize;
use uuid::Uuid;

use crate::stored::{EscalationKind, ReminderAction};

const SHIPPED: &[(&str, &str)] = &[
    ("default.toml", include_str!("../strategies/default.toml")),
    ("b2b-large.toml", include_str!("../strategies/b2b-large.toml")),
];

#[derive(Debug, thiserror::Error)]
#[error("strategy {file}: {reason}")]
pub struct StrategyError {
    pub file: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyFile {
    id: String,
    version: String,
    name: String,
    #[serde(default = "default_priority")]
    priority: i32,
    #[serde(default)]
    when: When,
    #[serde(default = "default_escalation_grace_days")]
    escalation_grace_days: i64,
    #[serde(default = "default_consolidate")]
    consolidate: Vec<String>,
    #[serde(default = "default_statement_window_days")]
    statement_window_days: u32,
    arms: Vec<ArmFile>,
}

/// Companies get one statement for the invoices falling due on the same day (a B2B debtor with
/// thirty open invoices is not written to thirty times); consumers one message per invoice.
fn default_consolidate() -> Vec<String> {
    vec!["company".into()]
}

/// A statement covers the reminders falling due on the local day it goes.
fn default_statement_window_days() -> u32 {
    1
}

/// The window a strategy may set: a day up to a week (a wider one would send a preventive
/// reminder weeks before its moment).
pub const STATEMENT_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 1..=7;

fn default_priority() -> i32 {
    100
}

/// Days an escalation waits after the invoice's last message: the debtor gets time to read
/// the final notice and answer it before the case is handed on.
fn default_escalation_grace_days() -> i64 {
    3
}

/// The grace a strategy may set: at least a day (an escalation never goes with a message), at
/// most two months.
const ESCALATION_GRACE_DAYS: std::ops::RangeInclusive<i64> = 1..=60;

/// Which invoices a strategy is for; every condition given must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub debtor_kind: Option<String>,
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    /// On the invoice's outstanding amount, in its own currency's minor units.
    pub min_amount_minor: Option<i64>,
    pub max_amount_minor: Option<i64>,
    pub min_risk: Option<i32>,
    pub max_risk: Option<i32>,
    /// Days past due when the invoice is planned (negative: not yet due).
    pub min_days_past_due: Option<i64>,
    pub max_days_past_due: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmFile {
    id: String,
    share: u32,
    steps: Vec<StepFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: String,
    offset_days: i64,
    #[serde(default)]
    channels: Vec<String>,
    template: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    escalate: Option<String>,
}

/// What a step does when it falls due.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A message on the first of `channels` the debtor can be reached on, to the first of
    /// `roles` (B2B) that has a contact point there.
    Message {
        channels: Vec<Channel>,
        template: String,
        roles: Vec<String>,
    },
    /// Hand the case on to a collector, an agency, a credit bureau or legal.
    Escalate(EscalationKind),
}

impl Action {
    /// What a reminder of this step stores and shows as its action.
    pub fn stored(&self) -> ReminderAction {
        match self {
            Action::Message { .. } => ReminderAction::Message,
            Action::Escalate(kind) => ReminderAction::Escalate(*kind),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub offset_days: i64,
    pub action: Action,
}

impl Step {
    /// Whether the step writes to the debtor (rather than handing the case on).
    pub fn is_message(&self) -> bool {
        matches!(self.action, Action::Message { .. })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub id: String,
    pub share: u32,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    pub id: String,
    pub version: String,
    pub name: String,
    pub priority: i32,
    pub when: When,
    /// How long an escalation waits after the invoice's last message (see `ladder::plan`).
    pub escalation_grace: chrono::Duration,
    /// The debtor kinds whose message reminders due on the same local day go out as one
    /// statement (see `statement`).
    pub consolidate: Vec<String>,
    /// How many local days a statement takes in, from the day it goes (1: that day only): the
    /// debtor's reminders falling due in them go out together, the later ones early.
    pub statement_window_days: u32,
    pub arms: Vec<Arm>,
    /// The file it came from, for ListStrategies.
    pub source: String,
}

/// What the segment rules look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<'a> {
    pub debtor_kind: &'a str,
    pub country: &'a str,
    pub segment: &'a str,
    pub amount_minor: i64,
    pub risk: Option<i32>,
    pub days_past_due: i64,
}

/// How far from the due date a step may fire: ten years either way. Every plannable date
/// survives that offset (`recobro_common::time` checks it); a larger one would overflow chrono's
/// calendar and panic the planner at the first invoice.
const MAX_OFFSET_DAYS: i64 = 3650;

const ROLES: &[&str] = &[
    "treasury",
    "accounts_payable",
    "purchasing",
    "decision_maker",
    "other",
];

impl Strategy {
    pub fn parse(file: &str, text: &str) -> Result<Strategy, StrategyError> {
        let fail = |reason: String| StrategyError {
            file: file.to_string(),
            reason,
        };
        let raw: StrategyFile = toml::from_str(text).map_err(|err| fail(err.to_string()))?;
        if raw.arms.is_empty() {
            return Err(fail("needs at least one arm".into()));
        }
        let shares: u32 = raw.arms.iter().map(|arm| arm.share).sum();
        if shares != 100 {
            return Err(fail(format!("arm shares add up to {shares}, not 100")));
        }
        if let Some(kind) = &raw.when.debtor_kind
            && kind != "company"
            && kind != "consumer"
        {
            return Err(fail(format!(
                "when.debtor_kind {kind:?} is not company or consumer"
            )));
        }
        if let Some(kind) = raw
            .consolidate
            .iter()
            .find(|kind| *kind != "company" && *kind != "consumer")
        {
            return Err(fail(format!(
                "consolidate names {kind:?}, which is not company or consumer"
            )));
        }
        if !STATEMENT_WINDOW_DAYS.contains(&raw.statement_window_days) {
            return Err(fail(format!(
                "statement_window_days {} is not between {} and {}",
                raw.statement_window_days,
                STATEMENT_WINDOW_DAYS.start(),
                STATEMENT_WINDOW_DAYS.end()
            )));
        }
        if !ESCALATION_GRACE_DAYS.contains(&raw.escalation_grace_days) {
            return Err(fail(format!(
                "escalation_grace_days {} is not between {} and {}",
                raw.escalation_grace_days,
                ESCALATION_GRACE_DAYS.start(),
                ESCALATION_GRACE_DAYS.end()
            )));
        }
        let mut arms = Vec::new();
        for arm in raw.arms {
            if arm.steps.is_empty() {
                return Err(fail(format!("arm {} has no steps", arm.id)));
            }
            let mut steps: Vec<Step> = Vec::new();
            for step in arm.steps {
                let what = format!("arm {} step {}", arm.id, step.name);
                if steps.iter().any(|s| s.name == step.name) {
                    return Err(fail(format!("{what}: step names repeat")));
                }
                if !(-MAX_OFFSET_DAYS..=MAX_OFFSET_DAYS).contains(&step.offset_days) {
                    return Err(fail(format!(
                        "{what}: offset_days {} is more than {MAX_OFFSET_DAYS} days from the due date",
                        step.offset_days
                    )));
                }
                if let Some(role) = step.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
                    return Err(fail(format!("{what}: unknown role {role:?}")));
                }
                let action = match (step.escalate, step.template) {
                    (Some(kind), None) if step.channels.is_empty() => Action::Escalate(
                        kind.parse()
                            .map_err(|_| fail(format!("{what}: unknown escalation {kind:?}")))?,
                    ),
                    (None, Some(template)) => {
                        if step.channels.is_empty() {
                            return Err(fail(format!("{what}: a message step needs channels")));
                        }
                        let channels = step
                            .channels
                            .iter()
                            .map(|channel| {
                                channel
                                    .parse::<Channel>()
                                    .map_err(|_| fail(format!("{what}: unknown channel {channel:?}")))
                            })
                            .collect::<Result<Vec<Channel>, StrategyError>>()?;
                        Action::Message {
                            channels,
                            template,
                            roles: step.roles,
                        }
                    }
                    _ => return Err(fail(format!("{what}: either template and channels, or escalate"))),
                };
                steps.push(Step {
                    name: step.name,
                    offset_days: step.offset_days,
                    action,
                });
            }
            arms.push(Arm {
                id: arm.id,
                share: arm.share,
                steps,
            });
        }
        Ok(Strategy {
            id: raw.id,
            version: raw.version,
            name: raw.name,
            priority: raw.priority,
            when: raw.when,
            escalation_grace: chrono::Duration::days(raw.escalation_grace_days),
            consolidate: raw.consolidate,
            statement_window_days: raw.statement_window_days,
            arms,
            source: text.to_string(),
        })
    }

    /// Whether this kind of debtor's due messages go out as one statement.
    pub fn consolidates(&self, debtor_kind: &str) -> bool {
        self.consolidate.iter().any(|kind| kind == debtor_kind)
    }

    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let w = &self.when;
        w.debtor_kind
            .as_deref()
            .is_none_or(|kind| kind == facts.debtor_kind)
            && (w.countries.is_empty() || w.countries.iter().any(|c| c == facts.country))
            && (w.segments.is_empty() || w.segments.iter().any(|s| s == facts.segment))
            && w.min_amount_minor.is_none_or(|min| facts.amount_minor >= min)
            && w.max_amount_minor.is_none_or(|max| facts.amount_minor <= max)
            && w.min_risk
                .is_none_or(|min| facts.risk.is_some_and(|risk| risk >= min))
            && w.max_risk
                .is_none_or(|max| facts.risk.is_some_and(|risk| risk <= max))
            && w.min_days_past_due.is_none_or(|min| facts.days_past_due >= min)
            && w.max_days_past_due.is_none_or(|max| facts.days_past_due <= max)
    }

    /// The debtor's arm: the same for every invoice of theirs, on every replica, forever.
    pub fn arm_for(&self, debtor_id: Uuid) -> &Arm {
        let bucket = (fnv1a(format!("{}/{debtor_id}", self.id).as_bytes()) % 100) as u32;
        let mut upper = 0;
        for arm in &self.arms {
            upper += arm.share;
            if bucket < upper {
                return arm;
            }
        }
        &self.arms[self.arms.len() - 1]
    }
}

/// FNV-1a, 64 bits: stable across versions and platforms, unlike the standard hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Every strategy loaded, in the order they are tried.
#[derive(Debug, Clone)]
pub struct Strategies {
    all: Vec<Strategy>,
}

impl Strategies {
    /// The shipped strategies, plus the operator's `*.toml` in `dir` (which replace shipped ones
    /// with the same id). Refuses a set without a catch-all (a strategy with no conditions).
    pub fn load(dir: Option<&std::path::Path>) -> Result<Strategies, StrategyError> {
        let mut all = Vec::new();
        for (file, text) in SHIPPED {
            all.push(Strategy::parse(file, text)?);
        }
        if let Some(dir) = dir {
            let fail = |reason: String| StrategyError {
                file: dir.display().to_string(),
                reason,
            };
            for entry in std::fs::read_dir(dir).map_err(|err| fail(err.to_string()))? {
                let path = entry.map_err(|err| fail(err.to_string()))?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                    continue;
                }
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|err| fail(format!("{file}: {err}")))?;
                let strategy = Strategy::parse(&file, &text)?;
                all.retain(|s: &Strategy| s.id != strategy.id);
                all.push(strategy);
            }
        }
        Strategies::new(all)
    }

    pub fn new(mut all: Vec<Strategy>) -> Result<Strategies, StrategyError> {
        all.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        if !all.iter().any(|s| s.when == When::default()) {
            return Err(StrategyError {
                file: "strategies".into(),
                reason: "none is a catch-all (no `when`)".into(),
            });
        }
        Ok(Strategies { all })
    }

    /// The first strategy, by priority, whose segment rule matches.
    pub fn choose(&self, facts: &Facts<'_>) -> &Strategy {
        self.all.iter().find(|s| s.matches(facts)).unwrap_or_else(|| {
            self.all
                .iter()
                .find(|s| s.when == When::default())
                .expect("a catch-all exists: checked at load")
        })
    }

    pub fn get(&self, id: &str) -> Option<&Strategy> {
        self.all.iter().find(|s| s.id == id)
    }

    pub fn all(&self) -> &[Strategy] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: &str, amount_minor: i64) -> Facts<'_> {
        Facts {
            debtor_kind: kind,
            country: "CO",
            segment: "",
            amount_minor,
            risk: None,
            days_past_due: 0,
        }
    }

    #[test]
    fn the_shipped_strategies_load_and_a_catch_all_exists() {
        let strategies = Strategies::load(None).expect("shipped strategies parse");
        assert_eq!(strategies.choose(&facts("consumer", 100)).id, "standard");
    }

    #[test]
    fn segment_rules_choose_by_kind_and_amount_in_priority_order() {
        let strategies = Strategies::load(None).expect("load");
        assert_eq!(
            strategies.choose(&facts("company", 10_000_000_00)).id,
            "b2b-large"
        );
        assert_eq!(strategies.choose(&facts("company", 9_999_999_99)).id, "standard");
        assert_eq!(
            strategies.choose(&facts("consumer", 50_000_000_00)).id,
            "standard"
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let when = When {
            countries: vec!["MX".into()],
            segments: vec!["smb".into()],
            min_risk: Some(70),
            min_days_past_due: Some(30),
            max_days_past_due: Some(90),
            ..When::default()
        };
        let strategy = Strategy {
            when,
            ..Strategies::load(None).expect("load").all()[0].clone()
        };
        let base = Facts {
            debtor_kind: "company",
            country: "MX",
            segment: "smb",
            amount_minor: 1,
            risk: Some(80),
            days_past_due: 45,
        };
        assert!(strategy.matches(&base));
        assert!(!strategy.matches(&Facts {
            country: "CO",
            ..base.clone()
        }));
        assert!(!strategy.matches(&Facts {
            segment: "enterprise",
            ..base.clone()
        }));
        assert!(
            !strategy.matches(&Facts {
                risk: None,
                ..base.clone()
            }),
            "an unknown risk does not meet a minimum"
        );
        assert!(!strategy.matches(&Facts {
            days_past_due: 91,
            ..base.clone()
        }));
        assert!(strategy.matches(&Facts {
            days_past_due: 90,
            ..base
        }));
    }

    #[test]
    fn a_debtors_arm_is_deterministic_and_shares_are_respected() {
        let strategies = Strategies::load(None).expect("load");
        let strategy = strategies.get("b2b-large").expect("shipped");
        let mut challenger = 0;
        for n in 0..10_000u128 {
            let debtor = Uuid::from_u128(n * 7919 + 13);
            let arm = &strategy.arm_for(debtor).id;
            assert_eq!(arm, &strategy.arm_for(debtor).id, "never flips");
            if arm == "early-sms" {
                challenger += 1;
            }
        }
        assert!(
            (1_800..2_200).contains(&challenger),
            "about 20% in the challenger: {challenger}"
        );
    }

    #[test]
    fn bad_strategies_are_refused_with_a_reason() {
        let good = include_str!("../strategies/default.toml");
        let cases = [
            (good.replace("share = 100", "share = 90"), "add up to 90"),
            (
                good.replace("escalate = \"collector\"", "escalate = \"sheriff\""),
                "unknown escalation",
            ),
            (
                good.replace(
                    "channels = [\"email\", \"sms\"]",
                    "channels = [\"email\", \"fax\"]",
                ),
                "step overdue-1: unknown channel \"fax\"",
            ),
            (
                good.replace("channels = [\"email\", \"sms\"]", "channels = [\"Email\"]"),
                "unknown channel \"Email\"",
            ),
            (
                good.replace(
                    "roles = [\"accounts_payable\", \"treasury\"]",
                    "roles = [\"cfo\"]",
                ),
                "unknown role",
            ),
            (
                good.replace("name = \"overdue-7\"", "name = \"overdue-1\""),
                "names repeat",
            ),
            (
                good.replace("escalation_grace_days = 3", "escalation_grace_days = 0"),
                "escalation_grace_days 0 is not between 1 and 60",
            ),
            (
                good.replace("escalation_grace_days = 3", "escalation_grace_days = 61"),
                "escalation_grace_days 61 is not between 1 and 60",
            ),
            (
                good.replace("statement_window_days = 1", "statement_window_days = 0"),
                "statement_window_days 0 is not between 1 and 7",
            ),
            (
                good.replace("statement_window_days = 1", "statement_window_days = 8"),
                "statement_window_days 8 is not between 1 and 7",
            ),
        ];
        for (text, expected) in cases {
            let err = Strategy::parse("x.toml", &text).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
            assert!(err.to_string().starts_with("strategy x.toml: "), "{err}");
        }
        let only_conditional = Strategies::load(None)
            .expect("load")
            .all()
            .iter()
            .filter(|s| s.id != "standard")
            .cloned()
            .collect();
        assert!(
            Strategies::new(only_conditional).is_err(),
            "a catch-all is required"
        );
    }
}
