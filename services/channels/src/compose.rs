//! What a reminder says: the template variables in the debtor's locale, and the rendered
//! subject and body (a template, or one-off free-form text). Whom it goes to is `recipient`'s.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use recobro_common::time;
use recobro_rules::{Applied, Channel};

use crate::locale;
use crate::payments::PaymentLinks;
use crate::reminder::Reminder;
use crate::templates::{self, Rendered, Wordings, statement};

/// Template variables, by name (see `templates::VARIABLES`).
pub type Variables = HashMap<&'static str, String>;

/// The variables a template may use, in the debtor's locale.
pub fn variables(reminder: &Reminder, rules: &Applied<'_>, links: &PaymentLinks) -> Variables {
    let debtor = &reminder.debtor;
    let invoice = reminder.event.invoice.clone().unwrap_or_default();
    let mut variables = HashMap::from([
        ("debtor_name", debtor.name.clone()),
        ("invoice_number", invoice.number),
        ("payment_link", invoice_link(links, reminder, &invoice.invoice_id)),
    ]);
    // An instalment's own amount; else what is still owed, after partial payments and credit
    // notes, is what the debtor reads.
    if let Some(text) = reminder
        .event
        .amount_due
        .as_ref()
        .or(invoice.outstanding.as_ref().filter(|owed| owed.amount_minor > 0))
        .or(invoice.amount.as_ref())
        .and_then(|amount| locale::format_money(amount.amount_minor, &amount.currency, &debtor.locale))
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
        variables.insert("due_date", locale::format_date(due, &debtor.locale));
    }
    if let Some(sentence) = rules.opt_out_sentence(templates::language(&debtor.locale)) {
        variables.insert("opt_out", sentence.to_string());
    }
    variables
}

/// The invoice's payment link, bound to the reminder's tenant. An invoice id that is not a UUID
/// (accounts always publishes UUIDs) gives the nil id's link, which opens the "not valid" page.
fn invoice_link(links: &PaymentLinks, reminder: &Reminder, invoice_id: &impl ToString) -> String {
    let invoice_id = uuid::Uuid::parse_str(&invoice_id.to_string()).unwrap_or_default();
    links.url(&reminder.event.tenant_id, invoice_id)
}

/// A statement as it goes: the template of the most advanced step's tone in the form the
/// channel takes (a list by email, a summary by SMS and WhatsApp), one line per covered invoice
/// in the order given, and the total per currency. Returns the template id it used with the
/// statement's variables (what a WhatsApp template's parameters come from).
pub fn render_statement(
    reminder: &Reminder,
    rules: &Applied<'_>,
    links: &PaymentLinks,
    wordings: &Wordings,
    now: DateTime<Utc>,
) -> Result<(&'static str, Variables, Rendered), String> {
    let debtor = &reminder.debtor;
    let locale = debtor.locale.as_str();
    let tone = statement::Tone::most_advanced(reminder.covered.iter().map(|c| c.template_id.as_str()))
        .ok_or_else(|| {
            "statement: no covered step has a statement form (preventive, overdue, final_notice)".to_string()
        })?;
    let template_id = statement::template_id(tone, statement::Form::for_channel(reminder.channel));
    let today = now.with_timezone(&reminder.time_zone).date_naive();
    let mut lines = Vec::with_capacity(reminder.covered.len());
    let mut owed = Vec::with_capacity(reminder.covered.len());
    for covered in &reminder.covered {
        let invoice = &covered.invoice;
        let mut line = HashMap::from([
            ("invoice_number", invoice.number.clone()),
            ("payment_link", invoice_link(links, reminder, &covered.invoice_id)),
        ]);
        // What is still owed, after partial payments and credit notes.
        if let Some(amount) = invoice
            .outstanding
            .as_ref()
            .filter(|owed| owed.amount_minor > 0)
            .or(invoice.amount.as_ref())
        {
            owed.push((amount.amount_minor, amount.currency.as_str()));
            if let Some(text) = locale::format_money(amount.amount_minor, &amount.currency, locale) {
                line.insert("amount", text);
            }
        }
        if let Some(due) = invoice.due_date.as_ref().and_then(time::from_date) {
            line.insert("due_date", locale::format_date(due, locale));
            line.insert("days_overdue", (today - due).num_days().max(0).to_string());
        }
        lines.push(line);
    }
    let mut variables = HashMap::from([
        ("debtor_name", debtor.name.clone()),
        ("invoice_count", reminder.covered.len().to_string()),
        // The statement's own link (not served yet: each line has its invoice's link).
        ("payment_link", links.statement_url(reminder.reminder_id)),
    ]);
    if let Some(total) = statement::total(owed, locale) {
        variables.insert("total", total);
    }
    if let Some(sentence) = rules.opt_out_sentence(templates::language(locale)) {
        variables.insert("opt_out", sentence.to_string());
    }
    let rendered = statement::render(
        &reminder.event.tenant_id,
        template_id,
        locale,
        &variables,
        &lines,
        wordings,
    )
    .map_err(|err| format!("template: {err}"))?;
    Ok((template_id, variables, rendered))
}

