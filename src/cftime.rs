//! CF time units (`"days since 1955-1-1"`) and the calendars of the CF conventions.
//!
//! nc2zarr keeps time values verbatim when every file uses the same units. When files
//! differ, values are re-encoded into the first file's units: `new = old * scale + offset`,
//! where the offset is the distance between the two reference dates *in the calendar*.

use std::fmt;

/// A CF calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// `standard` / `gregorian`: Julian before 1582-10-15, Gregorian after.
    Standard,
    /// `proleptic_gregorian`.
    ProlepticGregorian,
    /// `julian`.
    Julian,
    /// `noleap` / `365_day`.
    NoLeap,
    /// `all_leap` / `366_day`.
    AllLeap,
    /// `360_day`.
    Day360,
}

impl Calendar {
    /// True when times in `units` mean the same dates in both calendars: the same
    /// calendar, or `standard` and `proleptic_gregorian` counted from 1582-10-15 on, where
    /// they agree (xarray combines those too).
    pub fn agrees_with(self, other: Calendar, units: &TimeUnits) -> bool {
        let gregorian = |c| matches!(c, Calendar::Standard | Calendar::ProlepticGregorian);
        self == other || (gregorian(self) && gregorian(other) && units.date >= (1582, 10, 15))
    }

    /// Parses a CF `calendar` attribute (case-insensitive); `None` when absent.
    pub fn parse(attr: Option<&str>) -> Result<Calendar, String> {
        let Some(name) = attr else {
            return Ok(Calendar::Standard);
        };
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" | "" => Calendar::Standard,
            "proleptic_gregorian" => Calendar::ProlepticGregorian,
            "julian" => Calendar::Julian,
            "noleap" | "365_day" => Calendar::NoLeap,
            "all_leap" | "366_day" => Calendar::AllLeap,
            "360_day" => Calendar::Day360,
            other => return Err(format!("unknown calendar {other:?}")),
        })
    }

    /// Day number of a date: consecutive days map to consecutive integers.
    fn day_number(self, y: i64, m: i64, d: i64) -> Result<i64, String> {
        if !(1..=12).contains(&m) || d < 1 || d > self.month_len(y, m) {
            return Err(format!("{y:04}-{m:02}-{d:02} is not a date in the {self} calendar"));
        }
        Ok(match self {
            Calendar::ProlepticGregorian => gregorian_jdn(y, m, d),
            Calendar::Julian => julian_jdn(y, m, d),
            Calendar::Standard => {
                if (y, m, d) < (1582, 10, 15) {
                    if (y, m, d) > (1582, 10, 4) {
                        return Err(format!("{y}-{m}-{d} does not exist in the standard calendar"));
                    }
                    julian_jdn(y, m, d)
                } else {
                    gregorian_jdn(y, m, d)
                }
            }
            Calendar::NoLeap => fixed_year_days(y, m, d, &NOLEAP_MONTHS, 365),
            Calendar::AllLeap => fixed_year_days(y, m, d, &LEAP_MONTHS, 366),
            Calendar::Day360 => y * 360 + (m - 1) * 30 + (d - 1),
        })
    }

    /// The date of a day number ([`Calendar::day_number`]'s inverse).
    fn date_of(self, day: i64) -> (i64, i64, i64) {
        let in_fixed_year = |day: i64, months: &[i64; 12], year_len: i64| {
            let (y, mut rest) = (day.div_euclid(year_len), day.rem_euclid(year_len));
            let mut m = 0;
            while rest >= months[m] {
                rest -= months[m];
                m += 1;
            }
            (y, m as i64 + 1, rest + 1)
        };
        match self {
            Calendar::Day360 => (
                day.div_euclid(360),
                day.rem_euclid(360) / 30 + 1,
                day.rem_euclid(30) + 1,
            ),
            Calendar::NoLeap => in_fixed_year(day, &NOLEAP_MONTHS, 365),
            Calendar::AllLeap => in_fixed_year(day, &LEAP_MONTHS, 366),
            Calendar::ProlepticGregorian => jdn_date(day, true),
            Calendar::Julian => jdn_date(day, false),
            Calendar::Standard => jdn_date(day, day >= gregorian_jdn(1582, 10, 15)),
        }
    }

    fn month_len(self, y: i64, m: i64) -> i64 {
        let idx = (m - 1) as usize;
        match self {
            Calendar::Day360 => 30,
            Calendar::NoLeap => NOLEAP_MONTHS[idx],
            Calendar::AllLeap => LEAP_MONTHS[idx],
            Calendar::Julian => julian_month_len(y, idx),
            Calendar::ProlepticGregorian => gregorian_month_len(y, idx),
            Calendar::Standard if y < 1582 => julian_month_len(y, idx),
            Calendar::Standard => gregorian_month_len(y, idx),
        }
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::Julian => "julian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
        })
    }
}

