//! The date a debtor promises to pay, read from what they wrote, the way they write it in
//! Spanish, Portuguese and English ("el viernes", "el 15", "15/12", "a fin de mes", "la próxima
//! semana", "mañana", "amanhã", "semana que vem", "next Friday", "on the 3rd"), counted from
//! their own local date. `None` when no date can be read: a person reads it instead.
//!
//! What is vague is read as late as it can reasonably mean: "next week" is that week's Friday,
//! "end of the month" its last day, "la quincena" the 15th or the month's end, whichever comes
//! first. Day-first numeric dates ("15/12") are read as the region writes them; a date that only
//! makes sense month-first ("12/15") is read that way.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use recobro_common::text::unaccented;

/// The promised date in `text`, written on `today` (the debtor's local date).
pub fn promised_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let words = words(text);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    numeric(&words, today)
        .or_else(|| day_and_month_name(&words, today))
        .or_else(|| in_days(&words, today))
        .or_else(|| weekday(&words, today))
        .or_else(|| end_of_month(&words, today))
        .or_else(|| next_week(&words, today))
        .or_else(|| day_of_month(&words, today))
        .or_else(|| relative_day(&words, today))
}

/// Lower case, no accents, words split on anything but letters, digits and the date separator
/// ("segunda-feira" is "segunda" and "feira").
fn words(text: &str) -> Vec<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        out.push(match unaccented(c) {
            '/' => '/',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        });
    }
    out.split_whitespace()
        .map(|word| word.trim_matches('/').to_string())
        .filter(|word| !word.is_empty())
        .collect()
}

fn has(words: &[&str], phrase: &[&str]) -> bool {
    words.windows(phrase.len()).any(|window| window == phrase)
}

/// "15/12", "15/12/2026", "3/1/27": day first, month first only when day first is impossible.
fn numeric(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    words.iter().find_map(|word| {
        let parts: Vec<&str> = word.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return None;
        }
        let numbers: Vec<u32> = parts
            .iter()
            .map(|part| part.parse().ok())
            .collect::<Option<_>>()?;
        let year = match numbers.get(2) {
            Some(&year) if year < 100 => Some(2000 + year as i32),
            Some(&year) => Some(year as i32),
            None => None,
        };
        let (a, b) = (numbers[0], numbers[1]);
        let on = |day: u32, month: u32| match year {
            Some(year) => NaiveDate::from_ymd_opt(year, month, day),
            None => next_day_and_month(today, day, month),
        };
        on(a, b).or_else(|| on(b, a))
    })
}

/// The next time `day` of `month` comes, today included.
fn next_day_and_month(today: NaiveDate, day: u32, month: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if this_year >= today {
        Some(this_year)
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    }
}

const MONTHS: [(&str, u32); 36] = [
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
    ("janeiro", 1),
    ("fevereiro", 2),
    ("marco", 3),
    ("maio", 5),
    ("junho", 6),
    ("julho", 7),
    ("setembro", 9),
    ("outubro", 10),
    ("novembro", 11),
    ("dezembro", 12),
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("setiembre", 9),
    ("abr", 4),
];

fn month(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, month)| *month)
}

/// A day number as debtors write it: "15", "3rd", "1st", "1ro", "1o".
fn day_number(word: &str) -> Option<u32> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))
        .or_else(|| word.strip_suffix("ro"))
        .or_else(|| word.strip_suffix('o'))
        .unwrap_or(word);
    let day: u32 = digits.parse().ok()?;
    (1..=31).contains(&day).then_some(day)
}

/// "15 de diciembre", "15 de dezembro", "december 15", "15 december".
fn day_and_month_name(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    words.iter().enumerate().find_map(|(i, word)| {
        let month = month(word)?;
        // May is also a verb ("I may pay"): only a number beside it makes it a month.
        let before = i
            .checked_sub(1)
            .and_then(|j| match words[j] {
                "de" | "del" | "of" => j.checked_sub(1).map(|k| words[k]),
                other => Some(other),
            })
            .and_then(day_number);
        let after = words.get(i + 1).and_then(|next| day_number(next));
        next_day_and_month(today, before.or(after)?, month)
    })
}

