//! Provider eligibility: which messaging providers refuse which channels to tenants of which
//! role, in which countries. Versioned data (`eligibility.toml`), each entry citing the
//! provider's rule, like the packs; a provider's rule is not law, so it lives apart from them.

use std::collections::HashSet;

use serde::Deserialize;

use crate::{Channel, Role};

/// The table shipped in the binary.
const SHIPPED: (&str, &str) = ("eligibility.toml", include_str!("../eligibility.toml"));

#[derive(Debug, thiserror::Error)]
#[error("eligibility table {file}: {reason}")]
pub struct EligibilityError {
    pub file: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    version: String,
    #[serde(default, rename = "refusal")]
    refusals: Vec<RefusalFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalFile {
    id: String,
    provider: String,
    channel: String,
    role: String,
    countries: Vec<String>,
    source: String,
    url: String,
    #[serde(default)]
    note: Option<String>,
}

/// One provider's refusal, with the rule it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub id: String,
    /// The provider as channels names it; `None`: every provider ("*" in the table).
    pub provider: Option<String>,
    pub channel: Channel,
    pub role: Role,
    /// ISO 3166-1 alpha-2 codes of the debtor's country; `None`: every country ("*").
    pub countries: Option<Vec<String>>,
    /// The provider's rule, cited.
    pub source: String,
    pub url: String,
    /// How we read the rule where it is ambiguous (informational).
    pub note: Option<String>,
    /// The table's version, recorded with every refusal.
    version: String,
}

impl Refusal {
    /// "eligibility@2026.1": what a refused send records, as packs record "CO@2026.1".
    pub fn label(&self) -> String {
        format!("eligibility@{}", self.version)
    }

    fn applies(&self, provider: &str, channel: Channel, role: Role, country: &str) -> bool {
        self.provider.as_deref().is_none_or(|named| named == provider)
            && self.channel == channel
            && self.role == role
            && self
                .countries
                .as_ref()
                .is_none_or(|countries| countries.iter().any(|c| c == country))
    }
}

/// The eligibility table, parsed and checked once at start.
#[derive(Debug, Clone)]
pub struct Eligibility {
    version: String,
    refusals: Vec<Refusal>,
}

impl Eligibility {
    /// The table shipped in the binary.
    pub fn shipped() -> Result<Eligibility, EligibilityError> {
        let (file, text) = SHIPPED;
        Eligibility::parse(file, text)
    }

