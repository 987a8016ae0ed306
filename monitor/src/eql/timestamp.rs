//! Event times, for ordering a stream of events: the value of a `date` field
//! read as Elasticsearch reads it with its default format,
//! `strict_date_optional_time||epoch_millis`, as nanoseconds since the Unix
//! epoch.
//!
//! A JSON number is epoch milliseconds (a fraction counts). A string is first
//! tried as an ISO 8601 date (`2024-05-01`, `2024-05-01T12:30:00.123456789Z`,
//! `...+02:00`; no zone means UTC), then as epoch milliseconds (`"1"`,
//! `"1700000000000.5"`), as the `||` in the format says: `"2024"` is the
//! year 2024, not 2024 milliseconds.
//!
//! Not done yet: the week-date and ordinal-date forms of
//! `strict_date_optional_time` (`2024-W18`, `2024-122`) are not read, and a
//! value that does not parse counts as missing (Elasticsearch would have
//! refused to index it).

use serde_json::Value;

const NANOS_PER_MILLI: i128 = 1_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Nanoseconds since 1970-01-01T00:00:00Z, or `None` when `v` is no date.
pub(crate) fn epoch_nanos(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(ms) => Some(i128::from(ms) * NANOS_PER_MILLI),
            None => {
                let ms = n.as_f64()?;
                ms.is_finite().then_some((ms * 1e6) as i128)
            }
        },
        Value::String(s) => iso8601(s).or_else(|| epoch_millis(s)),
        _ => None,
    }
}

/// `-?digits(.digits)?` as milliseconds; up to six fraction digits count.
fn epoch_millis(s: &str) -> Option<i128> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 6 {
        return None;
    }
    let mut nanos = whole.parse::<i128>().ok()? * NANOS_PER_MILLI;
    if !fraction.is_empty() {
        let scale = 10i128.pow(6 - fraction.len() as u32);
        nanos += fraction.parse::<i128>().ok()? * scale;
    }
    Some(if negative { -nanos } else { nanos })
}

/// Reads fixed-width fields off the front of a date string.
struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    /// Exactly `width` ASCII digits.
    fn digits(&mut self, width: usize) -> Option<i64> {
        let head = self.rest.get(..width)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[width..];
        head.parse().ok()
    }

    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A number between `min` and `max` in `width` digits, after `sep`, if
    /// `sep` comes next; `Some(None)` when it does not.
    fn field(&mut self, sep: char, width: usize, min: i64, max: i64) -> Option<Option<i64>> {
        if !self.eat(sep) {
            return Some(None);
        }
        let n = self.digits(width)?;
        (min..=max).contains(&n).then_some(Some(n))
    }
}

/// `yyyy[-MM[-dd[THH[:mm[:ss[.fraction]]]]]][Z|±HH[:mm]]`.
fn iso8601(s: &str) -> Option<i128> {
    let mut c = Cursor { rest: s };
    let year = c.digits(4)?;
    let month = c.field('-', 2, 1, 12)?;
    let day = match month {
        Some(m) => c.field('-', 2, 1, days_in_month(year, m))?,
        None => None,
    };
    let mut second_of_day = 0;
    let mut nanos = 0;
    if day.is_some() && c.eat('T') {
        let hour = c.digits(2).filter(|h| *h < 24)?;
        let minute = c.field(':', 2, 0, 59)?;
        let second = match minute {
            Some(_) => c.field(':', 2, 0, 59)?,
            None => None,
        };
        if second.is_some() && (c.eat('.') || c.eat(',')) {
            nanos = fraction(&mut c)?;
        }
        second_of_day = hour * 3600 + minute.unwrap_or(0) * 60 + second.unwrap_or(0);
    }
    let offset = zone(&mut c)?;
    if !c.rest.is_empty() {
        return None;
    }
    let days = days_from_civil(year, month.unwrap_or(1), day.unwrap_or(1));
    let seconds = days * 86_400 + second_of_day - offset;
    Some(i128::from(seconds) * NANOS_PER_SECOND + nanos)
}

/// One to nine fraction-of-second digits, as nanoseconds.
fn fraction(c: &mut Cursor) -> Option<i128> {
    let len = c.rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=9).contains(&len) {
        return None;
    }
    let value = i128::from(c.digits(len)?);
    Some(value * 10i128.pow(9 - len as u32))
}

/// The zone suffix as seconds east of UTC; none is UTC.
fn zone(c: &mut Cursor) -> Option<i64> {
    if c.eat('Z') || c.rest.is_empty() {
        return Some(0);
    }
    let sign = if c.eat('+') {
        1
    } else if c.eat('-') {
        -1
    } else {
        return None;
    };
    let hours = c.digits(2).filter(|h| *h <= 18)?;
    c.eat(':');
    let minutes = if c.rest.is_empty() {
        0
    } else {
        c.digits(2).filter(|m| *m < 60)?
    };
    Some(sign * (hours * 3600 + minutes * 60))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian
/// calendar (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(v: Value) -> Option<i128> {
        epoch_nanos(&v)
    }

    const MS: i128 = NANOS_PER_MILLI;

    #[test]
    fn epoch_milliseconds() {
        assert_eq!(at(json!(0)), Some(0));
        assert_eq!(
            at(json!(1_700_000_000_123_i64)),
            Some(1_700_000_000_123 * MS)
        );
        assert_eq!(at(json!(1.5)), Some(1_500_000));
        assert_eq!(at(json!("102")), Some(102 * MS));
        assert_eq!(at(json!("-5")), Some(-5 * MS));
        assert_eq!(at(json!("7.25")), Some(7_250_000));
        assert_eq!(at(json!("1.2345678")), None, "at most six fraction digits");
        assert_eq!(at(json!("")), None);
        assert_eq!(at(json!(true)), None);
        assert_eq!(at(json!(null)), None);
    }

    #[test]
    fn iso_dates_and_times() {
        let day = 86_400 * NANOS_PER_SECOND;
        assert_eq!(at(json!("1970-01-01T00:00:00.000Z")), Some(0));
        assert_eq!(at(json!("1970-01-02")), Some(day));
        assert_eq!(at(json!("1970-01-02T00:00:00Z")), Some(day));
        assert_eq!(at(json!("1970")), Some(0), "four digits are a year");
        assert_eq!(at(json!("1970-02")), Some(31 * day));
        assert_eq!(
            at(json!("2024-05-01T12:30:15.123456789Z")),
            Some(1_714_566_615 * NANOS_PER_SECOND + 123_456_789)
        );
        assert_eq!(
            at(json!("2024-05-01T14:30:15+02:00")),
            at(json!("2024-05-01T12:30:15Z"))
        );
        assert_eq!(
            at(json!("2024-05-01T10:00-0230")),
            at(json!("2024-05-01T12:30:00"))
        );
        assert_eq!(
            at(json!("2024-05-01T12")),
            at(json!("2024-05-01T12:00:00Z"))
        );
        assert_eq!(at(json!("1969-12-31T23:59:59.5Z")), Some(-500 * MS));
        assert_eq!(at(json!("2000-02-29")), Some(11_016 * day));
    }

    #[test]
    fn malformed_dates_are_missing() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-05-01T24:00",
            "2024-05-01T12:60",
            "2024-05-01T12:00:00.Z",
            "2024-05-01 12:00:00",
            "2024-05-01T12:00:00Zjunk",
            "24-05-01",
            "x",
        ] {
            assert_eq!(at(json!(bad)), None, "{bad}");
        }
    }
}
