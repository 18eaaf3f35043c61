//! Delivery of `ReminderDue` events: the dispatcher orchestrates. It decodes a batch, asks the
//! rules (`decision`), composes the message (`compose`), reserves the contact budget
//! (`budget`), claims the send (`send_claim`), hands the message to its channel's provider
//! (`provider`) and records every outcome. A contact not allowed now is deferred to the
//! earliest moment it would be, never dropped.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{self, BatchHandler, Failure};
use recobro_proto::v1::{self as pb, DeliveryStatus};
use recobro_rules::{Applied, Channel, Eligibility, Role, Rulebook};
use sqlx::PgPool;
use uuid::Uuid;

use crate::budget::{ContactBudget, Decision, RESERVATION_TTL};
use crate::compose;
use crate::decision::{self, Verdict};
use crate::ledger::LedgerFence;
use crate::provider::{Composed, ProviderError, Providers};
use crate::recheck;
use crate::recipient;
use crate::reminder::{self, Reminder};
use crate::send_claim::{SendClaim, SendClaims};
use crate::store::{self, Delivery};
use crate::templates::{Rendered, Wordings, statement};

pub use crate::reminder::parse;

pub struct Dispatcher {
    pub pool: PgPool,
    /// Channels' view of the ledger is caught up before each batch is decided.
    pub ledger: LedgerFence,
    /// Which providers refuse which channels to which tenant roles (data, cited).
    pub eligibility: Eligibility,
    pub budget: ContactBudget,
    pub claims: SendClaims,
    pub rulebook: Rulebook,
    pub providers: Providers,
    pub deliveries_topic: String,
    /// Every reminder's payment link: an opaque token for its tenant and invoice.
    pub payment_links: std::sync::Arc<crate::payments::PaymentLinks>,
    /// Attempts through a provider that keeps failing transiently before the delivery is
    /// recorded as failed: nothing is retried forever.
    pub max_attempts: u32,
    /// Sends made by this process, and the failpoint that ends it after so many (crash tests).
    pub sends: std::sync::atomic::AtomicU64,
    pub exit_after_sends: Option<u64>,
    /// Held across a provider call until its "sent" mark is queued. One permit (the default)
    /// means one call in flight per worker, so a crash leaves at most one message whose fate is
    /// unknown; more permits speed up slow HTTP providers and widen that window as much.
    pub provider_turns: tokio::sync::Semaphore,
    /// Debtors handled at once: their budget checks and send claims share Redis round trips.
    pub debtors_at_once: usize,
}

impl BatchHandler for Dispatcher {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, Failure> {
        let mut rejected = Vec::new();
        let mut reminders = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let parsed = pb::ReminderDue::decode(message.payload().unwrap_or_default())
                .map_err(|err| format!("not a recobro.v1.ReminderDue: {err}"))
                .and_then(reminder::parse);
            match parsed {
                Ok(mut reminder) => {
                    reminder.traceparent = kafka::message_traceparent(message);
                    reminders.push(reminder);
                }
                Err(reason) => rejected.push((index, reason)),
            }
        }
        self.deliver_all(&reminders, Utc::now()).await?;
        Ok(rejected)
    }
}

/// What the rules and the provider made of one reminder.
enum Outcome {
    /// A rule stopped it, now or for good.
    Ruled(Verdict),
    /// Sent: the provider's message id, and the packs whose rules all allowed it.
    Sent {
        provider_message_id: String,
        packs: String,
    },
    /// It failed for good (no address, a template error, the provider refused it, or its fate
    /// is unknown after a crash).
    Failed(String),
    /// The provider kept failing transiently: the step's next channel may be tried.
    GaveUp(String),
}

/// What one reminder is decided on: its debtor's rules, the ledger's view of them, the
/// tenant's role and the STOPs our senders received.
struct Facts<'a> {
    rules: &'a Applied<'a>,
    view: &'a recipient::DebtorView<'a>,
    role: Role,
    sender_opt_outs: &'a HashMap<(String, String, String), DateTime<Utc>>,
}

