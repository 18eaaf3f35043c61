//! Property tests of the CSV import: a spreadsheet someone saved is untrusted input. Whatever
//! its bytes, parsing never panics; every row it reads becomes a record or errors, each on the
//! row's own line; amounts typed the ways the module documents come back exactly; and whatever
//! the server refuses in a record is reported in a column of the file.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::domain;
use crate::error::AccountsError;
use recobro_common::grpc::Refusal;

/// Enough cases to reach every check often, few enough to keep the suite fast.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Values people type in each column: mostly valid ones, some wrong ones, some arbitrary text
/// (with separators, quotes and line breaks, which the writer below quotes as CSV requires).
fn cell(column: &str) -> BoxedStrategy<String> {
    let (valid, wrong): (Vec<&'static str>, Vec<&'static str>) = match column {
        "debtor_id" => (vec!["C-1", "C-2", "ACME 7"], vec![""]),
        "debtor_name" => (vec!["Ferretería Ñandú", "Ana Pérez"], vec![""]),
        "kind" => (vec!["company", "consumer", "COMPANY"], vec!["", "persona"]),
        "time_zone" => (vec!["America/Bogota", "America/Sao_Paulo"], vec!["Mars/Base", ""]),
        "locale" => (vec!["es-CO", "pt-BR", "en"], vec!["fr", ""]),
        "country" => (vec!["CO", "BR"], vec!["co", "Colombia"]),
        "region" => (vec!["", "BR-SP"], vec!["X"]),
        "segment" => (vec!["", "smb"], vec!["\u{7}"]),
        "contact_name" => (vec!["", "Ana"], vec![" "]),
        "contact_role" => (vec!["", "treasury", "Other"], vec!["cfo"]),
        "email" => (vec!["", "pagos@tornillo.co"], vec!["nobody"]),
        "phone" | "whatsapp" => (vec!["", "+573001234567"], vec!["3001234567"]),
        "invoice_id" => (vec!["F-1", "F-2"], vec![""]),
        "invoice_number" => (vec!["FE-1"], vec![""]),
        "amount" => (
            vec!["1.250.000,50", "1250000.50", "1,5", "0", "45000"],
            vec!["-3", "12.345,678", "", "1.250", "9223372036854775807"],
        ),
        "currency" => (vec!["COP", "clp", "KWD", "EUR"], vec!["", "PESOS"]),
        "issue_date" => (
            vec!["2025-03-01", "2024-12-31"],
            vec!["2025-02-30", "31/03/2025", ""],
        ),
        "due_date" => (
            vec!["2025-03-31", "2026-01-15"],
            vec!["2025-3-1", "0000-00-00", ""],
        ),
        _ => (vec![""], vec![""]),
    };
    prop_oneof![
        16 => select(valid).prop_map(String::from),
        2 => select(wrong).prop_map(String::from),
        1 => "\\PC{0,12}",
        1 => "[,;\"\r\n a-z0-9.-]{0,6}",
    ]
    .boxed()
}

