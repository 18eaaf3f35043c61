//! Collection KPIs (aging, delinquency ratio, DSO by countback, CEI, promise-kept rate) as of a
//! date, computed from plain data with no I/O, so that the API, reports and strategy simulation
//! all share one definition. docs/kpis.md describes them and the worked example the tests assert.
//!
//! Money is integer minor units with an ISO 4217 code. Amounts of different currencies are never
//! added: every money KPI is returned per currency, in a map keyed by the code. A currency appears
//! in a map when it has at least one invoice that counts at the date asked about (issued on or
//! before it and not cancelled), even if nothing of it is outstanding any more; its ratios are then
//! `None`. To break a KPI down by segment or strategy, filter the slice before calling.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};

/// How far back DSO countback looks: the month holding `as_of` plus the 23 whole months before it.
const DSO_LOOKBACK_MONTHS: usize = 24;

pub use crate::states::{PromiseState, SettlementKind};

/// Something that reduced what an invoice owes, on a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub on: NaiveDate,
    pub amount_minor: i64,
    pub kind: SettlementKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Receivable {
    pub currency: String,
    /// Invoiced amount: a credit sale on `issue_date`.
    pub amount_minor: i64,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Cancelled invoices never count anywhere: not as sales, not as receivables.
    pub cancelled: bool,
    pub segment: String,
    pub settlements: Vec<Settlement>,
}

impl Receivable {
    /// Whether the invoice exists for the KPIs at the end of `date`: issued by then and not cancelled.
    fn counts_on(&self, date: NaiveDate) -> bool {
        !self.cancelled && self.issue_date <= date
    }

    /// What is still owed at the END of `date` (issued on or before `date`; settlements on or
    /// before `date` subtracted; never below 0; 0 if not yet issued or cancelled).
    ///
    /// Payments, credit notes and write-offs all reduce what is owed. An over-payment leaves 0,
    /// not a negative receivable: the surplus is a credit of the debtor, not a KPI input.
    pub fn outstanding_on(&self, date: NaiveDate) -> i64 {
        if !self.counts_on(date) {
            return 0;
        }
        let mut owed = self.amount_minor;
        for settlement in &self.settlements {
            if settlement.on <= date {
                owed = owed.saturating_sub(settlement.amount_minor);
            }
        }
        owed.max(0)
    }
}

/// Outstanding amounts by days past due (the buckets of docs/kpis.md: 0, 1-30, 31-60, 61-90, 90+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aging {
    /// Not yet due, or due on the day itself (days past due <= 0).
    pub current: i64,
    pub d1_30: i64,
    pub d31_60: i64,
    pub d61_90: i64,
    /// 91 days past due or more.
    pub d90_plus: i64,
}

impl Aging {
    pub fn total(&self) -> i64 {
        self.current.saturating_add(self.overdue())
    }

    pub fn overdue(&self) -> i64 {
        self.d1_30
            .saturating_add(self.d31_60)
            .saturating_add(self.d61_90)
            .saturating_add(self.d90_plus)
    }

    fn add(&mut self, days_past_due: i64, amount_minor: i64) {
        let bucket = if days_past_due <= 0 {
            &mut self.current
        } else if days_past_due <= 30 {
            &mut self.d1_30
        } else if days_past_due <= 60 {
            &mut self.d31_60
        } else if days_past_due <= 90 {
            &mut self.d61_90
        } else {
            &mut self.d90_plus
        };
        *bucket = bucket.saturating_add(amount_minor);
    }
}

/// Outstanding amounts by days past due as of `as_of` (days past due = as_of - due_date; <= 0 is
/// current).
pub fn aging(receivables: &[Receivable], as_of: NaiveDate) -> BTreeMap<String, Aging> {
    let mut by_currency: BTreeMap<String, Aging> = BTreeMap::new();
    for receivable in receivables {
        if !receivable.counts_on(as_of) {
            continue;
        }
        let days_past_due = as_of.signed_duration_since(receivable.due_date).num_days();
        by_currency
            .entry(receivable.currency.clone())
            .or_default()
            .add(days_past_due, receivable.outstanding_on(as_of));
    }
    by_currency
}

/// `part / whole`, or `None` when `whole` is 0 (a ratio of nothing is unknown, not 0 or 1).
fn ratio(part: i64, whole: i64) -> Option<f64> {
    if whole == 0 {
        return None;
    }
    Some(part as f64 / whole as f64)
}

