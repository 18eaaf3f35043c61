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
