//! Debtor-facing messages, Spanish first, then Portuguese and English. A template whose
//! variables are not all known fails loudly: a debtor never gets a half-filled message.

use std::collections::HashMap;

pub mod statement;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("no template {template_id:?}")]
    UnknownTemplate { template_id: String },
    #[error("template {template_id:?} needs {variable:?}, which is missing")]
    MissingVariable { template_id: String, variable: String },
}

pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// (subject, body) of a shipped template in a language.
fn shipped(template_id: &str, language: &str) -> Option<(&'static str, &'static str)> {
    let text = match (template_id, language) {
        ("preventive", "es") => (
            "Recordatorio: su factura {invoice_number} vence el {due_date}",
            "Estimado/a {debtor_name}:\n\nLe recordamos que la factura {invoice_number} por {amount} vence el {due_date}. Puede pagarla aquí: {payment_link}\n\nSi ya la pagó, por favor ignore este mensaje.\n\n{opt_out}",
        ),
        ("preventive", "pt") => (
            "Lembrete: sua fatura {invoice_number} vence em {due_date}",
            "Prezado(a) {debtor_name},\n\nLembramos que a fatura {invoice_number} no valor de {amount} vence em {due_date}. Pague aqui: {payment_link}\n\nSe já pagou, por favor desconsidere esta mensagem.\n\n{opt_out}",
        ),
        ("preventive", "en") => (
            "Reminder: invoice {invoice_number} is due on {due_date}",
            "Dear {debtor_name},\n\nThis is a friendly reminder that invoice {invoice_number} for {amount} is due on {due_date}. You can pay it here: {payment_link}\n\nIf you have already paid, please disregard this message.\n\n{opt_out}",
        ),
        ("overdue", "es") => (
            "Factura {invoice_number} vencida",
            "Estimado/a {debtor_name}:\n\nLa factura {invoice_number} por {amount} venció el {due_date} y aún figura pendiente. Puede pagarla aquí: {payment_link}\n\nSi necesita un plan de pagos o cree que hay un error, responda a este mensaje.\n\n{opt_out}",
        ),
        ("overdue", "pt") => (
            "Fatura {invoice_number} vencida",
            "Prezado(a) {debtor_name},\n\nA fatura {invoice_number} no valor de {amount} venceu em {due_date} e ainda consta em aberto. Pague aqui: {payment_link}\n\nSe precisar de um parcelamento ou achar que há um erro, responda a esta mensagem.\n\n{opt_out}",
        ),
        ("overdue", "en") => (
            "Invoice {invoice_number} is overdue",
            "Dear {debtor_name},\n\nInvoice {invoice_number} for {amount} was due on {due_date} and is still open. You can pay it here: {payment_link}\n\nIf you need a payment plan or believe there is an error, just reply to this message.\n\n{opt_out}",
        ),
        ("final_notice", "es") => (
            "Último aviso: factura {invoice_number}",
            "Estimado/a {debtor_name}:\n\nLa factura {invoice_number} por {amount}, vencida el {due_date}, sigue pendiente. Le pedimos regularizarla o contactarnos para acordar una solución: {payment_link}\n\n{opt_out}",
        ),
        ("final_notice", "pt") => (
            "Último aviso: fatura {invoice_number}",
            "Prezado(a) {debtor_name},\n\nA fatura {invoice_number} no valor de {amount}, vencida em {due_date}, continua em aberto. Pedimos que a regularize ou entre em contato para combinarmos uma solução: {payment_link}\n\n{opt_out}",
        ),
        ("final_notice", "en") => (
            "Final notice: invoice {invoice_number}",
            "Dear {debtor_name},\n\nInvoice {invoice_number} for {amount}, due on {due_date}, remains unpaid. Please settle it or contact us to agree on a solution: {payment_link}\n\n{opt_out}",
        ),
        ("instalment", "es") => (
            "Cuota de su plan de pagos: {amount} el {due_date}",
            "Estimado/a {debtor_name}:\n\nLe recordamos la próxima cuota de su plan de pagos de la factura {invoice_number}: {amount}, con vencimiento el {due_date}. Puede pagarla aquí: {payment_link}\n\nGracias por cumplir con su plan.\n\n{opt_out}",
        ),
        ("instalment", "pt") => (
            "Parcela do seu acordo: {amount} em {due_date}",
            "Prezado(a) {debtor_name},\n\nLembramos a próxima parcela do seu acordo da fatura {invoice_number}: {amount}, com vencimento em {due_date}. Pague aqui: {payment_link}\n\nObrigado por manter o seu acordo em dia.\n\n{opt_out}",
        ),
        ("instalment", "en") => (
            "Payment plan instalment: {amount} due {due_date}",
            "Dear {debtor_name},\n\nThis is a reminder of the next instalment of your payment plan for invoice {invoice_number}: {amount}, due on {due_date}. You can pay it here: {payment_link}\n\nThank you for keeping to your plan.\n\n{opt_out}",
        ),
        _ => return statement::shipped(template_id, language),
    };
    Some(text)
}