/// "en 3 dias", "em 5 dias", "in 10 days", "en una semana", "in a week", "em uma semana".
fn in_days(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    words.windows(3).find_map(|window| {
        let [preposition, count, unit] = window else {
            return None;
        };
        if !matches!(*preposition, "en" | "em" | "in" | "dentro") {
            return None;
        }
        let count: u64 = match *count {
            "un" | "una" | "um" | "uma" | "a" | "one" => 1,
            "dos" | "dois" | "duas" | "two" => 2,
            "tres" | "three" => 3,
            n => n.parse().ok().filter(|n| (1..=90).contains(n))?,
        };
        let days = match *unit {
            "dia" | "dias" | "day" | "days" => count,
            "semana" | "semanas" | "week" | "weeks" => count * 7,
            _ => return None,
        };
        today.checked_add_days(Days::new(days))
    })
}

const WEEKDAYS: [(&str, Weekday); 22] = [
    ("lunes", Weekday::Mon),
    ("martes", Weekday::Tue),
    ("miercoles", Weekday::Wed),
    ("jueves", Weekday::Thu),
    ("viernes", Weekday::Fri),
    ("sabado", Weekday::Sat),
    ("domingo", Weekday::Sun),
    ("segunda", Weekday::Mon),
    ("terca", Weekday::Tue),
    ("quarta", Weekday::Wed),
    ("quinta", Weekday::Thu),
    ("sexta", Weekday::Fri),
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("thurs", Weekday::Thu),
    ("weds", Weekday::Wed),
    ("tues", Weekday::Tue),
];