const NOLEAP_MONTHS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const LEAP_MONTHS: [i64; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

fn gregorian_month_len(y: i64, idx: usize) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if leap { LEAP_MONTHS[idx] } else { NOLEAP_MONTHS[idx] }
}

fn julian_month_len(y: i64, idx: usize) -> i64 {
    if y.rem_euclid(4) == 0 {
        LEAP_MONTHS[idx]
    } else {
        NOLEAP_MONTHS[idx]
    }
}

fn fixed_year_days(y: i64, m: i64, d: i64, months: &[i64; 12], year_len: i64) -> i64 {
    y * year_len + months[..(m - 1) as usize].iter().sum::<i64>() + (d - 1)
}

/// Julian day number of a proleptic Gregorian date.
fn gregorian_jdn(y: i64, m: i64, d: i64) -> i64 {
    let a = (14 - m) / 12;
    let yy = y + 4800 - a;
    let mm = m + 12 * a - 3;
    d + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4) - yy.div_euclid(100) + yy.div_euclid(400) - 32045
}

/// The day number (a Julian day number, plus the fraction of the day) of a value in
/// CDI's absolute time units, `day as %Y%m%d.%f` (ICON and CDO output: 20200131.5 is noon
/// of 31 January 2020), where consecutive steps are not evenly spaced numbers; `None`
/// for other units or a value that names no date.
pub fn absolute_day(units: &str, value: f64) -> Option<f64> {
    let absolute = units.trim().to_ascii_lowercase().starts_with("day as %y%m%d");
    if !absolute || !value.is_finite() {
        return None;
    }
    let whole = value.floor();
    let ymd = whole as i64;
    let (y, m, d) = (ymd / 10_000, (ymd / 100) % 100, ymd % 100);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(gregorian_jdn(y, m, d) as f64 + (value - whole))
}

/// Julian day number of a Julian-calendar date.
fn julian_jdn(y: i64, m: i64, d: i64) -> i64 {
    let a = (14 - m) / 12;
    let yy = y + 4800 - a;
    let mm = m + 12 * a - 3;
    d + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4) - 32083
}

/// The Gregorian (or Julian) date of a Julian day number (Richards' algorithm).
fn jdn_date(jdn: i64, gregorian: bool) -> (i64, i64, i64) {
    let mut f = jdn + 1401;
    if gregorian {
        f += ((4 * jdn + 274_277).div_euclid(146_097) * 3).div_euclid(4) - 38;
    }
    let e = 4 * f + 3;
    let g = e.rem_euclid(1461).div_euclid(4);
    let h = 5 * g + 2;
    let d = h.rem_euclid(153).div_euclid(5) + 1;
    let m = (h.div_euclid(153) + 2).rem_euclid(12) + 1;
    let y = e.div_euclid(1461) - 4716 + (14 - m).div_euclid(12);
    (y, m, d)
}

/// Parsed CF time units: a step length and a reference instant.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeUnits {
    /// Seconds per unit step.
    pub step_seconds: f64,
    /// Reference date (year, month, day).
    pub date: (i64, i64, i64),
    /// Seconds after midnight of the reference date (time-zone offset applied).
    pub seconds_of_day: f64,
}

impl TimeUnits {
    /// Parses `"<unit> since <date>[ <time>][ <zone>]"`; `None` when `units` is not a time unit.
    pub fn parse(units: &str) -> Option<TimeUnits> {
        let lower = units.trim().to_ascii_lowercase();
        let (unit, rest) = lower.split_once(" since ")?;
        let step_seconds = match unit.trim() {
            "days" | "day" | "d" => 86_400.0,
            "hours" | "hour" | "hrs" | "hr" | "h" => 3_600.0,
            "minutes" | "minute" | "mins" | "min" => 60.0,
            "seconds" | "second" | "secs" | "sec" | "s" => 1.0,
            "milliseconds" | "millisecond" | "msecs" | "msec" | "ms" => 1e-3,
            "microseconds" | "microsecond" | "usecs" | "usec" | "us" => 1e-6,
            "weeks" | "week" => 604_800.0,
            _ => return None,
        };
        let (date, seconds_of_day) = parse_reference(rest.trim())?;
        Some(TimeUnits {
            step_seconds,
            date,
            seconds_of_day,
        })
    }

