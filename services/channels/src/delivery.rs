//! Delivery of `ReminderDue` events: decide by the debtor's contact rules (opt-outs, channels
//! the law allows, hours and holidays, the contact budget), render, send, record. A contact not
//! allowed now is deferred to the earliest moment it would be, never dropped.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::StreamExt as _;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{self, BatchHandler, Failure};
use recobro_common::rules::{Applied, Closed, Rulebook};
use recobro_common::{channel_name, time};
use recobro_proto::v1::{self as pb, DeliveryStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::budget::{ContactBudget, Decision, SendClaim};
use crate::provider::{EmailProvider, OutgoingEmail, OutgoingText, ProviderError, TextProvider};
use crate::store::{self, Delivery};
use crate::templates::{self, Wordings};

/// WhatsApp's customer-service window, less a margin for the webhook that told us of the
/// debtor's message arriving late.
const WHATSAPP_WINDOW: chrono::Duration = chrono::Duration::minutes(24 * 60 - 10);

pub struct Dispatcher {
    pub pool: PgPool,
    pub budget: ContactBudget,
    pub rulebook: Rulebook,
    pub email: EmailProvider,
    pub sms: TextProvider,
    pub whatsapp: TextProvider,
    pub deliveries_topic: String,
    pub payment_link_base: String,
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

/// A message ready for its provider: rendered, addressed, allowed by the rules.
#[derive(Clone, Copy)]
struct Composed<'a> {
    reminder: &'a Reminder,
    channel: &'a str,
    delivery: &'a Delivery,
    variables: &'a HashMap<&'static str, String>,
    to: &'a str,
    free_form: bool,
}

/// A reminder with the fields delivery relies on checked.
#[derive(Clone)]
pub struct Reminder {
    /// The W3C trace the reminder arrived in: its delivery record continues it.
    traceparent: Option<String>,
    reminder_id: Uuid,
    debtor_id: Uuid,
    invoice_id: Option<Uuid>,
    time_zone: Tz,
    debtor: pb::Debtor,
    event: pb::ReminderDue,
}

pub fn parse(event: pb::ReminderDue) -> Result<Reminder, String> {
    let reminder_id = Uuid::parse_str(&event.reminder_id).map_err(|_| "reminder_id is not a UUID")?;
    let debtor_id = Uuid::parse_str(&event.debtor_id).map_err(|_| "debtor_id is not a UUID")?;
    let debtor = event.debtor.clone().ok_or("debtor is required")?;
    let time_zone = debtor
        .time_zone
        .parse()
        .map_err(|_| format!("debtor.time_zone {:?} is not an IANA zone", debtor.time_zone))?;
    if event.tenant_id.is_empty() {
        return Err("tenant_id is required".into());
    }
    Ok(Reminder {
        traceparent: None,
        reminder_id,
        debtor_id,
        invoice_id: Uuid::parse_str(&event.invoice_id).ok(),
        time_zone,
        debtor,
        event,
    })
}

impl BatchHandler for Dispatcher {
    async fn handle_batch(&self, messages: &[BorrowedMessage<'_>]) -> Result<Vec<(usize, String)>, String> {
        let mut rejected = Vec::new();
        let mut reminders = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let parsed = pb::ReminderDue::decode(message.payload().unwrap_or_default())
                .map_err(|err| format!("not a recobro.v1.ReminderDue: {err}"))
                .and_then(parse);
            match parsed {
                Ok(mut reminder) => {
                    reminder.traceparent = kafka::message_traceparent(message);
                    reminders.push(reminder);
                }
                Err(reason) => rejected.push((index, reason)),
            }
        }
        self.deliver_all(&reminders, Utc::now())
            .await
            .map_err(|failure| failure.to_string())?;
        Ok(rejected)
    }
}

/// What the rules and the provider made of one reminder.
enum Outcome {
    /// Final: delivered, failed or suppressed, with the rule decision behind it if any.
    Final {
        status: DeliveryStatus,
        reason: String,
        rule: String,
        pack: String,
        verdict: Option<&'static str>,
    },
    Deferred {
        until: DateTime<Utc>,
        rule: String,
        pack: String,
        reason: String,
    },
    /// The provider kept failing transiently: the step's next channel may be tried.
    GaveUp(String),
}

fn failed(reason: impl Into<String>) -> Outcome {
    Outcome::Final {
        status: DeliveryStatus::Failed,
        reason: reason.into(),
        rule: String::new(),
        pack: String::new(),
        verdict: None,
    }
}

fn suppressed(rule: &str, pack: String, reason: String) -> Outcome {
    Outcome::Final {
        status: DeliveryStatus::Suppressed,
        reason,
        rule: rule.to_string(),
        pack,
        verdict: Some("suppressed"),
    }
}

impl Dispatcher {
    /// A batch: the database is read and written a few statements at a time, and debtors are
    /// handled concurrently (one debtor's reminders in order, for their contact budget).
    /// Outcomes are committed before a retry is asked for, so only what failed is tried again.
    #[tracing::instrument(skip_all, fields(reminders = reminders.len()))]
    pub async fn deliver_all(&self, reminders: &[Reminder], now: DateTime<Utc>) -> Result<(), Failure> {
        let retry = |err: sqlx::Error| Failure::Retry(format!("database: {err}"));
        let ids: Vec<Uuid> = reminders.iter().map(|r| r.reminder_id).collect();
        let handled = store::delivered_among(&self.pool, &ids).await.map_err(retry)?;
        let fresh: Vec<&Reminder> = reminders
            .iter()
            .filter(|r| !handled.contains(&r.reminder_id))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let places: Vec<(String, Uuid, String, String, String)> = fresh
            .iter()
            .map(|r| {
                (
                    r.event.tenant_id.clone(),
                    r.debtor_id,
                    r.debtor.time_zone.clone(),
                    r.debtor.country.clone(),
                    r.debtor.region.clone(),
                )
            })
            .collect();
        store::remember_debtors(&self.pool, &places)
            .await
            .map_err(retry)?;
        let keys: Vec<(String, Uuid, String)> = fresh
            .iter()
            .map(|r| {
                (
                    r.event.tenant_id.clone(),
                    r.debtor_id,
                    channel_name(r.event.channel()).to_string(),
                )
            })
            .collect();
        let opted_out = store::opted_out_among(&self.pool, &keys).await.map_err(retry)?;
        let templates: std::collections::BTreeSet<(String, String)> = fresh
            .iter()
            .map(|r| (r.event.tenant_id.clone(), r.event.template_id.clone()))
            .collect();
        let templates: Vec<_> = templates.into_iter().collect();
        let wordings = store::wordings_among(&self.pool, &templates)
            .await
            .map_err(retry)?;

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
            .map(|chain| self.deliver_chain(chain, &opted_out, &wordings, now))
            .collect();
        let outcomes: Vec<Vec<Result<store::Recorded, Failure>>> = futures_util::stream::iter(chains)
            .buffer_unordered(self.debtors_at_once.max(1))
            .collect()
            .await;
        let mut recorded = Vec::new();
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
            .map_err(retry)?;
        match first_failure {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// One debtor's reminders, in order.
    async fn deliver_chain(
        &self,
        chain: Vec<&Reminder>,
        opted_out: &HashMap<(String, Uuid, String), DateTime<Utc>>,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Vec<Result<store::Recorded, Failure>> {
        let mut outcomes = Vec::with_capacity(chain.len());
        for reminder in chain {
            let key = (
                reminder.event.tenant_id.clone(),
                reminder.debtor_id,
                channel_name(reminder.event.channel()).to_string(),
            );
            let opted_out = opted_out.get(&key).copied();
            outcomes.push(self.decide_one(reminder, opted_out, wordings, now).await);
        }
        outcomes
    }

    /// One reminder: the rules' decision, and the provider's answer when it may go out.
    async fn decide_one(
        &self,
        reminder: &Reminder,
        opted_out: Option<DateTime<Utc>>,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<store::Recorded, Failure> {
        let channel = reminder.event.channel();
        let mut delivery = Delivery {
            reminder_id: reminder.reminder_id,
            tenant_id: reminder.event.tenant_id.clone(),
            debtor_id: reminder.debtor_id,
            invoice_id: reminder.invoice_id,
            channel: channel_name(channel).to_string(),
            provider: self.provider_name(channel).to_string(),
            recipient: String::new(),
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
        };
        let debtor = &reminder.debtor;
        let rules = self.rulebook.for_debtor(
            &reminder.event.tenant_id,
            &debtor.country,
            Some(debtor.region.as_str()),
        );
        let outcome = match opted_out {
            Some(at) => suppressed(
                "opt-out",
                String::new(),
                format!(
                    "the debtor opted out of {} on {}",
                    delivery.channel,
                    at.date_naive()
                ),
            ),
            None => {
                self.decide_with_fallbacks(reminder, &rules, &mut delivery, wordings, now)
                    .await?
            }
        };
        let verdict = match outcome {
            Outcome::Deferred {
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
                Some("deferred")
            }
            Outcome::GaveUp(reason) => {
                delivery.status = DeliveryStatus::Failed;
                delivery.reason = reason;
                None
            }
            Outcome::Final {
                status,
                reason,
                rule,
                pack,
                verdict,
            } => {
                delivery.status = status;
                delivery.reason = reason;
                delivery.rule = rule;
                delivery.pack = pack;
                verdict
            }
        };
        tracing::debug!(reminder_id = %delivery.reminder_id, status = ?delivery.status, reason = %delivery.reason, "reminder handled");
        Ok(store::Recorded {
            delivery,
            verdict,
            traceparent: reminder.traceparent.clone(),
        })
    }

    /// The step's channels in order: when a provider keeps failing, the next channel the debtor
    /// may be reached on is tried, under the same rules (and its own opt-outs and caps).
    async fn decide_with_fallbacks(
        &self,
        reminder: &Reminder,
        rules: &Applied<'_>,
        delivery: &mut Delivery,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Failure> {
        let mut current = reminder.clone();
        let mut fallbacks = reminder.event.fallbacks.clone().into_iter();
        loop {
            let outcome = self
                .decide_and_send(&current, rules, delivery, wordings, now)
                .await?;
            let Outcome::GaveUp(reason) = outcome else {
                return Ok(outcome);
            };
            let next = loop {
                let Some(next) = fallbacks.next() else {
                    return Ok(Outcome::GaveUp(reason));
                };
                let key = (
                    current.event.tenant_id.clone(),
                    current.debtor_id,
                    channel_name(next.channel()).to_string(),
                );
                let opted_out = store::opted_out_among(&self.pool, std::slice::from_ref(&key))
                    .await
                    .map_err(|err| Failure::Retry(format!("database: {err}")))?;
                if opted_out.is_empty() {
                    break next;
                }
            };
            tracing::info!(from = %delivery.channel, to = channel_name(next.channel()), %reason, "provider kept failing, trying the step's next channel");
            self.budget
                .reset_attempts(current.debtor_id, current.reminder_id)
                .await
                .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
            let channel = next.channel();
            current.event.channel = next.channel;
            current.event.recipient = next.recipient;
            current.event.contact_role = next.contact_role;
            delivery.channel = channel_name(channel).to_string();
            delivery.provider = self.provider_name(channel).to_string();
        }
    }

    async fn decide_and_send(
        &self,
        reminder: &Reminder,
        rules: &Applied<'_>,
        delivery: &mut Delivery,
        wordings: &Wordings,
        now: DateTime<Utc>,
    ) -> Result<Outcome, Failure> {
        let channel = delivery.channel.clone();
        if let Some(pack) = rules.channel_refused_by(&channel) {
            return Ok(suppressed(
                "channels",
                pack.label(),
                format!("{} does not allow collection by {channel}", pack.title),
            ));
        }
        // The contact scheduling chose for the step's role, else the debtor's primary address.
        let primary = if channel == "email" {
            &reminder.debtor.email
        } else {
            &reminder.debtor.phone
        };
        let to = if reminder.event.recipient.is_empty() {
            primary
        } else {
            &reminder.event.recipient
        };
        if to.is_empty() {
            return Ok(failed(format!("the debtor has no {channel} contact point")));
        }
        delivery.recipient = to.clone();
        let variables = self.variables(reminder, rules);
        let free_form = !reminder.event.text.is_empty();
        let rendered = if free_form {
            match self.free_form(reminder, &channel, to, &variables, now).await? {
                Ok(rendered) => rendered,
                Err(reason) => return Ok(failed(reason)),
            }
        } else {
            let event = &reminder.event;
            let locale = &reminder.debtor.locale;
            match templates::render_for(&event.tenant_id, &event.template_id, locale, &variables, wordings) {
                Ok(rendered) => rendered,
                Err(err) => return Ok(failed(format!("template: {err}"))),
            }
        };
        delivery.subject = rendered.subject;
        delivery.body = rendered.body;

        // Hours and holidays in the debtor's own time zone.
        let country = rules.country.label();
        match rules.next_open(now, reminder.time_zone) {
            None => {
                return Ok(suppressed(
                    "hours",
                    country,
                    "the rules allow no contact time within a year".into(),
                ));
            }
            Some((until, Some(closed))) if until > now => {
                let (rule, reason) = match closed {
                    Closed::Holiday { source } => (
                        "holiday",
                        format!("public holiday in the debtor's calendar ({source})"),
                    ),
                    Closed::Hours { source } => (
                        "hours",
                        format!("outside the allowed hours in {} ({source})", reminder.time_zone),
                    ),
                };
                return Ok(Outcome::Deferred {
                    until,
                    rule: rule.into(),
                    pack: country,
                    reason,
                });
            }
            Some(_) => {}
        }

        // The contact budget. Fail closed: without Redis nobody is contacted, and the reminder
        // waits for a retry.
        let decision = self
            .budget
            .reserve(
                rules,
                reminder.debtor_id,
                reminder.reminder_id,
                &channel,
                reminder.time_zone,
                now,
            )
            .await
            .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
        if let Decision::Full {
            pack,
            cap,
            window,
            max,
            room_at,
        } = decision
        {
            let Some((until, _)) = rules.next_open(room_at, reminder.time_zone) else {
                return Ok(suppressed(
                    &cap,
                    pack,
                    "the rules allow no contact time within a year".into(),
                ));
            };
            let reason = format!("contact budget: {max} per {window} already used");
            return Ok(Outcome::Deferred {
                until,
                rule: cap,
                pack,
                reason,
            });
        }

        // Exactly one send per reminder, even across crashes and rebalances.
        let (debtor_id, reminder_id) = (reminder.debtor_id, reminder.reminder_id);
        let claim = self
            .budget
            .claim_send(debtor_id, reminder_id)
            .await
            .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
        let sent = match claim {
            SendClaim::Sent(provider_id) => {
                tracing::info!("already accepted by the provider before a crash: recorded, not sent again");
                Ok(provider_id)
            }
            SendClaim::Busy => {
                return Err(Failure::Retry("another worker is sending this reminder".into()));
            }
            SendClaim::Unknown { since } => {
                // It may well have reached the debtor: its contact budget stays spent.
                return Ok(failed(format!(
                    "outcome unknown: a worker stopped while {} was being called (since {}); \
                     not sent again so the debtor never gets it twice, check the provider's log",
                    delivery.provider,
                    since.to_rfc3339()
                )));
            }
            SendClaim::Mine(token) => {
                let message = Composed {
                    reminder,
                    channel: &channel,
                    delivery,
                    variables: &variables,
                    to,
                    free_form,
                };
                self.send_in_turn(&message, &token).await?
            }
        };
        match sent {
            Ok(message_id) => {
                delivery.provider_message_id = message_id;
                let packs = rules
                    .packs()
                    .iter()
                    .map(|p| p.label())
                    .collect::<Vec<_>>()
                    .join(", ");
                Ok(Outcome::Final {
                    status: DeliveryStatus::Sent,
                    reason: String::new(),
                    rule: "all".into(),
                    pack: packs,
                    verdict: Some("allowed"),
                })
            }
            Err(ProviderError::Permanent(reason)) => {
                // It never reached the debtor: it must not count against their budget.
                self.budget
                    .release(reminder.debtor_id, reminder.reminder_id)
                    .await
                    .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
                Ok(failed(reason))
            }
            // The reservation stays: the retry finds it and does not count twice.
            Err(ProviderError::Transient(reason)) => {
                let attempts = self
                    .budget
                    .attempt(reminder.debtor_id, reminder.reminder_id)
                    .await
                    .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
                if attempts < self.max_attempts {
                    // The reservation stays: the retry finds it and does not count twice.
                    return Err(Failure::Retry(reason));
                }
                self.budget
                    .release(reminder.debtor_id, reminder.reminder_id)
                    .await
                    .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
                Ok(Outcome::GaveUp(format!(
                    "gave up after {attempts} attempts: {reason}"
                )))
            }
        }
    }

    /// The provider call, in this worker's turn, bracketed by the send claim: "calling" right
    /// before (for a provider outside this process), "sent" right after. The turn ends once
    /// the mark is queued; marks and call starts go to Redis in order, so a call's start is
    /// acknowledged only after the previous call's mark is in.
    async fn send_in_turn(
        &self,
        message: &Composed<'_>,
        token: &str,
    ) -> Result<Result<String, ProviderError>, Failure> {
        let (debtor_id, reminder_id) = (message.reminder.debtor_id, message.reminder.reminder_id);
        let unavailable =
            |err: redis::RedisError| Failure::Retry(format!("contact budget unavailable: {err}"));
        let turn = self
            .provider_turns
            .acquire()
            .await
            .map_err(|_| Failure::Retry("shutting down".into()))?;
        let leaves_the_process = match message.channel {
            "sms" => self.sms.leaves_the_process(),
            "whatsapp" => self.whatsapp.leaves_the_process(),
            _ => self.email.leaves_the_process(),
        };
        if leaves_the_process
            && !self
                .budget
                .begin_call(debtor_id, reminder_id, token)
                .await
                .map_err(unavailable)?
        {
            return Err(Failure::Retry(
                "another worker holds or has sent this reminder".into(),
            ));
        }
        let sent = self.call_provider(message).await;
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
                let marked = self.budget.mark_sent(debtor_id, reminder_id, provider_id);
                drop(turn);
                // The provider took it: a mark that cannot be written must not turn that into
                // a failure. The delivery record, written next, keeps it from going again.
                if let Err(err) = marked.await {
                    tracing::warn!(%reminder_id, error = %err, "sent, but the sent mark was not written");
                }
            }
            Err(_) => {
                drop(turn);
                self.budget
                    .unclaim_send(debtor_id, reminder_id, token)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(sent)
    }

    async fn call_provider(&self, message: &Composed<'_>) -> Result<String, ProviderError> {
        let Composed {
            reminder,
            channel,
            delivery,
            variables,
            to,
            free_form,
        } = *message;
        if channel == "email" {
            let email = OutgoingEmail {
                reminder_id: reminder.reminder_id,
                to,
                subject: &delivery.subject,
                body: &delivery.body,
            };
            return self.email.send(&email).await;
        }
        // SMS carries the subject, the link and the opt-out; WhatsApp the approved template.
        // Free-form text goes as it is (with its opt-out line).
        let text = if free_form {
            delivery.body.clone()
        } else {
            format!(
                "{}. {} {}",
                delivery.subject,
                variables.get("payment_link").cloned().unwrap_or_default(),
                variables.get("opt_out").cloned().unwrap_or_default()
            )
        };
        let parameters = [
            "debtor_name",
            "invoice_number",
            "amount",
            "due_date",
            "payment_link",
        ]
        .iter()
        .map(|name| variables.get(name).cloned().unwrap_or_default())
        .collect();
        let message = OutgoingText {
            reminder_id: reminder.reminder_id,
            to,
            text: &text,
            template: if free_form {
                ""
            } else {
                &reminder.event.template_id
            },
            language: match templates::language(&reminder.debtor.locale) {
                "pt" => "pt_BR",
                other => other,
            },
            parameters,
        };
        let provider = if channel == "sms" {
            &self.sms
        } else {
            &self.whatsapp
        };
        provider.send(&message).await
    }

    /// A one-off free-form message: by SMS, or by WhatsApp only inside the 24 hours after that
    /// number last wrote to us (Meta refuses it otherwise). `Ok(Err(reason))` when it
    /// may not go.
    async fn free_form(
        &self,
        reminder: &Reminder,
        channel: &str,
        to: &str,
        variables: &HashMap<&'static str, String>,
        now: DateTime<Utc>,
    ) -> Result<Result<templates::Rendered, String>, Failure> {
        if channel == "email" {
            return Ok(Err(
                "free-form text goes by SMS or WhatsApp; email uses templates".into(),
            ));
        }
        if channel == "whatsapp" {
            let event = &reminder.event;
            let last = store::last_inbound(&self.pool, &event.tenant_id, reminder.debtor_id, channel, to)
                .await
                .map_err(|err| Failure::Retry(format!("database: {err}")))?;
            if last.is_none_or(|at| now - at > WHATSAPP_WINDOW) {
                let since = last.map_or("never".to_string(), |at| format!("last on {}", at.to_rfc3339()));
                return Ok(Err(format!(
                    "outside WhatsApp's 24-hour customer-service window ({to} wrote {since}): \
                     free-form text is not allowed, use a template"
                )));
            }
        }
        let opt_out = variables.get("opt_out").map(String::as_str).unwrap_or_default();
        Ok(Ok(templates::Rendered {
            subject: String::new(),
            body: format!("{}\n\n{opt_out}", reminder.event.text.trim())
                .trim_end()
                .to_string(),
        }))
    }

    fn provider_name(&self, channel: pb::Channel) -> &'static str {
        match channel {
            pb::Channel::Sms => self.sms.name(),
            pb::Channel::Whatsapp => self.whatsapp.name(),
            _ => self.email.name(),
        }
    }

    fn variables(&self, reminder: &Reminder, rules: &Applied<'_>) -> HashMap<&'static str, String> {
        let debtor = &reminder.debtor;
        let invoice = reminder.event.invoice.clone().unwrap_or_default();
        let mut variables = HashMap::from([
            ("debtor_name", debtor.name.clone()),
            ("invoice_number", invoice.number),
            (
                "payment_link",
                format!("{}{}", self.payment_link_base, invoice.invoice_id),
            ),
        ]);
        // An instalment's own amount; else what is still owed, after partial payments and credit
        // notes, is what the debtor reads.
        if let Some(text) = reminder
            .event
            .amount_due
            .as_ref()
            .or(invoice.outstanding.as_ref().filter(|owed| owed.amount_minor > 0))
            .or(invoice.amount.as_ref())
            .and_then(|amount| templates::format_money(amount.amount_minor, &amount.currency, &debtor.locale))
        {
            variables.insert("amount", text);
        }
        if let Some(due) = reminder
            .event
            .due_date
            .as_ref()
            .or(invoice.due_date.as_ref())
            .and_then(time::from_date)
        {
            variables.insert("due_date", templates::format_date(due, &debtor.locale));
        }
        if let Some(sentence) = rules.opt_out_sentence(templates::language(&debtor.locale)) {
            variables.insert("opt_out", sentence.to_string());
        }
        variables
    }
}
