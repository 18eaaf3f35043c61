//! Debtors and invoices from a CSV file, the way SMEs keep them in spreadsheets, turned into
//! [`ImportRecord`]s for `AccountsService.BulkImport`. Parsing only: nothing here talks to a
//! server, so every rule below is unit-tested without one. `recobro-import` is the CLI on top.
//!
//! # Format
//!
//! UTF-8 text (the byte-order mark Excel writes is fine; "CSV UTF-8" in Excel's save dialog).
//! Fields are separated by commas, or by semicolons as spreadsheets in decimal-comma locales
//! save them: whichever of the two the header row uses more. A field containing the separator
//! is quoted (`"1.250.000,50"` in a comma-separated file).
//!
//! The first line is the header naming the columns, in any order, case-insensitive. A column
//! not listed here is an error; so is a missing column that is not optional.
//!
//! | column | content |
//! |---|---|
//! | `debtor_id` | the debtor's id in your books; required in every row |
//! | `debtor_name` | |
//! | `kind` | `company` or `consumer` |
//! | `time_zone` | IANA name, e.g. `America/Bogota` |
//! | `locale` | e.g. `es-CO` |
//! | `country` | ISO 3166 alpha-2, e.g. `CO` |
//! | `region`, `segment` | optional columns |
//! | `contact_name` | optional column; defaults to `debtor_name` |
//! | `contact_role` | optional column: `treasury`, `accounts_payable`, `purchasing`, `decision_maker` or `other` |
//! | `email`, `phone` (SMS), `whatsapp` | optional columns; numbers in E.164, e.g. `+573001234567` |
//! | `invoice_id`, `invoice_number` | |
//! | `amount` | in major units, see below |
//! | `currency` | ISO 4217 code, e.g. `COP` |
//! | `issue_date`, `due_date` | `YYYY-MM-DD` |
//!
//! The six invoice columns go together: a file of debtors only may leave all of them out.
//!
//! One row is one debtor and one invoice. A row whose invoice cells are all empty imports the
//! debtor only. Rows may repeat a debtor (one row per invoice): each carries it again and the
//! server upserts it. Rows whose cells are all empty are skipped.
//!
//! Amounts are written as people type them: `1250000.50`, `1250000,50`, `1.250.000,50` or
//! `1,250,000.50`. A thousands separator must separate well-formed groups of 3 digits and
//! there is at most one decimal separator, after them. A single separator followed by exactly 3
//! digits (`1.250`, `45,000`) is rejected as ambiguous: it could mean thousands or decimals,
//! and guessing wrong would dun someone for a thousand times what they owe. Decimals beyond the
//! currency's minor unit (`1250,50` CLP, `12.345,678` COP) and negative amounts are rejected.
//!
//! A row with a malformed cell (CSV syntax, amount, date, currency, kind, role) is reported with
//! its line (the header is line 1) and column, and left out of the records; the server checks
//! the rest (names, time zones, addresses...) and reports by the same line numbers.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use recobro_common::money::minor_unit_digits;
use recobro_proto::v1::{
    Channel, Contact, ContactPoint, ContactRole, Date, DebtorInput, DebtorKind, ImportRecord, InvoiceInput,
    Money,
};

/// Where imported consent comes from, so it can be told apart from consent given in other ways.
const CONSENT_SOURCE: &str = "csv-import";

const DEBTOR_COLUMNS: &[&str] = &[
    "debtor_id",
    "debtor_name",
    "kind",
    "time_zone",
    "locale",
    "country",
];
const OPTIONAL_COLUMNS: &[&str] = &[
    "region",
    "segment",
    "contact_name",
    "contact_role",
    "email",
    "phone",
    "whatsapp",
];
const INVOICE_COLUMNS: &[&str] = &[
    "invoice_id",
    "invoice_number",
    "amount",
    "currency",
    "issue_date",
    "due_date",
];

/// The rows that parsed, ready to send, and what was wrong with the others.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<ImportRecord>,
    pub errors: Vec<RowError>,
}

impl Parsed {
    /// Rows left out; one row may have several errors.
    pub fn rejected_rows(&self) -> usize {
        let mut lines: Vec<u64> = self.errors.iter().map(|e| e.line).collect();
        lines.dedup();
        lines.len()
    }
}

/// One problem with one row. `column` is empty when the row as a whole is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

