//! RFC 3339 timestamps without a date crate: formatting at three precisions and parsing.
//!
//! UTC only on output. Parsing accepts `Z` or a numeric offset and any number of fraction
//! digits, as Fn deadlines and OCI timestamps arrive in both forms. Leap seconds are not modelled.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many fraction digits to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `2026-11-28T08:49:56Z` (Fn-Deadline).
    Seconds,
    /// `2026-11-28T08:49:56.123Z` (logs, Object Storage).
    Millis,
    /// `2026-11-28T08:49:56.123456Z` (SODA).
    #[cfg_attr(not(feature = "local"), allow(dead_code))] // only the emulator's SODA writes it
    Micros,
}

/// Formats `t` in UTC.
pub fn format(t: SystemTime, precision: Precision) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    match precision {
        Precision::Seconds => format!("{base}Z"),
        Precision::Millis => format!("{base}.{:03}Z", since.subsec_millis()),
        Precision::Micros => format!("{base}.{:06}Z", since.subsec_micros()),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`; `t` or a space may separate date and time.
pub fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &text[i..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':' =>
        {
            let hours = num(i + 1..i + 3)?;
            let minutes = num(i + 4..i + 6)?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01; the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_at_each_precision() {
        let t = UNIX_EPOCH + Duration::from_micros(1_388_957_500_042_123);
        assert_eq!(format(t, Precision::Seconds), "2014-01-05T21:31:40Z");
        assert_eq!(format(t, Precision::Millis), "2014-01-05T21:31:40.042Z");
        assert_eq!(format(t, Precision::Micros), "2014-01-05T21:31:40.042123Z");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn parses_zones_and_fractions() {
        let base = UNIX_EPOCH + Duration::from_secs(1_627_678_733);
        assert_eq!(parse("2021-07-30T20:58:53Z"), Some(base));
        assert_eq!(parse("2021-07-30T22:58:53+02:00"), Some(base));
        assert_eq!(parse("2021-07-30T19:58:53-01:00"), Some(base));
        assert_eq!(
            parse("2021-07-30T20:58:53.5Z"),
            Some(base + Duration::from_millis(500))
        );
        assert_eq!(
            parse("2021-07-30t20:58:53.123456789123z"),
            Some(base + Duration::from_nanos(123_456_789))
        );
        for bad in [
            "2021-07-30T20:58:53",
            "2021-13-30T20:58:53Z",
            "2021-07-30T20:58:53.Z",
            "yesterday",
            "2021-07-30T20:58:53+0200",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        for days in [-1000, 0, 11_016, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
