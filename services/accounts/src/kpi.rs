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
mod tests {
    use super::*;

    fn day(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("test dates are valid calendar dates")
    }

    /// `as_of` moved back by `days` (test helper; the test dates are far from the calendar's ends).
    fn days_before(as_of: NaiveDate, days: i64) -> NaiveDate {
        shift_days(as_of, -days)
    }

    fn invoice(currency: &str, amount_minor: i64, issue_date: NaiveDate, due_date: NaiveDate) -> Receivable {
        Receivable {
            currency: currency.to_string(),
            amount_minor,
            issue_date,
            due_date,
            cancelled: false,
            segment: "b2b".to_string(),
            settlements: Vec::new(),
        }
    }

    fn settled(on: NaiveDate, amount_minor: i64, kind: SettlementKind) -> Settlement {
        Settlement {
            on,
            amount_minor,
            kind,
        }
    }

    fn payment(on: NaiveDate, amount_minor: i64) -> Settlement {
        settled(on, amount_minor, SettlementKind::Payment)
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let Some(actual) = actual else {
            panic!("expected {expected}, got None");
        };
        assert!(
            (actual - expected).abs() < 1e-9,
            "expected {expected}, got {actual}"
        );
    }

    // ---- Worked example, computed by hand (and checked with python3), see docs/kpis.md ----
    //
    // COP amounts are written major_minor: 1_500_000_00 is 1.500.000,00 COP.
    // As of 2026-03-20:
    //   G  issued 2025-10-01 due 2025-10-31  1_500_000_00  paid 500_000_00 on 2025-11-15
    //   A  issued 2025-12-10 due 2026-01-09  4_000_000_00  paid 1_000_000_00 on 2026-01-20
    //   B  issued 2026-01-05 due 2026-02-04  2_500_000_00  credit note 500_000_00 on 2026-01-25,
    //                                                      paid 800_000_00 on 2026-02-20
    //   C  issued 2026-01-15 due 2026-02-14  1_800_000_00  paid 1_000_000_00 on 2026-02-10,
    //                                                      written off 800_000_00 on 2026-03-05
    //   D  issued 2026-02-10 due 2026-03-12  3_000_000_00  paid 1_000_000_00 on 2026-03-15
    //   F  issued 2026-02-15 due 2026-03-17  9_999_999_00  CANCELLED
    //   E  issued 2026-03-02 due 2026-04-01  5_000_000_00  paid in full on 2026-03-25 (after as_of)
    //   H  issued 2026-03-25 due 2026-04-24    700_000_00  (issued after as_of)
    //   U  issued 2026-02-01 due 2026-03-03  USD 1_200_00  paid 400_00 on 2026-02-20
    fn portfolio() -> Vec<Receivable> {
        use SettlementKind::{CreditNote, WriteOff};
        let mut cancelled = invoice("COP", 9_999_999_00, day(2026, 2, 15), day(2026, 3, 17));
        cancelled.cancelled = true;
        vec![
            Receivable {
                settlements: vec![payment(day(2025, 11, 15), 500_000_00)],
                ..invoice("COP", 1_500_000_00, day(2025, 10, 1), day(2025, 10, 31))
            },
            Receivable {
                settlements: vec![payment(day(2026, 1, 20), 1_000_000_00)],
                ..invoice("COP", 4_000_000_00, day(2025, 12, 10), day(2026, 1, 9))
            },
            Receivable {
                settlements: vec![
                    settled(day(2026, 1, 25), 500_000_00, CreditNote),
                    payment(day(2026, 2, 20), 800_000_00),
                ],
                ..invoice("COP", 2_500_000_00, day(2026, 1, 5), day(2026, 2, 4))
            },
            Receivable {
                settlements: vec![
                    payment(day(2026, 2, 10), 1_000_000_00),
                    settled(day(2026, 3, 5), 800_000_00, WriteOff),
                ],
                ..invoice("COP", 1_800_000_00, day(2026, 1, 15), day(2026, 2, 14))
            },
            Receivable {
                settlements: vec![payment(day(2026, 3, 15), 1_000_000_00)],
                ..invoice("COP", 3_000_000_00, day(2026, 2, 10), day(2026, 3, 12))
            },
            cancelled,
            Receivable {
                settlements: vec![payment(day(2026, 3, 25), 5_000_000_00)],
                ..invoice("COP", 5_000_000_00, day(2026, 3, 2), day(2026, 4, 1))
            },
            invoice("COP", 700_000_00, day(2026, 3, 25), day(2026, 4, 24)),
            Receivable {
                settlements: vec![payment(day(2026, 2, 20), 400_00)],
                ..invoice("USD", 1_200_00, day(2026, 2, 1), day(2026, 3, 3))
            },
        ]
    }