/// Problems with the file as a whole: nothing in it can be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    Unreadable(String),
    NotUtf8 {
        line: u64,
    },
    Empty,
    Columns {
        unknown: Vec<String>,
        missing: Vec<String>,
        duplicate: Vec<String>,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Unreadable(reason) => write!(f, "cannot read the file: {reason}"),
            FileError::NotUtf8 { line } => write!(
                f,
                "line {line}: the file is not UTF-8 text; save it as \"CSV UTF-8\" and try again"
            ),
            FileError::Empty => write!(f, "line 1: the file is empty; it needs a header row"),
            FileError::Columns {
                unknown,
                missing,
                duplicate,
            } => {
                let mut problems = Vec::new();
                if !unknown.is_empty() {
                    problems.push(format!("unknown column(s) {}", unknown.join(", ")));
                }
                if !missing.is_empty() {
                    problems.push(format!("missing column(s) {}", missing.join(", ")));
                }
                if !duplicate.is_empty() {
                    problems.push(format!("repeated column(s) {}", duplicate.join(", ")));
                }
                let known: Vec<&str> = [DEBTOR_COLUMNS, OPTIONAL_COLUMNS, INVOICE_COLUMNS].concat();
                write!(
                    f,
                    "line 1: {}; the columns are {}",
                    problems.join("; "),
                    known.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for FileError {}

/// Parses a whole file into records for `tenant_id`. Row problems are collected in
/// [`Parsed::errors`]; only a file that cannot be read at all, or a bad header, is an `Err`.
pub fn parse(tenant_id: &str, mut reader: impl Read) -> Result<Parsed, FileError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|err| FileError::Unreadable(err.to_string()))?;
    // Excel's default "CSV" is Windows-1252; guessing an encoding could put mangled names in
    // front of debtors, so anything but UTF-8 is turned away whole.
    let text = std::str::from_utf8(&bytes).map_err(|err| FileError::NotUtf8 {
        line: 1 + bytes[..err.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter(text))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = csv
        .headers()
        .map_err(|err| FileError::Unreadable(err.to_string()))?;
    let columns = Columns::new(header)?;
    let mut lines = Lines {
        text: text.as_bytes(),
        at: 0,
        line: 1,
    };
    let mut parsed = Parsed::default();
    for row in csv.records() {
        match row {
            Ok(row) => {
                if row.iter().all(str::is_empty) {
                    continue;
                }
                let line = lines.of(row.position());
                match columns.record(tenant_id, &row, line) {
                    Ok(record) => parsed.records.push(record),
                    Err(errors) => parsed.errors.extend(errors),
                }
            }
            Err(err) => {
                let line = lines.of(err.position());
                parsed.errors.push(syntax_error(&err, line));
            }
        }
    }
    Ok(parsed)
}

/// Line numbers of records, counted in the text. The csv crate's own `Position::line` skips
/// blank lines and miscounts CRLF endings (what Excel writes), and its byte offset points at
/// the line ending before the record; so this skips line endings from that offset and counts
/// line breaks up to there, moving forward only, since records come in order.
struct Lines<'t> {
    text: &'t [u8],
    /// Where counting got to, and the line number there.
    at: usize,
    line: u64,
}

impl Lines<'_> {
    fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return self.line;
        };
        let mut start = usize::try_from(position.byte()).map_or(self.text.len(), |b| b.min(self.text.len()));
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        for i in self.at..start {
            // LF, CRLF and a lone CR each end one line.
            let end = match self.text[i] {
                b'\n' => true,
                b'\r' => self.text.get(i + 1) != Some(&b'\n'),
                _ => false,
            };
            self.line += u64::from(end);
        }
        self.at = self.at.max(start);
        self.line
    }
}

/// Semicolons when the header uses more of them than commas: what spreadsheets write in
/// locales where the comma is the decimal separator.
fn delimiter(text: &str) -> u8 {
    let header = text.split(['\r', '\n']).next().unwrap_or_default();
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

fn syntax_error(err: &csv::Error, line: u64) -> RowError {
    let reason = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            // Extra fields are most often an unquoted decimal comma.
            let hint = if len > expected_len {
                " (an amount with a decimal comma must be quoted: \"1250,50\")"
            } else {
                ""
            };
            format!("has {len} fields but the header has {expected_len}{hint}")
        }
        _ => err.to_string(),
    };
    RowError {
        line,
        column: String::new(),
        reason,
    }
}

/// Where each known column is in the file.
struct Columns {
    index: HashMap<&'static str, usize>,
}

