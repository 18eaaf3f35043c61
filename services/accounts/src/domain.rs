//! The ledger's rules for what an ERP may tell us, checked before anything is stored.

use chrono::NaiveDate;
use recobro_common::{money, time};
use recobro_proto::v1::{self as pb, DebtorKind, InvoiceEventKind, InvoiceStatus};
use uuid::Uuid;

use crate::error::AccountsError;

/// Namespace of Recobro's UUIDv5 ids.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_5a8e_7a1b_4c2e_9f3d_2b6e_1c4a_8e70);

/// A debtor's id: the same (tenant, external id) always gives the same id.
pub fn debtor_id(tenant_id: &str, external_id: &str) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("debtor/{tenant_id}/{external_id}").as_bytes(),
    )
}

pub fn invoice_id(tenant_id: &str, external_id: &str) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("invoice/{tenant_id}/{external_id}").as_bytes(),
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct Debtor {
    pub debtor_id: Uuid,
    pub tenant_id: String,
    pub external_id: String,
    pub name: String,
    pub kind: &'static str,
    pub time_zone: String,
    pub locale: String,
    pub country: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub invoice_id: Uuid,
    pub debtor_id: Uuid,
    pub tenant_id: String,
    pub external_id: String,
    pub number: String,
    pub amount_minor: i64,
    pub currency: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub status: &'static str,
    pub version: i64,
}

/// An ERP event that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceEvent {
    pub event_id: String,
    pub tenant_id: String,
    pub debtor: Debtor,
    pub invoice: Invoice,
}

fn invalid(field: &str, reason: impl Into<String>) -> AccountsError {
    AccountsError::InvalidArgument {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, AccountsError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.len() > 200 {
        return Err(invalid(field, "is longer than 200 characters"));
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

fn date(field: &str, value: Option<&pb::Date>) -> Result<NaiveDate, AccountsError> {
    let value = value.ok_or_else(|| invalid(field, "is required"))?;
    time::from_date(value).ok_or_else(|| invalid(field, "is not a calendar date"))
}

impl InvoiceEvent {
    pub fn parse(event: &pb::InvoiceEvent) -> Result<InvoiceEvent, AccountsError> {
        let event_id = required("event_id", &event.event_id)?.to_string();
        let tenant_id = tenant("tenant_id", &event.tenant_id)?;
        let kind = InvoiceEventKind::try_from(event.kind)
            .ok()
            .filter(|kind| *kind != InvoiceEventKind::Unspecified)
            .ok_or_else(|| invalid("kind", "must be ISSUED, UPDATED, PAID or CANCELLED"))?;
        if event.version <= 0 {
            return Err(invalid("version", "must be a positive number"));
        }
        let debtor = parse_debtor(&tenant_id, event.debtor.as_ref())?;
        let record = event
            .invoice
            .as_ref()
            .ok_or_else(|| invalid("invoice", "is required"))?;
        let external_id = required("invoice.external_id", &record.external_id)?.to_string();
        let number = required("invoice.number", &record.number)?.to_string();
        let amount = record
            .amount
            .as_ref()
            .ok_or_else(|| invalid("invoice.amount", "is required"))?;
        if amount.amount_minor < 0 {
            return Err(invalid("invoice.amount.amount_minor", "must not be negative"));
        }
        if money::minor_unit_digits(&amount.currency).is_none() {
            return Err(invalid(
                "invoice.amount.currency",
                "is not an ISO 4217 code such as COP or EUR",
            ));
        }
        let issue_date = date("invoice.issue_date", record.issue_date.as_ref())?;
        let due_date = date("invoice.due_date", record.due_date.as_ref())?;
        if due_date < issue_date {
            return Err(invalid("invoice.due_date", "is before invoice.issue_date"));
        }
        let status = match kind {
            InvoiceEventKind::Paid => "paid",
            InvoiceEventKind::Cancelled => "cancelled",
            _ => "open",
        };
        let invoice = Invoice {
            invoice_id: invoice_id(&tenant_id, &external_id),
            debtor_id: debtor.debtor_id,
            tenant_id: tenant_id.clone(),
            external_id,
            number,
            amount_minor: amount.amount_minor,
            currency: amount.currency.clone(),
            issue_date,
            due_date,
            status,
            version: event.version,
        };
        Ok(InvoiceEvent {
            event_id,
            tenant_id,
            debtor,
            invoice,
        })
    }
}

fn parse_debtor(tenant_id: &str, record: Option<&pb::DebtorRecord>) -> Result<Debtor, AccountsError> {
    let record = record.ok_or_else(|| invalid("debtor", "is required"))?;
    let external_id = required("debtor.external_id", &record.external_id)?.to_string();
    let name = required("debtor.name", &record.name)?.to_string();
    let kind = match DebtorKind::try_from(record.kind) {
        Ok(DebtorKind::Company) => "company",
        Ok(DebtorKind::Consumer) => "consumer",
        _ => return Err(invalid("debtor.kind", "must be COMPANY or CONSUMER")),
    };
    let time_zone = required("debtor.time_zone", &record.time_zone)?;
    if time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(invalid(
            "debtor.time_zone",
            "is not an IANA time zone such as America/Bogota",
        ));
    }
    let locale = required("debtor.locale", &record.locale)?;
    let language = locale.split(['-', '_']).next().unwrap_or_default();
    if !matches!(language, "es" | "pt" | "en") {
        return Err(invalid(
            "debtor.locale",
            "must be Spanish (es), Portuguese (pt) or English (en)",
        ));
    }
    let country = required("debtor.country", &record.country)?;
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(invalid(
            "debtor.country",
            "is not an ISO 3166-1 alpha-2 code such as CO",
        ));
    }
    let region = record.region.trim();
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
    let email = email("debtor.email", &record.email)?;
    let phone = phone("debtor.phone", &record.phone)?;
    if email.is_none() && phone.is_none() {
        return Err(invalid(
            "debtor.email",
            "an email or a phone is required to contact the debtor",
        ));
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
        email,
        phone,
        region,
    })
}