    fn worked_example_as_of() -> NaiveDate {
        day(2026, 3, 20)
    }

    #[test]
    fn worked_example_aging_matches_hand_computation() {
        let aging = aging(&portfolio(), worked_example_as_of());
        let cop = Aging {
            // E: 5_000_000_00 (due 2026-04-01, 12 days ahead; the 2026-03-25 payment is after as_of)
            current: 5_000_000_00,
            // D: 3_000_000_00 − 1_000_000_00 = 2_000_000_00 (due 2026-03-12: 8 days past due);
            // F is cancelled and counts nowhere.
            d1_30: 2_000_000_00,
            // B: 2_500_000_00 − 500_000_00 − 800_000_00 = 1_200_000_00
            //    (due 2026-02-04: 24 + 20 = 44 days past due);
            // C: 1_800_000_00 − 1_000_000_00 − 800_000_00 = 0 (34 days, written off).
            d31_60: 1_200_000_00,
            // A: 4_000_000_00 − 1_000_000_00 = 3_000_000_00 (due 2026-01-09: 22 + 28 + 20 = 70 days)
            d61_90: 3_000_000_00,
            // G: 1_500_000_00 − 500_000_00 = 1_000_000_00 (due 2025-10-31: 30 + 31 + 31 + 28 + 20 = 140)
            d90_plus: 1_000_000_00,
        };
        let usd = Aging {
            // U: 1_200_00 − 400_00 = 800_00 (due 2026-03-03: 17 days past due)
            d1_30: 800_00,
            ..Aging::default()
        };
        assert_eq!(aging.len(), 2, "one entry per currency, never mixed: {aging:?}");
        assert_eq!(aging["COP"], cop);
        assert_eq!(aging["USD"], usd);
        // 5_000_000_00 + 2_000_000_00 + 1_200_000_00 + 3_000_000_00 + 1_000_000_00
        assert_eq!(aging["COP"].total(), 12_200_000_00);
        // 12_200_000_00 − 5_000_000_00
        assert_eq!(aging["COP"].overdue(), 7_200_000_00);
        assert_eq!(aging["USD"].total(), 800_00);
        assert_eq!(aging["USD"].overdue(), 800_00);
    }

    #[test]
    fn worked_example_delinquency_ratio_matches_hand_computation() {
        let ratios = delinquency_ratio(&portfolio(), worked_example_as_of());
        assert_eq!(ratios.len(), 2);
        // 7_200_000_00 / 12_200_000_00 = 36 / 61 = 0.590163934426...
        assert_close(ratios["COP"], 0.590_163_934_426_229_5);
        // 800_00 / 800_00
        assert_close(ratios["USD"], 1.0);
    }

