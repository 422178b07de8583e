//! Points in time: RFC 3339 parsing and printing, without a clock.
//!
//! The core never reads the clock: callers pass the as-of time in. A
//! [`Timestamp`] is a count of nanoseconds since 1970-01-01T00:00:00Z, so two
//! texts with different offsets that name the same instant are equal.

use std::fmt;

/// Nanoseconds in one day (86 400 s): the unit of `half_life_days`,
/// `window_days` and `per_days`.
pub const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Earliest accepted year. Timestamps outside 1900..=2200 are rejected as
/// almost certainly wrong data (and to stay inside i64 nanoseconds).
pub const MIN_YEAR: i64 = 1900;
/// Latest accepted year.
pub const MAX_YEAR: i64 = 2200;

/// An instant, in nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Why a text is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} in timestamp {text:?} (expected RFC 3339 such as 2026-03-22T10:00:00+02:00)")]
pub struct TimestampError {
    /// The offending text, cut to 64 bytes.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Timestamp {
    /// Parses an RFC 3339 timestamp with a mandatory offset (`Z` or
    /// `+HH:MM`/`-HH:MM`), optional fractional seconds (up to 9 digits are
    /// kept), and `T`, `t` or a space between date and time. Leading and
    /// trailing white space is ignored.
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        parse_rfc3339(text.trim().as_bytes()).map_err(|reason| TimestampError {
            text: truncate(text, 64),
            reason,
        })
    }

    /// Builds a timestamp from whole seconds since the epoch.
    pub fn from_unix_seconds(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// Whole seconds since the epoch (rounded towards minus infinity).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Age of `self` seen from `as_of`, in fractional days (86 400 s each).
    /// Negative when `self` is after `as_of`.
    pub fn days_before(self, as_of: Timestamp) -> f64 {
        match as_of.0.checked_sub(self.0) {
            Some(d) => d as f64 / NANOS_PER_DAY as f64,
            None => (as_of.0 as i128 - self.0 as i128) as f64 / NANOS_PER_DAY as f64,
        }
    }

    /// This instant moved by a number of (fractional) days, saturating at the
    /// ends of the representable range.
    pub fn minus_days(self, days: f64) -> Timestamp {
        Timestamp(self.0.saturating_sub(days_to_nanos(days)))
    }
}

/// Converts a duration in days to nanoseconds, rounded to the nearest
/// nanosecond and saturating.
pub fn days_to_nanos(days: f64) -> i64 {
    let n = (days * NANOS_PER_DAY as f64).round();
    if n >= i64::MAX as f64 {
        i64::MAX
    } else if n <= i64::MIN as f64 {
        i64::MIN
    } else {
        n as i64
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn parse_rfc3339(b: &[u8]) -> Result<Timestamp, &'static str> {
    if b.is_empty() {
        return Err("empty value");
    }
    let year = digits(b, 0, 4).ok_or("bad year")?;
    if b.get(4) != Some(&b'-') {
        return Err("expected '-' after the year");
    }
    let month = digits(b, 5, 2).ok_or("bad month")?;
    if b.get(7) != Some(&b'-') {
        return Err("expected '-' after the month");
    }
    let day = digits(b, 8, 2).ok_or("bad day")?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err("expected 'T' between date and time");
    }
    let hour = digits(b, 11, 2).ok_or("bad hour")?;
    if b.get(13) != Some(&b':') {
        return Err("expected ':' after the hour");
    }
    let minute = digits(b, 14, 2).ok_or("bad minute")?;
    if b.get(16) != Some(&b':') {
        return Err("expected ':' after the minute");
    }
    let second = digits(b, 17, 2).ok_or("bad second")?;
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000i64;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += (c - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err("no digits after the decimal point");
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2).ok_or("bad offset hours")?;
            if b.get(i + 3) != Some(&b':') {
                return Err("expected ':' in the offset");
            }
            let om = digits(b, i + 4, 2).ok_or("bad offset minutes")?;
            if oh > 23 || om > 59 {
                return Err("offset out of range");
            }
            i += 6;
            let s = oh * 3600 + om * 60;
            if sign == b'-' { -s } else { s }
        }
        None => return Err("missing offset (add Z or +HH:MM)"),
        Some(_) => return Err("unexpected character before the offset"),
    };
    if i != b.len() {
        return Err("trailing characters");
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err("year outside 1900..=2200");
    }
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range");
    }
    // A leap second (:60) is read as the last instant of :59.
    let (second, nanos) = if second == 60 {
        (59, 999_999_999)
    } else {
        (second, nanos)
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Ok(Timestamp(secs * 1_000_000_000 + nanos))
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with fractional seconds only when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            tod / 3600,
            tod % 3600 / 60,
            tod % 60
        )?;
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_name_the_same_instant() {
        let a = Timestamp::parse("2026-03-22T12:00:00+02:00").unwrap();
        let b = Timestamp::parse("2026-03-22T10:00:00Z").unwrap();
        let c = Timestamp::parse("2026-03-22T05:30:00-04:30").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(b.to_string(), "2026-03-22T10:00:00Z");
    }

    #[test]
    fn epoch_and_fractions() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z").unwrap().0, 0);
        let t = Timestamp::parse("1970-01-01T00:00:01.5Z").unwrap();
        assert_eq!(t.0, 1_500_000_000);
        assert_eq!(t.to_string(), "1970-01-01T00:00:01.5Z");
        let t = Timestamp::parse("1969-12-31T23:59:59.000000001z").unwrap();
        assert_eq!(t.0, -999_999_999);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.000000001Z");
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-03-22",
            "2026-03-22T10:00:00",
            "2026-02-30T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-03-22T24:00:00Z",
            "2026-03-22T10:00:00+2:00",
            "2026-03-22T10:00:00Zjunk",
            "1700-01-01T00:00:00Z",
            "2026-03-22T10:00:00.Z",
            "２０２６-03-22T10:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn leap_years() {
        assert!(Timestamp::parse("2024-02-29T00:00:00Z").is_ok());
        assert!(Timestamp::parse("2100-02-29T00:00:00Z").is_err());
        assert!(Timestamp::parse("2000-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn days_before_is_fractional() {
        let t = Timestamp::parse("2026-03-22T10:00:00Z").unwrap();
        let as_of = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        assert!((t.days_before(as_of) - 39.583_333_333_333_336).abs() < 1e-12);
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(n in -2_208_988_800_000_000_000i64..7_258_118_400_000_000_000i64) {
            let t = Timestamp(n);
            proptest::prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
    }
}
