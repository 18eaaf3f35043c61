//! What the edge accepts: every field a caller, a CSV row or an ERP event hands in, checked
//! and named when refused, before anything is stored.

use chrono::NaiveDate;
use recobro_common::grpc::Refusal;
use recobro_common::{Channel, money, time};
use recobro_proto::v1::{self as pb, InvoiceEventKind};
use uuid::Uuid;

use super::*;
use crate::error::AccountsError;
use crate::states::{Consent, ContactRole, DebtorKind, InvoiceStatus};

fn invalid(field: &str, reason: impl Into<String>) -> AccountsError {
    Refusal::invalid(field, reason).into()
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, AccountsError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.len() > 200 {
        return Err(invalid(field, "is longer than 200 characters"));
    }
    // PostgreSQL stores no NUL, and no name or id needs a control character.
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character"));
    }
    Ok(value)
}

pub fn tenant(field: &str, value: &str) -> Result<String, AccountsError> {
    let value = required(field, value)?;
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(field, "may hold only letters, digits, '-' and '_'"));
    }
    Ok(value.to_string())
}

pub fn uuid(field: &str, value: &str) -> Result<Uuid, AccountsError> {
    Uuid::parse_str(value.trim()).map_err(|_| invalid(field, "is not a UUID"))
}

/// E.164: '+', a country code not starting with 0, 8 to 15 digits in all.
pub fn phone(field: &str, value: &str) -> Result<Option<String>, AccountsError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let digits = value.strip_prefix('+').unwrap_or("");
    let valid = digits.len() >= 8
        && digits.len() <= 15
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if !valid {
        return Err(invalid(field, "is not an E.164 number such as +573001234567"));
    }
    Ok(Some(value.to_string()))
}

pub fn email(field: &str, value: &str) -> Result<Option<String>, AccountsError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let valid = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if !valid {
        return Err(invalid(field, "is not an email address"));
    }
    Ok(Some(value.to_string()))
}

/// A date the ledger takes: a real one, not absurdly far away (the same rule on gRPC, on Kafka
/// and in the CSV import).
fn date(field: &str, value: Option<&pb::Date>) -> Result<NaiveDate, AccountsError> {
    let value = value.ok_or_else(|| invalid(field, "is required"))?;
    time::ledger_date(value, chrono::Utc::now().date_naive()).map_err(|reason| invalid(field, &reason))
}

impl InvoiceEvent {
    pub fn parse(event: &pb::InvoiceEvent) -> Result<InvoiceEvent, AccountsError> {
        let event_id = required("event_id", &event.event_id)?.to_string();
        let tenant_id = tenant("tenant_id", &event.tenant_id)?;
        let kind = match InvoiceEventKind::try_from(event.kind) {
            Ok(InvoiceEventKind::Issued | InvoiceEventKind::Updated) => ErpKind::Upsert,
            Ok(InvoiceEventKind::Paid) => ErpKind::Paid,
            Ok(InvoiceEventKind::Cancelled) => ErpKind::Cancelled,
            Ok(InvoiceEventKind::CreditNote) => ErpKind::CreditNote,
            _ => {
                return Err(invalid(
                    "kind",
                    "must be ISSUED, UPDATED, PAID, CANCELLED or CREDIT_NOTE",
                ));
            }
        };
        if event.version <= 0 {
            return Err(invalid("version", "must be a positive number"));
        }
        let occurred_on = event
            .occurred_at
            .as_ref()
            .and_then(time::from_timestamp)
            .unwrap_or_else(chrono::Utc::now)
            .date_naive();
        let debtor = parse_debtor(&tenant_id, event.debtor.as_ref())?;
        let record = event
            .invoice
            .as_ref()
            .ok_or_else(|| invalid("invoice", "is required"))?;
        let status = match kind {
            ErpKind::Paid => InvoiceStatus::Paid,
            ErpKind::Cancelled => InvoiceStatus::Cancelled,
            _ => InvoiceStatus::Open,
        };
        let invoice = parse_invoice(&tenant_id, debtor.debtor_id, record, status, event.version)?;
        let credit_note = match (kind, event.credit_note.as_ref()) {
            (ErpKind::CreditNote, None) => {
                return Err(invalid("credit_note", "is required for CREDIT_NOTE events"));
            }
            (ErpKind::CreditNote, Some(note)) => {
                let amount = money_of("credit_note.amount", note.amount.as_ref())?;
                if amount.currency != invoice.currency {
                    return Err(invalid(
                        "credit_note.amount.currency",
                        "differs from the invoice's currency",
                    ));
                }
                if amount.amount_minor == 0 {
                    return Err(invalid("credit_note.amount.amount_minor", "must be positive"));
                }
                Some(CreditNote {
                    external_id: required("credit_note.external_id", &note.external_id)?.to_string(),
                    amount_minor: amount.amount_minor,
                    on: match note.issue_date.as_ref() {
                        Some(on) => date("credit_note.issue_date", Some(on))?,
                        None => occurred_on,
                    },
                })
            }
            _ => None,
        };
        Ok(InvoiceEvent {
            event_id,
            tenant_id,
            kind,
            occurred_on,
            debtor,
            invoice,
            credit_note,
        })
    }
}