/// Delinquency ratio (morosidad) = overdue outstanding / total outstanding, as of `as_of`; None
/// when nothing is outstanding. A fraction in [0, 1], not a percentage.
pub fn delinquency_ratio(receivables: &[Receivable], as_of: NaiveDate) -> BTreeMap<String, Option<f64>> {
    let mut by_currency = BTreeMap::new();
    for (currency, buckets) in aging(receivables, as_of) {
        by_currency.insert(currency, ratio(buckets.overdue(), buckets.total()));
    }
    by_currency
}

/// Credit sales of `currency` in `[from, to]`: the invoiced amount of every invoice issued in it
/// and not cancelled (gross: later credit notes reduce receivables, not sales).
fn credit_sales(receivables: &[Receivable], currency: &str, from: NaiveDate, to: NaiveDate) -> i64 {
    let mut sales: i64 = 0;
    for receivable in receivables {
        if receivable.currency == currency
            && !receivable.cancelled
            && (from..=to).contains(&receivable.issue_date)
        {
            sales = sales.saturating_add(receivable.amount_minor);
        }
    }
    sales
}

/// DSO by the countback method as of `as_of`, per currency.
///
/// Convention (standard countback: days of fully covered months + fraction of the last):
/// - Start with the total outstanding at the end of `as_of` (`remainder`).
/// - Walk back through periods: first the month holding `as_of`, counted from its 1st to `as_of`
///   (so it is worth `as_of.day()` days), then each previous whole calendar month (worth its
///   calendar days: 28 to 31).
/// - For each period, take its credit sales (invoices issued in it, not cancelled, gross amount).
///   If `remainder > sales`, the period is fully consumed: subtract its sales and add all of its
///   days. Otherwise (`remainder <= sales`, so a period whose sales equal the remainder counts in
///   full) add `remainder / sales × days of the period` and stop.
/// - At most 24 periods (the month of `as_of` and the 23 before it). If their sales never cover
///   the outstanding, the result is the days counted so far, i.e. every day of the lookback
///   (from the 1st of the 24th month back to `as_of`): a floor, not the true figure.
///
/// `None` when nothing is outstanding in that currency.
pub fn dso_countback(receivables: &[Receivable], as_of: NaiveDate) -> BTreeMap<String, Option<f64>> {
    let mut by_currency = BTreeMap::new();
    for (currency, buckets) in aging(receivables, as_of) {
        let dso = countback(receivables, &currency, buckets.total(), as_of);
        by_currency.insert(currency, dso);
    }
    by_currency
}

fn countback(receivables: &[Receivable], currency: &str, outstanding: i64, as_of: NaiveDate) -> Option<f64> {
    if outstanding <= 0 {
        return None;
    }
    let mut remainder = outstanding;
    let mut days = 0.0;
    let mut period_end = as_of;
    for _ in 0..DSO_LOOKBACK_MONTHS {
        // Day 1 exists in every month, so this never breaks; written so to avoid a panic path.
        let Some(period_start) = period_end.with_day(1) else {
            break;
        };
        // The period runs from the 1st to period_end, so its length is period_end's day of month:
        // as_of.day() for the first period, the month's last day (its length) for the others.
        let period_days = f64::from(period_end.day());
        let sales = credit_sales(receivables, currency, period_start, period_end);
        if remainder <= sales {
            // sales >= remainder > 0 here, so the division is well defined.
            return Some(days + remainder as f64 / sales as f64 * period_days);
        }
        remainder = remainder.saturating_sub(sales);
        days += period_days;
        // None only at the very first representable date: nothing can have been issued before it.
        let Some(previous_end) = period_start.pred_opt() else {
            break;
        };
        period_end = previous_end;
    }
    Some(days)
}

#[derive(Debug, Default)]
struct CeiTotals {
    opening: i64,
    sales: i64,
    closing_total: i64,
    closing_current: i64,
}