/// "el viernes", "el próximo lunes", "na sexta", "next Friday": the next such day after today
/// (a debtor naming today's weekday means next week's; today they would say "hoy").
fn weekday(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    words.iter().find_map(|word| {
        let (_, day) = WEEKDAYS.iter().find(|(name, _)| name == word)?;
        let ahead = (7 + day.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
        let ahead = if ahead == 0 { 7 } else { ahead };
        today.checked_add_days(Days::new(u64::from(ahead)))
    })
}

fn last_day_of_month(day: NaiveDate) -> Option<NaiveDate> {
    day.with_day(1)?.checked_add_months(Months::new(1))?.pred_opt()
}

/// "a fin de mes", "final de mes", "fim do mês", "end of the month"; "la quincena".
fn end_of_month(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    let month_end = [
        &["fin", "de", "mes"][..],
        &["fin", "del", "mes"],
        &["final", "de", "mes"],
        &["final", "del", "mes"],
        &["fim", "do", "mes"],
        &["fim", "de", "mes"],
        &["final", "do", "mes"],
        &["end", "of", "the", "month"],
        &["end", "of", "month"],
        &["month", "end"],
        &["findemes"],
    ];
    if month_end.iter().any(|phrase| has(words, phrase)) {
        return last_day_of_month(today);
    }
    if words.iter().any(|word| matches!(*word, "quincena" | "quinzena")) {
        return if today.day() <= 15 {
            today.with_day(15)
        } else {
            last_day_of_month(today)
        };
    }
    None
}

/// "la próxima semana", "la semana que viene", "semana que vem", "next week": the Friday of
/// next week.
fn next_week(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    let phrases = [
        &["proxima", "semana"][..],
        &["semana", "que", "viene"],
        &["semana", "que", "vem"],
        &["otra", "semana"],
        &["outra", "semana"],
        &["next", "week"],
        &["semana", "entrante"],
    ];
    if !phrases.iter().any(|phrase| has(words, phrase)) {
        return None;
    }
    let to_monday = 7 - u64::from(today.weekday().num_days_from_monday());
    today.checked_add_days(Days::new(to_monday + 4))
}

/// "el 15", "el día 15", "dia 15", "on the 3rd", "the 15th", "by the 20th": the next time that
/// day of the month comes (the month's last day when it is shorter). An amount ("el 50%", "15
/// mil") is no day.
fn day_of_month(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    words.iter().enumerate().find_map(|(i, word)| {
        let ordinal = word.len() > 2 && word.ends_with(|c: char| c.is_ascii_alphabetic());
        let day = day_number(word)?;
        let before = i.checked_sub(1).map(|j| words[j]);
        let introduced = matches!(
            before,
            Some("el" | "dia" | "the" | "on" | "o" | "ate" | "hasta" | "by")
        );
        let after = words.get(i + 1).copied();
        let amount = matches!(
            after,
            Some(
                "mil"
                    | "pesos"
                    | "reais"
                    | "dolares"
                    | "dollars"
                    | "usd"
                    | "cop"
                    | "brl"
                    | "mxn"
                    | "k"
                    | "lucas"
            )
        );
        if amount || !(introduced || ordinal) {
            return None;
        }
        let this_month = today.with_day(1)?;
        let month = if day >= today.day() {
            this_month
        } else {
            this_month.checked_add_months(Months::new(1))?
        };
        month.with_day(day).or_else(|| last_day_of_month(month))
    })
}

/// "hoy", "hoje", "today"; "mañana", "amanhã", "tomorrow"; "pasado mañana", "depois de
/// amanhã", "day after tomorrow". "la mañana" is the morning, not tomorrow.
fn relative_day(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    let days = if has(words, &["pasado", "manana"])
        || has(words, &["depois", "de", "amanha"])
        || has(words, &["day", "after", "tomorrow"])
    {
        2
    } else if words.iter().enumerate().any(|(i, word)| {
        matches!(*word, "manana" | "amanha" | "tomorrow" | "tmrw" | "tomorow")
            && !(i > 0 && matches!(words[i - 1], "la" | "esta" | "por"))
    }) {
        1
    } else if words
        .iter()
        .any(|word| matches!(*word, "hoy" | "hoje" | "today" | "tonight"))
    {
        0
    } else {
        return None;
    };
    today.checked_add_days(Days::new(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thursday, 10 December 2026.
    fn thursday() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 10).expect("date")
    }

    fn on(month: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, month, day)
    }

    #[test]
    fn the_issues_examples_are_read_from_a_thursday() {
        let cases = [
            ("Pago el viernes sin falta", on(12, 11)),
            ("le pago el 15", on(12, 15)),
            ("pago el 15/12", on(12, 15)),
            ("a fin de mes le cancelo", on(12, 31)),
            ("la próxima semana pago", on(12, 18)),
            ("mañana pago", on(12, 11)),
            ("pago amanhã", on(12, 11)),
            ("pago semana que vem", on(12, 18)),
            ("I'll pay next Friday", on(12, 11)),
            ("will pay on the 3rd", NaiveDate::from_ymd_opt(2027, 1, 3)),
        ];
        for (text, expected) in cases {
            assert_eq!(promised_date(text, thursday()), expected, "{text}");
        }
    }

    #[test]
    fn how_debtors_really_write_dates() {
        let cases = [
            ("manana sin falta", on(12, 11)),
            ("pasado mañana le consigno", on(12, 12)),
            ("depois de amanhã eu pago", on(12, 12)),
            ("hoy en la tarde pago", on(12, 10)),
            ("pago hoy en la mañana", on(12, 10)),
            ("vou pagar na sexta-feira", on(12, 11)),
            ("pago el lunes", on(12, 14)),
            ("el jueves pago", on(12, 17)),
            ("pago el 20 de diciembre", on(12, 20)),
            ("dia 20 de dezembro eu pago", on(12, 20)),
            ("by december 22", on(12, 22)),
            ("I'll pay the 28th", on(12, 28)),
            ("pago el 5", NaiveDate::from_ymd_opt(2027, 1, 5)),
            ("12/24 i will pay", on(12, 24)),
            ("pago 02/01/2027", NaiveDate::from_ymd_opt(2027, 1, 2)),
            ("en 3 días pago", on(12, 13)),
            ("in a week", on(12, 17)),
            ("cuando me paguen la quincena", on(12, 15)),
            ("fim do mês eu pago", on(12, 31)),
            ("end of the month", on(12, 31)),
        ];
        for (text, expected) in cases {
            assert_eq!(promised_date(text, thursday()), expected, "{text}");
        }
    }

    #[test]
    fn amounts_and_vague_words_are_no_date() {
        for text in [
            "pago 50 mil pronto",
            "voy a pagar el 50%",
            "apenas pueda pago",
            "I may pay soon",
            "pago cuando pueda",
            "el 15 mil lo pago luego",
        ] {
            assert_eq!(promised_date(text, thursday()), None, "{text}");
        }
    }

    #[test]
    fn short_months_and_year_ends_are_handled() {
        let january_30 = NaiveDate::from_ymd_opt(2027, 1, 30).expect("date");
        // The 31st of a 30-day month is its last day.
        assert_eq!(
            promised_date("el 31", NaiveDate::from_ymd_opt(2027, 4, 2).expect("date")),
            NaiveDate::from_ymd_opt(2027, 4, 30)
        );
        assert_eq!(
            promised_date("a fin de mes", NaiveDate::from_ymd_opt(2027, 2, 3).expect("date")),
            NaiveDate::from_ymd_opt(2027, 2, 28)
        );
        assert_eq!(
            promised_date("el 2", january_30),
            NaiveDate::from_ymd_opt(2027, 2, 2)
        );
        assert_eq!(
            promised_date("mañana", NaiveDate::from_ymd_opt(2026, 12, 31).expect("date")),
            NaiveDate::from_ymd_opt(2027, 1, 1)
        );
    }
}