/// The reminder's template in the debtor's language (the tenant's wording first). After a
/// claimed payment nobody confirmed (`Invoice.claim_unconfirmed`), an email or SMS opens by
/// acknowledging the claim; a WhatsApp template is text Meta approved, so it goes as approved.
pub fn render_template(
    reminder: &Reminder,
    variables: &Variables,
    wordings: &Wordings,
) -> Result<Rendered, String> {
    let event = &reminder.event;
    let mut rendered = templates::render_for(
        &event.tenant_id,
        &event.template_id,
        &reminder.debtor.locale,
        variables,
        wordings,
    )
    .map_err(|err| format!("template: {err}"))?;
    let claim_unconfirmed = event
        .invoice
        .as_ref()
        .is_some_and(|invoice| invoice.claim_unconfirmed);
    if claim_unconfirmed && reminder.channel != Channel::Whatsapp {
        let note = templates::claim_note(templates::language(&reminder.debtor.locale));
        rendered.body = format!("{note}\n\n{}", rendered.body);
    }
    Ok(rendered)
}

/// One-off free-form text, as it goes: the caller's text and the opt-out line.
pub fn free_form(reminder: &Reminder, variables: &Variables) -> Rendered {
    let opt_out = variables.get("opt_out").map(String::as_str).unwrap_or_default();
    Rendered {
        subject: String::new(),
        body: format!("{}\n\n{opt_out}", reminder.event.text.trim())
            .trim_end()
            .to_string(),
    }
}