    #[test]
    fn worked_example_dso_countback_matches_hand_computation() {
        let dso = dso_countback(&portfolio(), worked_example_as_of());
        assert_eq!(dso.len(), 2);
        // COP, outstanding 12_200_000_00:
        //   2026-03-01..20 (20 days): sales E 5_000_000_00 (H is after as_of)
        //     -> remainder 7_200_000_00, 20 days
        //   2026-02 (28 days): sales D 3_000_000_00 (F cancelled) -> remainder 4_200_000_00, 48 days
        //   2026-01 (31 days): sales B + C = 4_300_000_00 >= 4_200_000_00
        //     -> 48 + 4_200_000_00 / 4_300_000_00 × 31 = 48 + 1302 / 43 = 78.279069767441...
        assert_close(dso["COP"], 78.279_069_767_441_85);
        // USD, outstanding 800_00:
        //   2026-03-01..20: no sales -> 20 days
        //   2026-02: sales 1_200_00 >= 800_00 -> 20 + 800 / 1200 × 28 = 20 + 56 / 3 = 38.666...
        assert_close(dso["USD"], 38.666_666_666_666_664);
    }

    #[test]
    fn worked_example_cei_for_february_matches_hand_computation() {
        let cei = cei(&portfolio(), day(2026, 2, 1), day(2026, 2, 28));
        assert_eq!(cei.len(), 2);
        // COP
        //   opening (end of 2026-01-31): G 1_000_000_00 + A 3_000_000_00 + B 2_000_000_00
        //                                + C 1_800_000_00 = 7_800_000_00
        //   credit sales in February: D 3_000_000_00 (F cancelled)
        //   closing total (end of 2026-02-28): G 1_000_000_00 + A 3_000_000_00 + B 1_200_000_00
        //                                      + C 800_000_00 + D 3_000_000_00 = 9_000_000_00
        //   closing current (due on or after 2026-02-28): D 3_000_000_00
        //   (7_800_000_00 + 3_000_000_00 − 9_000_000_00) / (7_800_000_00 + 3_000_000_00 − 3_000_000_00)
        //     × 100 = 1_800_000_00 / 7_800_000_00 × 100 = 300 / 13 = 23.076923076923...
        assert_close(cei["COP"], 23.076_923_076_923_077);
        // USD: opening 0, sales 1_200_00, closing total 800_00, closing current 800_00 (due 2026-03-03)
        //   (0 + 1_200_00 − 800_00) / (0 + 1_200_00 − 800_00) × 100 = 100
        assert_close(cei["USD"], 100.0);
    }

    // ---- Edge cases ----

    #[test]
    fn outstanding_never_goes_below_zero_when_overpaid() {
        let overpaid = Receivable {
            settlements: vec![
                payment(day(2026, 1, 10), 700_00),
                payment(day(2026, 1, 11), 700_00),
            ],
            ..invoice("COP", 1_000_00, day(2026, 1, 1), day(2026, 1, 31))
        };
        assert_eq!(overpaid.outstanding_on(day(2026, 1, 10)), 300_00);
        assert_eq!(overpaid.outstanding_on(day(2026, 1, 11)), 0);
        let as_of = day(2026, 2, 15);
        assert_eq!(
            aging(std::slice::from_ref(&overpaid), as_of)["COP"],
            Aging::default()
        );
    }

    #[test]
    fn settlements_after_the_date_are_ignored() {
        let receivable = Receivable {
            settlements: vec![payment(day(2026, 1, 20), 400_00)],
            ..invoice("COP", 1_000_00, day(2026, 1, 1), day(2026, 1, 31))
        };
        assert_eq!(receivable.outstanding_on(day(2026, 1, 19)), 1_000_00);
        // "At the end of the day": a payment on the date itself counts.
        assert_eq!(receivable.outstanding_on(day(2026, 1, 20)), 600_00);
    }

    #[test]
    fn invoices_issued_after_the_date_are_ignored() {
        let receivables = vec![invoice("COP", 1_000_00, day(2026, 1, 21), day(2026, 2, 20))];
        let as_of = day(2026, 1, 20);
        assert_eq!(receivables[0].outstanding_on(as_of), 0);
        assert_eq!(receivables[0].outstanding_on(day(2026, 1, 21)), 1_000_00);
        assert!(aging(&receivables, as_of).is_empty());
        assert!(delinquency_ratio(&receivables, as_of).is_empty());
        assert!(dso_countback(&receivables, as_of).is_empty());
        assert!(cei(&receivables, day(2026, 1, 1), as_of).is_empty());
    }