impl Debtor {
    pub fn to_proto(&self) -> pb::Debtor {
        pb::Debtor {
            debtor_id: self.debtor_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            kind: match self.kind {
                "company" => DebtorKind::Company,
                _ => DebtorKind::Consumer,
            } as i32,
            time_zone: self.time_zone.clone(),
            locale: self.locale.clone(),
            country: self.country.clone(),
            email: self.email.clone().unwrap_or_default(),
            phone: self.phone.clone().unwrap_or_default(),
            region: self.region.clone().unwrap_or_default(),
        }
    }
}

impl Invoice {
    pub fn to_proto(&self) -> pb::Invoice {
        pb::Invoice {
            invoice_id: self.invoice_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            debtor_id: self.debtor_id.to_string(),
            external_id: self.external_id.clone(),
            number: self.number.clone(),
            amount: Some(pb::Money {
                amount_minor: self.amount_minor,
                currency: self.currency.clone(),
            }),
            issue_date: Some(time::date(self.issue_date)),
            due_date: Some(time::date(self.due_date)),
            status: match self.status {
                "paid" => InvoiceStatus::Paid,
                "cancelled" => InvoiceStatus::Cancelled,
                _ => InvoiceStatus::Open,
            } as i32,
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn valid_event() -> pb::InvoiceEvent {
        pb::InvoiceEvent {
            event_id: "evt-1".into(),
            tenant_id: "acme".into(),
            kind: InvoiceEventKind::Issued as i32,
            version: 1,
            occurred_at: None,
            debtor: Some(pb::DebtorRecord {
                external_id: "C-1".into(),
                name: "Ferretería El Tornillo SAS".into(),
                kind: DebtorKind::Company as i32,
                time_zone: "America/Bogota".into(),
                locale: "es-CO".into(),
                country: "CO".into(),
                email: "tesoreria@tornillo.example".into(),
                phone: "+573001234567".into(),
                region: String::new(),
            }),
            invoice: Some(pb::InvoiceRecord {
                external_id: "F-100".into(),
                number: "FE-100".into(),
                amount: Some(pb::Money {
                    amount_minor: 125_000_00,
                    currency: "COP".into(),
                }),
                issue_date: Some(pb::Date {
                    year: 2026,
                    month: 10,
                    day: 1,
                }),
                due_date: Some(pb::Date {
                    year: 2026,
                    month: 10,
                    day: 31,
                }),
            }),
        }
    }

    fn field_of(err: AccountsError) -> String {
        match err {
            AccountsError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_event_parses_with_stable_ids() {
        let parsed = InvoiceEvent::parse(&valid_event()).expect("valid");
        assert_eq!(parsed.invoice.status, "open");
        assert_eq!(parsed.debtor.debtor_id, debtor_id("acme", "C-1"));
        assert_eq!(parsed.invoice.debtor_id, parsed.debtor.debtor_id);
        assert_ne!(debtor_id("acme", "C-1"), debtor_id("other", "C-1"));
    }

    /// Breaks one field of a valid event.
    type Breaker = Box<dyn Fn(&mut pb::InvoiceEvent)>;

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, Breaker)> = vec![
            ("tenant_id", Box::new(|e| e.tenant_id = "a b".into())),
            ("kind", Box::new(|e| e.kind = 0)),
            ("version", Box::new(|e| e.version = 0)),
            (
                "debtor.time_zone",
                Box::new(|e| e.debtor.as_mut().unwrap().time_zone = "Mars/Base".into()),
            ),
            (
                "debtor.phone",
                Box::new(|e| e.debtor.as_mut().unwrap().phone = "3001234567".into()),
            ),
            (
                "debtor.email",
                Box::new(|e| e.debtor.as_mut().unwrap().email = "nobody".into()),
            ),
            (
                "debtor.locale",
                Box::new(|e| e.debtor.as_mut().unwrap().locale = "fr".into()),
            ),
            (
                "debtor.country",
                Box::new(|e| e.debtor.as_mut().unwrap().country = "Colombia".into()),
            ),
            (
                "invoice.amount.currency",
                Box::new(|e| e.invoice.as_mut().unwrap().amount.as_mut().unwrap().currency = "PESOS".into()),
            ),
            (
                "invoice.amount.amount_minor",
                Box::new(|e| e.invoice.as_mut().unwrap().amount.as_mut().unwrap().amount_minor = -1),
            ),
            (
                "invoice.due_date",
                Box::new(|e| {
                    e.invoice.as_mut().unwrap().due_date = Some(pb::Date {
                        year: 2026,
                        month: 9,
                        day: 1,
                    })
                }),
            ),
            (
                "invoice.issue_date",
                Box::new(|e| {
                    e.invoice.as_mut().unwrap().issue_date = Some(pb::Date {
                        year: 2026,
                        month: 2,
                        day: 30,
                    })
                }),
            ),
        ];
        for (field, break_it) in cases {
            let mut event = valid_event();
            break_it(&mut event);
            let err = InvoiceEvent::parse(&event).expect_err(field);
            assert_eq!(field_of(err), field);
        }
    }

    #[test]
    fn a_debtor_needs_a_way_to_be_reached() {
        let mut event = valid_event();
        let debtor = event.debtor.as_mut().expect("set");
        debtor.email.clear();
        debtor.phone.clear();
        assert_eq!(
            field_of(InvoiceEvent::parse(&event).expect_err("unreachable")),
            "debtor.email"
        );
    }

    #[test]
    fn paid_and_cancelled_events_set_the_status() {
        let mut event = valid_event();
        event.kind = InvoiceEventKind::Paid as i32;
        assert_eq!(InvoiceEvent::parse(&event).expect("valid").invoice.status, "paid");
        event.kind = InvoiceEventKind::Cancelled as i32;
        assert_eq!(
            InvoiceEvent::parse(&event).expect("valid").invoice.status,
            "cancelled"
        );
    }
}