/// The fields every debtor has, however it reaches us (ERP event or gRPC).
struct DebtorFields<'a> {
    external_id: &'a str,
    name: &'a str,
    kind: i32,
    time_zone: &'a str,
    locale: &'a str,
    country: &'a str,
    region: &'a str,
    segment: &'a str,
    risk_score: Option<i32>,
}

fn parse_fields(tenant_id: &str, f: DebtorFields<'_>) -> Result<Debtor, AccountsError> {
    let external_id = required("debtor.external_id", f.external_id)?.to_string();
    let name = required("debtor.name", f.name)?.to_string();
    let kind =
        DebtorKind::from_wire(f.kind).ok_or_else(|| invalid("debtor.kind", "must be COMPANY or CONSUMER"))?;
    let time_zone = required("debtor.time_zone", f.time_zone)?;
    if time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(invalid(
            "debtor.time_zone",
            "is not an IANA time zone such as America/Bogota",
        ));
    }
    let locale = required("debtor.locale", f.locale)?;
    let language = locale.split(['-', '_']).next().unwrap_or_default();
    if !matches!(language, "es" | "pt" | "en") {
        return Err(invalid(
            "debtor.locale",
            "must be Spanish (es), Portuguese (pt) or English (en)",
        ));
    }
    let country = required("debtor.country", f.country)?;
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(invalid(
            "debtor.country",
            "is not an ISO 3166-1 alpha-2 code such as CO",
        ));
    }
    let region = f.region.trim();
    let region = if region.is_empty() {
        None
    } else {
        let valid = region
            .strip_prefix(country)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|code| {
                (1..=3).contains(&code.len())
                    && code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            });
        if !valid {
            return Err(invalid(
                "debtor.region",
                "is not an ISO 3166-2 code of the debtor's country, such as BR-SP",
            ));
        }
        Some(region.to_string())
    };
    if let Some(score) = f.risk_score
        && !(0..=100).contains(&score)
    {
        return Err(invalid("debtor.risk_score", "must be between 0 and 100"));
    }
    if f.segment.len() > 64 {
        return Err(invalid("debtor.segment", "is longer than 64 characters"));
    }
    if f.segment.chars().any(char::is_control) {
        return Err(invalid("debtor.segment", "contains a control character"));
    }
    Ok(Debtor {
        debtor_id: debtor_id(tenant_id, &external_id),
        tenant_id: tenant_id.to_string(),
        external_id,
        name,
        kind,
        time_zone: time_zone.to_string(),
        locale: locale.to_string(),
        country: country.to_string(),
        email: None,
        phone: None,
        region,
        segment: f.segment.trim().to_string(),
        risk_score: f.risk_score,
        contacts: Vec::new(),
        legal_hold: None,
    })
}

