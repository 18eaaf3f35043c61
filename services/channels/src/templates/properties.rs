//! Property tests of template rendering. The module's promise: "a template whose variables are
//! not all known fails loudly: a debtor never gets a half-filled message". So whatever the
//! text and the variables, rendering never panics; what renders has every brace filled; a
//! wording that passes `check_wording` renders to exactly its text with each variable's value
//! put in once (a value is never read as a template itself); and a missing variable is named.

use proptest::prelude::*;
use proptest::sample::select;

use super::*;

/// Enough cases to reach every branch often, few enough to keep the suite fast.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// One piece of a wording: plain text, or a variable in braces.
#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Variable(&'static str),
}

/// A wording as a tenant writes it: text (without braces) and known variables.
fn wording() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        "[^{}]{0,12}".prop_map(Piece::Text),
        select(VARIABLES).prop_map(Piece::Variable),
    ];
    prop::collection::vec(piece, 0..6)
}

fn text_of(pieces: &[Piece]) -> String {
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(plain) => text.push_str(plain),
            Piece::Variable(name) => text.push_str(&format!("{{{name}}}")),
        }
    }
    text
}

/// What rendering must give: each variable replaced by its value, once, in order.
fn expected(pieces: &[Piece], variables: &HashMap<&str, String>) -> String {
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(plain) => text.push_str(plain),
            Piece::Variable(name) => text.push_str(&variables[name]),
        }
    }
    text
}

/// Values for some of the variables: any text, braces included, sometimes blank.
fn variables() -> impl Strategy<Value = HashMap<&'static str, String>> {
    let value = prop_oneof![
        6 => "\\PC{1,16}",
        1 => Just("{amount}".to_string()),
        1 => Just("  ".to_string()),
    ];
    prop::collection::vec((select(VARIABLES), value), 0..9).prop_map(|pairs| pairs.into_iter().collect())
}

/// The wording of one tenant, template and language, as `render_for` looks it up.
fn own(subject: &str, body: &str) -> Wordings {
    Wordings::from([(
        ("acme".to_string(), "courtesy".to_string(), "es".to_string()),
        Wording {
            subject: subject.to_string(),
            body: body.to_string(),
            version: 1,
        },
    )])
}

