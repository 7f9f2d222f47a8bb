//! A small stderr logger behind the `log` facade.
//!
//! One line per record: RFC 3339 UTC time, level, target, message. The level comes from one
//! environment variable, `LOG_LEVEL` (`error`, `warn`, `info`, `debug`, `trace`; default `info`).
//! Other crates' `debug` lines (the HTTP client, the model runtime) appear only at `trace`.
//! It does not buffer or rotate: the platform (OCI Logging, journald) does that.

use std::io::Write;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if metadata.level() > log::max_level() {
            return false;
        }
        // At `debug`, our own decisions are what a reader wants; the HTTP client's and the
        // model runtime's internals (a dozen lines per request) only at `trace`.
        let foreign = ["ureq", "rustls", "tract", "ureq_proto"]
            .iter()
            .any(|crate_name| metadata.target().starts_with(crate_name));
        !(foreign && metadata.level() == Level::Debug && log::max_level() < LevelFilter::Trace)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}: {}\n",
            crate::timefmt::format(SystemTime::now(), crate::timefmt::Precision::Millis),
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

/// Installs the logger at the level `LOG_LEVEL` names in `lookup` (default `info`).
pub fn init_from(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), crate::Error> {
    init(parse_level(
        lookup(crate::config::vars::LOG_LEVEL).as_deref(),
    )?);
    Ok(())
}

/// Installs the logger at `level`. Calling it twice keeps the first logger and sets the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_crates_debug_lines_wait_for_trace() {
        let meta =
            |target: &'static str, level| Metadata::builder().target(target).level(level).build();
        log::set_max_level(LevelFilter::Debug);
        assert!(LOGGER.enabled(&meta("analysis", Level::Debug)));
        assert!(!LOGGER.enabled(&meta("ureq::run", Level::Debug)));
        assert!(LOGGER.enabled(&meta("ureq::run", Level::Warn)));
        assert!(!LOGGER.enabled(&meta("analysis", Level::Trace)));
        log::set_max_level(LevelFilter::Trace);
        assert!(LOGGER.enabled(&meta("ureq::run", Level::Debug)));
        log::set_max_level(LevelFilter::Info);
    }

    #[test]
    fn level_parsing_names_the_variable() {
        assert_eq!(parse_level(None).unwrap(), LevelFilter::Info);
        assert_eq!(parse_level(Some("debug")).unwrap(), LevelFilter::Debug);
        let err = parse_level(Some("loud")).unwrap_err().to_string();
        assert!(err.contains("LOG_LEVEL"), "{err}");
    }
}
