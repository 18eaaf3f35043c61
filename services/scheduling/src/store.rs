//! SQL for invoices as scheduling sees them and their reminders (the durable timers).

use chrono::{DateTime, Utc};
use prost::Message as _;
use recobro_common::db::decoded;
use recobro_rules::Channel;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::change::Change;
use crate::ladder::Planned;
use crate::statement;
use crate::stored::{self, InvoiceState, ReminderAction, ReminderState};
use crate::strategy::{Action, Strategy};

/// The id a reminder keeps for life: the same (invoice, step) always gives the same id.
pub fn reminder_id(invoice_id: Uuid, step: &str) -> Uuid {
    Uuid::new_v5(&invoice_id, step.as_bytes())
}

/// A column's text that is not a value it may hold: reported, never guessed at.
fn decoded_channels(column: &str, names: &[String]) -> Result<Vec<Channel>, sqlx::Error> {
    names
        .iter()
        .map(|name| decoded(column, name.parse::<Channel>()))
        .collect()
}

/// The status we hold for an invoice, locked until the transaction ends (`None`: a new one).
pub async fn held_status(
    tx: &mut Transaction<'_, Postgres>,
    invoice_id: Uuid,
) -> Result<Option<InvoiceState>, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM invoices WHERE invoice_id = $1 FOR UPDATE")
            .bind(invoice_id)
            .fetch_optional(&mut **tx)
            .await?;
    status.map(|s| decoded("invoices.status", s.parse())).transpose()
}

/// An invoice that was paid or cancelled is open again (a refund, a chargeback, the ERP undoing
/// a cancellation): the steps that closing cancelled become plannable again; planning then
/// decides each one's moment, or cancels those the plan no longer has.
pub async fn revive_cancelled(
    tx: &mut Transaction<'_, Postgres>,
    invoice_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let revived =
        sqlx::query("UPDATE reminders SET state = 'paused' WHERE invoice_id = $1 AND state = 'cancelled'")
            .bind(invoice_id)
            .execute(&mut **tx)
            .await?;
    Ok(revived.rows_affected())
}

/// Stores the invoice's latest state; `false` when what we hold is as new or newer.
pub async fn record_invoice(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO invoices (invoice_id, tenant_id, debtor_id, status, version, snapshot)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (invoice_id) DO UPDATE SET
            status = EXCLUDED.status, version = EXCLUDED.version, snapshot = EXCLUDED.snapshot,
            debtor_id = EXCLUDED.debtor_id, updated_at = now()
         WHERE invoices.version < EXCLUDED.version",
    )
    .bind(change.invoice_id)
    .bind(&change.tenant_id)
    .bind(change.debtor_id)
    .bind(change.status.as_str())
    .bind(change.version)
    .bind(change.snapshot.encode_to_vec())
    .execute(&mut **tx)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Inserts the planned steps; a step already emitted or cancelled keeps its state.
