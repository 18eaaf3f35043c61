use super::*;
use crate::templates::{RenderError, Wording, check_wording as check_any_wording};

const OPT_OUT: &str = "Para no recibir más mensajes por este medio, responda BAJA.";

fn line(number: &str, amount: &str, due: &str, days: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("invoice_number", number.to_string()),
        ("amount", amount.to_string()),
        ("due_date", due.to_string()),
        ("days_overdue", days.to_string()),
        ("payment_link", format!("https://pay.example/i/{number}")),
    ])
}

fn statement(count: usize, total: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("debtor_name", "Ferretería El Tornillo SAS".to_string()),
        ("invoice_count", count.to_string()),
        ("total", total.to_string()),
        ("payment_link", "https://pay.example/d/1".to_string()),
        ("opt_out", OPT_OUT.to_string()),
    ])
}

fn shipped(template_id: &str, locale: &str, lines: &[HashMap<&str, String>], total: &str) -> Rendered {
    render(
        "acme",
        template_id,
        locale,
        &statement(lines.len(), total),
        lines,
        &Wordings::new(),
    )
    .expect("renders")
}

#[test]
fn a_list_statement_names_every_invoice_once_with_the_total_and_the_opt_out_line() {
    let lines: Vec<_> = (1..=6)
        .map(|n| {
            line(
                &format!("FE-10{n}"),
                "$ 100.000,00",
                "3 de noviembre de 2026",
                "20",
            )
        })
        .collect();
    let rendered = shipped("statement_overdue", "es-CO", &lines, "$ 600.000,00");
    assert_eq!(rendered.subject, "Estado de cuenta: 6 facturas pendientes");
    for n in 1..=6 {
        let number = format!("Factura FE-10{n}: $ 100.000,00");
        assert_eq!(
            rendered.body.matches(&number).count(),
            1,
            "{number} once:\n{}",
            rendered.body
        );
        assert!(rendered.body.contains(&format!("https://pay.example/i/FE-10{n}")));
    }
    assert!(
        rendered.body.contains("Total pendiente: $ 600.000,00"),
        "{}",
        rendered.body
    );
    assert!(rendered.body.ends_with(OPT_OUT));
    assert!(!rendered.body.contains('{'), "{}", rendered.body);
}

#[test]
fn totals_are_per_currency_never_added_across_currencies() {
    let format = |minor, currency| crate::locale::format_money(minor, currency, "es-CO").expect("known");
    let total = total(
        [(100_000_00, "COP"), (20_00, "USD"), (250_000_00, "COP")],
        "es-CO",
    )
    .expect("formatted");
    assert_eq!(
        total,
        format!("{} + {}", format(350_000_00, "COP"), format(20_00, "USD"))
    );
    assert!(total.contains("350.000"), "{total}");
    assert_eq!(super::total([], "es-CO"), None, "nothing owed, no total");
    assert_eq!(
        super::total([(i64::MAX, "COP"), (1, "COP")], "es-CO"),
        None,
        "an overflowing sum is refused, not wrapped"
    );
    assert_eq!(super::total([(1, "XXX1")], "es-CO"), None, "unknown currency");
}

#[test]
fn the_tone_is_the_most_advanced_step_and_each_language_says_so() {
    assert_eq!(
        Tone::most_advanced(["overdue", "final_notice", "preventive"]),
        Some(Tone::FinalNotice)
    );
    assert_eq!(
        Tone::most_advanced(["preventive", "overdue"]),
        Some(Tone::Overdue)
    );
    assert_eq!(
        Tone::most_advanced(["instalment", "courtesy"]),
        None,
        "no statement form"
    );
    let lines = vec![line("A-1", "10", "1", "3"), line("A-2", "20", "2", "9")];
    for (locale, says) in [
        ("es-CO", "Último aviso"),
        ("pt-BR", "Último aviso"),
        ("en-US", "Final notice"),
    ] {
        let list = shipped(template_id(Tone::FinalNotice, Form::List), locale, &lines, "30");
        assert!(list.subject.starts_with(says), "{locale}: {}", list.subject);
        let summary = shipped(
            template_id(Tone::FinalNotice, Form::Summary),
            locale,
            &lines,
            "30",
        );
        assert!(summary.body.starts_with(says), "{locale}: {}", summary.body);
        let gentle = shipped(template_id(Tone::Preventive, Form::List), locale, &lines, "30");
        assert!(!gentle.subject.contains(says), "{locale}: {}", gentle.subject);
    }
}

