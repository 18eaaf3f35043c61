//! Conversions between protobuf and chrono time types.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use recobro_proto::v1::Date;

/// A fixed-offset IANA zone (`Etc/GMT±N`) where it is `local_hour` o'clock at `now`: for demos and
/// tests that must not depend on the hour they run at.
pub fn zone_at_local_hour(now: DateTime<Utc>, local_hour: i64) -> String {
    use chrono::Timelike;
    let mut offset = local_hour - i64::from(now.hour());
    if offset < -12 {
        offset += 24;
    }
    if offset > 14 {
        offset -= 24;
    }
    // The Etc zones' signs are POSIX's: Etc/GMT-5 is five hours ahead of UTC.
    match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

pub fn date(d: NaiveDate) -> Date {
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

pub fn from_date(d: &Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
}

/// The years any date Recobro plans with may fall in. Every date a ladder, a pause or a time
/// zone derives from one of them exists; chrono panics past year 262142, and one such due date
/// once stopped planning for every tenant.
pub const PLANNABLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2999;

/// How far ahead of today the ledger takes a date (a due date, a promise, an instalment).
pub const YEARS_AHEAD: i32 = 50;

/// `d` as a date, if it is one and falls in [`PLANNABLE_YEARS`]; else why not.
pub fn plannable_date(d: &Date) -> Result<NaiveDate, String> {
    let date = from_date(d).ok_or_else(|| "is not a calendar date".to_string())?;
    if !PLANNABLE_YEARS.contains(&date.year()) {
        return Err(format!(
            "is in year {}, outside {}-{}",
            date.year(),
            PLANNABLE_YEARS.start(),
            PLANNABLE_YEARS.end()
        ));
    }
    Ok(date)
}

/// `d` as a date the ledger takes on `today`: a plannable date no more than [`YEARS_AHEAD`]
/// years after today; else why not (for an `InvalidArgument` or a dead letter naming the field).
pub fn ledger_date(d: &Date, today: NaiveDate) -> Result<NaiveDate, String> {
    let date = plannable_date(d)?;
    if date.year() > today.year() + YEARS_AHEAD {
        return Err(format!("is more than {YEARS_AHEAD} years ahead ({})", date));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(year: i32, month: i32, day: i32) -> Date {
        Date { year, month, day }
    }

    #[test]
    fn the_ledger_takes_real_dates_within_reach_and_names_what_is_wrong() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).expect("date");
        assert_eq!(
            ledger_date(&on(2027, 1, 15), today),
            Ok(NaiveDate::from_ymd_opt(2027, 1, 15).expect("date"))
        );
        assert!(ledger_date(&on(1999, 2, 1), today).is_ok(), "an old invoice");
        assert_eq!(
            ledger_date(&on(262142, 1, 1), today),
            Err("is in year 262142, outside 1900-2999".to_string())
        );
        assert!(
            ledger_date(&on(2077, 1, 1), today)
                .unwrap_err()
                .contains("50 years ahead")
        );
        assert!(ledger_date(&on(1899, 12, 31), today).is_err());
        assert_eq!(
            ledger_date(&on(2026, 2, 30), today),
            Err("is not a calendar date".to_string())
        );
        assert!(ledger_date(&on(i32::MAX, 1, 1), today).is_err());
        assert!(ledger_date(&on(2026, -1, 1), today).is_err());
    }

    #[test]
    fn plannable_dates_survive_every_day_offset_a_ladder_takes() {
        for year in [*PLANNABLE_YEARS.start(), *PLANNABLE_YEARS.end()] {
            let date = plannable_date(&on(year, 6, 1)).expect("plannable");
            assert!(date.checked_add_signed(chrono::Duration::days(3650)).is_some());
            assert!(date.checked_sub_signed(chrono::Duration::days(3650)).is_some());
        }
    }

    #[test]
    fn the_zone_at_a_local_hour_has_that_hour_now() {
        use chrono::{TimeZone, Timelike};
        for utc_hour in 0..24 {
            let now = Utc
                .with_ymd_and_hms(2026, 12, 6, utc_hour, 30, 0)
                .single()
                .expect("time");
            let zone: chrono_tz::Tz = zone_at_local_hour(now, 12).parse().expect("an IANA zone");
            assert_eq!(now.with_timezone(&zone).hour(), 12, "at {utc_hour}:30 UTC");
        }
    }
}