pub async fn plan_reminders(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
    strategy: &Strategy,
    arm: &str,
    plan: &[Planned],
    origin_traceparent: Option<&str>,
) -> Result<(), sqlx::Error> {
    for planned in plan {
        let (channels, template, roles) = match &planned.step.action {
            Action::Message {
                channels,
                template,
                roles,
            } => (channels.as_slice(), template.as_str(), roles.as_slice()),
            Action::Escalate(_) => (&[][..], "", &[][..]),
        };
        let channel_names: Vec<&str> = channels.iter().map(|channel| channel.as_str()).collect();
        sqlx::query(
            "INSERT INTO reminders (reminder_id, tenant_id, debtor_id, invoice_id, step, channel, template_id, fire_at,
                                    state, origin_traceparent, strategy_id, arm, action, channels, roles,
                                    escalation_grace_days, consolidate, statement_days)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             ON CONFLICT (reminder_id) DO UPDATE SET
                fire_at = EXCLUDED.fire_at, state = EXCLUDED.state, origin_traceparent = EXCLUDED.origin_traceparent,
                channel = EXCLUDED.channel, template_id = EXCLUDED.template_id, strategy_id = EXCLUDED.strategy_id,
                arm = EXCLUDED.arm, action = EXCLUDED.action, channels = EXCLUDED.channels, roles = EXCLUDED.roles,
                escalation_grace_days = EXCLUDED.escalation_grace_days, consolidate = EXCLUDED.consolidate,
                statement_days = EXCLUDED.statement_days
             WHERE reminders.state IN ('pending', 'skipped', 'paused')",
        )
        .bind(reminder_id(change.invoice_id, &planned.step.name))
        .bind(&change.tenant_id)
        .bind(change.debtor_id)
        .bind(change.invoice_id)
        .bind(&planned.step.name)
        .bind(stored::channel_column(channels.first().copied()))
        .bind(template)
        .bind(planned.fire_at)
        .bind(
            if planned.skipped {
                ReminderState::Skipped
            } else {
                ReminderState::Pending
            }
            .as_str(),
        )
        .bind(origin_traceparent)
        .bind(&strategy.id)
        .bind(arm)
        .bind(planned.step.action.stored().as_str())
        .bind(&channel_names)
        .bind(roles)
        .bind(i32::try_from(strategy.escalation_grace.num_days()).unwrap_or(i32::MAX))
        .bind(matches!(planned.step.action, Action::Message { .. }) && strategy.consolidates(change.debtor_kind))
        .bind(i16::try_from(strategy.statement_window_days).unwrap_or(1))
        .execute(&mut **tx)
        .await?;
    }
    // Steps a new plan no longer has (another strategy now applies) never fire.
    let names: Vec<&str> = plan.iter().map(|p| p.step.name.as_str()).collect();
    sqlx::query(
        "UPDATE reminders SET state = 'cancelled'
         WHERE invoice_id = $1 AND state IN ('pending', 'skipped', 'paused') AND step <> ALL($2)",
    )
    .bind(change.invoice_id)
    .bind(&names)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Holds the invoice's pending reminders until a later change re-plans them; a payment plan's
/// own instalment reminders are kept when `keep_instalments`.
pub async fn pause_pending(
    tx: &mut Transaction<'_, Postgres>,
    invoice_id: Uuid,
    keep_instalments: bool,
) -> Result<u64, sqlx::Error> {
    let paused = sqlx::query(
        "UPDATE reminders SET state = 'paused'
         WHERE invoice_id = $1 AND state = 'pending' AND NOT ($2 AND action = 'instalment')",
    )
    .bind(invoice_id)
    .bind(keep_instalments)
    .execute(&mut **tx)
    .await?;
    Ok(paused.rows_affected())
}

/// One instalment reminder of a plan; its id comes from the plan, so a plan covering several
/// invoices reminds each instalment once.
pub async fn plan_instalment(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
    plan_id: Uuid,
    n: usize,
    due: chrono::NaiveDate,
    amount: &recobro_proto::v1::Money,
    fire_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let step = format!("instalment-{n}");
    sqlx::query(
        "INSERT INTO reminders (reminder_id, tenant_id, debtor_id, invoice_id, step, channel, template_id, fire_at,
                                state, action, channels, roles, amount_due_minor, amount_due_currency, due_date)
         VALUES ($1, $2, $3, $4, $5, 'email', 'instalment', $6, 'pending', 'instalment', '{email,sms}',
                 '{accounts_payable,treasury}', $7, $8, $9)
         ON CONFLICT (reminder_id) DO UPDATE SET fire_at = EXCLUDED.fire_at, state = EXCLUDED.state,
            amount_due_minor = EXCLUDED.amount_due_minor, due_date = EXCLUDED.due_date
         WHERE reminders.state IN ('pending', 'paused')",
    )
    .bind(Uuid::new_v5(&plan_id, step.as_bytes()))
    .bind(&change.tenant_id)
    .bind(change.debtor_id)
    .bind(change.invoice_id)
    .bind(&step)
    .bind(fire_at)
    .bind(amount.amount_minor)
    .bind(&amount.currency)
    .bind(due)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn cancel_pending(
    tx: &mut Transaction<'_, Postgres>,
    invoice_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let cancelled = sqlx::query(
        "UPDATE reminders SET state = 'cancelled' WHERE invoice_id = $1 AND state IN ('pending', 'paused')",
    )
    .bind(invoice_id)
    .execute(&mut **tx)
    .await?;
    Ok(cancelled.rows_affected())
}

