//! How much a debtor promises to pay, read from what they wrote: "le pago 500 el viernes",
//! "$1.200", "R$ 300,00", "50 mil", "200 soles", "la mitad", "el 50%". `None` when no amount is
//! given: the promise is then for what each invoice owes.
//!
//! A bare number counts only right after a paying verb ("abono 200"): "el 15" is a day. Amounts
//! are in the invoice's currency (a debtor writing "dólares" to a peso invoice is read in pesos:
//! people name the money they mean, not an ISO code). A promise recorded from a reply queues no
//! work item, so a misread amount shows only on the promise itself (and the reply it cites).

use recobro_common::money::minor_unit_digits;
use recobro_common::text::unaccented;

/// What the debtor said they will pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromisedAmount {
    /// This much, in the invoice currency's minor units.
    Minor(i64),
    /// This percentage of what is owed ("la mitad" is 50).
    Share(u8),
}

/// Words that, after a number, make it money ("mil" and "k" also multiply it).
const MONEY_AFTER: &[&str] = &[
    "pesos",
    "peso",
    "reais",
    "real",
    "soles",
    "sol",
    "dolares",
    "dollars",
    "dolar",
    "dollar",
    "bucks",
    "euros",
    "euro",
    "libras",
    "pounds",
    "quetzales",
    "lempiras",
    "colones",
    "guaranies",
    "bolivianos",
    "usd",
    "cop",
    "mxn",
    "brl",
    "pen",
    "clp",
    "ars",
    "eur",
    "gbp",
    "uyu",
    "gtq",
    "dop",
    "bob",
];

/// Words after a number that make it a date or a count, not money.
const NOT_MONEY_AFTER: &[&str] = &[
    "de",
    "del",
    "do",
    "da",
    "of",
    "cuotas",
    "cuota",
    "parcelas",
    "parcela",
    "meses",
    "mes",
    "dias",
    "dia",
    "semanas",
    "semana",
    "days",
    "weeks",
    "months",
    "instalments",
    "installments",
    "payments",
    "pagos",
    "facturas",
    "faturas",
    "invoices",
    "st",
    "nd",
    "rd",
    "th",
];

/// Month names (es, pt, en) after a number: "15 diciembre" is a date.
const MONTHS: &[&str] = &[
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "setiembre",
    "octubre",
    "noviembre",
    "diciembre",
    "janeiro",
    "fevereiro",
    "marco",
    "maio",
    "junho",
    "julho",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words right before a bare number that make it an amount paid, not a day.
const PAYING: &[&str] = &[
    "pago",
    "pagare",
    "abono",
    "abonare",
    "deposito",
    "depositare",
    "transfiero",
    "mando",
    "envio",
    "doy",
    "dare",
    "consigno",
    "yapeo",
    "dou",
    "pagar",
    "abonar",
    "depositar",
    "transferir",
    "pay",
    "send",
    "paying",
    "sending",
    "give",
    "deposit",
    "transfer",
];

/// The amount promised in `text`, for an invoice in `currency`.
pub fn promised_amount(text: &str, currency: &str) -> Option<PromisedAmount> {
    let words = words(text);
    if let Some(share) = share(&words) {
        return Some(PromisedAmount::Share(share));
    }
    let digits = minor_unit_digits(currency)?;
    words.iter().enumerate().find_map(|(i, word)| {
        let before = i.checked_sub(1).map(|j| words[j].as_str());
        let (marked, number) = match word.strip_prefix('$') {
            Some(rest) => (true, rest),
            // "R$ 300": the currency sign written apart.
            None => (before.is_some_and(|w| w.ends_with('$')), word.as_str()),
        };
        let (major, cents) = number_of(number)?;
        let next = words.get(i + 1).map(String::as_str);
        let multiplier: i64 = match next {
            Some("mil" | "k" | "lucas" | "luca") => 1_000,
            Some("millones" | "millon" | "milhoes" | "milhao" | "million" | "millions" | "palos") => {
                1_000_000
            }
            _ => 1,
        };
        let money = marked || multiplier > 1 || next.is_some_and(|w| MONEY_AFTER.contains(&w));
        // After a paying verb a bare number is money unless what follows makes it a date or a
        // count ("le pago 15 de diciembre", "pago 2 cuotas").
        let counted = next.is_some_and(|w| NOT_MONEY_AFTER.contains(&w) || MONTHS.contains(&w));
        let paid = before.is_some_and(|w| PAYING.contains(&w)) && !counted;
        if !(money || paid) {
            return None;
        }
        let scale = 10_i64.checked_pow(digits)?.checked_mul(multiplier)?;
        let minor = major.checked_mul(scale)?.checked_add(fraction(cents, scale)?)?;
        (minor > 0).then_some(PromisedAmount::Minor(minor))
    })
}

/// "la mitad", "metade", "half", "50%", "50 por ciento"; not "a mitad de mes" (a date).
fn share(words: &[String]) -> Option<u8> {
    let half = words.iter().enumerate().any(|(i, w)| {
        let of_a_period = words
            .get(i + 1)
            .is_some_and(|w| matches!(w.as_str(), "de" | "del" | "do" | "da" | "of"))
            && words.get(i + 2).is_some_and(|w| {
                matches!(
                    w.as_str(),
                    "mes" | "semana" | "month" | "week" | "the" | "quincena"
                )
            });
        matches!(w.as_str(), "mitad" | "metade" | "half") && !of_a_period
    });
    if half {
        return Some(50);
    }
    words.iter().enumerate().find_map(|(i, word)| {
        let percent = match word.strip_suffix('%') {
            Some(number) => number,
            None if words.get(i + 1).is_some_and(|w| w == "por")
                && words.get(i + 2).is_some_and(|w| w == "ciento" || w == "cento") =>
            {
                word.as_str()
            }
            None => return None,
        };
        let value: u8 = percent.parse().ok()?;
        (1..=100).contains(&value).then_some(value)
    })
}

/// A written number: "500", "1.200", "1,200", "1.200,50", "300,00", "12.5". Returns the whole
/// part and the decimals as written ("50" of "1.200,50"), if any.
fn number_of(word: &str) -> Option<(i64, Option<&str>)> {
    if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if !word.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return None;
    }
    // The last separator followed by one or two digits is the decimal point; the others group
    // thousands ("1.200,50", "1,200.50"); three digits after it is a group ("1.200").
    let (whole, cents) = match word.rfind(['.', ',']) {
        Some(at) if (2..=3).contains(&(word.len() - at)) => (&word[..at], Some(&word[at + 1..])),
        _ => (word, None),
    };
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    Some((whole.parse().ok()?, cents))
}

