//! ISO 4217 currencies: which codes exist and how many minor units each has.

/// Digits after the decimal point for an ISO 4217 code, or `None` if the code is unknown.
pub fn minor_unit_digits(currency: &str) -> Option<u32> {
    let digits = match currency {
        // Zero-decimal currencies.
        "CLP" | "JPY" | "KRW" | "PYG" | "ISK" | "UGX" | "VND" | "XAF" | "XOF" => 0,
        // Three-decimal currencies.
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        "ARS" | "AUD" | "BOB" | "BRL" | "CAD" | "CHF" | "CNY" | "COP" | "CRC" | "CZK" | "DKK" | "DOP"
        | "EUR" | "GBP" | "GTQ" | "HKD" | "HNL" | "HUF" | "ILS" | "INR" | "MXN" | "NIO" | "NOK" | "NZD"
        | "PAB" | "PEN" | "PHP" | "PLN" | "RON" | "SEK" | "SGD" | "TRY" | "USD" | "UYU" | "VES" | "ZAR"
        | "BZD" | "CUP" | "JMD" | "TTD" | "BBD" | "BSD" | "XCD" | "AED" | "SAR" | "QAR" | "EGP" | "MAD"
        | "NGN" | "KES" | "GHS" | "THB" | "MYR" | "IDR" | "TWD" => 2,
        _ => return None,
    };
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_exponents_that_matter_for_latin_america() {
        assert_eq!(minor_unit_digits("COP"), Some(2));
        assert_eq!(minor_unit_digits("CLP"), Some(0));
        assert_eq!(minor_unit_digits("EUR"), Some(2));
        assert_eq!(minor_unit_digits("KWD"), Some(3));
        assert_eq!(minor_unit_digits("XXX"), None);
        assert_eq!(minor_unit_digits("eur"), None);
    }
}