/// Every template id of a single invoice's message, for listing them.
pub const TEMPLATE_IDS: &[&str] = &["preventive", "overdue", "final_notice", "instalment"];

/// Every (template, language, subject, body), Spanish first.
pub fn all() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let mut all = Vec::new();
    for template in TEMPLATE_IDS.iter().chain(statement::TEMPLATE_IDS) {
        for language in ["es", "pt", "en"] {
            if let Some((subject, body)) = shipped(template, language) {
                all.push((*template, language, subject, body));
            }
        }
    }
    all
}

/// What a reminder says first after the debtor's claimed payment could not be confirmed in
/// time (a hold that ended with no payment recorded), in a template language.
pub fn claim_note(language: &str) -> &'static str {
    match language {
        "pt" => {
            "Você nos informou que já pagou esta fatura, mas ainda não conseguimos confirmar o pagamento. Se já pagou, responda a esta mensagem com o comprovante e vamos verificar."
        }
        "en" => {
            "You told us this invoice was paid, but we have not been able to confirm the payment yet. If you have paid, reply to this message with the receipt and we will check it."
        }
        _ => {
            "Nos indicó que ya pagó esta factura, pero aún no hemos podido confirmar el pago. Si ya pagó, responda a este mensaje con el comprobante y lo revisaremos."
        }
    }
}

/// The template's language for a locale: its language if we have it, else Spanish.
pub fn language(locale: &str) -> &'static str {
    match locale
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "pt" => "pt",
        "en" => "en",
        _ => "es",
    }
}

/// What a template may say in braces.
pub const VARIABLES: &[&str] = &[
    "debtor_name",
    "invoice_number",
    "amount",
    "due_date",
    "payment_link",
    "opt_out",
];

/// A tenant's own wording of a template in one language.
#[derive(Clone, Debug)]
pub struct Wording {
    pub subject: String,
    pub body: String,
    pub version: i32,
}

/// Tenants' own wordings, by (tenant, template id, language).
pub type Wordings = HashMap<(String, String, String), Wording>;

/// A template id a tenant may use, and a language we have: `Err((field, reason))` if not.
pub fn check_id_and_language(template_id: &str, language: &str) -> Result<(), (&'static str, String)> {
    let id_ok = !template_id.is_empty()
        && template_id.len() <= 64
        && template_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !id_ok {
        return Err((
            "template_id",
            "must be 1 to 64 lowercase letters, digits, '_' or '-'".into(),
        ));
    }
    if !["es", "pt", "en"].contains(&language) {
        return Err(("language", "must be es, pt or en".into()));
    }
    Ok(())
}

/// Whether a tenant's wording can be stored: `Err((field, reason))` when it cannot. Checked when
/// it is written, so a bad wording never reaches a debtor.
pub fn check_wording(
    template_id: &str,
    language: &str,
    subject: &str,
    body: &str,
) -> Result<(), (&'static str, String)> {
    check_id_and_language(template_id, language)?;
    // A summary statement goes by SMS or WhatsApp, which have no subject.
    let form = statement::form_of(template_id);
    let subject_required = form != Some(statement::Form::Summary);
    for (field, text, max, required) in [
        ("subject", subject, 200, subject_required),
        ("body", body, 4000, true),
    ] {
        if required && text.trim().is_empty() {
            return Err((field, "is required".into()));
        }
        if text.chars().count() > max {
            return Err((field, format!("is longer than {max} characters")));
        }
    }
    if let Some(form) = form {
        return statement::check_wording(form, subject, body);
    }
    for (field, text) in [("subject", subject), ("body", body)] {
        for name in braced_names(text).map_err(|reason| (field, reason))? {
            if !VARIABLES.contains(&name) {
                return Err((
                    field,
                    format!("uses {{{name}}}, which is not one of {}", VARIABLES.join(", ")),
                ));
            }
        }
    }
    if !body.contains("{opt_out}") {
        return Err((
            "body",
            "must carry {opt_out}: every message tells the debtor how to stop them".into(),
        ));
    }
    Ok(())
}

