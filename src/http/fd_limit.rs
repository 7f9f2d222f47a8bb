//! The process's open-file budget: the soft `RLIMIT_NOFILE` raised once toward the hard limit,
//! and how many connections a server may hold within it.
//!
//! Every connection is a file descriptor, so the open-file limit, not threads or memory, is what
//! bounds idle connections. Distributions start processes with a soft limit of 1,024 and a much
//! higher hard one; raising the soft limit needs no privilege. A server keeps some descriptors
//! back for everything else the process opens (outbound HTTPS, files, the poller itself). This
//! module does not enforce anything; the readiness loop does.

use std::sync::OnceLock;

use super::limits::Limits;

/// Never ask for more than this many descriptors, even when the hard limit is "unlimited"
/// (Linux refuses more than `fs.nr_open`, 1,048,576 by default).
const CEILING: u64 = 1 << 20;

/// The open-file limit this process runs with, after raising the soft limit once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFiles {
    pub(crate) soft: u64,
    pub(crate) hard: u64,
    /// Why the soft limit could not be raised, if it could not.
    pub(crate) refused: Option<&'static str>,
}

/// Raises the soft limit toward the hard one (once per process) and returns what is in force.
pub(crate) fn raise_once() -> OpenFiles {
    static DONE: OnceLock<OpenFiles> = OnceLock::new();
    *DONE.get_or_init(|| {
        let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok(limits) => limits,
            Err(_) => {
                return OpenFiles {
                    soft: 1024,
                    hard: 1024,
                    refused: Some("getrlimit failed; assuming 1024"),
                }
            }
        };
        let target = hard.min(CEILING);
        if soft >= target {
            return OpenFiles {
                soft,
                hard,
                refused: None,
            };
        }
        match rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard) {
            Ok(()) => OpenFiles {
                soft: target,
                hard,
                refused: None,
            },
            Err(_) => OpenFiles {
                soft,
                hard,
                refused: Some("setrlimit refused"),
            },
        }
    })
}

/// Descriptors kept back from connections: the poller, listeners, log files, and outbound
/// connections, which handlers open up to one or two each.
fn reserve(limits: &Limits) -> u64 {
    64 + 2 * limits.workers as u64
}

/// How many connections a server may hold open: `max_connections`, but within the soft
/// open-file limit less the reserve (and never less than half the limit, so a tiny limit still
/// serves something).
pub(crate) fn capacity(limits: &Limits, soft: u64) -> usize {
    let budget = soft.saturating_sub(reserve(limits)).max(soft / 2).max(1);
    usize::try_from(budget)
        .unwrap_or(usize::MAX)
        .min(limits.max_connections.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_keeps_a_reserve_and_respects_the_configured_cap() {
        let l = Limits::public();
        assert_eq!(capacity(&l, 1 << 20), l.max_connections);
        assert_eq!(capacity(&l, 20_000), 20_000 - 64 - 64);
        assert_eq!(capacity(&l, 64), 32, "a tiny limit: half of it");
        let mut small = Limits::public();
        small.max_connections = 10;
        assert_eq!(capacity(&small, 20_000), 10);
    }

    #[test]
    fn raising_never_lowers_the_limit_and_stays_within_the_hard_one() {
        let now = raise_once();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(
            (now.soft, now.hard),
            (soft, hard),
            "reports what is in force"
        );
        assert!(soft <= hard);
        if now.refused.is_none() {
            assert!(soft >= hard.min(CEILING), "raised to {soft} of {hard}");
        }
        assert_eq!(raise_once(), now, "done once");
    }
}