    /// A table in `eligibility.toml`'s format; any key, channel, role or country code it does
    /// not know is an error, never a guess.
    pub fn parse(file: &str, text: &str) -> Result<Eligibility, EligibilityError> {
        let fail = |reason: String| EligibilityError {
            file: file.to_string(),
            reason,
        };
        let raw: TableFile = toml::from_str(text).map_err(|err| fail(err.to_string()))?;
        if !is_version(&raw.version) {
            return Err(fail(format!("version {:?} is not like 2026.1", raw.version)));
        }
        let mut ids = HashSet::new();
        let mut refusals = Vec::with_capacity(raw.refusals.len());
        for entry in raw.refusals {
            let what = format!("refusal {:?}", entry.id);
            if entry.id.is_empty() || !entry.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(fail(format!("{what}: ids are letters, digits and '-'")));
            }
            if !ids.insert(entry.id.clone()) {
                return Err(fail(format!("{what}: the id is used twice")));
            }
            let provider = match entry.provider.as_str() {
                "*" => None,
                "" => return Err(fail(format!("{what}: provider is empty, use \"*\" for all"))),
                named => Some(named.to_string()),
            };
            let channel = entry
                .channel
                .parse()
                .map_err(|err| fail(format!("{what}: {err}")))?;
            let role = entry.role.parse().map_err(|err| fail(format!("{what}: {err}")))?;
            let countries =
                parse_countries(&entry.countries).map_err(|reason| fail(format!("{what}: {reason}")))?;
            // An entry nobody can check is not a rule we apply.
            if entry.source.trim().is_empty() {
                return Err(fail(format!("{what}: source is empty")));
            }
            if !entry.url.starts_with("https://") {
                return Err(fail(format!("{what}: url must be https://")));
            }
            refusals.push(Refusal {
                id: entry.id,
                provider,
                channel,
                role,
                countries,
                source: entry.source,
                url: entry.url,
                note: entry.note,
                version: raw.version.clone(),
            });
        }
        Ok(Eligibility {
            version: raw.version,
            refusals,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// "eligibility@2026.1".
    pub fn label(&self) -> String {
        format!("eligibility@{}", self.version)
    }

    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }

    /// The first entry that refuses `channel` through `provider` (its name as channels gives
    /// it, matched exactly) to a tenant of `role`, for a debtor in `country` (ISO 3166-1
    /// alpha-2, as the ledger holds it); `None` when the provider carries it.
    pub fn refusal(&self, provider: &str, channel: Channel, role: Role, country: &str) -> Option<&Refusal> {
        self.refusals
            .iter()
            .find(|refusal| refusal.applies(provider, channel, role, country))
    }
}

/// "YYYY.N", as the packs are versioned.
fn is_version(text: &str) -> bool {
    let Some((year, n)) = text.split_once('.') else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    year.len() == 4 && digits(year) && digits(n)
}

/// `["*"]` for every country, else ISO 3166-1 alpha-2 codes in capitals.
fn parse_countries(codes: &[String]) -> Result<Option<Vec<String>>, String> {
    match codes {
        [] => Err("countries is empty, use [\"*\"] for all".into()),
        [all] if all == "*" => Ok(None),
        _ => {
            for code in codes {
                if code.len() != 2 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(format!(
                        "country {code:?} is not an ISO 3166-1 alpha-2 code like \"US\" (or [\"*\"] alone)"
                    ));
                }
            }
            Ok(Some(codes.to_vec()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Eligibility {
        Eligibility::shipped().expect("the shipped table parses")
    }

    const ENTRY: &str = r#"
        version = "2026.1"
        [[refusal]]
        id = "x-sms"
        provider = "x"
        channel = "sms"
        role = "agency"
        countries = ["US"]
        source = "X's rules"
        url = "https://x.example/rules"
    "#;

    #[test]
    fn the_shipped_table_parses_and_every_entry_cites_its_source() {
        let table = shipped();
        assert_eq!(table.label(), format!("eligibility@{}", table.version()));
        assert!(!table.refusals().is_empty());
        for refusal in table.refusals() {
            assert!(!refusal.source.is_empty() && refusal.url.starts_with("https://"));
            assert_eq!(refusal.label(), table.label());
        }
    }

    #[test]
    fn twilio_refuses_sms_to_an_agency_for_us_and_canadian_debtors() {
        let table = shipped();
        for country in ["US", "CA"] {
            let refusal = table
                .refusal("twilio", Channel::Sms, Role::Agency, country)
                .expect("refused");
            assert_eq!(refusal.id, "twilio-third-party-debt-collection-us-ca");
            assert!(refusal.source.contains("30863"), "{}", refusal.source);
            assert_eq!(refusal.url, "https://www.twilio.com/docs/api/errors/30863");
            assert_eq!(refusal.label(), "eligibility@2026.1");
        }
    }

    #[test]
    fn a_creditor_and_other_countries_are_not_refused_by_twilio() {
        let table = shipped();
        assert_eq!(table.refusal("twilio", Channel::Sms, Role::Creditor, "US"), None);
        assert_eq!(table.refusal("twilio", Channel::Sms, Role::Agency, "CO"), None);
        // Another channel, or another provider on the same channel (sandboxes included).
        assert_eq!(table.refusal("twilio", Channel::Email, Role::Agency, "US"), None);
        assert_eq!(
            table.refusal("sandbox-sms", Channel::Sms, Role::Agency, "US"),
            None
        );
    }

    #[test]
    fn whatsapp_cloud_refuses_an_agency_everywhere_and_allows_a_creditor() {
        let table = shipped();
        for country in ["US", "CO", "BR", "ES", "ZZ"] {
            let refusal = table
                .refusal("whatsapp-cloud", Channel::Whatsapp, Role::Agency, country)
                .expect("refused");
            assert_eq!(refusal.id, "whatsapp-debt-collection");
            assert_eq!(refusal.url, "https://business.whatsapp.com/policy");
            assert!(
                refusal
                    .note
                    .as_deref()
                    .is_some_and(|note| note.contains("interpretation"))
            );
            assert_eq!(
                table.refusal("whatsapp-cloud", Channel::Whatsapp, Role::Creditor, country),
                None
            );
        }
    }

    #[test]
    fn a_star_provider_matches_every_provider() {
        let table = Eligibility::parse("t.toml", &ENTRY.replace("provider = \"x\"", "provider = \"*\""))
            .expect("parses");
        assert!(
            table
                .refusal("anyone", Channel::Sms, Role::Agency, "US")
                .is_some()
        );
        assert!(
            table
                .refusal("anyone", Channel::Sms, Role::Agency, "MX")
                .is_none()
        );
    }

    #[test]
    fn unknown_keys_and_values_are_errors_not_guesses() {
        assert!(Eligibility::parse("t.toml", ENTRY).is_ok());
        let broken = [
            ENTRY.replace("url = ", "severity = \"high\"\n        url = "),
            ENTRY.replace("[[refusal]]", "[[refusals]]"),
            ENTRY.replace("\"sms\"", "\"fax\""),
            ENTRY.replace("\"agency\"", "\"collector\""),
            ENTRY.replace("[\"US\"]", "[\"us\"]"),
            ENTRY.replace("[\"US\"]", "[\"USA\"]"),
            ENTRY.replace("[\"US\"]", "[\"*\", \"US\"]"),
            ENTRY.replace("[\"US\"]", "[]"),
            ENTRY.replace("provider = \"x\"", "provider = \"\""),
            ENTRY.replace("X's rules", " "),
            ENTRY.replace("https://x", "http://x"),
            ENTRY.replace("\"2026.1\"", "\"latest\""),
            format!("{ENTRY}{}", &ENTRY[ENTRY.find("[[refusal]]").expect("entry")..]),
        ];
        for text in broken {
            assert!(Eligibility::parse("t.toml", &text).is_err(), "{text}");
        }
    }
}