/// Redis holds the contact budget and the send claims: without it nobody is contacted (fail
/// closed), and the reminder waits for a retry.
fn budget_unavailable(err: redis::RedisError) -> Failure {
    Failure::Retry(format!("contact budget unavailable: {err}"))
}

/// A database error: retried if it may pass; one that never will rejects the batch, which is
/// then split until the reminder behind it is parked.
fn database(err: sqlx::Error) -> Failure {
    recobro_common::db::failure(&err)
}

/// What channels' view of the ledger says about a batch's debtors, read once per batch.
struct Known {
    /// Each debtor's latest record: contact points with consent, retirements, legal hold.
    records: HashMap<(String, Uuid), pb::DebtorChanged>,
    /// Each tenant's role ("creditor" or "agency").
    roles: HashMap<String, String>,
    /// Opt-outs channels received, by (tenant, point).
    withdrawals: HashMap<(String, Uuid), (String, DateTime<Utc>)>,
    /// STOPs sent to our senders, by (channel, sender, address).
    sender_opt_outs: HashMap<(String, String, String), DateTime<Utc>>,
}

fn ledger_suppressed(rule: &str, reason: String) -> Outcome {
    Outcome::Ruled(Verdict::Suppressed {
        rule: rule.into(),
        pack: "ledger".into(),
        reason,
    })
}