/// The names a text puts in braces, in order; `Err(reason)` for a brace that is not closed or
/// closes nothing. A statement's `{#invoices}` and `{/invoices}` are names too.
fn braced_names(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a '}' that closes nothing".into());
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find(['{', '}']).filter(|at| after[*at..].starts_with('}')) else {
            return Err("has a '{' that is never closed".into());
        };
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(names)
}

/// The (subject, body) `render_for` uses: the tenant's own wording in the debtor's language,
/// else the shipped one, else the tenant's Spanish wording.
fn pick<'a>(
    tenant_id: &str,
    template_id: &str,
    locale: &str,
    own: &'a Wordings,
) -> Option<(&'a str, &'a str)> {
    let language = language(locale);
    let tenants = |language: &str| {
        if own.is_empty() {
            return None;
        }
        own.get(&(
            tenant_id.to_string(),
            template_id.to_string(),
            language.to_string(),
        ))
        .map(|w| (w.subject.as_str(), w.body.as_str()))
    };
    tenants(language)
        .or_else(|| shipped(template_id, language))
        .or_else(|| tenants("es"))
}

/// What only an invoice can fill in.
const INVOICE_VARIABLES: &[&str] = &["invoice_number", "amount", "due_date", "payment_link"];

/// Whether the template exists for the debtor's locale (see `render_for`), and the first
/// variable of it that only an invoice fills in, if any: a one-off message without an invoice
/// cannot use that template.
pub fn invoice_variable(
    tenant_id: &str,
    template_id: &str,
    locale: &str,
    own: &Wordings,
) -> Option<Option<&'static str>> {
    let (subject, body) = pick(tenant_id, template_id, locale, own)?;
    Some(
        INVOICE_VARIABLES
            .iter()
            .find(|name| {
                let braced = format!("{{{name}}}");
                subject.contains(&braced) || body.contains(&braced)
            })
            .copied(),
    )
}

/// The tenant's own wording in the debtor's language, else the shipped one, else the tenant's
/// Spanish wording.
pub fn render_for(
    tenant_id: &str,
    template_id: &str,
    locale: &str,
    variables: &HashMap<&str, String>,
    own: &Wordings,
) -> Result<Rendered, RenderError> {
    let (subject, body) =
        pick(tenant_id, template_id, locale, own).ok_or_else(|| RenderError::UnknownTemplate {
            template_id: template_id.to_string(),
        })?;
    Ok(Rendered {
        subject: fill(template_id, subject, variables)?,
        body: fill(template_id, body, variables)?,
    })
}