/// Decimals as written, in minor units when one whole unit is `scale` of them ("1,5 mil" pesos:
/// ",5" of 100,000 is 50,000); what is finer than a minor unit is dropped.
fn fraction(decimals: Option<&str>, scale: i64) -> Option<i64> {
    let Some(decimals) = decimals else { return Some(0) };
    let written = u32::try_from(decimals.len()).ok()?;
    let value: i64 = decimals.parse().ok()?;
    Some(value.checked_mul(scale)? / 10_i64.checked_pow(written)?)
}

/// Lower case, no accents; "$", "%", ".", "," and "/" kept inside words ("R$300" is "$300",
/// and "15/12" stays a date, never the number 15).
fn words(text: &str) -> Vec<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        out.push(match unaccented(c) {
            c @ ('$' | '%' | '.' | ',' | '/') => c,
            c if c.is_alphanumeric() => c,
            _ => ' ',
        });
    }
    out.split_whitespace()
        .map(|word| {
            // "r$300" and "us$50" name the currency ("s/200" for soles is not read); "300." ends
            // a sentence.
            let word = word.trim_start_matches(|c: char| c.is_ascii_alphabetic() && word.contains('$'));
            word.trim_end_matches(['.', ',']).to_string()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_the_way_debtors_write_them() {
        for (text, currency, minor) in [
            ("le pago 500 el viernes", "MXN", 50_000),
            ("el lunes le abono $1.200", "COP", 120_000),
            ("amanhã faço um pix de R$ 300,00", "BRL", 30_000),
            ("puedo dar 50 mil el 15", "COP", 5_000_000),
            ("el viernes deposito 200 soles", "PEN", 20_000),
            ("I'll send $75.50 on Friday", "USD", 7_550),
            ("le pago 20 lucas el sabado", "CLP", 20_000),
            ("te mando 1,200.5 el martes", "USD", 120_050),
            ("te pago 1,5 mil el viernes", "COP", 150_000),
            ("le pago 2,5 lucas el lunes", "CLP", 2_500),
            ("le pago 2 millones el viernes", "COP", 200_000_000),
        ] {
            assert_eq!(
                promised_amount(text, currency),
                Some(PromisedAmount::Minor(minor)),
                "{text}"
            );
        }
    }

    #[test]
    fn shares_of_what_is_owed() {
        for (text, share) in [
            ("el viernes le pago la mitad", 50),
            ("pago metade na sexta", 50),
            ("I can pay half next week", 50),
            ("abono el 30% el lunes", 30),
            ("pago el 25 por ciento el 15", 25),
        ] {
            assert_eq!(
                promised_amount(text, "MXN"),
                Some(PromisedAmount::Share(share)),
                "{text}"
            );
        }
    }

    #[test]
    fn days_and_plain_numbers_are_no_amount() {
        for text in [
            "pago el 15",
            "pago el viernes 12",
            "on the 3rd",
            "15/12 sin falta",
            "pago 15/12",
            "le pago 15 de diciembre",
            "I will pay 15 December",
            "pago 2 cuotas el viernes",
            "le pago a mitad de mes, el 15",
            "pago el viernes sin falta",
            "factura 4412 el dia 28",
            "le pago 0 pesos",
        ] {
            assert_eq!(promised_amount(text, "MXN"), None, "{text}");
        }
        assert_eq!(
            promised_amount("le pago $500", "XXX"),
            None,
            "an unknown currency"
        );
    }
}
