//! Reads what a debtor answered and decides what it means: rules over a small phrase table per
//! language (`phrases`), on text normalised the way debtors write (no accents, any case, SMS
//! spellings, letters repeated for emphasis). Opt-outs come first and lean to recall: a reply
//! that asks in any way to stop being contacted is one, whatever else it says. Its accuracy on
//! a labelled set of replies written apart from the table is in docs/benchmarks.md.

mod phrases;

use std::sync::LazyLock;

use recobro_common::text::unaccented;
use recobro_proto::v1::ResponseIntent;
use regex::Regex;

/// The phrase table, compiled once.
struct Table {
    opt_out: Vec<Regex>,
    maybe_opt_out: Vec<Regex>,
    not_opt_out: Vec<Regex>,
    already_paid: Vec<Regex>,
    not_paid: Vec<Regex>,
    dispute: Vec<Regex>,
    pay: Vec<Regex>,
    when: Vec<Regex>,
    commit: Vec<Regex>,
    scam_question: Regex,
    stop_word: Regex,
    contact_word: Regex,
}

fn compile(patterns: &[&str]) -> Vec<Regex> {
    patterns
        .iter()
        .map(|pattern| Regex::new(pattern).unwrap_or_else(|err| panic!("phrase {pattern:?}: {err}")))
        .collect()
}

static TABLE: LazyLock<Table> = LazyLock::new(|| Table {
    opt_out: compile(phrases::OPT_OUT),
    maybe_opt_out: compile(phrases::MAYBE_OPT_OUT),
    not_opt_out: compile(phrases::NOT_OPT_OUT),
    already_paid: compile(phrases::ALREADY_PAID),
    not_paid: compile(phrases::NOT_PAID),
    dispute: compile(phrases::DISPUTE),
    pay: compile(phrases::PAY),
    when: compile(phrases::WHEN),
    commit: compile(phrases::COMMIT),
    scam_question: compile(&[phrases::SCAM_QUESTION]).remove(0),
    stop_word: compile(&[phrases::STOP_WORD]).remove(0),
    contact_word: compile(&[phrases::CONTACT_WORD]).remove(0),
});

/// SMS and chat spellings, written out ("q" is "que", "x favor" is "por favor", "vc" is "você").
const SPELLINGS: &[(&str, &str)] = &[
    ("q", "que"),
    ("k", "que"),
    ("xq", "porque"),
    ("pq", "porque"),
    ("x", "por"),
    ("xfa", "por favor"),
    ("porfa", "por favor"),
    ("porfis", "por favor"),
    ("pf", "por favor"),
    ("pfv", "por favor"),
    ("d", "de"),
    ("m", "me"),
    ("vc", "voce"),
    ("vcs", "voces"),
    ("ta", "esta"),
    ("tao", "estao"),
    ("tb", "tambien"),
    ("tmb", "tambien"),
    ("pls", "please"),
    ("plz", "please"),
    ("u", "you"),
    ("ur", "your"),
    ("msg", "message"),
    ("msgs", "messages"),
    ("txt", "text"),
    ("2morrow", "tomorrow"),
    ("tmrw", "tomorrow"),
    ("mañ", "manana"),
    ("num", "nao"),
    ("naum", "nao"),
    ("kero", "quero"),
    ("kiero", "quiero"),
    ("pagei", "paguei"),
    ("pagao", "pago"),
    ("guasap", "whatsapp"),
    ("wasap", "whatsapp"),
    ("recieve", "receive"),
    ("realize", "realice"),
    ("ke", "que"),
    ("nunk", "nunca"),
    ("nunka", "nunca"),
    ("fabor", "favor"),
];

/// Lowercase, accents removed, punctuation and emojis turned into spaces, a letter repeated
/// three times or more kept once ("yaaa"), SMS spellings written out, spaces folded.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        let c = match unaccented(c) {
            '\'' | '’' | '´' | '`' => continue,
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        out.push(c);
    }
    let out = without_emphasis(&out);
    out.split_whitespace()
        .map(without_doubled_end)
        .map(|word| {
            SPELLINGS
                .iter()
                .find(|(short, _)| *short == word)
                .map_or(word, |(_, long)| long)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A letter written three times or more in a row kept once ("siiii", "pagueee": emphasis, not
/// another word); doubled letters stay ("llamar", "leer").
fn without_emphasis(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < chars.len() {
        let run = chars[at..].iter().take_while(|c| **c == chars[at]).count();
        let kept = if run >= 3 && chars[at].is_alphabetic() {
            1
        } else {
            run
        };
        out.extend(std::iter::repeat_n(chars[at], kept));
        at += run;
    }
    out
}

/// A word ending in a doubled "a", "i" or "u" written once ("yaa", "bajaa", "siii" after
/// `without_emphasis`): no Spanish, Portuguese or English word ends so, while "ee" and "oo" do.
fn without_doubled_end(word: &str) -> &str {
    for end in ["aa", "ii", "uu"] {
        if word.len() > end.len() && word.ends_with(end) {
            return &word[..word.len() - 1];
        }
    }
    word
}

fn any(patterns: &[Regex], text: &str) -> bool {
    patterns.iter().any(|pattern| pattern.is_match(text))
}

/// What a reply means, and whether an opt-out was read from a weak signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub intent: ResponseIntent,
    /// An opt-out only `phrases::STOP_WORD` and `phrases::CONTACT_WORD` found: honoured, and a
    /// person confirms it with the debtor.
    pub opt_out_unsure: bool,
}

impl Reading {
    /// A reading no weak signal decided.
    pub fn sure(intent: ResponseIntent) -> Reading {
        Reading {
            intent,
            opt_out_unsure: false,
        }
    }
}

/// What a reply means (see `read`).
pub fn classify(original: &str) -> ResponseIntent {
    read(original).intent
}

/// What a reply means, in order: an opt-out, a payment claim, a dispute, a promise to pay
/// (paying with a when, or a commitment), a possible opt-out (see `phrases::STOP_WORD`), or
/// anything else (for a person).
pub fn read(original: &str) -> Reading {
    let text = normalize(original);
    let table = &*TABLE;
    if any(&table.opt_out, &text) || (any(&table.maybe_opt_out, &text) && !any(&table.not_opt_out, &text)) {
        return Reading::sure(ResponseIntent::OptOut);
    }
    // "I get paid on the 15th" and "aún no pagué" are no payment claim.
    let mut claim = text.clone();
    for pattern in &table.not_paid {
        claim = pattern.replace_all(&claim, " ").into_owned();
    }
    let intent = if any(&table.already_paid, &claim) {
        ResponseIntent::AlreadyPaid
    } else if any(
        &table.dispute,
        &normalize(&table.scam_question.replace_all(original, " ")),
    ) {
        ResponseIntent::Dispute
    } else if any(&table.commit, &text) || (any(&table.pay, &text) && any(&table.when, &text)) {
        ResponseIntent::PromiseToPay
    } else if table.stop_word.is_match(&text)
        && table.contact_word.is_match(&text)
        && !any(&table.not_opt_out, &text)
    {
        return Reading {
            intent: ResponseIntent::OptOut,
            opt_out_unsure: true,
        };
    } else {
        ResponseIntent::Other
    };
    Reading::sure(intent)
}

#[cfg(test)]
mod tests;