    #[test]
    fn cancelled_invoices_never_count() {
        let mut cancelled = invoice("COP", 1_000_00, day(2026, 1, 5), day(2026, 1, 10));
        cancelled.cancelled = true;
        let receivables = vec![
            cancelled,
            invoice("COP", 500_00, day(2026, 1, 10), day(2026, 2, 9)),
        ];
        let as_of = day(2026, 1, 20);
        assert_eq!(receivables[0].outstanding_on(as_of), 0);
        assert_eq!(
            aging(&receivables, as_of)["COP"],
            Aging {
                current: 500_00,
                ..Aging::default()
            }
        );
        // Only the 500_00 invoice is a sale: 500 / 500 × 20 days.
        assert_close(dso_countback(&receivables, as_of)["COP"], 20.0);
        // Opening 0, sales 500_00 (not 1_500_00), closing total = closing current = 500_00 -> 0 / 0.
        assert_eq!(cei(&receivables, day(2026, 1, 1), as_of)["COP"], None);
    }

    #[test]
    fn aging_puts_each_day_count_in_its_bucket() {
        let as_of = day(2026, 6, 30);
        // Each days-past-due gets its own power of ten so every bucket sum shows who landed in it.
        let cases: [(i64, i64); 9] = [
            (-5, 100_000_000),
            (0, 1),
            (1, 10),
            (30, 100),
            (31, 1_000),
            (60, 10_000),
            (61, 100_000),
            (90, 1_000_000),
            (91, 10_000_000),
        ];
        let mut receivables = Vec::new();
        for (days_past_due, amount_minor) in cases {
            let due_date = days_before(as_of, days_past_due);
            receivables.push(invoice("COP", amount_minor, days_before(due_date, 30), due_date));
        }
        let expected = Aging {
            current: 100_000_000 + 1,
            d1_30: 10 + 100,
            d31_60: 1_000 + 10_000,
            d61_90: 100_000 + 1_000_000,
            d90_plus: 10_000_000,
        };
        assert_eq!(aging(&receivables, as_of)["COP"], expected);
    }

    #[test]
    fn empty_input_gives_empty_maps_and_no_rate() {
        let as_of = day(2026, 3, 20);
        assert!(aging(&[], as_of).is_empty());
        assert!(delinquency_ratio(&[], as_of).is_empty());
        assert!(dso_countback(&[], as_of).is_empty());
        assert!(cei(&[], day(2026, 3, 1), as_of).is_empty());
        assert_eq!(promise_kept_rate(&[], as_of), None);
    }

    #[test]
    fn fully_settled_currency_is_listed_with_no_ratio_and_no_dso() {
        let receivables = vec![Receivable {
            settlements: vec![payment(day(2026, 1, 15), 1_000_00)],
            ..invoice("EUR", 1_000_00, day(2026, 1, 1), day(2026, 1, 31))
        }];
        let as_of = day(2026, 2, 10);
        assert_eq!(aging(&receivables, as_of)["EUR"], Aging::default());
        assert_eq!(delinquency_ratio(&receivables, as_of)["EUR"], None);
        assert_eq!(dso_countback(&receivables, as_of)["EUR"], None);
    }

    #[test]
    fn cei_is_none_when_nothing_was_collectable() {
        // Issued and due after the period's end: opening 0, sales 1_000_00, closing current 1_000_00.
        let receivables = vec![invoice("COP", 1_000_00, day(2026, 1, 10), day(2026, 2, 9))];
        assert_eq!(cei(&receivables, day(2026, 1, 1), day(2026, 1, 31))["COP"], None);
    }