/// A reminder whose moment has come, claimed by this replica until its transaction ends.
pub struct DueReminder {
    pub reminder_id: Uuid,
    pub debtor_id: Uuid,
    pub invoice_id: Uuid,
    pub step: String,
    /// `None` for a step without channels (an escalation).
    pub channel: Option<Channel>,
    pub template_id: String,
    pub fire_at: DateTime<Utc>,
    pub origin_traceparent: Option<String>,
    pub invoice_status: InvoiceState,
    pub snapshot: Vec<u8>,
    pub strategy_id: String,
    pub arm: String,
    pub action: ReminderAction,
    pub channels: Vec<Channel>,
    pub roles: Vec<String>,
    /// For instalment reminders: what is due and when.
    pub amount_due: Option<(i64, String)>,
    pub due_date: Option<chrono::NaiveDate>,
    /// For escalations: how long after the invoice's last message they may fire.
    pub escalation_grace: chrono::Duration,
    /// Whether it may go out inside a statement with the debtor's other reminders of the day.
    pub consolidate: bool,
    /// How many local days a statement it leads takes in (its strategy's window).
    pub statement_days: u32,
}

/// The columns `claim_due` selects, as stored.
#[derive(sqlx::FromRow)]
struct DueRow {
    reminder_id: Uuid,
    debtor_id: Uuid,
    invoice_id: Uuid,
    consolidate: bool,
    statement_days: i16,
    escalation_grace_days: i32,
    step: String,
    channel: String,
    template_id: String,
    fire_at: DateTime<Utc>,
    origin_traceparent: Option<String>,
    status: String,
    snapshot: Vec<u8>,
    strategy_id: String,
    arm: String,
    action: String,
    channels: Vec<String>,
    roles: Vec<String>,
    amount_due_minor: Option<i64>,
    amount_due_currency: Option<String>,
    due_date: Option<chrono::NaiveDate>,
}

impl TryFrom<DueRow> for DueReminder {
    type Error = sqlx::Error;

    fn try_from(row: DueRow) -> Result<DueReminder, sqlx::Error> {
        Ok(DueReminder {
            reminder_id: row.reminder_id,
            debtor_id: row.debtor_id,
            invoice_id: row.invoice_id,
            consolidate: row.consolidate,
            statement_days: u32::try_from(row.statement_days).unwrap_or(1).max(1),
            escalation_grace: chrono::Duration::days(row.escalation_grace_days.into()),
            step: row.step,
            channel: decoded("channel", stored::parse_channel_column(&row.channel))?,
            template_id: row.template_id,
            fire_at: row.fire_at,
            origin_traceparent: row.origin_traceparent,
            invoice_status: decoded("status", row.status.parse())?,
            snapshot: row.snapshot,
            strategy_id: row.strategy_id,
            arm: row.arm,
            action: decoded("action", row.action.parse())?,
            channels: decoded_channels("channels", &row.channels)?,
            roles: row.roles,
            amount_due: row.amount_due_minor.zip(row.amount_due_currency),
            due_date: row.due_date,
        })
    }
}

/// What `claim_due` and `claim_same_day` select, as `DueRow` reads it.
const DUE_COLUMNS: &str = "r.reminder_id, r.debtor_id, r.invoice_id, r.consolidate, r.statement_days, r.escalation_grace_days, r.step,
    r.channel, r.template_id, r.fire_at, r.origin_traceparent, i.status, i.snapshot, r.strategy_id, r.arm, r.action,
    r.channels, r.roles, r.amount_due_minor, r.amount_due_currency, r.due_date";

