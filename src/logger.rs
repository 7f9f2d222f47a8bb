//! A small stderr logger behind the `log` facade.
//!
//! One line per record: RFC 3339 UTC time, level, target, message. The level comes from one
//! environment variable, `LOG_LEVEL` (`error`, `warn`, `info`, `debug`, `trace`; default `info`).
//! It does not filter by module, buffer, or rotate: the platform (OCI Logging, journald) does that.

use std::io::Write;
use std::time::SystemTime;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}: {}\n",
            httpdate_rfc3339(SystemTime::now()),
            record.level(),
            record.target(),
            record.args()
        );
        // One write per line so concurrent workers do not interleave within a line.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Parses a `LOG_LEVEL` value; `None` (unset) means `info`.
pub fn parse_level(value: Option<&str>) -> Result<LevelFilter, crate::Error> {
    match value.map(str::trim) {
        None | Some("") => Ok(LevelFilter::Info),
        Some(v) => v.parse().map_err(|_| {
            crate::Error::Config(format!(
                "LOG_LEVEL={v:?} is not one of off, error, warn, info, debug, trace"
            ))
        }),
    }
}

/// Installs the logger at `level`. Calling it twice keeps the first logger and sets the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Formats a time as `2026-11-28T08:49:56.123Z` without a date crate.
fn httpdate_rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_388_957_500_042);
        assert_eq!(httpdate_rfc3339(t), "2014-01-05T21:31:40.042Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn level_parsing_names_the_variable() {
        assert_eq!(parse_level(None).unwrap(), LevelFilter::Info);
        assert_eq!(parse_level(Some("debug")).unwrap(), LevelFilter::Debug);
        let err = parse_level(Some("loud")).unwrap_err().to_string();
        assert!(err.contains("LOG_LEVEL"), "{err}");
    }
}