    #[test]
    fn cei_counts_an_invoice_issued_on_the_first_day_as_a_sale_not_as_opening() {
        // Issued 2026-02-01, due 2026-02-10, half paid on 2026-02-20: nothing current at the close.
        // Opening 0, sales 1_000_00, closing total 500_00, closing current 0 -> 500 / 1000 × 100 = 50.
        let receivables = vec![Receivable {
            settlements: vec![payment(day(2026, 2, 20), 500_00)],
            ..invoice("COP", 1_000_00, day(2026, 2, 1), day(2026, 2, 10))
        }];
        assert_close(cei(&receivables, day(2026, 2, 1), day(2026, 2, 28))["COP"], 50.0);
    }

    #[test]
    fn cei_is_empty_when_the_period_ends_before_it_starts() {
        let receivables = vec![invoice("COP", 1_000_00, day(2026, 1, 10), day(2026, 2, 9))];
        assert!(cei(&receivables, day(2026, 2, 1), day(2026, 1, 31)).is_empty());
    }

    #[test]
    fn dso_takes_a_fraction_of_the_current_month_when_its_sales_cover_everything() {
        // Outstanding 500_00 of 1_000_00 sold in 2026-03-01..20: 500 / 1000 × 20 days = 10.
        let receivables = vec![Receivable {
            settlements: vec![payment(day(2026, 3, 10), 500_00)],
            ..invoice("COP", 1_000_00, day(2026, 3, 5), day(2026, 4, 4))
        }];
        assert_close(dso_countback(&receivables, day(2026, 3, 20))["COP"], 10.0);
    }

    #[test]
    fn dso_counts_a_month_whose_sales_equal_the_remainder_in_full() {
        // Outstanding 1_000_00 + 2_000_00. March 1..20 sells 1_000_00 -> 20 days, remainder 2_000_00;
        // February sells exactly 2_000_00 -> 2000 / 2000 × 28 = 28 more: 48.
        let receivables = vec![
            invoice("COP", 1_000_00, day(2026, 3, 5), day(2026, 4, 4)),
            invoice("COP", 2_000_00, day(2026, 2, 5), day(2026, 3, 7)),
        ];
        assert_close(dso_countback(&receivables, day(2026, 3, 20))["COP"], 48.0);
    }

    #[test]
    fn dso_returns_the_days_counted_so_far_when_sales_never_cover_the_outstanding() {
        // Issued three years back: the 24 periods (2024-04-01 to 2026-03-20) have no sales at all,
        // so DSO is every day of the lookback: (2026-03-20 − 2024-04-01) + 1 = 719 days.
        let receivables = vec![invoice("COP", 1_000_00, day(2023, 1, 1), day(2023, 1, 31))];
        assert_close(dso_countback(&receivables, day(2026, 3, 20))["COP"], 719.0);
    }

    #[test]
    fn promise_kept_rate_counts_only_decided_promises_already_due() {
        let as_of = day(2026, 3, 20);
        let promise = |promised_date, state| PromiseOutcome { promised_date, state };
        let promises = vec![
            promise(day(2026, 3, 1), PromiseState::Kept),
            promise(day(2026, 3, 10), PromiseState::Kept),
            // On as_of itself: counts.
            promise(day(2026, 3, 20), PromiseState::Broken),
            promise(day(2026, 3, 18), PromiseState::Open),
            promise(day(2026, 3, 5), PromiseState::Cancelled),
            // Promised after as_of: not counted, whatever their state.
            promise(day(2026, 3, 25), PromiseState::Kept),
            promise(day(2026, 3, 21), PromiseState::Broken),
        ];
        // 2 kept / (2 kept + 1 broken)
        assert_close(promise_kept_rate(&promises, as_of), 2.0 / 3.0);
        let undecided = vec![
            promise(day(2026, 3, 1), PromiseState::Open),
            promise(day(2026, 3, 2), PromiseState::Cancelled),
        ];
        assert_eq!(promise_kept_rate(&undecided, as_of), None);
    }

