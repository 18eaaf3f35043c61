//! Jurisdiction contact-rule packs: versioned data (one TOML file per country under `packs/`)
//! saying when, how often and through which channels a debtor may be contacted, each rule
//! citing its source. Every debtor gets the baseline pack plus their country's (or the
//! conservative default). A tenant may add a pack of its own on top: its caps are added, its
//! hours intersect the country's, its holidays and channel limits add up, so a tenant pack can
//! only ever make the rules stricter.
//!
//! Apart from the law, `eligibility.toml` says which messaging providers refuse which channels
//! to tenants of which role (a provider's own rules, cited the same way): see `Eligibility`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

mod channel;
mod eligibility;
mod role;
pub use channel::{Channel, UnknownChannel};
pub use eligibility::{Eligibility, EligibilityError, Refusal};
pub use role::{Role, UnknownRole};

/// The packs shipped in the binary, by file.
const SHIPPED: &[(&str, &str)] = &[
    ("baseline.toml", include_str!("../packs/baseline.toml")),
    ("default.toml", include_str!("../packs/default.toml")),
    ("us.toml", include_str!("../packs/us.toml")),
    ("co.toml", include_str!("../packs/co.toml")),
    ("pe.toml", include_str!("../packs/pe.toml")),
    ("mx.toml", include_str!("../packs/mx.toml")),
    ("cl.toml", include_str!("../packs/cl.toml")),
    ("es.toml", include_str!("../packs/es.toml")),
    ("br.toml", include_str!("../packs/br.toml")),
];

