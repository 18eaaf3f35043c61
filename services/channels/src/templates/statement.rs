//! Statement templates (*estado de cuenta*): one message covering several of a debtor's invoices,
//! in the tone of the most advanced step among them. Email carries the list, one line per
//! invoice between `{#invoices}` and `{/invoices}`; SMS and WhatsApp carry a summary (how many
//! invoices, the total per currency, one link), because a text message cannot hold thirty lines
//! and WhatsApp's templates are approved with fixed parameters.

use std::collections::{BTreeMap, HashMap};

use recobro_rules::Channel;

use super::{RenderError, Rendered, Wordings, braced_names, fill, pick};

/// Where the list of invoices starts and ends in a list statement's body.
pub const SECTION_OPEN: &str = "{#invoices}";
pub const SECTION_CLOSE: &str = "{/invoices}";

/// What a statement may say outside the list.
pub const STATEMENT_VARIABLES: &[&str] =
    &["debtor_name", "invoice_count", "total", "payment_link", "opt_out"];

/// What each line of the list may say about its invoice.
pub const LINE_VARIABLES: &[&str] = &[
    "invoice_number",
    "amount",
    "due_date",
    "days_overdue",
    "payment_link",
];

/// The tone of a statement: that of the most advanced step among the invoices it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tone {
    Preventive,
    Overdue,
    FinalNotice,
}

impl Tone {
    /// The tone of a ladder step's template; `None` for a template that has no statement form
    /// (an instalment of a payment plan, or a tenant's own template id).
    pub fn of_template(template_id: &str) -> Option<Tone> {
        match template_id {
            "preventive" => Some(Tone::Preventive),
            "overdue" => Some(Tone::Overdue),
            "final_notice" => Some(Tone::FinalNotice),
            _ => None,
        }
    }

    /// The most advanced tone among the covered steps' templates: a final notice if any is one.
    pub fn most_advanced<'a>(templates: impl IntoIterator<Item = &'a str>) -> Option<Tone> {
        templates.into_iter().filter_map(Tone::of_template).max()
    }
}

/// Whether a statement lists its invoices or summarises them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    List,
    Summary,
}

impl Form {
    pub fn for_channel(channel: Channel) -> Form {
        match channel {
            Channel::Email => Form::List,
            Channel::Sms | Channel::Whatsapp => Form::Summary,
        }
    }
}

/// The shipped statement template ids, as `templates::all` lists them.
pub const TEMPLATE_IDS: &[&str] = &[
    "statement_preventive",
    "statement_overdue",
    "statement_final_notice",
    "statement_summary_preventive",
    "statement_summary_overdue",
    "statement_summary_final_notice",
];

/// The template a statement of this tone goes out with on this channel.
pub fn template_id(tone: Tone, form: Form) -> &'static str {
    match (form, tone) {
        (Form::List, Tone::Preventive) => "statement_preventive",
        (Form::List, Tone::Overdue) => "statement_overdue",
        (Form::List, Tone::FinalNotice) => "statement_final_notice",
        (Form::Summary, Tone::Preventive) => "statement_summary_preventive",
        (Form::Summary, Tone::Overdue) => "statement_summary_overdue",
        (Form::Summary, Tone::FinalNotice) => "statement_summary_final_notice",
    }
}

/// The form of a statement template id, or `None` for any other template.
pub fn form_of(template_id: &str) -> Option<Form> {
    if template_id.starts_with("statement_summary_") {
        Some(Form::Summary)
    } else if template_id.starts_with("statement_") {
        Some(Form::List)
    } else {
        None
    }
}

/// A statement in the debtor's language: the tenant's wording first, as for any template.
/// `lines` holds each invoice's [`LINE_VARIABLES`], in the order they are listed.
pub fn render(
    tenant_id: &str,
    template_id: &str,
    locale: &str,
    variables: &HashMap<&str, String>,
    lines: &[HashMap<&str, String>],
    own: &Wordings,
) -> Result<Rendered, RenderError> {
    let (subject, body) =
        pick(tenant_id, template_id, locale, own).ok_or_else(|| RenderError::UnknownTemplate {
            template_id: template_id.to_string(),
        })?;
    Ok(Rendered {
        subject: fill(template_id, subject, variables)?,
        body: fill_list(template_id, body, variables, lines)?,
    })
}

/// `text` with its list section, if any, repeated once per line.
fn fill_list(
    template_id: &str,
    text: &str,
    variables: &HashMap<&str, String>,
    lines: &[HashMap<&str, String>],
) -> Result<String, RenderError> {
    let Some(open) = text.find(SECTION_OPEN) else {
        return fill(template_id, text, variables);
    };
    let inner = &text[open + SECTION_OPEN.len()..];
    let close = inner
        .find(SECTION_CLOSE)
        .ok_or_else(|| RenderError::MissingVariable {
            template_id: template_id.to_string(),
            variable: SECTION_CLOSE.trim_matches(['{', '}']).to_string(),
        })?;
    let mut out = fill(template_id, &text[..open], variables)?;
    for line in lines {
        out.push_str(&fill(template_id, &inner[..close], line)?);
    }
    out.push_str(&fill(
        template_id,
        &inner[close + SECTION_CLOSE.len()..],
        variables,
    )?);
    Ok(out)
}