proptest! {
    #![proptest_config(config())]

    /// Any text, braces unbalanced or not, with any variables: no panic; and when values carry
    /// no brace, what renders has none left (every '{' was filled), while a failure names a
    /// variable the text asks for.
    #[test]
    fn any_text_renders_without_panicking_and_leaves_no_brace_unfilled(
        subject in "[a-z {}_]{0,24}|\\PC{0,24}",
        body in "[a-z {}_]{0,40}|\\PC{0,40}",
        variables in variables(),
    ) {
        let braceless = variables.values().all(|value| !value.contains(['{', '}']));
        match render_for("acme", "courtesy", "es-CO", &variables, &own(&subject, &body)) {
            Ok(rendered) => {
                if braceless {
                    prop_assert!(!rendered.subject.contains('{'), "{:?}", rendered.subject);
                    prop_assert!(!rendered.body.contains('{'), "{:?}", rendered.body);
                }
            }
            Err(RenderError::MissingVariable { template_id, variable }) => {
                prop_assert_eq!(template_id, "courtesy");
                let asked = format!("{{{variable}");
                prop_assert!(subject.contains(&asked) || body.contains(&asked), "{variable:?} is not asked for");
                prop_assert!(variables.get(variable.as_str()).is_none_or(|value| value.trim().is_empty()));
            }
            Err(other) => prop_assert!(false, "the wording exists: {other}"),
        }
    }

    /// A wording made of text and known variables is accepted when it is stored; rendered, it is
    /// exactly its text with each value put in once, even a value that looks like a variable;
    /// if a variable it uses has no value, rendering fails and names one that has none.
    #[test]
    fn an_accepted_wording_renders_exactly_or_names_a_missing_variable(
        subject in wording(),
        body in wording(),
        variables in variables(),
    ) {
        let subject = [vec![Piece::Text("Factura ".into())], subject].concat();
        let body = [body, vec![Piece::Variable("opt_out")]].concat();
        let (subject_text, body_text) = (text_of(&subject), text_of(&body));
        prop_assert_eq!(check_wording("courtesy", "es", &subject_text, &body_text), Ok(()));

        let missing: Vec<&str> = subject
            .iter()
            .chain(&body)
            .filter_map(|piece| match piece {
                Piece::Variable(name) => Some(*name),
                Piece::Text(_) => None,
            })
            .filter(|name| variables.get(name).is_none_or(|value| value.trim().is_empty()))
            .collect();
        let rendered = render_for("acme", "courtesy", "es", &variables, &own(&subject_text, &body_text));
        match rendered {
            Ok(rendered) => {
                prop_assert!(missing.is_empty(), "rendered although {missing:?} have no value");
                prop_assert_eq!(rendered.subject, expected(&subject, &variables));
                prop_assert_eq!(rendered.body, expected(&body, &variables));
            }
            Err(RenderError::MissingVariable { variable, .. }) => {
                prop_assert!(missing.contains(&variable.as_str()), "{variable:?} is not missing: {missing:?}");
            }
            Err(other) => prop_assert!(false, "the wording exists: {other}"),
        }
    }

    /// Whatever a tenant submits, checking it never panics; and what the check accepts renders
    /// completely, with no brace left, once every variable has a value.
    #[test]
    fn what_the_check_accepts_renders_completely(
        subject in prop_oneof![3 => "[a-z _]{0,30}", 1 => "[a-z {}_]{0,30}"],
        body in prop_oneof![3 => "[a-z _]{0,40}", 1 => "[a-z {}_]{0,40}"],
        names in prop::collection::vec(
            prop_oneof![4 => select(VARIABLES).prop_map(String::from), 1 => "[a-z_]{0,8}"],
            0..4,
        ),
        language in prop_oneof![4 => select(vec!["es", "pt", "en"]), 1 => select(vec!["fr", ""])],
    ) {
        // Known and unknown names in braces, among stray braces and text, and the opt-out line
        // every body needs (the check refuses a body without it).
        let mut body = body;
        for name in &names {
            body.push_str(&format!(" {{{name}}}"));
        }
        body.push_str(" {opt_out}");
        if check_wording("courtesy", language, &subject, &body).is_err() {
            return Ok(());
        }
        let everything: HashMap<&str, String> = VARIABLES.iter().map(|name| (*name, format!("<{name}>"))).collect();
        let wordings = Wordings::from([(
            ("acme".to_string(), "courtesy".to_string(), language.to_string()),
            Wording { subject: subject.clone(), body: body.clone(), version: 1 },
        )]);
        let rendered = render_for("acme", "courtesy", language, &everything, &wordings)
            .map_err(|err| TestCaseError::fail(format!("{subject:?} / {body:?} was accepted, then: {err}")))?;
        prop_assert!(!rendered.subject.contains(['{', '}']), "{:?}", rendered.subject);
        prop_assert!(!rendered.body.contains(['{', '}']), "{:?}", rendered.body);
    }

    /// Shipped templates, any locale: every variable a template uses must have a value, and then
    /// it renders with none of its placeholders left.
    #[test]
    fn a_shipped_template_renders_completely_or_names_a_missing_variable(
        template in select(TEMPLATE_IDS),
        locale in prop_oneof![select(vec!["es-CO", "pt-BR", "en-US", "fr", ""]).prop_map(String::from), "\\PC{0,8}"],
        variables in variables(),
    ) {
        let braceless = variables.values().all(|value| !value.contains(['{', '}']));
        match render_for("acme", template, &locale, &variables, &Wordings::new()) {
            Ok(rendered) => {
                let (subject, body) = shipped(template, language(&locale)).expect("rendered, so shipped");
                for name in VARIABLES {
                    let braced = format!("{{{name}}}");
                    if subject.contains(&braced) || body.contains(&braced) {
                        prop_assert!(!variables[name].trim().is_empty(), "{name} rendered blank");
                    }
                }
                if braceless {
                    let left = [&rendered.subject, &rendered.body];
                    prop_assert!(left.iter().all(|text| !text.contains('{')), "{:?}", left);
                }
            }
            Err(RenderError::MissingVariable { variable, .. }) => {
                prop_assert!(variables.get(variable.as_str()).is_none_or(|value| value.trim().is_empty()));
            }
            Err(other) => prop_assert!(false, "{template} is shipped: {other}"),
        }
    }
}