impl Columns {
    fn new(header: &csv::StringRecord) -> Result<Columns, FileError> {
        if header.iter().all(str::is_empty) {
            return Err(FileError::Empty);
        }
        let known: Vec<&'static str> = [DEBTOR_COLUMNS, OPTIONAL_COLUMNS, INVOICE_COLUMNS].concat();
        let mut index = HashMap::new();
        let (mut unknown, mut duplicate) = (Vec::new(), Vec::new());
        for (i, name) in header.iter().enumerate() {
            let lower = name.to_lowercase();
            match known.iter().find(|k| **k == lower) {
                Some(k) => {
                    if index.insert(*k, i).is_some() && !duplicate.contains(&k.to_string()) {
                        duplicate.push(k.to_string());
                    }
                }
                None if name.is_empty() => unknown.push(format!("(unnamed column {})", i + 1)),
                None => unknown.push(name.to_string()),
            }
        }
        let mut missing: Vec<String> = DEBTOR_COLUMNS
            .iter()
            .filter(|c| !index.contains_key(*c))
            .map(|c| c.to_string())
            .collect();
        // Invoice columns all together or not at all: a debtors-only file needs none of them.
        if INVOICE_COLUMNS.iter().any(|c| index.contains_key(c)) {
            missing.extend(
                INVOICE_COLUMNS
                    .iter()
                    .filter(|c| !index.contains_key(*c))
                    .map(|c| c.to_string()),
            );
        }
        if unknown.is_empty() && missing.is_empty() && duplicate.is_empty() {
            Ok(Columns { index })
        } else {
            Err(FileError::Columns {
                unknown,
                missing,
                duplicate,
            })
        }
    }

    /// The trimmed cell, or "" when the file has no such column.
    fn cell<'r>(&self, row: &'r csv::StringRecord, column: &str) -> &'r str {
        self.index
            .get(column)
            .and_then(|&i| row.get(i))
            .unwrap_or_default()
    }

    fn record(
        &self,
        tenant_id: &str,
        row: &csv::StringRecord,
        line: u64,
    ) -> Result<ImportRecord, Vec<RowError>> {
        let mut errors = RowErrors {
            line,
            errors: Vec::new(),
        };
        let cell = |column: &str| self.cell(row, column);
        let kind = errors.check("kind", debtor_kind(cell("kind")));
        let role = errors.check("contact_role", contact_role(cell("contact_role")));
        let invoice = if INVOICE_COLUMNS.iter().all(|c| cell(c).is_empty()) {
            None
        } else {
            let currency = cell("currency").to_uppercase();
            let amount = match errors.check("currency", currency_code(&currency)) {
                Some(()) => errors.check("amount", amount_to_minor(cell("amount"), &currency)),
                None => None,
            };
            let issue_date = errors.check("issue_date", date(cell("issue_date")));
            let due_date = errors.check("due_date", date(cell("due_date")));
            Some(InvoiceInput {
                debtor_external_id: cell("debtor_id").to_string(),
                external_id: cell("invoice_id").to_string(),
                number: cell("invoice_number").to_string(),
                amount: amount.map(|amount_minor| Money {
                    amount_minor,
                    currency,
                }),
                issue_date,
                due_date,
            })
        };
        let (Some(kind), Some(role), true) = (kind, role, errors.errors.is_empty()) else {
            return Err(errors.errors);
        };
        let debtor_name = cell("debtor_name");
        let contact_name = Some(cell("contact_name"))
            .filter(|name| !name.is_empty())
            .unwrap_or(debtor_name);
        let points: Vec<ContactPoint> = [
            (Channel::Email, cell("email")),
            (Channel::Sms, cell("phone")),
            (Channel::Whatsapp, cell("whatsapp")),
        ]
        .into_iter()
        .filter(|(_, address)| !address.is_empty())
        .map(|(channel, address)| ContactPoint {
            channel: channel as i32,
            address: address.to_string(),
            consent_source: CONSENT_SOURCE.to_string(),
            ..ContactPoint::default()
        })
        .collect();
        // No contact at all rather than one without points: the server then says plainly that
        // the debtor needs an email, SMS or WhatsApp.
        let contacts = if points.is_empty() {
            Vec::new()
        } else {
            vec![Contact {
                contact_id: String::new(),
                name: contact_name.to_string(),
                role: role as i32,
                points,
            }]
        };
        Ok(ImportRecord {
            tenant_id: tenant_id.to_string(),
            line: i64::try_from(line).unwrap_or(i64::MAX),
            debtor: Some(DebtorInput {
                external_id: cell("debtor_id").to_string(),
                name: debtor_name.to_string(),
                kind: kind as i32,
                time_zone: cell("time_zone").to_string(),
                locale: cell("locale").to_string(),
                country: cell("country").to_string(),
                region: cell("region").to_string(),
                segment: cell("segment").to_string(),
                risk_score: None,
                contacts,
            }),
            invoice,
        })
    }
}

