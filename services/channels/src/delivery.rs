//! Delivery of `ReminderDue` events: re-check the contact budget, render, send, record.

use std::collections::HashMap;

use chrono::Utc;
use chrono_tz::Tz;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use recobro_common::kafka::{Failure, Handler};
use recobro_common::{channel_name, time};
use recobro_proto::v1::{self as pb, DeliveryStatus};
use sqlx::PgPool;
use uuid::Uuid;

use crate::budget::{ContactBudget, Decision};
use crate::provider::{EmailProvider, OutgoingEmail, ProviderError};
use crate::store::{self, Delivery};
use crate::templates;

pub struct Dispatcher {
    pub pool: PgPool,
    pub budget: ContactBudget,
    pub email: EmailProvider,
    pub deliveries_topic: String,
    pub payment_link_base: String,
}

/// A reminder with the fields delivery relies on checked.
struct Reminder {
    reminder_id: Uuid,
    debtor_id: Uuid,
    invoice_id: Option<Uuid>,
    time_zone: Tz,
    event: pb::ReminderDue,
}

fn parse(event: pb::ReminderDue) -> Result<Reminder, String> {
    let reminder_id = Uuid::parse_str(&event.reminder_id).map_err(|_| "reminder_id is not a UUID")?;
    let debtor_id = Uuid::parse_str(&event.debtor_id).map_err(|_| "debtor_id is not a UUID")?;
    let debtor = event.debtor.as_ref().ok_or("debtor is required")?;
    let time_zone = debtor
        .time_zone
        .parse()
        .map_err(|_| format!("debtor.time_zone {:?} is not an IANA zone", debtor.time_zone))?;
    if event.tenant_id.is_empty() {
        return Err("tenant_id is required".into());
    }
    Ok(Reminder {
        reminder_id,
        debtor_id,
        invoice_id: Uuid::parse_str(&event.invoice_id).ok(),
        time_zone,
        event,
    })
}

impl Handler for Dispatcher {
    async fn handle(&self, message: &BorrowedMessage<'_>) -> Result<(), Failure> {
        let event = pb::ReminderDue::decode(message.payload().unwrap_or_default())
            .map_err(|err| Failure::Reject(format!("not a recobro.v1.ReminderDue: {err}")))?;
        let reminder = parse(event).map_err(Failure::Reject)?;
        self.deliver(&reminder).await
    }
}

impl Dispatcher {
    #[tracing::instrument(skip_all, fields(tenant_id = %reminder.event.tenant_id, debtor_id = %reminder.debtor_id, reminder_id = %reminder.reminder_id))]
    async fn deliver(&self, reminder: &Reminder) -> Result<(), Failure> {
        let retry = |err: sqlx::Error| Failure::Retry(format!("database: {err}"));
        if store::delivered_before(&self.pool, reminder.reminder_id)
            .await
            .map_err(retry)?
        {
            tracing::info!("reminder already handled, not sending again");
            return Ok(());
        }
        let channel = reminder.event.channel();
        let mut outcome = Delivery {
            reminder_id: reminder.reminder_id,
            tenant_id: reminder.event.tenant_id.clone(),
            debtor_id: reminder.debtor_id,
            invoice_id: reminder.invoice_id,
            channel: channel_name(channel).to_string(),
            provider: self.email.name().to_string(),
            status: DeliveryStatus::Failed,
            reason: String::new(),
            provider_message_id: String::new(),
            subject: String::new(),
            body: String::new(),
            at: Utc::now(),
        };
        let debtor = reminder.event.debtor.clone().unwrap_or_default();
        if channel != pb::Channel::Email {
            outcome.reason = format!("no {} provider is configured", channel_name(channel));
        } else if debtor.email.is_empty() {
            outcome.reason = "the debtor has no email contact point".into();
        } else {
            match templates::render(
                &reminder.event.template_id,
                &debtor.locale,
                &self.variables(reminder),
            ) {
                Err(err) => outcome.reason = format!("template: {err}"),
                Ok(rendered) => {
                    outcome.subject = rendered.subject;
                    outcome.body = rendered.body;
                    self.send(reminder, &debtor.email, &mut outcome).await?;
                }
            }
        }
        store::record_delivery(&self.pool, &outcome, &self.deliveries_topic)
            .await
            .map_err(retry)?;
        tracing::info!(status = ?outcome.status, reason = %outcome.reason, "reminder handled");
        Ok(())
    }

    /// Reserves the contact budget and calls the provider; fills in the outcome.
    async fn send(&self, reminder: &Reminder, to: &str, outcome: &mut Delivery) -> Result<(), Failure> {
        // Fail closed: without Redis nobody is contacted, and the reminder waits for a retry.
        let decision = self
            .budget
            .reserve(
                reminder.debtor_id,
                reminder.reminder_id,
                reminder.time_zone,
                Utc::now(),
            )
            .await
            .map_err(|err| Failure::Retry(format!("contact budget unavailable: {err}")))?;
        if let Decision::Exhausted { local_day } = decision {
            outcome.status = DeliveryStatus::Suppressed;
            outcome.reason = format!(
                "contact budget: {} contact(s) per local day already used on {local_day}",
                self.budget.daily_cap
            );
            return Ok(());
        }
        let email = OutgoingEmail {
            reminder_id: reminder.reminder_id,
            to,
            subject: &outcome.subject,
            body: &outcome.body,
        };
        match self.email.send(&email).await {
            Ok(message_id) => {
                outcome.status = DeliveryStatus::Sent;
                outcome.provider_message_id = message_id;
                Ok(())
            }
            Err(ProviderError::Permanent(reason)) => {
                outcome.reason = reason;
                Ok(())
            }
            Err(ProviderError::Transient(reason)) => Err(Failure::Retry(reason)),
        }
    }

    fn variables(&self, reminder: &Reminder) -> HashMap<&'static str, String> {
        let debtor = reminder.event.debtor.clone().unwrap_or_default();
        let invoice = reminder.event.invoice.clone().unwrap_or_default();
        let mut variables = HashMap::from([
            ("debtor_name", debtor.name),
            ("invoice_number", invoice.number),
            (
                "payment_link",
                format!("{}{}", self.payment_link_base, invoice.invoice_id),
            ),
        ]);
        if let Some(text) = invoice
            .amount
            .as_ref()
            .and_then(|amount| templates::format_money(amount.amount_minor, &amount.currency, &debtor.locale))
        {
            variables.insert("amount", text);
        }
        if let Some(due) = invoice.due_date.as_ref().and_then(time::from_date) {
            variables.insert("due_date", templates::format_date(due, &debtor.locale));
        }
        variables
    }
}