fn fill(template_id: &str, text: &str, variables: &HashMap<&str, String>) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').unwrap_or(after.len());
        let name = &after[..close];
        match variables.get(name).filter(|value| !value.trim().is_empty()) {
            Some(value) => out.push_str(value),
            None => {
                return Err(RenderError::MissingVariable {
                    template_id: template_id.to_string(),
                    variable: name.to_string(),
                });
            }
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    /// A shipped template.
    fn render(
        template_id: &str,
        locale: &str,
        variables: &HashMap<&str, String>,
    ) -> Result<Rendered, RenderError> {
        render_for("", template_id, locale, variables, &Wordings::new())
    }

    #[test]
    fn a_one_off_message_knows_which_templates_need_an_invoice() {
        // Every shipped template names the invoice.
        assert_eq!(
            invoice_variable("t", "overdue", "es-CO", &Wordings::new()),
            Some(Some("invoice_number"))
        );
        assert_eq!(invoice_variable("t", "no-such", "es-CO", &Wordings::new()), None);
        // A tenant's own wording that names only the debtor needs none.
        let own = Wordings::from([(
            ("t".to_string(), "hello".to_string(), "es".to_string()),
            Wording {
                subject: "Hola".into(),
                body: "Hola {debtor_name}, llámenos.\n{opt_out}".into(),
                version: 1,
            },
        )]);
        assert_eq!(invoice_variable("t", "hello", "pt-BR", &own), Some(None));
        assert_eq!(invoice_variable("other", "hello", "es", &own), None);
    }

    fn variables() -> HashMap<&'static str, String> {
        HashMap::from([
            ("debtor_name", "Ferretería El Tornillo SAS".to_string()),
            ("invoice_number", "FE-100".to_string()),
            ("amount", "1.250.000,00 COP".to_string()),
            ("due_date", "31 de octubre de 2026".to_string()),
            ("payment_link", "https://pay.example/i/1".to_string()),
            (
                "opt_out",
                "Para no recibir más mensajes por este medio, responda BAJA.".to_string(),
            ),
        ])
    }

    #[test]
    fn renders_spanish_by_default_with_every_variable() {
        let rendered = render("overdue", "es-CO", &variables()).expect("complete");
        assert_eq!(rendered.subject, "Factura FE-100 vencida");
        assert!(
            rendered
                .body
                .contains("por 1.250.000,00 COP venció el 31 de octubre de 2026")
        );
        assert!(
            rendered.body.contains("responda BAJA"),
            "electronic messages carry an opt-out"
        );
        assert!(!rendered.body.contains('{'));
        let unknown_language = render("overdue", "fr", &variables()).expect("falls back");
        assert_eq!(unknown_language.subject, rendered.subject);
    }

    #[test]
    fn a_missing_variable_fails_instead_of_sending_half_a_message() {
        let mut partial = variables();
        partial.remove("payment_link");
        let err = render("preventive", "pt-BR", &partial).err().expect("must fail");
        assert_eq!(
            err,
            RenderError::MissingVariable {
                template_id: "preventive".into(),
                variable: "payment_link".into()
            }
        );
        assert!(matches!(
            render("nope", "es", &variables()),
            Err(RenderError::UnknownTemplate { .. })
        ));
    }

    #[test]
    fn every_template_exists_in_every_language() {
        for template in ["preventive", "overdue", "final_notice", "instalment"] {
            for language in ["es", "pt", "en"] {
                assert!(
                    render(template, language, &variables()).is_ok(),
                    "{template}/{language}"
                );
            }
        }
    }

    #[test]
    fn a_tenants_wording_comes_first_then_the_shipped_one_then_its_spanish() {
        let wording = |subject: &str| Wording {
            subject: subject.into(),
            body: "{debtor_name}: {amount}. {opt_out}".into(),
            version: 1,
        };
        let own = Wordings::from([
            (
                ("acme".into(), "overdue".into(), "es".into()),
                wording("Acme: {invoice_number}"),
            ),
            (
                ("acme".into(), "courtesy".into(), "es".into()),
                wording("Cortesía {invoice_number}"),
            ),
        ]);
        let acme = |template: &str, locale: &str| {
            render_for("acme", template, locale, &variables(), &own)
                .expect("renders")
                .subject
        };
        assert_eq!(acme("overdue", "es-CO"), "Acme: FE-100");
        assert_eq!(
            acme("overdue", "pt-BR"),
            "Fatura FE-100 vencida",
            "shipped Portuguese"
        );
        assert_eq!(acme("courtesy", "en-US"), "Cortesía FE-100", "only in Spanish");
        let other = render_for("globex", "overdue", "es", &variables(), &own).expect("shipped");
        assert_eq!(
            other.subject, "Factura FE-100 vencida",
            "one tenant's wording is its own"
        );
        assert!(render_for("globex", "courtesy", "es", &variables(), &own).is_err());
    }

    #[test]
    fn a_wording_is_checked_before_it_is_stored() {
        let ok = "Hola {debtor_name}, {amount} vence el {due_date}: {payment_link}. {opt_out}";
        assert_eq!(
            check_wording("overdue", "es", "Factura {invoice_number}", ok),
            Ok(())
        );
        let field = |id: &str, language: &str, subject: &str, body: &str| {
            check_wording(id, language, subject, body)
                .err()
                .map(|(field, _)| field)
        };
        assert_eq!(field("Overdue!", "es", "x", ok), Some("template_id"));
        assert_eq!(field("overdue", "fr", "x", ok), Some("language"));
        assert_eq!(field("overdue", "es", " ", ok), Some("subject"));
        assert_eq!(field("overdue", "es", "Factura {numero}", ok), Some("subject"));
        assert_eq!(
            field("overdue", "es", "x", "{debtor_name {opt_out}"),
            Some("body")
        );
        assert_eq!(field("overdue", "es", "x", "pague } {opt_out}"), Some("body"));
        assert_eq!(
            field("overdue", "es", "x", "Pague {amount} ya"),
            Some("body"),
            "no opt-out line"
        );
        let unknown = check_wording("overdue", "es", "x", "{saldo} {opt_out}").expect_err("refused");
        assert!(unknown.1.contains("{saldo}"), "{unknown:?}");
    }
}