    /// Seconds from a calendar-wide origin to the reference instant.
    fn origin_seconds(&self, calendar: Calendar) -> Result<f64, String> {
        let (y, m, d) = self.date;
        Ok(calendar.day_number(y, m, d)? as f64 * 86_400.0 + self.seconds_of_day)
    }

    /// `(scale, offset)` such that a value in `self` equals `value * scale + offset` in `target`.
    pub fn transform_to(&self, target: &TimeUnits, calendar: Calendar) -> Result<(f64, f64), String> {
        let scale = self.step_seconds / target.step_seconds;
        let offset = (self.origin_seconds(calendar)? - target.origin_seconds(calendar)?) / target.step_seconds;
        Ok((scale, offset))
    }

    /// The instant of `value` in `calendar` as an RFC 3339 timestamp
    /// (`2000-01-01T06:00:00Z`), for catalogs that speak Gregorian dates. A date the
    /// Gregorian calendar lacks (`360_day`'s February 30) becomes the month's last day.
    pub fn timestamp(&self, value: f64, calendar: Calendar) -> Result<String, String> {
        let seconds = self.absolute_seconds(value, calendar)?;
        // About ±300 million years of days: far beyond RFC 3339, and safe from overflow.
        if !seconds.is_finite() || seconds.abs() > 1e16 {
            return Err(format!("time value {value} is not a date"));
        }
        let day = (seconds / 86_400.0).floor();
        let of_day = (seconds - day * 86_400.0).round() as i64;
        let (day, of_day) = if of_day >= 86_400 {
            (day as i64 + 1, of_day - 86_400)
        } else {
            (day as i64, of_day)
        };
        let (y, m, d) = calendar.date_of(day);
        if !(0..=9999).contains(&y) {
            return Err(format!("year {y} cannot be written as an RFC 3339 timestamp"));
        }
        let d = d.min(gregorian_month_len(y, (m - 1) as usize));
        Ok(format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60
        ))
    }

    /// The instant of `value` as seconds since the calendar-wide origin (for ordering).
    pub fn absolute_seconds(&self, value: f64, calendar: Calendar) -> Result<f64, String> {
        Ok(self.origin_seconds(calendar)? + value * self.step_seconds)
    }
}

fn parse_reference(text: &str) -> Option<((i64, i64, i64), f64)> {
    let text = text.trim();
    let (date_part, time_part) = match text.find(['t', ' ']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
        None => (text, ""),
    };
    let (neg, date_digits) = match date_part.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, date_part),
    };
    let mut fields = date_digits.split('-');
    let mut y: i64 = fields.next()?.parse().ok()?;
    if neg {
        y = -y;
    }
    let m: i64 = fields.next().map_or(Some(1), |s| s.parse().ok())?;
    let d: i64 = fields.next().map_or(Some(1), |s| s.parse().ok())?;
    if fields.next().is_some() {
        return None;
    }
    let mut seconds = 0.0;
    let mut zone = time_part;
    if let Some(first) = time_part.split_whitespace().next()
        && first.contains(':')
    {
        let (clock, tz) = split_zone(first);
        seconds = parse_clock(clock)?;
        zone = time_part[first.len()..].trim();
        if !tz.is_empty() {
            zone = tz;
        }
    }
    seconds -= parse_zone(zone.trim())?;
    Some(((y, m, d), seconds))
}

fn split_zone(clock: &str) -> (&str, &str) {
    if let Some(stripped) = clock.strip_suffix('z') {
        return (stripped, "");
    }
    match clock.rfind(['+', '-']) {
        Some(i) if i > 0 => (&clock[..i], &clock[i..]),
        _ => (clock, ""),
    }
}