/// Pending reminders whose time has come, counted up to `cap`.
pub async fn count_due(pool: &sqlx::PgPool, cap: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM reminders WHERE state = 'pending' AND fire_at <= now() LIMIT $1) due",
    )
    .bind(cap)
    .fetch_one(pool)
    .await
}

/// Claims up to `limit` due reminders; rows another replica holds are skipped, not waited for.
/// A row with a channel, action or status this version does not know is an error, not a guess.
/// A reminder that may join a statement is claimed `gather` after its moment (see `Timers`),
/// and only with its debtor's statement lock, held until the transaction ends: one replica
/// forms a debtor's statement, the others skip that debtor for the round instead of each
/// sending part of it.
pub async fn claim_due(
    tx: &mut Transaction<'_, Postgres>,
    limit: i64,
    gather: chrono::Duration,
) -> Result<Vec<DueReminder>, sqlx::Error> {
    let rows: Vec<DueRow> = sqlx::query_as(&format!(
        "SELECT {DUE_COLUMNS}
         FROM reminders r JOIN invoices i ON i.invoice_id = r.invoice_id
         WHERE r.state = 'pending' AND r.fire_at <= now()
           AND (NOT r.consolidate
                OR (r.fire_at <= now() - make_interval(secs => $2)
                    AND pg_try_advisory_xact_lock($3, hashtext(r.debtor_id::text))))
         ORDER BY r.fire_at
         LIMIT $1
         FOR UPDATE OF r SKIP LOCKED"
    ))
    .bind(limit)
    .bind(gather.num_milliseconds() as f64 / 1000.0)
    .bind(statement::LOCK_KEY)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(DueReminder::try_from).collect()
}

/// Claims the pending message reminders of these debtors that may join a statement and fall
/// due in its window (before each debtor's `until`), besides those already `claimed`:
/// a statement covers the day's invoices at once. The debtors' statement locks are held (see
/// `claim_due`), so no other replica holds their rows.
pub async fn claim_same_day(
    tx: &mut Transaction<'_, Postgres>,
    debtors: &[(Uuid, DateTime<Utc>)],
    claimed: &[Uuid],
) -> Result<Vec<DueReminder>, sqlx::Error> {
    if debtors.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = debtors.iter().map(|(id, _)| *id).collect();
    let until: Vec<DateTime<Utc>> = debtors.iter().map(|(_, until)| *until).collect();
    let rows: Vec<DueRow> = sqlx::query_as(&format!(
        "SELECT {DUE_COLUMNS}
         FROM reminders r JOIN invoices i ON i.invoice_id = r.invoice_id
         JOIN UNNEST($1::uuid[], $2::timestamptz[]) AS d(debtor_id, until) ON d.debtor_id = r.debtor_id
         WHERE r.state = 'pending' AND r.action = 'message' AND r.consolidate
           AND r.fire_at < d.until AND r.reminder_id <> ALL($3)
         FOR UPDATE OF r SKIP LOCKED"
    ))
    .bind(&ids)
    .bind(&until)
    .bind(claimed)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(DueReminder::try_from).collect()
}

/// One of an invoice's message reminders, as an escalation of that invoice waits for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Message {
    /// Handed to channels at this moment.
    Emitted(DateTime<Utc>),
    /// Still to fire at this moment (first planned then, or deferred by the rules to it).
    Pending(DateTime<Utc>),
}

/// The message reminders of these invoices that were emitted or are still to fire.
pub async fn messages_of(
    tx: &mut Transaction<'_, Postgres>,
    invoice_ids: &[Uuid],
) -> Result<Vec<(Uuid, Message)>, sqlx::Error> {
    if invoice_ids.is_empty() {
        return Ok(Vec::new());
    }
    /// invoice_id, state, fire_at, emitted_at.
    type Row = (Uuid, String, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT invoice_id, state, fire_at, emitted_at FROM reminders
         WHERE invoice_id = ANY($1) AND action = 'message' AND state IN ('emitted', 'pending')",
    )
    .bind(invoice_ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(invoice_id, state, fire_at, emitted_at)| {
            let message = match (state.as_str(), emitted_at) {
                ("emitted", Some(at)) => Message::Emitted(at),
                // Emitted before emission times were kept: counted from when it was due.
                ("emitted", None) => Message::Emitted(fire_at),
                _ => Message::Pending(fire_at),
            };
            (invoice_id, message)
        })
        .collect())
}

