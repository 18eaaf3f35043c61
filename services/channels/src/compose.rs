//! What a reminder says: the template variables in the debtor's locale, and the rendered
//! subject and body (a template, or one-off free-form text). Whom it goes to is `recipient`'s.

use std::collections::HashMap;

use recobro_common::time;
use recobro_rules::Applied;

use crate::locale;
use crate::reminder::Reminder;
use crate::templates::{self, Rendered, Wordings};

/// Template variables, by name (see `templates::VARIABLES`).
pub type Variables = HashMap<&'static str, String>;

/// The variables a template may use, in the debtor's locale.
pub fn variables(reminder: &Reminder, rules: &Applied<'_>, payment_link_base: &str) -> Variables {
    let debtor = &reminder.debtor;
    let invoice = reminder.event.invoice.clone().unwrap_or_default();
    let mut variables = HashMap::from([
        ("debtor_name", debtor.name.clone()),
        ("invoice_number", invoice.number),
        (
            "payment_link",
            format!("{payment_link_base}{}", invoice.invoice_id),
        ),
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

/// The reminder's template in the debtor's language (the tenant's wording first).
pub fn render_template(
    reminder: &Reminder,
    variables: &Variables,
    wordings: &Wordings,
) -> Result<Rendered, String> {
    let event = &reminder.event;
    templates::render_for(
        &event.tenant_id,
        &event.template_id,
        &reminder.debtor.locale,
        variables,
        wordings,
    )
    .map_err(|err| format!("template: {err}"))
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
    fn variables_carry_the_link_amount_and_the_countrys_opt_out_sentence() {
        let book = Rulebook::shipped().expect("packs");
        let rules = book.for_debtor("acme", "CO", None);
        let variables = variables(&reminder(pb::Channel::Email), &rules, "https://pay.example/i/");
        assert_eq!(variables["payment_link"], "https://pay.example/i/inv-1");
        assert_eq!(variables["invoice_number"], "A-1001");
        assert!(
            variables["amount"].contains("1.250.000"),
            "{}",
            variables["amount"]
        );
        assert!(!variables["opt_out"].is_empty());
        assert!(!variables.contains_key("due_date"), "no due date, no variable");
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