impl Dispatcher {
    /// A batch: the database is read and written a few statements at a time, and debtors are
    /// handled concurrently (one debtor's reminders in order, for their contact budget).
    /// Outcomes are committed before a retry is asked for, so only what failed is tried again.
    #[tracing::instrument(skip_all, fields(reminders = reminders.len()))]
    pub async fn deliver_all(&self, reminders: &[Reminder], now: DateTime<Utc>) -> Result<(), Failure> {
        let ids: Vec<Uuid> = reminders.iter().map(|r| r.reminder_id).collect();
        let handled = store::delivered_among(&self.pool, &ids).await.map_err(database)?;
        let fresh: Vec<&Reminder> = reminders
            .iter()
            .filter(|r| !handled.contains(&r.reminder_id))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        // Decided on the ledger as it stands now: every consent change accounts published
        // before this moment is applied first.
        self.ledger.caught_up().await?;
        let known = self.known(&fresh).await?;
        self.restore_budgets(&known, now).await?;
        // A statement's invoices as the ledger has them now: one no longer owed is left out,
        // and a statement with none left is not sent.
        let mut recorded = Vec::new();
        let rechecked = self.recheck_statements(&fresh, &mut recorded, now).await?;
        let fresh: Vec<&Reminder> = fresh
            .iter()
            .zip(&rechecked)
            .filter_map(|(reminder, rechecked)| match rechecked {
                Some(statement) if statement.covered.is_empty() => None,
                Some(statement) => Some(statement),
                None => Some(*reminder),
            })
            .collect();
        // A statement's template depends on its tone and channel: all of them, for its tenant.
        let templates: BTreeSet<(String, String)> = fresh
            .iter()
            .flat_map(|r| {
                let ids: Vec<String> = if r.is_statement() {
                    statement::TEMPLATE_IDS.iter().map(|id| id.to_string()).collect()
                } else {
                    vec![r.event.template_id.clone()]
                };
                ids.into_iter().map(|id| (r.event.tenant_id.clone(), id))
            })
            .collect();
        let templates: Vec<_> = templates.into_iter().collect();
        let wordings = store::wordings_among(&self.pool, &templates)
            .await
            .map_err(database)?;

        // Debtors concurrently, each debtor's reminders in order (their budget is spent in
        // order). Provider calls still take turns (`provider_turns`).
        let mut chains: Vec<Vec<&Reminder>> = Vec::new();
        let mut chain_of: HashMap<Uuid, usize> = HashMap::new();
        for reminder in fresh {
            let index = *chain_of.entry(reminder.debtor_id).or_insert_with(|| {
                chains.push(Vec::new());
                chains.len() - 1
            });
            chains[index].push(reminder);
        }
        // Futures made first, then run: a closure making them trips the Send checker.
        let chains: Vec<_> = chains
            .into_iter()
            .map(|chain| self.deliver_chain(chain, &known, &wordings, now))
            .collect();
        let outcomes: Vec<Vec<Result<store::Recorded, Failure>>> = futures_util::stream::iter(chains)
            .buffer_unordered(self.debtors_at_once.max(1))
            .collect()
            .await;
        let mut first_failure = None;
        for outcome in outcomes.into_iter().flatten() {
            match outcome {
                Ok(done) => recorded.push(done),
                Err(failure) => {
                    first_failure.get_or_insert(failure);
                }
            }
        }
        store::record_outcomes(&self.pool, &recorded, &self.deliveries_topic)
            .await
            .map_err(database)?;
        match first_failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Each statement among `fresh` with its invoices re-checked against the view (`None` for
    /// one invoice's reminder): a left-out invoice's reminder is recorded as suppressed with
    /// why, and a statement with no invoice left as suppressed too, in `recorded`.
    async fn recheck_statements(
        &self,
        fresh: &[&Reminder],
        recorded: &mut Vec<store::Recorded>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Reminder>>, Failure> {
        let keys: BTreeSet<(String, Uuid)> = fresh
            .iter()
            .flat_map(|r| {
                r.covered
                    .iter()
                    .map(|c| (r.event.tenant_id.clone(), c.invoice_id))
            })
            .collect();
        if keys.is_empty() {
            return Ok(vec![None; fresh.len()]);
        }
        let keys: Vec<_> = keys.into_iter().collect();
        let invoices = store::invoices_among(&self.pool, &keys).await.map_err(database)?;
        let mut rechecked = Vec::with_capacity(fresh.len());
        for reminder in fresh {
            if !reminder.is_statement() {
                rechecked.push(None);
                continue;
            }
            let tenant_id = &reminder.event.tenant_id;
            let view: HashMap<Uuid, pb::Invoice> = reminder
                .covered
                .iter()
                .filter_map(|c| {
                    let latest = invoices.get(&(tenant_id.clone(), c.invoice_id))?;
                    Some((c.invoice_id, latest.clone()))
                })
                .collect();
            let (kept, left_out) = recheck::recheck(&reminder.covered, &view);
            for (covered, why) in &left_out {
                let mut delivery = self.blank_delivery(reminder, now);
                delivery.reminder_id = covered.reminder_id;
                delivery.invoice_id = Some(covered.invoice_id);
                delivery.covered = Vec::new();
                let verdict = record_outcome(
                    &mut delivery,
                    ledger_suppressed(why.rule(), why.reason(covered.invoice_id)),
                );
                recorded.push(store::Recorded {
                    delivery,
                    verdict,
                    traceparent: reminder.traceparent.clone(),
                });
            }
            if !left_out.is_empty() {
                tracing::info!(reminder_id = %reminder.reminder_id, left_out = left_out.len(), kept = kept.len(), "statement re-checked: invoices no longer owed left out");
            }
            if kept.is_empty() {
                let mut delivery = self.blank_delivery(reminder, now);
                delivery.covered = Vec::new();
                let verdict = record_outcome(
                    &mut delivery,
                    ledger_suppressed(
                        "invoices-settled",
                        "no invoice it covered is still owed: nothing to send".into(),
                    ),
                );
                recorded.push(store::Recorded {
                    delivery,
                    verdict,
                    traceparent: reminder.traceparent.clone(),
                });
            }
            let mut statement = (*reminder).clone();
            statement.covered = kept;
            rechecked.push(Some(statement));
        }
        Ok(rechecked)
    }

    /// Reads what the view says about the batch's debtors, their tenants and their points.
    async fn known(&self, fresh: &[&Reminder]) -> Result<Known, Failure> {
        let debtors: BTreeSet<(String, Uuid)> = fresh
            .iter()
            .map(|r| (r.event.tenant_id.clone(), r.debtor_id))
            .collect();
        let debtors: Vec<_> = debtors.into_iter().collect();
        let records = store::debtors_among(&self.pool, &debtors)
            .await
            .map_err(database)?;
        let tenants: BTreeSet<String> = debtors.iter().map(|(tenant, _)| tenant.clone()).collect();
        let tenants: Vec<String> = tenants.into_iter().collect();
        let roles = store::tenant_roles(&self.pool, &tenants)
            .await
            .map_err(database)?;
        let mut points = Vec::new();
        let mut phones = Vec::new();
        for ((tenant, _), record) in &records {
            for point in record.contacts.iter().flat_map(|c| &c.points) {
                if let Ok(id) = Uuid::parse_str(&point.point_id) {
                    points.push((tenant.clone(), id));
                }
                if let Ok(channel) = Channel::try_from(point.channel())
                    && channel.uses_phone()
                {
                    phones.push((
                        channel.as_str().to_string(),
                        self.providers.sender(channel).to_string(),
                        point.address.clone(),
                    ));
                }
            }
        }
        let withdrawals = store::withdrawals_among(&self.pool, &points)
            .await
            .map_err(database)?;
        let sender_opt_outs = store::sender_opt_outs_among(&self.pool, &phones)
            .await
            .map_err(database)?;
        Ok(Known {
            records,
            roles,
            withdrawals,
            sender_opt_outs,
        })
    }

    /// A debtor whose contact budget Redis does not hold (it lost its data, or never had it)
    /// gets it back from the delivery records before anything is reserved for them: the law
    /// does not reset with Redis. One Redis round trip when every budget is known.
    async fn restore_budgets(&self, known: &Known, now: DateTime<Utc>) -> Result<(), Failure> {
        let debtors: Vec<Uuid> = known.records.keys().map(|(_, debtor_id)| *debtor_id).collect();
        let unknown = self
            .budget
            .unknown_among(&debtors)
            .await
            .map_err(budget_unavailable)?;
        if unknown.is_empty() {
            return Ok(());
        }
        let unknown: Vec<(String, Uuid)> = known
            .records
            .keys()
            .filter(|(_, debtor_id)| unknown.contains(debtor_id))
            .cloned()
            .collect();
        let contacts = store::contacts_since(&self.pool, &unknown, now - RESERVATION_TTL)
            .await
            .map_err(database)?;
        // Without a past contact there is nothing to rebuild: marked known together, in one
        // round trip (one per debtor made this the slowest part of a batch of new debtors).
        let mut without_contacts = Vec::new();
        for key in &unknown {
            let (tenant_id, debtor_id) = key;
            let Some(debtor) = known.records.get(key).and_then(|record| record.debtor.as_ref()) else {
                continue;
            };
            // A record without a valid zone is never sent to (see `deliver_one`).
            let Ok(zone) = debtor.time_zone.parse() else {
                continue;
            };
            let past = contacts.get(debtor_id).map(Vec::as_slice).unwrap_or_default();
            if past.is_empty() {
                without_contacts.push(*debtor_id);
                continue;
            }
            let rules = self
                .rulebook
                .for_debtor(tenant_id, &debtor.country, Some(debtor.region.as_str()));
            self.budget
                .restore(&rules, *debtor_id, zone, past, now)
                .await
                .map_err(budget_unavailable)?;
            tracing::info!(%debtor_id, contacts = past.len(), "contact budget restored from the delivery records");
        }
        self.budget
            .mark_known(&without_contacts, now)
            .await
            .map_err(budget_unavailable)
    }

    /// One debtor's reminders, in order.
    async fn deliver_chain(
        &self,
        chain: Vec<&Reminder>,
        known: &Known,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Vec<Result<store::Recorded, Failure>> {
        let mut outcomes = Vec::with_capacity(chain.len());
        for reminder in chain {
            outcomes.push(self.deliver_one(reminder, known, wordings, now).await);
        }
        outcomes
    }

    /// One reminder: the ledger's and the rules' decision, and the provider's answer when it
    /// may go out.
    async fn deliver_one(
        &self,
        reminder: &Reminder,
        known: &Known,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<store::Recorded, Failure> {
        let mut delivery = self.blank_delivery(reminder, now);
        let tenant_id = reminder.event.tenant_id.as_str();
        let outcome = match known.records.get(&(tenant_id.to_string(), reminder.debtor_id)) {
            None => ledger_suppressed(
                "ledger",
                format!(
                    "debtor {} is not in the ledger (as channels last heard from accounts)",
                    reminder.debtor_id
                ),
            ),
            Some(record) => match record.debtor.as_ref().map(|d| (d, d.time_zone.parse())) {
                Some((debtor, Ok(zone))) => {
                    let addressed = reminder.with_ledger(debtor, zone);
                    self.deliver_addressed(&addressed, known, record, &mut delivery, wordings, now)
                        .await?
                }
                // The view refuses such records; one written by an older version is reported.
                _ => Outcome::Failed(format!(
                    "the ledger's record of debtor {} has no valid time zone",
                    reminder.debtor_id
                )),
            },
        };
        let verdict = record_outcome(&mut delivery, outcome);
        tracing::debug!(reminder_id = %delivery.reminder_id, status = ?delivery.status, reason = %delivery.reason, "reminder handled");
        Ok(store::Recorded {
            delivery,
            verdict,
            traceparent: reminder.traceparent.clone(),
        })
    }

    /// A reminder whose debtor the ledger knows: a legal hold and the tenant's role first.
    async fn deliver_addressed(
        &self,
        reminder: &Reminder,
        known: &Known,
        record: &pb::DebtorChanged,
        delivery: &mut Delivery,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Failure> {
        if let Some(verdict) = recipient::under_hold(record) {
            return Ok(Outcome::Ruled(verdict));
        }
        let tenant_id = reminder.event.tenant_id.as_str();
        let role = match known.roles.get(tenant_id).map(|role| role.parse::<Role>()) {
            Some(Ok(role)) => role,
            _ => {
                return Ok(ledger_suppressed(
                    "tenant-role",
                    format!("tenant {tenant_id}'s role (creditor or agency) is not known to channels"),
                ));
            }
        };
        let debtor = &reminder.debtor;
        let rules = self
            .rulebook
            .for_debtor(tenant_id, &debtor.country, Some(debtor.region.as_str()));
        let withdrawn_here =
            |point_id: Uuid| known.withdrawals.get(&(tenant_id.to_string(), point_id)).cloned();
        let view = recipient::DebtorView {
            record,
            withdrawn_here: &withdrawn_here,
        };
        let facts = Facts {
            rules: &rules,
            view: &view,
            role,
            sender_opt_outs: &known.sender_opt_outs,
        };
        self.deliver_with_fallbacks(reminder, &facts, delivery, wordings, now)
            .await
    }

    fn blank_delivery(&self, reminder: &Reminder, now: DateTime<Utc>) -> Delivery {
        Delivery {
            reminder_id: reminder.reminder_id,
            tenant_id: reminder.event.tenant_id.clone(),
            debtor_id: reminder.debtor_id,
            invoice_id: reminder.invoice_id,
            channel: reminder.channel,
            provider: self.providers.name(reminder.channel).to_string(),
            recipient: String::new(),
            point_id: None,
            sender: String::new(),
            status: DeliveryStatus::Failed,
            reason: String::new(),
            provider_message_id: String::new(),
            subject: String::new(),
            body: String::new(),
            at: now,
            rule: String::new(),
            pack: String::new(),
            not_before: None,
            strategy_id: reminder.event.strategy_id.clone(),
            arm: reminder.event.arm.clone(),
            covered: reminder.covered.iter().map(|c| c.reminder_id).collect(),
        }
    }

    /// The step's channels in order: when a provider keeps failing, the next channel the debtor
    /// may be reached on is tried, under the same rules (and its own consent and caps).
    async fn deliver_with_fallbacks(
        &self,
        reminder: &Reminder,
        facts: &Facts<'_>,
        delivery: &mut Delivery,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Failure> {
        let mut current = reminder.clone();
        let mut fallbacks = reminder.fallbacks.iter();
        loop {
            let outcome = self
                .decide_and_send(&current, facts, delivery, wordings, now)
                .await?;
            let Outcome::GaveUp(reason) = outcome else {
                return Ok(outcome);
            };
            let next = loop {
                let Some(next) = fallbacks.next() else {
                    return Ok(Outcome::GaveUp(reason));
                };
                let candidate = current.on_fallback(next);
                if self.refusal(&candidate, facts).is_none() {
                    break next;
                }
            };
            // The reason stays in the delivery record: a provider's error text may name the recipient.
            tracing::info!(reminder_id = %current.reminder_id, from = %delivery.channel, to = %next.channel, "provider kept failing, trying the step's next channel");
            self.claims
                .reset_attempts(current.debtor_id, current.reminder_id)
                .await
                .map_err(budget_unavailable)?;
            current = current.on_fallback(next);
            delivery.channel = current.channel;
            delivery.provider = self.providers.name(current.channel).to_string();
        }
    }

    /// Whom the reminder goes to, or the rule that stops it before any wording or hour is
    /// considered: the provider's eligibility for the tenant's role, the packs' channels, the
    /// ledger's consent, and STOPs sent to our sender.
    fn refusal(&self, reminder: &Reminder, facts: &Facts<'_>) -> Option<Verdict> {
        let channel = reminder.channel;
        let provider = self.providers.name(channel);
        if let Some(refusal) =
            self.eligibility
                .refusal(provider, channel, facts.role, &reminder.debtor.country)
        {
            return Some(Verdict::Suppressed {
                rule: refusal.id.clone(),
                pack: refusal.label(),
                reason: format!(
                    "{provider} does not carry {channel} for {} tenants in {}: {}",
                    facts.role, reminder.debtor.country, refusal.source
                ),
            });
        }
        if let Some(verdict) = decision::channel_allowed(facts.rules, channel) {
            return Some(verdict);
        }
        let chosen = match recipient::choose(
            facts.view,
            channel,
            &reminder.event.contact_role,
            reminder.point_id,
        ) {
            Ok(chosen) => chosen,
            Err(verdict) => return Some(verdict),
        };
        let sender = self.providers.sender(channel);
        let stopped = facts.sender_opt_outs.get(&(
            channel.as_str().to_string(),
            sender.to_string(),
            chosen.address.clone(),
        ));
        stopped.map(|at| Verdict::Suppressed {
            rule: "sender-opt-out".into(),
            pack: "ledger".into(),
            reason: format!(
                "point {} sent STOP to our {channel} sender on {}: it holds for every tenant using that sender",
                chosen.point_id,
                at.date_naive()
            ),
        })
    }

    /// The rules in order (eligibility, channel, recipient, wording, hours, budget), then the
    /// send.
    async fn decide_and_send(
        &self,
        reminder: &Reminder,
        facts: &Facts<'_>,
        delivery: &mut Delivery,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Failure> {
        let channel = reminder.channel;
        let rules = facts.rules;
        if let Some(verdict) = self.refusal(reminder, facts) {
            return Ok(Outcome::Ruled(verdict));
        }
        // `refusal` found it: the same choice again, without its checks.
        let Ok(chosen) = recipient::choose(
            facts.view,
            channel,
            &reminder.event.contact_role,
            reminder.point_id,
        ) else {
            return Ok(Outcome::Failed("the recipient changed while deciding".into()));
        };
        let to = chosen.address.as_str();
        delivery.recipient = chosen.address.clone();
        delivery.point_id = Some(chosen.point_id);
        delivery.sender = self.providers.sender(channel).to_string();
        let composed = if reminder.is_statement() {
            compose::render_statement(reminder, rules, &self.payment_links, wordings, now)
        } else {
            self.compose_one(reminder, rules, to, wordings, now).await?
        };
        let (template, variables, rendered) = match composed {
            Ok(composed) => composed,
            Err(reason) => return Ok(Outcome::Failed(reason)),
        };
        delivery.subject = rendered.subject;
        delivery.body = rendered.body;

        if let Some(verdict) = decision::at_this_hour(rules, reminder.time_zone, now) {
            return Ok(Outcome::Ruled(verdict));
        }
        let deciding = std::time::Instant::now();
        let decision = self
            .budget
            .reserve(
                rules,
                reminder.debtor_id,
                reminder.reminder_id,
                channel,
                reminder.time_zone,
                now,
            )
            .await
            .map_err(budget_unavailable)?;
        recobro_common::metrics::metrics()
            .budget_seconds
            .get_or_create(&Vec::new())
            .observe(deciding.elapsed().as_secs_f64());
        match decision {
            Decision::Allowed => {}
            Decision::Full(full) => {
                return Ok(Outcome::Ruled(decision::budget_full(
                    rules,
                    full,
                    reminder.time_zone,
                )));
            }
            Decision::Unknown => {
                // Redis lost its data since this batch restored the budget: fail closed, the
                // retry restores it again.
                return Err(Failure::Retry(format!(
                    "debtor {}'s contact budget is not in Redis yet",
                    reminder.debtor_id
                )));
            }
        }

        // Exactly one send per reminder, even across crashes and rebalances.
        let (debtor_id, reminder_id) = (reminder.debtor_id, reminder.reminder_id);
        let claim = self
            .claims
            .claim(debtor_id, reminder_id)
            .await
            .map_err(budget_unavailable)?;
        let sent = match claim {
            SendClaim::Sent(provider_id) => {
                tracing::info!("already accepted by the provider before a crash: recorded, not sent again");
                Ok(provider_id)
            }
            SendClaim::Busy => {
                return Err(Failure::Retry("another worker is sending this reminder".into()));
            }
            SendClaim::Unknown { since } => {
                recobro_common::metrics::metrics()
                    .outcome_unknown
                    .get_or_create(&recobro_common::metrics::label(
                        "provider",
                        delivery.provider.clone(),
                    ))
                    .inc();
                // It may well have reached the debtor: its contact budget stays spent.
                return Ok(Outcome::Failed(format!(
                    "{}: a worker stopped while {} was being called (since {}); \
                     not sent again so the debtor never gets it twice, check the provider's log",
                    store::OUTCOME_UNKNOWN,
                    delivery.provider,
                    since.to_rfc3339()
                )));
            }
            SendClaim::Mine(token) => {
                let message = Composed {
                    reminder_id,
                    point_id: chosen.point_id,
                    to,
                    subject: &delivery.subject,
                    body: &delivery.body,
                    template,
                    locale: &reminder.debtor.locale,
                    variables: &variables,
                };
                self.send_in_turn(channel, debtor_id, &message, &token).await?
            }
        };
        match sent {
            Ok(provider_message_id) => Ok(Outcome::Sent {
                provider_message_id,
                packs: rules
                    .packs()
                    .iter()
                    .map(|p| p.label())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            Err(ProviderError::Permanent(reason)) => {
                // It never reached the debtor: it must not count against their budget.
                self.budget
                    .release(debtor_id, reminder_id)
                    .await
                    .map_err(budget_unavailable)?;
                Ok(Outcome::Failed(reason))
            }
            Err(ProviderError::Transient(reason)) => {
                let attempts = self
                    .claims
                    .attempt(debtor_id, reminder_id)
                    .await
                    .map_err(budget_unavailable)?;
                if attempts < self.max_attempts {
                    // The reservation stays: the retry finds it and does not count twice.
                    return Err(Failure::Retry(reason));
                }
                self.budget
                    .release(debtor_id, reminder_id)
                    .await
                    .map_err(budget_unavailable)?;
                Ok(Outcome::GaveUp(format!(
                    "gave up after {attempts} attempts: {reason}"
                )))
            }
        }
    }

    /// One invoice's message (a template) or one-off free-form text (WhatsApp only inside the
    /// 24 hours the debtor opened): the template it used ("" for free-form text), its
    /// variables and the rendered message, or why it cannot go.
    async fn compose_one<'r>(
        &self,
        reminder: &'r Reminder,
        rules: &Applied<'_>,
        to: &str,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<Result<(&'r str, compose::Variables, Rendered), String>, Failure> {
        let variables = compose::variables(reminder, rules, &self.payment_links);
        if !compose::is_free_form(reminder) {
            return Ok(compose::render_template(reminder, &variables, wordings)
                .map(|rendered| (reminder.event.template_id.as_str(), variables, rendered)));
        }
        let channel = reminder.channel;
        let last_inbound = match channel {
            Channel::Whatsapp => {
                let event = &reminder.event;
                store::last_inbound(&self.pool, &event.tenant_id, reminder.debtor_id, channel, to)
                    .await
                    .map_err(database)?
            }
            Channel::Email | Channel::Sms => None,
        };
        if let Err(reason) = decision::free_form_allowed(channel, last_inbound, now) {
            return Ok(Err(reason));
        }
        let rendered = compose::free_form(reminder, &variables);
        Ok(Ok(("", variables, rendered)))
    }

    /// The provider call, in this worker's turn, bracketed by the send claim: "calling" right
    /// before (for a provider outside this process), "sent" right after. The turn ends once
    /// the mark is queued; marks and call starts go to Redis in order, so a call's start is
    /// acknowledged only after the previous call's mark is in.
    async fn send_in_turn(
        &self,
        channel: Channel,
        debtor_id: Uuid,
        message: &Composed<'_>,
        token: &str,
    ) -> Result<Result<String, ProviderError>, Failure> {
        let reminder_id = message.reminder_id;
        let turn = self
            .provider_turns
            .acquire()
            .await
            .map_err(|_| Failure::Retry("shutting down".into()))?;
        if self.providers.leaves_the_process(channel)
            && !self
                .claims
                .begin_call(debtor_id, reminder_id, token)
                .await
                .map_err(budget_unavailable)?
        {
            return Err(Failure::Retry(
                "another worker holds or has sent this reminder".into(),
            ));
        }
        let calling = std::time::Instant::now();
        let sent = self.providers.send(channel, message).await;
        recobro_common::metrics::metrics()
            .provider_seconds
            .get_or_create(&recobro_common::metrics::label(
                "provider",
                self.providers.name(channel),
            ))
            .observe(calling.elapsed().as_secs_f64());
        if sent.is_ok() {
            let sends = self.sends.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if self.exit_after_sends.is_some_and(|limit| sends >= limit) {
                // Failpoint for the crash test: die like a killed pod at the worst moment,
                // when the provider has accepted and nothing is marked, recorded or committed.
                tracing::error!("failpoint: exiting right after a provider accepted, as a crash would");
                std::process::exit(137);
            }
        }
        match &sent {
            Ok(provider_id) => {
                let marked = self.claims.mark_sent(debtor_id, reminder_id, provider_id);
                drop(turn);
                // The provider took it: a mark that cannot be written must not turn that into
                // a failure. The delivery record, written next, keeps it from going again.
                if let Err(err) = marked.await {
                    tracing::warn!(%reminder_id, error = %err, "sent, but the sent mark was not written");
                }
            }
            Err(_) => {
                drop(turn);
                self.claims
                    .unclaim(debtor_id, reminder_id, token)
                    .await
                    .map_err(budget_unavailable)?;
            }
        }
        Ok(sent)
    }
}

/// Writes an outcome into the delivery; returns the rules' verdict for the audit, if any.
fn record_outcome(delivery: &mut Delivery, outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Ruled(verdict) => {
            let name = verdict.as_str();
            match verdict {
                Verdict::Deferred {
                    until,
                    rule,
                    pack,
                    reason,
                } => {
                    delivery.status = DeliveryStatus::Deferred;
                    delivery.not_before = Some(until);
                    delivery.reason = reason;
                    delivery.rule = rule;
                    delivery.pack = pack;
                }
                Verdict::Suppressed { rule, pack, reason } => {
                    delivery.status = DeliveryStatus::Suppressed;
                    delivery.reason = reason;
                    delivery.rule = rule;
                    delivery.pack = pack;
                }
            }
            Some(name)
        }
        Outcome::Sent {
            provider_message_id,
            packs,
        } => {
            delivery.status = DeliveryStatus::Sent;
            delivery.provider_message_id = provider_message_id;
            delivery.rule = "all".into();
            delivery.pack = packs;
            Some("allowed")
        }
        Outcome::Failed(reason) | Outcome::GaveUp(reason) => {
            delivery.status = DeliveryStatus::Failed;
            delivery.reason = reason;
            None
        }
    }
}