/// An ERP's debtor record: one primary contact with the email and phone it gives, whose consent
/// comes from the ERP.
fn parse_debtor(tenant_id: &str, record: Option<&pb::DebtorRecord>) -> Result<Debtor, AccountsError> {
    let record = record.ok_or_else(|| invalid("debtor", "is required"))?;
    let mut debtor = parse_fields(
        tenant_id,
        DebtorFields {
            external_id: &record.external_id,
            name: &record.name,
            kind: record.kind,
            time_zone: &record.time_zone,
            locale: &record.locale,
            country: &record.country,
            region: &record.region,
            segment: &record.segment,
            risk_score: record.risk_score,
        },
    )?;
    let email = email("debtor.email", &record.email)?;
    let phone = phone("debtor.phone", &record.phone)?;
    if email.is_none() && phone.is_none() {
        return Err(invalid(
            "debtor.email",
            "an email or a phone is required to contact the debtor",
        ));
    }
    let contact_id = primary_contact_id(debtor.debtor_id);
    let mut points = Vec::new();
    for (channel, address) in [(Channel::Email, &email), (Channel::Sms, &phone)] {
        if let Some(address) = address {
            points.push(Point {
                point_id: point_id(contact_id, channel, address),
                channel,
                address: address.clone(),
                consent: Consent::Granted,
                source: "erp".into(),
                consent_at: None,
                preferred: points.is_empty(),
                retired: None,
            });
        }
    }
    debtor.contacts = vec![Contact {
        contact_id,
        name: debtor.name.clone(),
        role: ContactRole::Other,
        points,
    }];
    debtor.email = email;
    debtor.phone = phone;
    Ok(debtor)
}

/// The contact an ERP's debtor record describes: its email and phone are this contact's points.
pub fn primary_contact_id(debtor_id: Uuid) -> Uuid {
    Uuid::new_v5(&debtor_id, b"contact/primary")
}

fn point_id(contact_id: Uuid, channel: Channel, address: &str) -> Uuid {
    Uuid::new_v5(&contact_id, format!("{}/{address}", channel.as_str()).as_bytes())
}

/// The most contacts one debtor may have, and contact points one contact: far above any real
/// company's, and a bound on what one record makes every service store and publish.
pub const MAX_CONTACTS: usize = 50;
pub const MAX_POINTS_PER_CONTACT: usize = 20;

/// A debtor as the gRPC API gives it, with its contacts. Consent not stated is granted, with
/// `default_source` ("api", "import") unless the point says where it came from; a withdrawn
/// consent already on file is never re-granted by an upsert.
pub fn parse_debtor_input(
    tenant_id: &str,
    input: Option<&pb::DebtorInput>,
    default_source: &str,
) -> Result<Debtor, AccountsError> {
    let input = input.ok_or_else(|| invalid("debtor", "is required"))?;
    let mut debtor = parse_fields(
        tenant_id,
        DebtorFields {
            external_id: &input.external_id,
            name: &input.name,
            kind: input.kind,
            time_zone: &input.time_zone,
            locale: &input.locale,
            country: &input.country,
            region: &input.region,
            segment: &input.segment,
            risk_score: input.risk_score,
        },
    )?;
    if input.contacts.len() > MAX_CONTACTS {
        return Err(invalid(
            "debtor.contacts",
            format!("holds {} contacts; at most {MAX_CONTACTS}", input.contacts.len()),
        ));
    }
    for (c, contact) in input.contacts.iter().enumerate() {
        let field = |rest: &str| format!("debtor.contacts[{c}].{rest}");
        if contact.points.len() > MAX_POINTS_PER_CONTACT {
            return Err(invalid(
                &field("points"),
                format!(
                    "holds {} points; at most {MAX_POINTS_PER_CONTACT}",
                    contact.points.len()
                ),
            ));
        }
        let name = required(&field("name"), &contact.name)?.to_string();
        let role = ContactRole::from_wire(contact.role)
            .ok_or_else(|| invalid(&field("role"), "is not a known role"))?;
        let key = if contact.contact_id.trim().is_empty() {
            name.to_lowercase()
        } else {
            contact.contact_id.trim().to_string()
        };
        let contact_id = Uuid::new_v5(&debtor.debtor_id, format!("contact/{key}").as_bytes());
        let mut points = Vec::new();
        for (p, point) in contact.points.iter().enumerate() {
            let field = |rest: &str| field(&format!("points[{p}].{rest}"));
            let (channel, address) = match pb::Channel::try_from(point.channel) {
                Ok(pb::Channel::Email) => (Channel::Email, email(&field("address"), &point.address)?),
                Ok(pb::Channel::Sms) => (Channel::Sms, phone(&field("address"), &point.address)?),
                Ok(pb::Channel::Whatsapp) => (Channel::Whatsapp, phone(&field("address"), &point.address)?),
                _ => return Err(invalid(&field("channel"), "must be EMAIL, SMS or WHATSAPP")),
            };
            let address = address.ok_or_else(|| invalid(&field("address"), "is required"))?;
            // Consent not stated is granted (as are numbers this build does not know).
            let consent = Consent::from_wire(point.consent).unwrap_or(Consent::Granted);
            let source = if point.consent_source.trim().is_empty() {
                default_source
            } else {
                point.consent_source.trim()
            };
            points.push(Point {
                point_id: point_id(contact_id, channel, &address),
                channel,
                address,
                consent,
                source: source.to_string(),
                consent_at: None,
                preferred: point.preferred,
                retired: None,
            });
        }
        debtor.contacts.push(Contact {
            contact_id,
            name,
            role,
            points,
        });
    }
    let usable = |channel: Channel| {
        let mut candidates: Vec<&Point> = debtor
            .contacts
            .iter()
            .flat_map(|c| c.points.iter())
            .filter(|p| p.channel == channel && p.consent == Consent::Granted)
            .collect();
        candidates.sort_by_key(|p| !p.preferred);
        candidates.first().map(|p| p.address.clone())
    };
    debtor.email = usable(Channel::Email);
    debtor.phone = usable(Channel::Sms).or_else(|| usable(Channel::Whatsapp));
    if debtor.contacts.iter().all(|c| c.points.is_empty()) {
        return Err(invalid(
            "debtor.contacts",
            "at least one contact point (email, SMS or WhatsApp) is required",
        ));
    }
    Ok(debtor)
}

