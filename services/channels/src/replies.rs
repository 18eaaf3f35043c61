//! Reads what a debtor answered and decides what it means.

use recobro_proto::v1::ResponseIntent;

/// Whole-message keywords that withdraw consent (Twilio's defaults plus Spanish and Portuguese).
const OPT_OUT_WORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt out",
    "cancel",
    "baja",
    "parar",
    "cancelar",
    "alto",
    "detener",
    "sair",
    "pare",
    "descadastrar",
];
const OPT_OUT_PHRASES: &[&str] = &[
    "no me escriban",
    "no me escribas",
    "no me contacten",
    "dejen de escribir",
    "dejen de llamar",
    "no quiero recibir",
    "darme de baja",
    "dar de baja",
    "nao quero receber",
    "parem de enviar",
    "stop texting",
    "stop emailing",
    "do not contact",
];
const ALREADY_PAID: &[&str] = &[
    "ya pague",
    "ya pagamos",
    "ya se pago",
    "ya esta pagad",
    "ya realice el pago",
    "ya hice el pago",
    "ja paguei",
    "ja pagamos",
    "ja foi pago",
    "already paid",
    "i paid",
    "we paid",
    "has been paid",
];
const DISPUTE: &[&str] = &[
    "no reconozco",
    "no debo",
    "factura incorrecta",
    "error en la factura",
    "no corresponde",
    "reclamo",
    "nao reconheco",
    "nao devo",
    "cobranca indevida",
    "dont owe",
    "do not owe",
    "dispute",
    "wrong invoice",
];
const PROMISE: &[&str] = &[
    "pago el",
    "pagare",
    "voy a pagar",
    "vamos a pagar",
    "pagaremos",
    "le pago",
    "les pago",
    "vou pagar",
    "pagarei",
    "vamos pagar",
    "will pay",
    "i'll pay",
    "ill pay",
    "we'll pay",
    "pay on",
    "pay next",
];

/// Lowercase, accents removed, punctuation turned into spaces, spaces folded.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            '\'' | '’' => continue,
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn classify(text: &str) -> ResponseIntent {
    let text = normalize(text);
    let has = |phrases: &[&str]| {
        phrases
            .iter()
            .any(|phrase| contains_words(&text, &normalize(phrase)))
    };
    if OPT_OUT_WORDS.iter().any(|word| text == normalize(word)) || has(OPT_OUT_PHRASES) {
        ResponseIntent::OptOut
    } else if has(ALREADY_PAID) {
        ResponseIntent::AlreadyPaid
    } else if has(DISPUTE) {
        ResponseIntent::Dispute
    } else if has(PROMISE) {
        ResponseIntent::PromiseToPay
    } else {
        ResponseIntent::Other
    }
}

/// `phrase` appears in `text` starting and ending on word boundaries (a prefix is enough at the
/// end, so "pagad" matches "pagada" and "pagado").
fn contains_words(text: &str, phrase: &str) -> bool {
    let padded = format!(" {text} ");
    padded.contains(&format!(" {phrase}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_outs_in_three_languages() {
        for text in [
            "STOP",
            "Baja",
            "  parar. ",
            "CANCELAR",
            "Por favor no me escriban más",
            "Sair",
            "unsubscribe",
        ] {
            assert_eq!(classify(text), ResponseIntent::OptOut, "{text}");
        }
    }

    #[test]
    fn a_keyword_inside_a_sentence_is_not_an_opt_out() {
        assert_ne!(
            classify("no puedo parar de trabajar, pago el viernes"),
            ResponseIntent::OptOut
        );
        assert_eq!(
            classify("no puedo parar de trabajar, pago el viernes"),
            ResponseIntent::PromiseToPay
        );
    }

    #[test]
    fn already_paid_promises_and_disputes() {
        assert_eq!(classify("Ya pagué!!"), ResponseIntent::AlreadyPaid);
        assert_eq!(classify("ya está pagada desde ayer"), ResponseIntent::AlreadyPaid);
        assert_eq!(classify("Já paguei o boleto"), ResponseIntent::AlreadyPaid);
        assert_eq!(classify("I already paid this"), ResponseIntent::AlreadyPaid);
        assert_eq!(
            classify("Pago el viernes sin falta"),
            ResponseIntent::PromiseToPay
        );
        assert_eq!(classify("We'll pay next week"), ResponseIntent::PromiseToPay);
        assert_eq!(classify("No reconozco esa factura"), ResponseIntent::Dispute);
        assert_eq!(classify("¿Quién es usted?"), ResponseIntent::Other);
    }
}