#[derive(Debug, thiserror::Error)]
#[error("rule pack {file}: {reason}")]
pub struct PackError {
    pub file: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    id: String,
    version: String,
    title: String,
    #[serde(default)]
    notes: Vec<String>,
    channels: Vec<String>,
    sources: Vec<SourceFile>,
    hours: Option<HoursFile>,
    holidays: Option<HolidaysFile>,
    #[serde(default)]
    caps: Vec<CapFile>,
    opt_out: Option<OptOutFile>,
    #[serde(default)]
    regions: BTreeMap<String, HoursFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    id: String,
    citation: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    source: String,
    #[serde(default)]
    mon: String,
    #[serde(default)]
    tue: String,
    #[serde(default)]
    wed: String,
    #[serde(default)]
    thu: String,
    #[serde(default)]
    fri: String,
    #[serde(default)]
    sat: String,
    #[serde(default)]
    sun: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidaysFile {
    source: String,
    dates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapFile {
    id: String,
    #[serde(default)]
    kind: Option<String>,
    window: String,
    channels: ChannelsFile,
    max: u32,
    source: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ChannelsFile {
    All(String),
    Some(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutFile {
    source: String,
    es: String,
    pt: String,
    en: String,
}

/// Allowed local hours per weekday (index 0 = Monday), as minutes after midnight, end exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekHours {
    pub days: [Option<(u32, u32)>; 7],
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    LocalDay,
    LocalWeek,
    LocalMonth,
    Rolling(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CapKind {
    Contacts,
    DistinctChannels,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cap {
    pub id: String,
    pub kind: CapKind,
    pub window: Window,
    /// `None` counts every channel.
    pub channels: Option<Vec<Channel>>,
    pub max: u32,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub citation: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pack {
    pub id: String,
    pub version: String,
    pub title: String,
    pub notes: Vec<String>,
    pub channels: Vec<Channel>,
    pub sources: HashMap<String, Source>,
    pub hours: Option<WeekHours>,
    pub regions: HashMap<String, WeekHours>,
    pub holidays: HashSet<NaiveDate>,
    pub holiday_source: Option<String>,
    pub caps: Vec<Cap>,
    /// The opt-out sentence every electronic message must carry, by language.
    pub opt_out: HashMap<String, String>,
}

impl Pack {
    pub fn parse(file: &str, text: &str) -> Result<Pack, PackError> {
        let fail = |reason: String| PackError {
            file: file.to_string(),
            reason,
        };
        let raw: PackFile = toml::from_str(text).map_err(|err| fail(err.to_string()))?;
        let sources: HashMap<String, Source> = raw
            .sources
            .into_iter()
            .map(|s| {
                (
                    s.id,
                    Source {
                        citation: s.citation,
                        url: s.url,
                    },
                )
            })
            .collect();
        let cited = |source: &str, what: &str| {
            if sources.contains_key(source) {
                Ok(source.to_string())
            } else {
                Err(fail(format!("{what} cites unknown source {source:?}")))
            }
        };
        let parse_channels = |names: &[String], what: &str| -> Result<Vec<Channel>, PackError> {
            names
                .iter()
                .map(|name| name.parse().map_err(|err| fail(format!("{what}: {err}"))))
                .collect()
        };
        let channels = parse_channels(&raw.channels, "channels")?;
        let week = |hours: &HoursFile, what: &str| -> Result<WeekHours, PackError> {
            let mut days = [None; 7];
            let texts = [
                &hours.mon, &hours.tue, &hours.wed, &hours.thu, &hours.fri, &hours.sat, &hours.sun,
            ];
            for (day, text) in texts.iter().enumerate() {
                days[day] = parse_range(text).map_err(|reason| fail(format!("{what}: {reason}")))?;
            }
            Ok(WeekHours {
                days,
                source: cited(&hours.source, what)?,
            })
        };
        let hours = raw.hours.as_ref().map(|h| week(h, "hours")).transpose()?;
        let mut regions = HashMap::new();
        for (region, hours) in &raw.regions {
            regions.insert(region.clone(), week(hours, &format!("regions.{region}"))?);
        }
        let (holidays, holiday_source) = match &raw.holidays {
            None => (HashSet::new(), None),
            Some(h) => {
                let mut dates = HashSet::new();
                for date in &h.dates {
                    let parsed = date
                        .parse()
                        .map_err(|_| fail(format!("holiday {date:?} is not a date")))?;
                    dates.insert(parsed);
                }
                (dates, Some(cited(&h.source, "holidays")?))
            }
        };
        let mut caps = Vec::new();
        for cap in &raw.caps {
            let what = format!("cap {}", cap.id);
            let kind = match cap.kind.as_deref() {
                None | Some("contacts") => CapKind::Contacts,
                Some("distinct_channels") => CapKind::DistinctChannels,
                Some(other) => return Err(fail(format!("{what}: unknown kind {other:?}"))),
            };
            let window = parse_window(&cap.window).map_err(|reason| fail(format!("{what}: {reason}")))?;
            let channels = match &cap.channels {
                ChannelsFile::All(all) if all == "all" => None,
                ChannelsFile::All(other) => {
                    return Err(fail(format!("{what}: channels {other:?}, use \"all\"")));
                }
                // A typo here would silently switch a legal cap off: refuse the pack instead.
                ChannelsFile::Some(list) => Some(parse_channels(list, &what)?),
            };
            if cap.max == 0 {
                return Err(fail(format!(
                    "{what}: max 0 would forbid contact; leave the channel out instead"
                )));
            }
            if !cap.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(fail(format!("{what}: ids are letters, digits and '-'")));
            }
            caps.push(Cap {
                id: cap.id.clone(),
                kind,
                window,
                channels,
                max: cap.max,
                source: cited(&cap.source, &what)?,
            });
        }
        let opt_out = match &raw.opt_out {
            None => HashMap::new(),
            Some(o) => {
                cited(&o.source, "opt_out")?;
                HashMap::from([
                    ("es".into(), o.es.clone()),
                    ("pt".into(), o.pt.clone()),
                    ("en".into(), o.en.clone()),
                ])
            }
        };
        Ok(Pack {
            id: raw.id,
            version: raw.version,
            title: raw.title,
            notes: raw.notes,
            channels,
            sources,
            hours,
            regions,
            holidays,
            holiday_source,
            caps,
            opt_out,
        })
    }

    /// "CO@2026.1": what every decision records.
    pub fn label(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

fn parse_range(text: &str) -> Result<Option<(u32, u32)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let minutes = |t: &str| -> Result<u32, String> {
        let bad = || format!("{t:?} is not a time like 07:00");
        let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        // `h > 24` first: a huge hour would overflow `h * 60` (a panic, or a wrapped "valid" time).
        if m > 59 || h > 24 || h * 60 + m > 24 * 60 {
            return Err(bad());
        }
        Ok(h * 60 + m)
    };
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not a range like 07:00-19:00"))?;
    let (start, end) = (minutes(start)?, minutes(end)?);
    if start >= end {
        return Err(format!("{text:?} ends before it starts"));
    }
    Ok(Some((start, end)))
}

fn parse_window(text: &str) -> Result<Window, String> {
    match text {
        "local_day" => Ok(Window::LocalDay),
        "local_week" => Ok(Window::LocalWeek),
        "local_month" => Ok(Window::LocalMonth),
        _ => {
            // try_hours: a count of hours no duration can hold is refused, not a panic.
            let span = text
                .strip_prefix("rolling:")
                .and_then(|h| h.strip_suffix('h'))
                .and_then(|h| h.parse::<i64>().ok())
                .filter(|h| *h > 0)
                .and_then(Duration::try_hours)
                .ok_or_else(|| {
                    format!("window {text:?} is not local_day, local_week, local_month or rolling:<N>h")
                })?;
            Ok(Window::Rolling(span))
        }
    }
}

impl Window {
    pub fn name(&self) -> String {
        match self {
            Window::LocalDay => "local_day".into(),
            Window::LocalWeek => "local_week".into(),
            Window::LocalMonth => "local_month".into(),
            Window::Rolling(span) => format!("rolling:{}h", span.num_hours()),
        }
    }

    /// For a calendar window: the period containing `at` in `tz` (its name, and when the next
    /// one starts). `None` for a rolling window.
    pub fn period(&self, at: DateTime<Utc>, tz: Tz) -> Option<(String, DateTime<Utc>)> {
        let day = at.with_timezone(&tz).date_naive();
        let (name, next_start) = match self {
            Window::LocalDay => (day.to_string(), day.checked_add_days(Days::new(1))?),
            Window::LocalWeek => {
                let week = day.iso_week();
                let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                (
                    format!("{}-W{:02}", week.year(), week.week()),
                    monday.checked_add_days(Days::new(7))?,
                )
            }
            Window::LocalMonth => {
                let first = day.with_day(1)?;
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
                };
                (format!("{}-{:02}", first.year(), first.month()), next)
            }
            Window::Rolling(_) => return None,
        };
        Some((name, local_instant(tz, next_start, 0)))
    }
}

impl Cap {
    pub fn counts(&self, channel: Channel) -> bool {
        self.channels.as_ref().is_none_or(|list| list.contains(&channel))
    }
}

/// Why the moment asked about is closed.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    Hours { source: String },
    Holiday { source: String },
}

/// `minutes` after midnight of `day` in `tz`; a local time skipped by a DST change moves
/// forward to the first one that exists, a repeated one takes its first occurrence.
pub fn local_instant(tz: Tz, day: NaiveDate, minutes: u32) -> DateTime<Utc> {
    let mut naive = NaiveDateTime::new(day, NaiveTime::MIN) + Duration::minutes(i64::from(minutes));
    // Up to a whole local day may be skipped (Apia skipped 30 December 2011, Kwajalein 21 August
    // 1993); the fallback below would land before the skipped time, even on the day before.
    for _ in 0..(25 * 60) {
        if let Some(at) = tz.from_local_datetime(&naive).earliest() {
            return at.with_timezone(&Utc);
        }
        naive += Duration::minutes(1);
    }
    tz.from_utc_datetime(&naive).with_timezone(&Utc)
}

/// The rules that apply to one debtor: the baseline, their country's pack (or the default),
/// and their tenant's own pack if it has one.
#[derive(Debug, Clone)]
pub struct Applied<'a> {
    pub baseline: &'a Pack,
    pub country: &'a Pack,
    pub tenant: Option<&'a Pack>,
    pub region: Option<String>,
}

/// What the rules say about one local day.
enum Day<'a> {
    /// No pack restricts the hours.
    Unrestricted,
    Open(u32, u32),
    Closed(&'a str),
}

impl Applied<'_> {
    pub fn packs(&self) -> Vec<&Pack> {
        let mut packs = vec![self.baseline, self.country];
        packs.extend(self.tenant);
        packs
    }

    /// Every weekly schedule that applies: the country's (or its region's) and the tenant's.
    fn hours(&self) -> Vec<&WeekHours> {
        let country = self
            .region
            .as_ref()
            .and_then(|region| self.country.regions.get(region))
            .or(self.country.hours.as_ref())
            .or(self.baseline.hours.as_ref());
        country
            .into_iter()
            .chain(self.tenant.and_then(|t| t.hours.as_ref()))
            .collect()
    }

    /// The intersection of every schedule's hours for `weekday` (0 = Monday).
    fn day(&self, weekday: usize) -> Day<'_> {
        let mut day = Day::Unrestricted;
        for hours in self.hours() {
            day = match (day, hours.days[weekday]) {
                (Day::Closed(source), _) => Day::Closed(source),
                (_, None) => Day::Closed(&hours.source),
                (Day::Unrestricted, Some((start, end))) => Day::Open(start, end),
                (Day::Open(a, b), Some((start, end))) if a.max(start) < b.min(end) => {
                    Day::Open(a.max(start), b.min(end))
                }
                (Day::Open(..), Some(_)) => Day::Closed(&hours.source),
            };
        }
        day
    }

    fn holidays(&self) -> impl Iterator<Item = (&HashSet<NaiveDate>, &Option<String>)> {
        self.packs().into_iter().map(|p| (&p.holidays, &p.holiday_source))
    }

    /// Whether the law lets this channel be used at all, and which pack says no.
    pub fn channel_refused_by(&self, channel: Channel) -> Option<&Pack> {
        self.packs()
            .into_iter()
            .find(|pack| !pack.channels.contains(&channel))
    }

    /// The earliest instant at or after `at` when contact is allowed in `tz`, with why `at`
    /// itself is closed (None when it is open). `None` overall if nothing opens within a year.
    pub fn next_open(&self, at: DateTime<Utc>, tz: Tz) -> Option<(DateTime<Utc>, Option<Closed>)> {
        let local_date = at.with_timezone(&tz).date_naive();
        let mut first_reason = None;
        for ahead in 0..370 {
            let day = local_date.checked_add_days(Days::new(ahead))?;
            if let Some((_, source)) = self.holidays().find(|(dates, _)| dates.contains(&day)) {
                first_reason.get_or_insert(Closed::Holiday {
                    source: source.clone().unwrap_or_default(),
                });
                continue;
            }
            let (start, end) = match self.day(day.weekday().num_days_from_monday() as usize) {
                Day::Unrestricted => return Some((at, first_reason)),
                Day::Closed(source) => {
                    first_reason.get_or_insert(Closed::Hours {
                        source: source.to_string(),
                    });
                    continue;
                }
                Day::Open(start, end) => (start, end),
            };
            let opens = local_instant(tz, day, start);
            let closes = local_instant(tz, day, end);
            let source = || self.hours().first().map(|h| h.source.clone()).unwrap_or_default();
            if opens >= closes {
                // Every allowed local time of the day was skipped (a day or a stretch of it
                // dropped from the calendar): the day is closed.
                first_reason.get_or_insert_with(|| Closed::Hours { source: source() });
                continue;
            }
            if at < opens {
                first_reason.get_or_insert_with(|| Closed::Hours { source: source() });
                return Some((opens, first_reason));
            }
            if at < closes {
                return Some((at, first_reason));
            }
            first_reason.get_or_insert_with(|| Closed::Hours { source: source() });
        }
        None
    }

    /// Every cap that counts a contact on `channel`, with its pack.
    pub fn caps_for<'b>(&'b self, channel: Channel) -> impl Iterator<Item = (&'b Pack, &'b Cap)> + 'b {
        self.packs()
            .into_iter()
            .flat_map(|pack| pack.caps.iter().map(move |cap| (pack, cap)))
            .filter(move |(_, cap)| cap.counts(channel))
    }

    /// The sentence electronic messages must carry: the tenant's, else the country's, else the
    /// baseline's.
    pub fn opt_out_sentence(&self, language: &str) -> Option<&str> {
        self.tenant
            .and_then(|t| t.opt_out.get(language))
            .or_else(|| self.country.opt_out.get(language))
            .or_else(|| self.baseline.opt_out.get(language))
            .map(String::as_str)
    }
}

/// All shipped packs, parsed and checked once at start.
#[derive(Debug, Clone)]
pub struct Rulebook {
    baseline: Pack,
    default: Pack,
    countries: HashMap<String, Pack>,
    tenants: HashMap<String, Pack>,
}

impl Rulebook {
    pub fn shipped() -> Result<Rulebook, PackError> {
        let mut baseline = None;
        let mut default = None;
        let mut countries = HashMap::new();
        for (file, text) in SHIPPED {
            let pack = Pack::parse(file, text)?;
            match pack.id.as_str() {
                "BASELINE" => baseline = Some(pack),
                "DEFAULT" => default = Some(pack),
                _ => {
                    countries.insert(pack.id.clone(), pack);
                }
            }
        }
        let missing = |what: &str| PackError {
            file: what.into(),
            reason: "is not shipped".into(),
        };
        Ok(Rulebook {
            baseline: baseline.ok_or_else(|| missing("baseline.toml"))?,
            default: default.ok_or_else(|| missing("default.toml"))?,
            countries,
            tenants: HashMap::new(),
        })
    }