    // Promise made 2026-03-01 to pay 1_000_00 by 2026-03-10, with 3 grace days: deadline 2026-03-13.
    fn judge(settlements: &[Settlement], today: NaiveDate) -> PromiseState {
        judge_promise(day(2026, 3, 1), day(2026, 3, 10), 1_000_00, 3, settlements, today)
    }

    #[test]
    fn promise_is_kept_when_payments_within_the_grace_days_add_up() {
        let settlements = [
            payment(day(2026, 3, 5), 600_00),
            payment(day(2026, 3, 13), 400_00),
        ];
        assert_eq!(judge(&settlements, day(2026, 3, 20)), PromiseState::Kept);
    }

    #[test]
    fn promise_is_kept_as_soon_as_it_is_paid_even_before_its_date() {
        let settlements = [payment(day(2026, 3, 4), 1_000_00)];
        assert_eq!(judge(&settlements, day(2026, 3, 5)), PromiseState::Kept);
    }

    #[test]
    fn promise_stays_open_until_the_grace_days_have_passed() {
        assert_eq!(judge(&[], day(2026, 3, 10)), PromiseState::Open);
        // The deadline day itself is still within the grace period.
        assert_eq!(judge(&[], day(2026, 3, 13)), PromiseState::Open);
        assert_eq!(judge(&[], day(2026, 3, 14)), PromiseState::Broken);
    }

    #[test]
    fn promise_with_no_grace_days_is_broken_the_day_after_its_date() {
        let state = judge_promise(
            day(2026, 3, 1),
            day(2026, 3, 10),
            1_000_00,
            0,
            &[],
            day(2026, 3, 11),
        );
        assert_eq!(state, PromiseState::Broken);
    }

    #[test]
    fn payment_made_before_the_promise_does_not_keep_it() {
        let settlements = [
            payment(day(2026, 2, 28), 1_000_00),
            payment(day(2026, 3, 5), 600_00),
        ];
        assert_eq!(judge(&settlements, day(2026, 3, 20)), PromiseState::Broken);
    }

    #[test]
    fn payment_after_the_grace_days_does_not_keep_the_promise() {
        let settlements = [payment(day(2026, 3, 14), 1_000_00)];
        assert_eq!(judge(&settlements, day(2026, 3, 20)), PromiseState::Broken);
    }

    #[test]
    fn credit_notes_and_write_offs_do_not_keep_a_promise() {
        let settlements = [
            settled(day(2026, 3, 5), 600_00, SettlementKind::CreditNote),
            settled(day(2026, 3, 6), 400_00, SettlementKind::WriteOff),
        ];
        assert_eq!(judge(&settlements, day(2026, 3, 20)), PromiseState::Broken);
    }

    #[test]
    fn payment_dated_after_today_is_not_counted_yet() {
        // Replaying history: on 2026-03-08 the 2026-03-09 payment has not happened.
        let settlements = [payment(day(2026, 3, 9), 1_000_00)];
        assert_eq!(judge(&settlements, day(2026, 3, 8)), PromiseState::Open);
        assert_eq!(judge(&settlements, day(2026, 3, 9)), PromiseState::Kept);
    }

    #[test]
    fn absurd_grace_days_do_not_panic() {
        let far = judge_promise(
            day(2026, 3, 1),
            day(2026, 3, 10),
            1_000_00,
            i64::MAX,
            &[],
            day(2026, 3, 20),
        );
        assert_eq!(far, PromiseState::Open);
        let back = judge_promise(
            day(2026, 3, 1),
            day(2026, 3, 10),
            1_000_00,
            i64::MIN,
            &[],
            day(2026, 3, 20),
        );
        assert_eq!(back, PromiseState::Broken);
    }
}