/// Whether the reminder carries free-form text rather than a template.
pub fn is_free_form(reminder: &Reminder) -> bool {
    !reminder.event.text.is_empty()
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use recobro_proto::v1 as pb;
    use recobro_rules::Rulebook;

    fn links() -> PaymentLinks {
        PaymentLinks::new(
            "https://pay.example",
            "test-payment-key-0123456789abcdefghijklmnop",
        )
        .expect("keys")
    }

    fn reminder(channel: pb::Channel) -> Reminder {
        let ledger = pb::Debtor {
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            name: "Ferretería Los Andes".into(),
            country: "CO".into(),
            ..Default::default()
        };
        crate::reminder::parse(pb::ReminderDue {
            reminder_id: uuid::Uuid::from_u128(1).to_string(),
            debtor_id: uuid::Uuid::from_u128(2).to_string(),
            tenant_id: "acme".into(),
            channel: channel as i32,
            invoice: Some(pb::Invoice {
                invoice_id: "inv-1".into(),
                number: "A-1001".into(),
                amount: Some(pb::Money {
                    amount_minor: 1_250_000_00,
                    currency: "COP".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .expect("valid reminder")
        .with_ledger(&ledger, chrono_tz::America::Bogota)
    }

    #[test]
    fn after_an_unconfirmed_claim_an_email_or_sms_acknowledges_it_and_whatsapp_goes_as_approved() {
        let book = Rulebook::shipped().expect("packs");
        let rules = book.for_debtor("acme", "CO", None);
        for (channel, claim_unconfirmed, acknowledged) in [
            (pb::Channel::Email, true, true),
            (pb::Channel::Sms, true, true),
            (pb::Channel::Whatsapp, true, false),
            (pb::Channel::Email, false, false),
        ] {
            let mut reminder = reminder(channel);
            reminder.event.template_id = "overdue".into();
            reminder.event.due_date = Some(pb::Date {
                year: 2026,
                month: 11,
                day: 30,
            });
            reminder
                .event
                .invoice
                .as_mut()
                .expect("invoice")
                .claim_unconfirmed = claim_unconfirmed;
            let variables = variables(&reminder, &rules, &links());
            let rendered = render_template(&reminder, &variables, &Wordings::new()).expect("rendered");
            assert_eq!(
                rendered.body.starts_with(templates::claim_note("es")),
                acknowledged,
                "{channel:?}, claim unconfirmed {claim_unconfirmed}: {}",
                rendered.body
            );
            assert!(rendered.body.contains("A-1001"), "{}", rendered.body);
        }
    }

    #[test]
    fn variables_carry_the_link_amount_and_the_countrys_opt_out_sentence() {
        let book = Rulebook::shipped().expect("packs");
        let rules = book.for_debtor("acme", "CO", None);
        let variables = variables(&reminder(pb::Channel::Email), &rules, &links());
        // The link is ours, opaque, and bound to the reminder's tenant and invoice.
        let link = &variables["payment_link"];
        assert!(link.starts_with("https://pay.example/pay/"), "{link}");
        assert!(!link.contains("inv-1"), "{link}");
        let bound = links()
            .verify(link.rsplit('/').next().expect("token"))
            .expect("our token");
        assert_eq!(bound.tenant_id, "acme");
        assert_eq!(variables["invoice_number"], "A-1001");
        assert!(
            variables["amount"].contains("1.250.000"),
            "{}",
            variables["amount"]
        );
        assert!(!variables["opt_out"].is_empty());
        assert!(!variables.contains_key("due_date"), "no due date, no variable");
    }

    /// A statement of these (number, amount in minor units, currency, due date, step template).
    fn statement(channel: pb::Channel, invoices: &[(&str, i64, &str, &str, &str)]) -> Reminder {
        let ledger = pb::Debtor {
            time_zone: "America/Bogota".into(),
            locale: "es-CO".into(),
            name: "Ferretería Los Andes".into(),
            country: "CO".into(),
            ..Default::default()
        };
        let covered = invoices
            .iter()
            .enumerate()
            .map(|(n, (number, minor, currency, due, template))| {
                let due: chrono::NaiveDate = due.parse().expect("date");
                pb::CoveredReminder {
                    reminder_id: uuid::Uuid::from_u128(100 + n as u128).to_string(),
                    step: "overdue-1".into(),
                    template_id: template.to_string(),
                    invoice: Some(pb::Invoice {
                        invoice_id: uuid::Uuid::from_u128(200 + n as u128).to_string(),
                        number: number.to_string(),
                        amount: Some(pb::Money {
                            amount_minor: *minor,
                            currency: currency.to_string(),
                        }),
                        due_date: Some(time::date(due)),
                        ..Default::default()
                    }),
                }
            })
            .collect();
        crate::reminder::parse(pb::ReminderDue {
            reminder_id: uuid::Uuid::from_u128(1).to_string(),
            debtor_id: uuid::Uuid::from_u128(2).to_string(),
            tenant_id: "acme".into(),
            channel: channel as i32,
            covered,
            ..Default::default()
        })
        .expect("valid statement")
        .with_ledger(&ledger, chrono_tz::America::Bogota)
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T15:00:00Z".parse().expect("instant")
    }

    #[test]
    fn an_email_statement_names_every_invoice_with_its_days_overdue_and_the_total() {
        let book = Rulebook::shipped().expect("packs");
        let rules = book.for_debtor("acme", "CO", None);
        let invoices: Vec<(String, i64)> = (1..=6).map(|n| (format!("FE-{n}"), n * 100_000_00)).collect();
        let rows: Vec<_> = invoices
            .iter()
            .map(|(number, minor)| (number.as_str(), *minor, "COP", "2026-11-21", "overdue"))
            .collect();
        let reminder = statement(pb::Channel::Email, &rows);
        let (template, variables, rendered) =
            render_statement(&reminder, &rules, &links(), &Wordings::new(), now()).expect("renders");
        assert_eq!(template, "statement_overdue");
        assert_eq!(rendered.subject, "Estado de cuenta: 6 facturas pendientes");
        for (n, (number, _)) in invoices.iter().enumerate() {
            assert_eq!(
                rendered.body.matches(&format!("Factura {number}:")).count(),
                1,
                "{}",
                rendered.body
            );
            let link = links().url("acme", uuid::Uuid::from_u128(200 + n as u128));
            assert!(rendered.body.contains(&link), "{}", rendered.body);
        }
        assert!(
            rendered.body.contains("(10 días)"),
            "due 21 Nov, read 1 Dec: {}",
            rendered.body
        );
        let total = crate::locale::format_money(2_100_000_00, "COP", "es-CO").expect("COP");
        assert_eq!(variables["total"], total);
        assert!(
            rendered.body.contains(&format!("Total pendiente: {total}")),
            "{}",
            rendered.body
        );
        assert_eq!(
            variables["payment_link"],
            links().statement_url(uuid::Uuid::from_u128(1))
        );
        assert!(rendered.body.ends_with(variables["opt_out"].as_str()));
    }

    #[test]
    fn a_statement_in_two_currencies_totals_each_and_takes_the_most_advanced_tone() {
        let book = Rulebook::shipped().expect("packs");
        let rules = book.for_debtor("acme", "CO", None);
        let reminder = statement(
            pb::Channel::Email,
            &[
                ("FE-1", 100_000_00, "COP", "2026-11-21", "overdue"),
                ("EX-2", 1_500_00, "USD", "2026-11-01", "final_notice"),
                ("FE-3", 250_000_00, "COP", "2026-12-03", "preventive"),
            ],
        );
        let (template, variables, rendered) =
            render_statement(&reminder, &rules, &links(), &Wordings::new(), now()).expect("renders");
        assert_eq!(
            template, "statement_final_notice",
            "one invoice is at its final notice"
        );
        let cop = crate::locale::format_money(350_000_00, "COP", "es-CO").expect("COP");
        let usd = crate::locale::format_money(1_500_00, "USD", "es-CO").expect("USD");
        assert_eq!(variables["total"], format!("{cop} + {usd}"));
        assert!(
            rendered.body.contains("(0 días)"),
            "not due yet: {}",
            rendered.body
        );
        // By SMS: the summary, no list.
        let sms = statement(
            pb::Channel::Sms,
            &[
                ("FE-1", 1, "COP", "2026-11-21", "overdue"),
                ("FE-2", 1, "COP", "2026-11-21", "overdue"),
            ],
        );
        let (template, _, rendered) =
            render_statement(&sms, &rules, &links(), &Wordings::new(), now()).expect("renders");
        assert_eq!(template, "statement_summary_overdue");
        assert!(!rendered.body.contains("FE-1"), "{}", rendered.body);
        assert!(rendered.body.contains(" 2 facturas"), "{}", rendered.body);
        // Steps without a statement form (an instalment) cannot make one.
        let odd = statement(
            pb::Channel::Email,
            &[
                ("FE-1", 1, "COP", "2026-11-21", "instalment"),
                ("FE-2", 1, "COP", "2026-11-21", "instalment"),
            ],
        );
        assert!(render_statement(&odd, &rules, &links(), &Wordings::new(), now()).is_err());
    }

    #[test]
    fn free_form_text_is_trimmed_and_ends_with_the_opt_out_line() {
        let mut one_off = reminder(pb::Channel::Sms);
        one_off.event.text = "  Hola, ¿podemos hablar?  ".into();
        assert!(is_free_form(&one_off));
        let variables = Variables::from([("opt_out", "Responda BAJA".to_string())]);
        let rendered = free_form(&one_off, &variables);
        assert_eq!(rendered.body, "Hola, ¿podemos hablar?\n\nResponda BAJA");
        assert_eq!(rendered.subject, "");
    }
}