/// One cell as a CSV writer writes it: quoted when it holds the separator, a quote or a line
/// break.
fn written(cell: &str, separator: char) -> String {
    if cell.contains([separator, '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// Line breaks as a text editor counts them: LF, CRLF and a lone CR each end a line.
fn line_breaks(text: &str) -> u64 {
    let text = text.replace("\r\n", "\n");
    text.matches(['\n', '\r']).count() as u64
}

/// A file's columns: the debtor's, some optional ones, and the invoice's or none, in any order
/// and any case.
fn columns() -> impl Strategy<Value = Vec<String>> {
    let optional = prop::sample::subsequence(OPTIONAL_COLUMNS.to_vec(), 0..=OPTIONAL_COLUMNS.len());
    (optional, any::<bool>(), any::<bool>()).prop_flat_map(|(optional, invoices, upper)| {
        let mut all: Vec<String> = DEBTOR_COLUMNS
            .iter()
            .chain(&optional)
            .map(|c| c.to_string())
            .collect();
        if invoices {
            all.extend(INVOICE_COLUMNS.iter().map(|c| c.to_string()));
        }
        if upper {
            all[0] = all[0].to_uppercase();
        }
        Just(all).prop_shuffle()
    })
}

/// A header and rows of cells for it, some rows blank.
fn sheet() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
    columns().prop_flat_map(|columns| {
        let row: Vec<BoxedStrategy<String>> = columns.iter().map(|c| cell(&c.to_lowercase())).collect();
        let rows = prop::collection::vec(prop_oneof![9 => row, 1 => Just(Vec::new())], 0..8);
        (Just(columns), rows)
    })
}

/// The file's text, and the line each row starts on (blank rows have none).
fn write(
    columns: &[String],
    rows: &[Vec<String>],
    separator: char,
    crlf: bool,
) -> (String, Vec<Option<u64>>) {
    let ending = if crlf { "\r\n" } else { "\n" };
    let mut text = columns.join(&separator.to_string());
    text.push_str(ending);
    let mut line = 2;
    let mut starts = Vec::new();
    for row in rows {
        let cells: Vec<String> = row.iter().map(|cell| written(cell, separator)).collect();
        let row_text = cells.join(&separator.to_string());
        starts.push((!row.is_empty()).then_some(line));
        line += line_breaks(&row_text) + 1;
        text.push_str(&row_text);
        text.push_str(ending);
    }
    (text, starts)
}

/// The module's rule for ambiguous amounts: a single separator with exactly 3 digits after it,
/// after a whole part that could lead a thousands grouping (1 to 3 digits, not starting with 0).
fn ambiguous(text: &str) -> bool {
    if text.matches(['.', ',']).count() != 1 {
        return false;
    }
    let Some((whole, fraction)) = text.split_once(['.', ',']) else {
        return false;
    };
    fraction.len() == 3 && (1..=3).contains(&whole.len()) && !whole.starts_with('0')
}

/// `digits` with `separator` between groups of 3, from the right.
fn grouped(digits: &str, separator: char) -> String {
    let mut out = String::new();
    for (n, digit) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(digit);
    }
    out
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes at all: a file error or rows, never a panic (the CLI reads whatever it is given).
    #[test]
    fn any_bytes_parse_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        match parse("t1", bytes.as_slice()) {
            Ok(parsed) => {
                for error in &parsed.errors {
                    prop_assert!(error.line >= 2, "a row error on the header line: {error:?}");
                }
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    /// Rows under a valid header: each row with something in it is read as a record or as
    /// errors, always on the line where the row starts, in order; no other line is reported.
    /// And a record carries only what the import checks: a known kind, a real date, an amount
    /// in a known currency.
    #[test]
    fn every_row_is_a_record_or_errors_on_its_own_line(
        (columns, rows) in sheet(),
        semicolons in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let separator = if semicolons { ';' } else { ',' };
        let (text, starts) = write(&columns, &rows, separator, crlf);
        let parsed = parse("t1", text.as_bytes()).expect("a valid header");
        let lines: BTreeSet<u64> = starts.iter().flatten().copied().collect();
        let mut reported = BTreeSet::new();
        let mut previous = 0;
        for record in &parsed.records {
            let line = u64::try_from(record.line).expect("a positive line");
            prop_assert!(lines.contains(&line), "record on line {line}, rows start on {lines:?}\n{text:?}");
            prop_assert!(line > previous, "records out of order");
            previous = line;
            reported.insert(line);
            let debtor = record.debtor.as_ref().expect("a record has its debtor");
            prop_assert!(DebtorKind::try_from(debtor.kind).is_ok_and(|kind| kind != DebtorKind::Unspecified));
            if let Some(invoice) = &record.invoice {
                for date in [&invoice.issue_date, &invoice.due_date] {
                    let date = date.as_ref().expect("a record's invoice has its dates");
                    prop_assert!(recobro_common::time::from_date(date).is_some(), "{date:?}");
                }
                let amount = invoice.amount.as_ref().expect("a record's invoice has its amount");
                prop_assert!(amount.amount_minor >= 0);
                prop_assert!(minor_unit_digits(&amount.currency).is_some(), "{}", amount.currency);
            }
        }
        for error in &parsed.errors {
            prop_assert!(lines.contains(&error.line), "error {error:?}, rows start on {lines:?}\n{text:?}");
            reported.insert(error.line);
        }
        // A row with a letter or digit in some cell is not blank: it must be reported.
        for (row, start) in rows.iter().zip(&starts) {
            let filled = row.iter().any(|cell| cell.chars().any(|c| c.is_ascii_alphanumeric()));
            if let (true, Some(line)) = (filled, start) {
                prop_assert!(reported.contains(line), "row on line {line} vanished\n{text:?}");
            }
        }
    }

    /// Amounts written the ways the module documents (decimal point or comma, with or without
    /// thousands separators, decimals cut short) come back exactly, in minor units; only the
    /// documented ambiguous form is refused, and it says so.
    #[test]
    fn an_amount_typed_as_documented_comes_back_exactly(
        amount_minor in prop_oneof![0_i64..10_000_000, 0..=i64::MAX],
        currency in select(vec!["COP", "EUR", "USD", "CLP", "JPY", "KWD", "BHD", "CLF"]),
        style in 0_u8..4,
        trim_zeros in any::<bool>(),
    ) {
        let exponent = minor_unit_digits(currency).expect("a known currency");
        let scale = 10_i64.pow(exponent);
        let whole = (amount_minor / scale).to_string();
        let mut fraction = match exponent {
            0 => String::new(),
            _ => format!("{:0width$}", amount_minor % scale, width = exponent as usize),
        };
        if trim_zeros {
            fraction = fraction.trim_end_matches('0').to_string();
        }
        let (whole, decimal) = match style {
            0 => (whole, '.'),
            1 => (whole, ','),
            2 => (grouped(&whole, '.'), ','),
            _ => (grouped(&whole, ','), '.'),
        };
        let text = if fraction.is_empty() { whole } else { format!("{whole}{decimal}{fraction}") };
        let parsed = amount_to_minor(&text, currency);
        if ambiguous(&text) {
            let err = parsed.expect_err("ambiguous");
            prop_assert!(err.contains("ambiguous"), "{text}: {err}");
        } else {
            prop_assert_eq!(parsed, Ok(amount_minor), "{} {}", text, currency);
        }
    }

    /// Any text as an amount: refused, or an amount owed (never negative).
    #[test]
    fn any_text_as_an_amount_is_refused_or_not_negative(
        text in "[0-9.,+ -]{0,24}|\\PC{0,12}",
        currency in select(vec!["COP", "CLP", "KWD", "CLF", "XXX"]),
    ) {
        if let Ok(amount) = amount_to_minor(&text, currency) {
            prop_assert!(amount >= 0, "{text:?} is {amount}");
        }
    }

    /// The server checks the rest of each record (names, zones, addresses); whatever it refuses
    /// is reported in a column of the file, so the spreadsheet's owner can find it.
    #[test]
    fn whatever_the_server_refuses_in_a_record_is_reported_in_a_column_of_the_file(
        (columns, rows) in sheet(),
    ) {
        let (text, _) = write(&columns, &rows, ',', false);
        let parsed = parse("t1", text.as_bytes()).expect("a valid header");
        let known: Vec<&str> = [DEBTOR_COLUMNS, OPTIONAL_COLUMNS, INVOICE_COLUMNS].concat();
        for record in &parsed.records {
            let debtor = domain::parse_debtor_input("t1", record.debtor.as_ref(), "import").err();
            let invoice = record
                .invoice
                .as_ref()
                .and_then(|invoice| domain::parse_invoice_input("t1", Some(invoice)).err());
            for err in debtor.into_iter().chain(invoice) {
                let AccountsError::Refused(Refusal::InvalidArgument { field, .. }) = err else {
                    return Err(TestCaseError::fail(format!("not a refusal naming a field: {err:?}")));
                };
                let column = column_of(&field, Some(record));
                prop_assert!(
                    known.contains(&column.as_str()) || column == "email/phone/whatsapp",
                    "{field} is reported as {column:?}"
                );
            }
        }
    }
}