fn parse_clock(clock: &str) -> Option<f64> {
    let mut parts = clock.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next().map_or(Some(0.0), |s| s.parse().ok())?;
    let s: f64 = parts.next().map_or(Some(0.0), |s| s.parse().ok())?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Zone offset in seconds east of UTC.
fn parse_zone(zone: &str) -> Option<f64> {
    let zone = zone.trim_start_matches("utc").trim();
    if zone.is_empty() || zone == "z" || zone == "gmt" {
        return Some(0.0);
    }
    let (sign, rest) = match zone.as_bytes()[0] {
        b'+' => (1.0, &zone[1..]),
        b'-' => (-1.0, &zone[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<f64>().ok()?, m.parse::<f64>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0.0),
    };
    Some(sign * (h * 3600.0 + m * 60.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_turn_back_into_their_dates_in_every_calendar() {
        use Calendar::*;
        for cal in [Standard, ProlepticGregorian, Julian, NoLeap, AllLeap, Day360] {
            for y in [-100, 0, 1, 1582, 1600, 1900, 1999, 2000, 2001, 2024, 2100] {
                for m in 1..=12 {
                    for d in 1..=cal.month_len(y, m) {
                        let Ok(n) = cal.day_number(y, m, d) else { continue };
                        assert_eq!(cal.date_of(n), (y, m, d), "{cal} {y}-{m}-{d}");
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_are_rfc3339_in_each_calendar() {
        let hours = tu("hours since 2000-01-01");
        assert_eq!(
            hours.timestamp(30.5, Calendar::Standard).unwrap(),
            "2000-01-02T06:30:00Z"
        );
        let days = tu("days since 1850-01-01");
        // Day 59 of a noleap year is March 1st; in 360_day it is February 30th, which
        // Gregorian 1850 lacks: its last February day stands in.
        assert_eq!(days.timestamp(59.0, Calendar::NoLeap).unwrap(), "1850-03-01T00:00:00Z");
        assert_eq!(days.timestamp(59.0, Calendar::Day360).unwrap(), "1850-02-28T00:00:00Z");
        assert_eq!(
            tu("seconds since 1970-01-01")
                .timestamp(1_700_000_000.0, Calendar::ProlepticGregorian)
                .unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert!(days.timestamp(f64::NAN, Calendar::Standard).is_err());
        assert!(days.timestamp(9.96921e36, Calendar::Standard).is_err());
        assert!(days.timestamp(-1e6, Calendar::Standard).is_err(), "year -888");
    }

    fn tu(s: &str) -> TimeUnits {
        TimeUnits::parse(s).unwrap()
    }

    #[test]
    fn parses_common_spellings() {
        assert_eq!(tu("DaYs since 1500-1-1").date, (1500, 1, 1));
        assert_eq!(tu("hours since 1900-01-01 00:00:00.0").step_seconds, 3600.0);
        assert_eq!(tu("seconds since 1970-01-01T00:00:00Z").seconds_of_day, 0.0);
        assert_eq!(tu("minutes since 2000-01-01 06:30").seconds_of_day, 6.5 * 3600.0);
        assert_eq!(tu("hours since 2000-01-01 00:00:00 +01:00").seconds_of_day, -3600.0);
        assert!(TimeUnits::parse("K").is_none());
        assert!(TimeUnits::parse("days since yesterday").is_none());
    }

    #[test]
    fn offsets_between_reference_dates() {
        let a = tu("days since 1955-1-1");
        let b = tu("days since 1940-1-1");
        // 15 years, 4 leap years (1940, 44, 48, 52).
        assert_eq!(a.transform_to(&b, Calendar::Standard).unwrap(), (1.0, 5479.0));
        assert_eq!(a.transform_to(&b, Calendar::NoLeap).unwrap(), (1.0, 5475.0));
        assert_eq!(a.transform_to(&b, Calendar::AllLeap).unwrap(), (1.0, 5490.0));
        assert_eq!(a.transform_to(&b, Calendar::Day360).unwrap(), (1.0, 5400.0));
        let h = tu("hours since 1955-1-1");
        assert_eq!(h.transform_to(&b, Calendar::Standard).unwrap(), (1.0 / 24.0, 5479.0));
    }

    #[test]
    fn standard_calendar_skips_the_gregorian_gap() {
        let before = tu("days since 1582-10-04");
        let after = tu("days since 1582-10-15");
        assert_eq!(after.transform_to(&before, Calendar::Standard).unwrap().1, 1.0);
        assert_eq!(
            after.transform_to(&before, Calendar::ProlepticGregorian).unwrap().1,
            11.0
        );
        assert!(
            tu("days since 1582-10-10")
                .transform_to(&before, Calendar::Standard)
                .is_err()
        );
        // Julian 1500 is a leap year, Gregorian 1500 is not.
        let y1500 = tu("days since 1500-03-01");
        let feb = tu("days since 1500-02-28");
        assert_eq!(y1500.transform_to(&feb, Calendar::Julian).unwrap().1, 2.0);
        assert_eq!(y1500.transform_to(&feb, Calendar::ProlepticGregorian).unwrap().1, 1.0);
    }

    #[test]
    fn rejects_dates_outside_the_calendar() {
        let feb30 = tu("days since 2000-02-30");
        let ok = tu("days since 2000-01-01");
        assert!(feb30.transform_to(&ok, Calendar::Standard).is_err());
        assert!(feb30.transform_to(&ok, Calendar::Day360).is_ok());
        assert!(Calendar::parse(Some("martian")).is_err());
    }
}