/// The CSV column a server error's field points at, so the report speaks the spreadsheet's
/// language: `debtor.time_zone` is `time_zone`, and a contact point is the `email`, `phone` or
/// `whatsapp` cell it came from in `record`. Fields it does not know are kept as they are.
pub fn column_of(field: &str, record: Option<&ImportRecord>) -> String {
    let column = match field {
        "debtor.external_id" | "invoice.debtor_external_id" => "debtor_id",
        "debtor.name" => "debtor_name",
        "debtor.kind" => "kind",
        "debtor.time_zone" => "time_zone",
        "debtor.locale" => "locale",
        "debtor.country" => "country",
        "debtor.region" => "region",
        "debtor.segment" => "segment",
        "debtor.contacts" => "email/phone/whatsapp",
        "invoice.external_id" => "invoice_id",
        "invoice.number" => "invoice_number",
        "invoice.amount" | "invoice.amount.amount_minor" => "amount",
        "invoice.amount.currency" => "currency",
        "invoice.issue_date" => "issue_date",
        "invoice.due_date" => "due_date",
        _ => contact_column(field, record).unwrap_or(field),
    };
    column.to_string()
}

/// Rows carry at most one contact, whose points follow the email, phone, whatsapp columns.
fn contact_column(field: &str, record: Option<&ImportRecord>) -> Option<&'static str> {
    let rest = field.strip_prefix("debtor.contacts[0].")?;
    match rest {
        "name" => return Some("contact_name"),
        "role" => return Some("contact_role"),
        _ => {}
    }
    let (index, _) = rest.strip_prefix("points[")?.split_once(']')?;
    let index: usize = index.parse().ok()?;
    let point = record?.debtor.as_ref()?.contacts.first()?.points.get(index)?;
    match Channel::try_from(point.channel).ok()? {
        Channel::Email => Some("email"),
        Channel::Sms => Some("phone"),
        Channel::Whatsapp => Some("whatsapp"),
        Channel::Unspecified => None,
    }
}

/// The problems found in one row, each with its column.
struct RowErrors {
    line: u64,
    errors: Vec<RowError>,
}

impl RowErrors {
    fn check<T>(&mut self, column: &str, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|reason| {
                self.errors.push(RowError {
                    line: self.line,
                    column: column.to_string(),
                    reason,
                })
            })
            .ok()
    }
}

fn debtor_kind(text: &str) -> Result<DebtorKind, String> {
    match text.to_lowercase().as_str() {
        "company" => Ok(DebtorKind::Company),
        "consumer" => Ok(DebtorKind::Consumer),
        "" => Err("is empty; write company or consumer".to_string()),
        _ => Err(format!("{text:?} is not a kind; write company or consumer")),
    }
}

fn contact_role(text: &str) -> Result<ContactRole, String> {
    match text.to_lowercase().as_str() {
        "" => Ok(ContactRole::Unspecified),
        "treasury" => Ok(ContactRole::Treasury),
        "accounts_payable" => Ok(ContactRole::AccountsPayable),
        "purchasing" => Ok(ContactRole::Purchasing),
        "decision_maker" => Ok(ContactRole::DecisionMaker),
        "other" => Ok(ContactRole::Other),
        _ => Err(format!(
            "{text:?} is not a role; write treasury, accounts_payable, purchasing, decision_maker or other"
        )),
    }
}

fn currency_code(code: &str) -> Result<(), String> {
    if code.is_empty() {
        return Err("is empty; an invoice needs its ISO 4217 currency, e.g. COP".to_string());
    }
    match minor_unit_digits(code) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{code:?} is not a supported ISO 4217 currency code such as COP or EUR"
        )),
    }
}

/// A `YYYY-MM-DD` date that exists in the calendar.
fn date(text: &str) -> Result<Date, String> {
    if text.is_empty() {
        return Err("is empty; an invoice needs it, as YYYY-MM-DD".to_string());
    }
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let not_a_date = || format!("{text:?} is not a date written YYYY-MM-DD, e.g. 2025-03-31");
    if !shaped {
        return Err(not_a_date());
    }
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .and_then(|digits| digits.parse::<u32>().ok())
            .ok_or_else(not_a_date)
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if chrono::NaiveDate::from_ymd_opt(year as i32, month, day).is_none() {
        return Err(format!("{text:?} is not a day of the calendar"));
    }
    Ok(Date {
        year: year as i32,
        month: month as i32,
        day: day as i32,
    })
}