    /// The shipped packs, plus the tenant packs in `tenant_dir` if one is configured.
    pub fn load(tenant_dir: Option<&std::path::Path>) -> Result<Rulebook, PackError> {
        let shipped = Rulebook::shipped()?;
        match tenant_dir {
            Some(dir) => shipped.with_tenant_packs(dir),
            None => Ok(shipped),
        }
    }

    /// The shipped packs plus every tenant pack (`<anything>.toml`, `id` = the tenant id) in
    /// `dir`. A tenant pack may not define regions: it applies to all of a tenant's debtors.
    pub fn with_tenant_packs(mut self, dir: &std::path::Path) -> Result<Rulebook, PackError> {
        let fail = |reason: String| PackError {
            file: dir.display().to_string(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|err| fail(err.to_string()))?;
        for entry in entries {
            let path = entry.map_err(|err| fail(err.to_string()))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|err| fail(format!("{file}: {err}")))?;
            let pack = Pack::parse(&file, &text)?;
            if !pack.regions.is_empty() {
                return Err(PackError {
                    file,
                    reason: "a tenant pack applies to all its debtors: no regions".into(),
                });
            }
            self.tenants.insert(pack.id.clone(), pack);
        }
        Ok(self)
    }

    pub fn for_debtor(&self, tenant: &str, country: &str, region: Option<&str>) -> Applied<'_> {
        Applied {
            baseline: &self.baseline,
            country: self.countries.get(country).unwrap_or(&self.default),
            tenant: self.tenants.get(tenant),
            region: region.filter(|r| !r.is_empty()).map(str::to_string),
        }
    }

    pub fn packs(&self) -> impl Iterator<Item = &Pack> {
        [&self.baseline, &self.default]
            .into_iter()
            .chain(self.countries.values())
            .chain(self.tenants.values())
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
