//! Property tests of composing a reminder's message from what its event and the ledger say:
//! any amount, currency, date, locale and name. Composing never panics; a shipped template
//! renders exactly when every variable it uses has a value (and then no placeholder is left);
//! free-form text always ends with the opt-out line.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::select;
use recobro_proto::v1 as pb;
use recobro_rules::Rulebook;

use super::*;
use crate::templates::{TEMPLATE_IDS, VARIABLES};

/// Each case formats money and dates through ICU4X: modest, to keep the suite fast.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn rulebook() -> &'static Rulebook {
    static BOOK: OnceLock<Rulebook> = OnceLock::new();
    BOOK.get_or_init(|| Rulebook::shipped().expect("every shipped pack parses"))
}

/// Text with no braces: names and numbers come from ERPs, and a brace in them would be
/// indistinguishable from a placeholder left unfilled.
fn plain_text(max: usize) -> impl Strategy<Value = String> {
    let pattern = |pattern: String| proptest::string::string_regex(&pattern).expect("a valid pattern");
    prop_oneof![
        4 => pattern(format!("[a-zA-Z0-9ñÑáé .,'&-]{{1,{max}}}")),
        1 => pattern(format!("[\\PC&&[^{{}}]]{{0,{max}}}")),
        1 => Just("   ".to_string()),
    ]
}

fn money() -> impl Strategy<Value = Option<pb::Money>> {
    let currency = prop_oneof![
        4 => select(vec!["COP", "MXN", "PEN", "CLP", "BRL", "USD", "EUR", "KWD", "CLF", "IQD"]),
        1 => select(vec!["", "XXX", "eur", "PESOS"]),
    ];
    let amount = prop_oneof![3 => -1_000_000_i64..100_000_000_00, 1 => any::<i64>()];
    prop::option::of((amount, currency).prop_map(|(amount_minor, currency)| pb::Money {
        amount_minor,
        currency: currency.to_string(),
    }))
}

fn date() -> impl Strategy<Value = Option<pb::Date>> {
    let numbers = prop_oneof![
        4 => (1900..3000, 1..=12, 1..=28),
        1 => (any::<i32>(), any::<i32>(), any::<i32>()),
    ];
    prop::option::of(numbers.prop_map(|(year, month, day)| pb::Date { year, month, day }))
}

fn locale() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec!["es-CO", "es-MX", "pt-BR", "en-US", "es_CL.UTF-8", "fr-CO", "en"]).prop_map(String::from),
        1 => "\\PC{0,12}",
    ]
}

/// A reminder as the dispatcher sees it, with the ledger's debtor.
fn reminder() -> impl Strategy<Value = Reminder> {
    let invoice = (plain_text(12), money(), money(), date(), "[a-zA-Z0-9-]{0,36}").prop_map(
        |(number, amount, outstanding, due_date, invoice_id)| pb::Invoice {
            invoice_id,
            number,
            amount,
            outstanding,
            due_date,
            ..Default::default()
        },
    );
    let event = (
        prop_oneof![4 => select(TEMPLATE_IDS).prop_map(String::from), 1 => "[a-z_]{0,12}"],
        prop::option::of(invoice),
        money(),
        date(),
        prop_oneof![2 => Just(String::new()), 1 => "\\PC{0,40}"],
    );
    let debtor = (
        plain_text(24),
        locale(),
        select(vec!["CO", "MX", "PE", "CL", "BR", "US", "ES", "ZZ"]),
    );
    (event, debtor).prop_map(
        |((template_id, invoice, amount_due, due_date, text), (name, locale, country))| {
            let event = pb::ReminderDue {
                reminder_id: uuid::Uuid::from_u128(1).to_string(),
                debtor_id: uuid::Uuid::from_u128(2).to_string(),
                tenant_id: "acme".into(),
                channel: pb::Channel::Email as i32,
                template_id,
                invoice,
                amount_due,
                due_date,
                text,
                ..Default::default()
            };
            let ledger = pb::Debtor {
                name,
                locale,
                country: country.into(),
                time_zone: "America/Bogota".into(),
                ..Default::default()
            };
            crate::reminder::parse(event)
                .expect("ids, tenant and channel are valid")
                .with_ledger(&ledger, chrono_tz::America::Bogota)
        },
    )
}

proptest! {
    #![proptest_config(config())]

    /// A shipped template renders exactly when every variable it uses has a non-blank value in
    /// the debtor's language; rendered, no placeholder is left (no value here has a brace).
    #[test]
    fn a_template_renders_iff_its_variables_are_known_and_leaves_no_placeholder(reminder in reminder()) {
        let debtor = &reminder.debtor;
        let rules = rulebook().for_debtor("acme", &debtor.country, None);
        let variables = variables(&reminder, &rules, &crate::payments::PaymentLinks::ephemeral("https://pay.example"));
        let language = crate::templates::language(&debtor.locale);
        let template = crate::templates::all()
            .into_iter()
            .find(|(id, lang, _, _)| *id == reminder.event.template_id && *lang == language);
        let rendered = render_template(&reminder, &variables, &Wordings::new());
        let Some((_, _, subject, body)) = template else {
            prop_assert!(rendered.is_err(), "{:?} is not shipped", reminder.event.template_id);
            return Ok(());
        };
        let unknown: Vec<&str> = VARIABLES
            .iter()
            .copied()
            .filter(|name| {
                let braced = format!("{{{name}}}");
                subject.contains(&braced) || body.contains(&braced)
            })
            .filter(|name| variables.get(name).is_none_or(|value| value.trim().is_empty()))
            .collect();
        match rendered {
            Ok(rendered) => {
                prop_assert!(unknown.is_empty(), "rendered without {unknown:?}");
                for text in [&rendered.subject, &rendered.body] {
                    prop_assert!(!text.contains('{') && !text.contains('}'), "{text:?}");
                }
            }
            Err(err) => prop_assert!(!unknown.is_empty(), "refused with every variable known: {err}"),
        }
    }

    /// One-off text goes as written, trimmed, and always ends with the opt-out line of the
    /// debtor's country in their language.
    #[test]
    fn free_form_text_ends_with_the_opt_out_line(reminder in reminder()) {
        let debtor = &reminder.debtor;
        let rules = rulebook().for_debtor("acme", &debtor.country, None);
        let variables = variables(&reminder, &rules, &crate::payments::PaymentLinks::ephemeral("https://pay.example"));
        let opt_out = rules
            .opt_out_sentence(crate::templates::language(&debtor.locale))
            .expect("every shipped pack has an opt-out sentence");
        let rendered = free_form(&reminder, &variables);
        prop_assert!(rendered.body.ends_with(opt_out.trim_end()), "{:?}", rendered.body);
        prop_assert!(rendered.body.starts_with(reminder.event.text.trim()), "{:?}", rendered.body);
        prop_assert!(rendered.subject.is_empty());
    }
}