/// CEI for the period [start, end] (inclusive) = (opening receivables + credit sales − closing
/// total receivables) / (opening receivables + credit sales − closing current receivables) × 100.
///
/// - opening = outstanding at the end of the day before `start`;
/// - credit sales = invoices issued within the period (not cancelled, gross amount);
/// - closing total = outstanding at the end of `end`;
/// - closing current = outstanding at the end of `end` on invoices not yet due at `end`
///   (`due_date >= end`, the same rule as the aging's current bucket).
///
/// `None` when the denominator is 0 (nothing was collectable). An empty map when `start > end`.
pub fn cei(receivables: &[Receivable], start: NaiveDate, end: NaiveDate) -> BTreeMap<String, Option<f64>> {
    if start > end {
        return BTreeMap::new();
    }
    // None only when `start` is the first representable date: then nothing was open before it.
    let opening_day = start.pred_opt();
    let mut totals: BTreeMap<String, CeiTotals> = BTreeMap::new();
    for receivable in receivables {
        // Not cancelled and issued on or before `end`; anything else plays no part in the period.
        if !receivable.counts_on(end) {
            continue;
        }
        let currency = totals.entry(receivable.currency.clone()).or_default();
        if let Some(day) = opening_day {
            currency.opening = currency.opening.saturating_add(receivable.outstanding_on(day));
        }
        if receivable.issue_date >= start {
            currency.sales = currency.sales.saturating_add(receivable.amount_minor);
        }
        let closing = receivable.outstanding_on(end);
        currency.closing_total = currency.closing_total.saturating_add(closing);
        if receivable.due_date >= end {
            currency.closing_current = currency.closing_current.saturating_add(closing);
        }
    }
    let mut by_currency = BTreeMap::new();
    for (currency, t) in totals {
        let available = t.opening.saturating_add(t.sales);
        let collected = available.saturating_sub(t.closing_total);
        let collectable = available.saturating_sub(t.closing_current);
        by_currency.insert(currency, ratio(collected, collectable).map(|r| r * 100.0));
    }
    by_currency
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromiseOutcome {
    pub promised_date: NaiveDate,
    pub state: PromiseState,
}

/// Promise-kept rate = kept / (kept + broken) among promises whose promised_date <= as_of (open
/// and cancelled ones are excluded); None when there are none. A fraction in [0, 1].
pub fn promise_kept_rate(promises: &[PromiseOutcome], as_of: NaiveDate) -> Option<f64> {
    let mut kept: u32 = 0;
    let mut broken: u32 = 0;
    for promise in promises {
        if promise.promised_date > as_of {
            continue;
        }
        match promise.state {
            PromiseState::Kept => kept = kept.saturating_add(1),
            PromiseState::Broken => broken = broken.saturating_add(1),
            PromiseState::Open | PromiseState::Cancelled => {}
        }
    }
    let decided = kept.saturating_add(broken);
    if decided == 0 {
        return None;
    }
    Some(f64::from(kept) / f64::from(decided))
}

/// `date` moved by `days` (negative moves back), clamped to the representable range so that an
/// absurd grace period cannot panic: a deadline beyond the calendar is simply never reached.
fn shift_days(date: NaiveDate, days: i64) -> NaiveDate {
    let step = Days::new(days.unsigned_abs());
    if days >= 0 {
        date.checked_add_days(step).unwrap_or(NaiveDate::MAX)
    } else {
        date.checked_sub_days(step).unwrap_or(NaiveDate::MIN)
    }
}

/// Decides a promise: Kept if the invoice's payments (Payment settlements only) made on or after
/// `made_on` and on or before promised_date + grace_days add up to at least
/// `promised_amount_minor`; Broken if promised_date + grace_days < today and not kept; Open
/// otherwise.
///
/// - Payments made before the promise do not count: they were already known when it was made.
/// - Credit notes and write-offs do not count: the debtor did not pay.
/// - Payments dated after `today` are ignored, so replaying history (strategy simulation) with
///   the full settlement list gives the answer that was right on `today`.
/// - A promise can be Kept before its date, as soon as it is paid in full.
/// - A promised amount of 0 or less is trivially Kept.
/// - Never returns Cancelled: cancelling a promise is a decision of a person, not of the ledger.
pub fn judge_promise(
    made_on: NaiveDate,
    promised_date: NaiveDate,
    promised_amount_minor: i64,
    grace_days: i64,
    settlements: &[Settlement],
    today: NaiveDate,
) -> PromiseState {
    let deadline = shift_days(promised_date, grace_days);
    let counted_until = deadline.min(today);
    let mut paid: i64 = 0;
    for settlement in settlements {
        if settlement.kind == SettlementKind::Payment && (made_on..=counted_until).contains(&settlement.on) {
            paid = paid.saturating_add(settlement.amount_minor);
        }
    }
    if paid >= promised_amount_minor {
        return PromiseState::Kept;
    }
    if deadline < today {
        return PromiseState::Broken;
    }
    PromiseState::Open
}

#[cfg(test)]
mod tests;