/// An invoice as the gRPC API gives it. Its version is the time of the call, so the latest
/// call wins.
pub fn parse_invoice_input(
    tenant_id: &str,
    input: Option<&pb::InvoiceInput>,
) -> Result<Invoice, AccountsError> {
    let input = input.ok_or_else(|| invalid("invoice", "is required"))?;
    let debtor_external = required("invoice.debtor_external_id", &input.debtor_external_id)?;
    let record = pb::InvoiceRecord {
        external_id: input.external_id.clone(),
        number: input.number.clone(),
        amount: input.amount.clone(),
        issue_date: input.issue_date,
        due_date: input.due_date,
    };
    let version = chrono::Utc::now().timestamp_micros();
    parse_invoice(
        tenant_id,
        debtor_id(tenant_id, debtor_external),
        &record,
        InvoiceStatus::Open,
        version,
    )
}

fn parse_invoice(
    tenant_id: &str,
    debtor_id: Uuid,
    record: &pb::InvoiceRecord,
    status: InvoiceStatus,
    version: i64,
) -> Result<Invoice, AccountsError> {
    let external_id = required("invoice.external_id", &record.external_id)?.to_string();
    let number = required("invoice.number", &record.number)?.to_string();
    let amount = money_of("invoice.amount", record.amount.as_ref())?;
    let issue_date = date("invoice.issue_date", record.issue_date.as_ref())?;
    let due_date = date("invoice.due_date", record.due_date.as_ref())?;
    if due_date < issue_date {
        return Err(invalid("invoice.due_date", "is before invoice.issue_date"));
    }
    Ok(Invoice {
        invoice_id: invoice_id(tenant_id, &external_id),
        debtor_id,
        tenant_id: tenant_id.to_string(),
        external_id,
        number,
        amount_minor: amount.amount_minor,
        currency: amount.currency,
        issue_date,
        due_date,
        status,
        version,
    })
}

/// An amount: not negative, in an ISO 4217 currency.
pub fn money_of(field: &str, money: Option<&pb::Money>) -> Result<pb::Money, AccountsError> {
    let money = money.ok_or_else(|| invalid(field, "is required"))?;
    if money.amount_minor < 0 {
        return Err(invalid(&format!("{field}.amount_minor"), "must not be negative"));
    }
    if money::minor_unit_digits(&money.currency).is_none() {
        return Err(invalid(
            &format!("{field}.currency"),
            "is not an ISO 4217 code such as COP or EUR",
        ));
    }
    Ok(money.clone())
}

pub fn required_date(field: &str, value: Option<&pb::Date>) -> Result<NaiveDate, AccountsError> {
    date(field, value)
}