/// An amount in major units, as typed in a spreadsheet, in the currency's minor units: "1.250.000,50"
/// COP is 125000050. Exact digit arithmetic throughout; floating point would round.
pub fn amount_to_minor(text: &str, currency: &str) -> Result<i64, String> {
    let exponent = minor_unit_digits(currency)
        .ok_or_else(|| format!("{currency:?} is not a supported ISO 4217 currency code"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty; an invoice needs its amount".to_string());
    }
    if text.starts_with('-') {
        return Err(format!("{text:?} is negative; write what is owed, zero or more"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii_digit() && *c != '.' && *c != ',')
    {
        return Err(format!(
            "{text:?} is not an amount: {c:?} is neither a digit nor a separator \
             (write e.g. 1250000.50 or 1.250.000,50)"
        ));
    }
    let (whole, fraction) = split_amount(text)?;
    if whole.is_empty() {
        return Err(format!("{text:?} needs a digit before the decimal separator"));
    }
    if fraction.len() > exponent as usize {
        return Err(match exponent {
            0 => format!("{text:?} has decimals but {currency} has no minor units"),
            _ => format!("{text:?} has more than the {exponent} decimals {currency} allows"),
        });
    }
    // Pad the decimals to the currency's exponent: "1,5" COP is 1 and 50 cents.
    let padded = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(exponent as usize);
    whole
        .chars()
        .chain(padded)
        .try_fold(0i64, |total, digit| {
            let digit = i64::from(digit.to_digit(10)?);
            total.checked_mul(10)?.checked_add(digit)
        })
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Splits an amount of digits, '.' and ',' into its whole digits (thousands separators
/// removed) and its decimal digits.
fn split_amount(text: &str) -> Result<(String, &str), String> {
    let dots = text.matches('.').count();
    let commas = text.matches(',').count();
    let (whole, fraction, thousands) = match (dots, commas) {
        (0, 0) => (text, "", None),
        (1, 0) | (0, 1) => {
            let separator = if dots == 1 { '.' } else { ',' };
            let (whole, fraction) = text.split_once(separator).unwrap_or((text, ""));
            if fraction.is_empty() {
                return Err(format!("{text:?} has no digits after the decimal separator"));
            }
            // "1.250" reads as 1250 or as 1.25; only a whole part that cannot start a thousands
            // grouping ("0.250", "1250.500") settles it.
            if fraction.len() == 3 && group_head(whole) {
                let plain = format!("{whole}{fraction}");
                return Err(format!(
                    "{text:?} is ambiguous: {separator:?} before exactly 3 digits may separate thousands \
                     or decimals; write {plain} if thousands are meant"
                ));
            }
            (whole, fraction, None)
        }
        // One kind of separator, several times: only thousands separators repeat.
        (_, 0) => (text, "", Some('.')),
        (0, _) => (text, "", Some(',')),
        // Both kinds: the last one is the decimal separator, the other separates thousands.
        _ => {
            let Some(at) = text.rfind(['.', ',']) else {
                return Err(format!("{text:?} is not an amount"));
            };
            let (decimal, thousands) = if text[at..].starts_with('.') {
                ('.', ',')
            } else {
                (',', '.')
            };
            if text.matches(decimal).count() > 1 {
                return Err(format!(
                    "{text:?} is not an amount: {decimal:?} appears more than once but also ends it as \
                     the decimal separator"
                ));
            }
            let fraction = &text[at + 1..];
            if fraction.is_empty() {
                return Err(format!("{text:?} has no digits after the decimal separator"));
            }
            (&text[..at], fraction, Some(thousands))
        }
    };
    let Some(separator) = thousands else {
        return Ok((whole.to_string(), fraction));
    };
    let mut groups = whole.split(separator);
    let well_formed = groups.next().is_some_and(group_head) && groups.all(|g| g.len() == 3);
    if !well_formed {
        return Err(format!(
            "{text:?} is not an amount: the thousands separator {separator:?} must separate groups of 3 \
             digits, as in 1.250.000,50 or 1,250,000.50"
        ));
    }
    Ok((whole.replace(separator, ""), fraction))
}

/// Whether digits can lead a thousands grouping: 1 to 3 of them, not starting with 0.
fn group_head(digits: &str) -> bool {
    (1..=3).contains(&digits.len()) && !digits.starts_with('0')
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