/// Moves pending reminders (escalations waiting for their grace) to a later moment.
pub async fn postpone(
    tx: &mut Transaction<'_, Postgres>,
    moves: &[(Uuid, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if moves.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = moves.iter().map(|(id, _)| *id).collect();
    let times: Vec<DateTime<Utc>> = moves.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "UPDATE reminders r SET fire_at = m.fire_at
         FROM UNNEST($1::uuid[], $2::timestamptz[]) AS m(reminder_id, fire_at)
         WHERE r.reminder_id = m.reminder_id AND r.state = 'pending'",
    )
    .bind(&ids)
    .bind(&times)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn mark(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
    state: ReminderState,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE reminders SET state = $2, emitted_at = CASE WHEN $2 = 'emitted' THEN now() END WHERE reminder_id = ANY($1)")
        .bind(ids)
        .bind(state.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One of an invoice's reminders, as ListReminders shows it.
pub struct Reminder {
    pub reminder_id: Uuid,
    pub step: String,
    /// `None` for a step without channels (an escalation).
    pub channel: Option<Channel>,
    pub template_id: String,
    pub fire_at: DateTime<Utc>,
    pub state: ReminderState,
    pub strategy_id: String,
    pub arm: String,
    pub action: ReminderAction,
}

/// The columns `reminders` selects, as stored.
#[derive(sqlx::FromRow)]
struct ReminderRow {
    reminder_id: Uuid,
    step: String,
    channel: String,
    template_id: String,
    fire_at: DateTime<Utc>,
    state: String,
    strategy_id: String,
    arm: String,
    action: String,
}

impl TryFrom<ReminderRow> for Reminder {
    type Error = sqlx::Error;

    fn try_from(row: ReminderRow) -> Result<Reminder, sqlx::Error> {
        Ok(Reminder {
            reminder_id: row.reminder_id,
            step: row.step,
            channel: decoded("channel", stored::parse_channel_column(&row.channel))?,
            template_id: row.template_id,
            fire_at: row.fire_at,
            state: decoded("state", row.state.parse())?,
            strategy_id: row.strategy_id,
            arm: row.arm,
            action: decoded("action", row.action.parse())?,
        })
    }
}

/// The invoice's reminders with the debtor's time zone (from the last snapshot).
pub async fn reminders(
    pool: &PgPool,
    tenant_id: &str,
    invoice_id: Uuid,
) -> Result<Option<(Vec<u8>, Vec<Reminder>)>, sqlx::Error> {
    let snapshot: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT snapshot FROM invoices WHERE tenant_id = $1 AND invoice_id = $2")
            .bind(tenant_id)
            .bind(invoice_id)
            .fetch_optional(pool)
            .await?;
    let Some((snapshot,)) = snapshot else {
        return Ok(None);
    };
    let rows: Vec<ReminderRow> = sqlx::query_as(
        "SELECT reminder_id, step, channel, template_id, fire_at, state, strategy_id, arm, action FROM reminders
         WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY fire_at, step",
    )
    .bind(tenant_id)
    .bind(invoice_id)
    .fetch_all(pool)
    .await?;
    let rows = rows
        .into_iter()
        .map(Reminder::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Some((snapshot, rows)))
}

/// Puts emitted reminders back to pending at `fire_at`; returns how many it did.
pub async fn reschedule(
    pool: &PgPool,
    reminder_ids: &[Uuid],
    fire_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE reminders SET state = 'pending', fire_at = $2 WHERE reminder_id = ANY($1) AND state = 'emitted'",
    )
    .bind(reminder_ids)
    .bind(fire_at)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected())
}