#[test]
fn text_channels_get_a_summary_with_count_total_and_link_and_no_list() {
    assert_eq!(Form::for_channel(Channel::Email), Form::List);
    assert_eq!(Form::for_channel(Channel::Sms), Form::Summary);
    assert_eq!(Form::for_channel(Channel::Whatsapp), Form::Summary);
    let lines: Vec<_> = (1..=30)
        .map(|n| line(&format!("FE-{n}"), "$ 1,00", "hoy", "5"))
        .collect();
    for language in ["es", "pt", "en"] {
        let sms = shipped(
            template_id(Tone::Overdue, Form::Summary),
            language,
            &lines,
            "$ 30,00",
        );
        assert!(sms.body.contains("30 "), "{language}: {}", sms.body);
        assert!(sms.body.contains("$ 30,00"), "{language}: {}", sms.body);
        assert!(
            sms.body.contains("https://pay.example/d/1"),
            "{language}: {}",
            sms.body
        );
        assert!(!sms.body.contains("FE-1"), "no invoice listed: {}", sms.body);
        assert!(sms.body.ends_with(OPT_OUT));
        // Thirty invoices fit in three SMS segments of 153 characters.
        assert!(
            sms.body.chars().count() <= 459,
            "{language}: {}",
            sms.body.chars().count()
        );
    }
}

#[test]
fn a_missing_line_variable_fails_instead_of_sending_half_a_statement() {
    let mut lines = vec![line("A-1", "10", "1", "3"), line("A-2", "20", "2", "9")];
    lines[1].remove("days_overdue");
    let err = render(
        "acme",
        "statement_overdue",
        "es",
        &statement(2, "30"),
        &lines,
        &Wordings::new(),
    )
    .err()
    .expect("refused");
    assert_eq!(
        err,
        RenderError::MissingVariable {
            template_id: "statement_overdue".into(),
            variable: "days_overdue".into()
        }
    );
}

#[test]
fn every_shipped_statement_exists_in_every_language_and_passes_the_tenant_checks() {
    for id in TEMPLATE_IDS {
        for language in ["es", "pt", "en"] {
            let (subject, body) = super::shipped(id, language).unwrap_or_else(|| panic!("{id}/{language}"));
            assert_eq!(
                check_any_wording(id, language, subject, body),
                Ok(()),
                "{id}/{language}"
            );
        }
    }
    let listed: Vec<_> = crate::templates::all()
        .into_iter()
        .filter(|(id, _, _, _)| form_of(id).is_some())
        .collect();
    assert_eq!(listed.len(), TEMPLATE_IDS.len() * 3, "ListTemplates shows them");
}

#[test]
fn a_tenants_statement_wording_is_checked_before_it_is_stored() {
    let field = |id: &str, subject: &str, body: &str| check_any_wording(id, "es", subject, body).err();
    let list = "Hola {debtor_name}:\n{#invoices}- {invoice_number} {amount} {days_overdue}\n{/invoices}Total {total}. {opt_out}";
    assert_eq!(field("statement_overdue", "{invoice_count} facturas", list), None);
    assert_eq!(
        field("statement_overdue", "Estado", "{debtor_name}: {total}. {opt_out}").map(|(f, _)| f),
        Some("body"),
        "a list statement lists"
    );
    let twice = format!("{list}{{#invoices}}{{amount}}{{/invoices}}");
    assert_eq!(
        field("statement_overdue", "x", &twice).map(|(f, _)| f),
        Some("body")
    );
    let (_, reason) = field(
        "statement_overdue",
        "x",
        "{#invoices}{total}{/invoices} {opt_out}",
    )
    .expect("the total is not a line's");
    assert!(reason.contains("{total}"), "{reason}");
    let (_, reason) = field("statement_overdue", "{invoice_number}", list)
        .expect("an invoice's number is not the statement's");
    assert!(reason.contains("{invoice_number}"), "{reason}");
    assert_eq!(
        field(
            "statement_overdue",
            "x",
            "{#invoices}{amount}{opt_out}{/invoices}"
        )
        .map(|(f, _)| f),
        Some("body"),
        "the opt-out line is said once, outside the list"
    );
    assert_eq!(
        field("statement_overdue", "x", "{#invoices}{amount} {opt_out}").map(|(f, _)| f),
        Some("body"),
        "a section never closed"
    );
    // A summary has no subject and no list.
    assert_eq!(
        field(
            "statement_summary_overdue",
            "",
            "{invoice_count}: {total} {payment_link} {opt_out}"
        ),
        None
    );
    assert_eq!(
        field(
            "statement_summary_overdue",
            "",
            "{#invoices}{amount}{/invoices} {opt_out}"
        )
        .map(|(f, _)| f),
        Some("body")
    );
    assert_eq!(
        field("statement_overdue", "", list).map(|(f, _)| f),
        Some("subject"),
        "an email statement has a subject"
    );
}

#[test]
fn a_tenants_statement_wording_comes_first() {
    let own = Wordings::from([(
        (
            "acme".to_string(),
            "statement_overdue".to_string(),
            "es".to_string(),
        ),
        Wording {
            subject: "Acme: {invoice_count} pendientes".into(),
            body: "{#invoices}{invoice_number};{/invoices} {total} {opt_out}".into(),
            version: 1,
        },
    )]);
    let lines = vec![line("A-1", "10", "1", "3"), line("A-2", "20", "2", "9")];
    let rendered = render(
        "acme",
        "statement_overdue",
        "es-MX",
        &statement(2, "30"),
        &lines,
        &own,
    )
    .expect("renders");
    assert_eq!(rendered.subject, "Acme: 2 pendientes");
    assert_eq!(rendered.body, format!("A-1;A-2; 30 {OPT_OUT}"));
}