/// What a statement owes in all: one amount per currency (amounts in different currencies are
/// never added together), in currency-code order, each in the debtor's locale, joined with
/// " + ". `None` if there is nothing, a sum overflows or an amount cannot be formatted.
pub fn total<'a>(amounts: impl IntoIterator<Item = (i64, &'a str)>, locale: &str) -> Option<String> {
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for (amount_minor, currency) in amounts {
        let sum = sums.entry(currency).or_insert(0);
        *sum = sum.checked_add(amount_minor)?;
    }
    let parts = sums
        .into_iter()
        .map(|(currency, amount_minor)| crate::locale::format_money(amount_minor, currency, locale))
        .collect::<Option<Vec<String>>>()?;
    (!parts.is_empty()).then(|| parts.join(" + "))
}

/// Whether a tenant's wording of a statement template can be stored: `Err((field, reason))`
/// when it cannot. A list statement's body has exactly one list section; a summary has none.
pub fn check_wording(form: Form, subject: &str, body: &str) -> Result<(), (&'static str, String)> {
    let outside = |field: &'static str, text: &str| -> Result<(), (&'static str, String)> {
        for name in braced_names(text).map_err(|reason| (field, reason))? {
            if !STATEMENT_VARIABLES.contains(&name) {
                return Err((
                    field,
                    format!(
                        "uses {{{name}}}, which is not one of {} (a statement's list section may use {})",
                        STATEMENT_VARIABLES.join(", "),
                        LINE_VARIABLES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    };
    outside("subject", subject)?;
    let sections = body.matches(SECTION_OPEN).count();
    let (before, after) = match (form, sections) {
        (Form::Summary, 0) => (body, ""),
        (Form::Summary, _) => {
            return Err((
                "body",
                "a summary statement (SMS, WhatsApp) lists no invoices: it has no {#invoices} section".into(),
            ));
        }
        (Form::List, 1) => {
            let open = body.find(SECTION_OPEN).unwrap_or_default();
            let inner = &body[open + SECTION_OPEN.len()..];
            let Some(close) = inner.find(SECTION_CLOSE) else {
                return Err(("body", "has a {#invoices} section that is never closed".into()));
            };
            for name in braced_names(&inner[..close]).map_err(|reason| ("body", reason))? {
                if !LINE_VARIABLES.contains(&name) {
                    return Err((
                        "body",
                        format!(
                            "uses {{{name}}} in the list section, which is not one of {}",
                            LINE_VARIABLES.join(", ")
                        ),
                    ));
                }
            }
            (&body[..open], &inner[close + SECTION_CLOSE.len()..])
        }
        (Form::List, _) => {
            return Err((
                "body",
                "must have exactly one {#invoices}...{/invoices} section".into(),
            ));
        }
    };
    outside("body", before)?;
    outside("body", after)?;
    if !before.contains("{opt_out}") && !after.contains("{opt_out}") {
        return Err((
            "body",
            "must carry {opt_out} outside the list: every message tells the debtor how to stop them".into(),
        ));
    }
    Ok(())
}

/// (subject, body) of a shipped statement template in a language.
pub(super) fn shipped(template_id: &str, language: &str) -> Option<(&'static str, &'static str)> {
    let text = match (template_id, language) {
        ("statement_preventive", "es") => (
            "Estado de cuenta: {invoice_count} facturas por vencer",
            "Estimado/a {debtor_name}:\n\nLe recordamos las facturas que vencen próximamente:\n\n{#invoices}- Factura {invoice_number}: {amount}, vence el {due_date}. Pagar: {payment_link}\n{/invoices}\nTotal: {total}\n\nSi ya las pagó, por favor ignore este mensaje.\n\n{opt_out}",
        ),
        ("statement_preventive", "pt") => (
            "Extrato: {invoice_count} faturas a vencer",
            "Prezado(a) {debtor_name},\n\nLembramos as faturas que vencem em breve:\n\n{#invoices}- Fatura {invoice_number}: {amount}, vence em {due_date}. Pagar: {payment_link}\n{/invoices}\nTotal: {total}\n\nSe já pagou, por favor desconsidere esta mensagem.\n\n{opt_out}",
        ),
        ("statement_preventive", "en") => (
            "Statement: {invoice_count} invoices coming due",
            "Dear {debtor_name},\n\nA friendly reminder of the invoices coming due:\n\n{#invoices}- Invoice {invoice_number}: {amount}, due on {due_date}. Pay: {payment_link}\n{/invoices}\nTotal: {total}\n\nIf you have already paid, please disregard this message.\n\n{opt_out}",
        ),
        ("statement_overdue", "es") => (
            "Estado de cuenta: {invoice_count} facturas pendientes",
            "Estimado/a {debtor_name}:\n\nEstas facturas figuran pendientes de pago:\n\n{#invoices}- Factura {invoice_number}: {amount}, vencida el {due_date} ({days_overdue} días). Pagar: {payment_link}\n{/invoices}\nTotal pendiente: {total}\n\nSi necesita un plan de pagos o cree que hay un error, responda a este mensaje.\n\n{opt_out}",
        ),
        ("statement_overdue", "pt") => (
            "Extrato: {invoice_count} faturas em aberto",
            "Prezado(a) {debtor_name},\n\nEstas faturas constam em aberto:\n\n{#invoices}- Fatura {invoice_number}: {amount}, vencida em {due_date} ({days_overdue} dias). Pagar: {payment_link}\n{/invoices}\nTotal em aberto: {total}\n\nSe precisar de um parcelamento ou achar que há um erro, responda a esta mensagem.\n\n{opt_out}",
        ),
        ("statement_overdue", "en") => (
            "Statement: {invoice_count} invoices outstanding",
            "Dear {debtor_name},\n\nThese invoices are still open:\n\n{#invoices}- Invoice {invoice_number}: {amount}, due on {due_date} ({days_overdue} days overdue). Pay: {payment_link}\n{/invoices}\nTotal outstanding: {total}\n\nIf you need a payment plan or believe there is an error, just reply to this message.\n\n{opt_out}",
        ),
        ("statement_final_notice", "es") => (
            "Último aviso: {invoice_count} facturas pendientes",
            "Estimado/a {debtor_name}:\n\nÚltimo aviso antes de gestionar el cobro por otra vía. Estas facturas siguen pendientes:\n\n{#invoices}- Factura {invoice_number}: {amount}, vencida el {due_date} ({days_overdue} días). Pagar: {payment_link}\n{/invoices}\nTotal pendiente: {total}\n\nLe pedimos regularizarlas o contactarnos para acordar una solución.\n\n{opt_out}",
        ),
        ("statement_final_notice", "pt") => (
            "Último aviso: {invoice_count} faturas em aberto",
            "Prezado(a) {debtor_name},\n\nÚltimo aviso antes de encaminharmos a cobrança por outra via. Estas faturas continuam em aberto:\n\n{#invoices}- Fatura {invoice_number}: {amount}, vencida em {due_date} ({days_overdue} dias). Pagar: {payment_link}\n{/invoices}\nTotal em aberto: {total}\n\nPedimos que as regularize ou entre em contato para combinarmos uma solução.\n\n{opt_out}",
        ),
        ("statement_final_notice", "en") => (
            "Final notice: {invoice_count} invoices outstanding",
            "Dear {debtor_name},\n\nThis is our final notice before the debt is pursued by other means. These invoices remain unpaid:\n\n{#invoices}- Invoice {invoice_number}: {amount}, due on {due_date} ({days_overdue} days overdue). Pay: {payment_link}\n{/invoices}\nTotal outstanding: {total}\n\nPlease settle them or contact us to agree on a solution.\n\n{opt_out}",
        ),
        ("statement_summary_preventive", "es") => (
            "",
            "{debtor_name}: {invoice_count} facturas vencen pronto, total {total}. Detalle y pago: {payment_link} {opt_out}",
        ),
        ("statement_summary_preventive", "pt") => (
            "",
            "{debtor_name}: {invoice_count} faturas vencem em breve, total {total}. Detalhes e pagamento: {payment_link} {opt_out}",
        ),
        ("statement_summary_preventive", "en") => (
            "",
            "{debtor_name}: {invoice_count} invoices coming due, total {total}. Details and payment: {payment_link} {opt_out}",
        ),
        ("statement_summary_overdue", "es") => (
            "",
            "{debtor_name}: tiene {invoice_count} facturas vencidas por {total}. Detalle y pago: {payment_link} {opt_out}",
        ),
        ("statement_summary_overdue", "pt") => (
            "",
            "{debtor_name}: há {invoice_count} faturas vencidas, total {total}. Detalhes e pagamento: {payment_link} {opt_out}",
        ),
        ("statement_summary_overdue", "en") => (
            "",
            "{debtor_name}: {invoice_count} invoices are overdue, total {total}. Details and payment: {payment_link} {opt_out}",
        ),
        ("statement_summary_final_notice", "es") => (
            "",
            "Último aviso, {debtor_name}: {invoice_count} facturas vencidas por {total}. Regularice aquí: {payment_link} {opt_out}",
        ),
        ("statement_summary_final_notice", "pt") => (
            "",
            "Último aviso, {debtor_name}: {invoice_count} faturas vencidas, total {total}. Regularize aqui: {payment_link} {opt_out}",
        ),
        ("statement_summary_final_notice", "en") => (
            "",
            "Final notice, {debtor_name}: {invoice_count} invoices overdue, total {total}. Settle here: {payment_link} {opt_out}",
        ),
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests;
