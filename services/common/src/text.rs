//! Text as debtors write it, folded for reading.

/// `c` without its Spanish or Portuguese accent ("á" is "a", "ç" is "c", "ñ" is "n"); any other
/// character as it is. Lowercase letters only: fold the case first.
pub fn unaccented(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_are_folded_and_everything_else_kept() {
        let folded: String = "mañana já pagué ação ü 15/12 ok"
            .chars()
            .map(unaccented)
            .collect();
        assert_eq!(folded, "manana ja pague acao u 15/12 ok");
    }
}
