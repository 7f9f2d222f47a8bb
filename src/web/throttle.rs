//! Login throttling: a token bucket per client address for every password check (the login form
//! and `Authorization: Bearer` alike), and which address a request comes from.
//!
//! Each address may fail `burst` times at once, then once per `refill`; beyond that a password
//! is not even compared: the answer is `429` with `Retry-After`, at once, so no thread waits on
//! an attacker. A right password forgets the address. IPv6 clients count per /64 (one host
//! usually holds a whole /64). The table is bounded: when it is full, addresses whose bucket has
//! refilled are dropped first (they are the same as absent), then the longest-idle one. State is
//! per process: behind a load balancer with N instances an address gets up to N × the figures.
//!
//! The client address is the socket peer, unless the peer is a trusted proxy (`TRUSTED_PROXIES`,
//! the load balancer's subnet): then it is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy. The load balancer appends the address it saw, so what a client writes
//! into the header itself is never believed.
//!
//! Not here: what the answers look like (`auth.rs`, `actions.rs`, `routes.rs`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::Request;

/// How many password failures an address may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures allowed in a row before the first refusal. Default 5.
    pub burst: u32,
    /// One more attempt is allowed per this much time. Default 20 s (3 a minute).
    pub refill: Duration,
    /// Most addresses remembered at once (about 64 bytes each). Default 10 000.
    pub max_clients: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            burst: 5,
            refill: Duration::from_secs(20),
            max_clients: 10_000,
        }
    }
}

/// Addresses and ranges whose `X-Forwarded-For` is believed (the load balancer's subnet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Trust nobody: the client address is always the socket peer.
    pub fn none() -> TrustedProxies {
        TrustedProxies(Vec::new())
    }

    /// Parses `10.20.0.0/24, 192.0.2.7, fd00::/8`; the error is the entry that is not an address
    /// or range.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| entry.to_string())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| entry.to_string())?,
            };
            out.push((addr, bits));
        }
        Ok(TrustedProxies(out))
    }

    /// True when nothing is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `ip` lies in one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, bits)| in_range(ip, canonical(*net), *bits))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width): (u128, u128, u32) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let bits = u32::from(bits).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (ip >> shift) == (net >> shift)
}

/// The address a request comes from (see the module header); `None` without a socket peer
/// (unix sockets, in-memory test requests).
pub(crate) fn client_addr(req: &Request, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .flat_map(|(_, v)| v.split(','))
        .collect();
    for entry in forwarded.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            // Garbage where the proxy writes: count it against the proxy, not anyone else.
            return Some(peer);
        };
        if !trusted.contains(ip) {
            return Some(ip);
        }
    }
    Some(peer)
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// Who is counted: an IPv4 address, an IPv6 /64, or every request without a peer together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4([u8; 4]),
    V6([u8; 8]),
    Unknown,
}

impl ClientKey {
    fn of(ip: Option<IpAddr>) -> ClientKey {
        match ip.map(canonical) {
            Some(IpAddr::V4(v4)) => ClientKey::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                ClientKey::V6(prefix)
            }
            None => ClientKey::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Attempts left (never `burst`: a full bucket is not stored).
    tokens: u32,
    /// When the next token is counted from.
    since: Instant,
}

/// What [`Throttle::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Check the password (one attempt was used up).
    Check,
    /// Do not check it; try again after this many seconds.
    Refused { retry_after: u64 },
}

/// The per-address buckets of one process.
#[derive(Debug)]
pub(crate) struct Throttle {
    policy: LoginThrottle,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

impl Throttle {
    pub(crate) fn new(policy: LoginThrottle) -> Throttle {
        Throttle {
            policy: LoginThrottle {
                burst: policy.burst.max(1),
                refill: policy.refill.max(Duration::from_millis(1)),
                max_clients: policy.max_clients.max(1),
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Uses up one attempt of `client`, or refuses when none is left.
    pub(crate) fn admit(&self, client: Option<IpAddr>) -> Admission {
        self.admit_at(ClientKey::of(client), Instant::now())
    }

    /// The password was right: `client` starts afresh.
    pub(crate) fn forgive(&self, client: Option<IpAddr>) {
        self.lock().remove(&ClientKey::of(client));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit_at(&self, key: ClientKey, now: Instant) -> Admission {
        let policy = self.policy;
        let mut buckets = self.lock();
        let bucket = match buckets.get(&key) {
            Some(b) => self.refilled(*b, now),
            None => {
                if buckets.len() >= policy.max_clients {
                    self.evict(&mut buckets, now);
                }
                Bucket {
                    tokens: policy.burst,
                    since: now,
                }
            }
        };
        if bucket.tokens == 0 {
            let waited = now.saturating_duration_since(bucket.since);
            let left = policy.refill.saturating_sub(waited);
            buckets.insert(key, bucket);
            return Admission::Refused {
                retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            };
        }
        let since = if bucket.tokens == policy.burst {
            now
        } else {
            bucket.since
        };
        buckets.insert(
            key,
            Bucket {
                tokens: bucket.tokens - 1,
                since,
            },
        );
        Admission::Check
    }

    /// `bucket` with the tokens earned since it was last counted.
    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let refill = self.policy.refill;
        let elapsed = now.saturating_duration_since(bucket.since);
        let earned = (elapsed.as_nanos() / refill.as_nanos()).min(u128::from(u32::MAX)) as u32;
        let tokens = bucket.tokens.saturating_add(earned).min(self.policy.burst);
        let since = if tokens == self.policy.burst {
            now
        } else {
            bucket.since + refill * earned
        };
        Bucket { tokens, since }
    }

    /// Makes room for one more address.
    fn evict(&self, buckets: &mut HashMap<ClientKey, Bucket>, now: Instant) {
        buckets.retain(|_, b| self.refilled(*b, now).tokens < self.policy.burst);
        if buckets.len() < self.policy.max_clients {
            return;
        }
        let oldest = buckets
            .iter()
            .min_by_key(|(_, b)| b.since)
            .map(|(key, _)| *key);
        if let Some(key) = oldest {
            buckets.remove(&key);
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn policy(burst: u32, refill_secs: u64, max_clients: usize) -> Throttle {
        Throttle::new(LoginThrottle {
            burst,
            refill: Duration::from_secs(refill_secs),
            max_clients,
        })
    }

    fn refused(admission: Admission) -> bool {
        matches!(admission, Admission::Refused { .. })
    }

    fn v4(last: u8) -> ClientKey {
        ClientKey::V4([192, 0, 2, last])
    }

    #[test]
    fn a_burst_then_one_attempt_per_refill_with_the_wait_announced() {
        let t = policy(3, 20, 100);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.admit_at(v4(1), start), Admission::Check);
        }
        assert_eq!(
            t.admit_at(v4(1), start),
            Admission::Refused { retry_after: 20 }
        );
        assert_eq!(
            t.admit_at(v4(1), start + Duration::from_millis(12_500)),
            Admission::Refused { retry_after: 8 }
        );
        // Another address is not affected.
        assert_eq!(t.admit_at(v4(2), start), Admission::Check);
        let later = start + Duration::from_secs(20);
        assert_eq!(t.admit_at(v4(1), later), Admission::Check);
        assert!(refused(t.admit_at(v4(1), later)));
        // 60 s of hammering from one address: the burst plus one per refill.
        let t = policy(5, 20, 100);
        let checked = (0..1000)
            .filter(|i| {
                let at = start + Duration::from_millis(i * 60);
                t.admit_at(v4(9), at) == Admission::Check
            })
            .count();
        assert_eq!(checked, 5 + 2, "59.94 s holds two refills of 20 s");
    }

    #[test]
    fn a_refilled_address_counts_from_scratch_and_forgiving_resets() {
        let t = policy(2, 10, 100);
        let start = Instant::now();
        t.admit_at(v4(1), start);
        t.admit_at(v4(1), start);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(t.admit_at(v4(1), much_later), Admission::Check);
        assert_eq!(t.admit_at(v4(1), much_later), Admission::Check);
        assert!(refused(t.admit_at(v4(1), much_later)));
        t.forgive(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(t.admit_at(v4(1), much_later), Admission::Check);
    }

    #[test]
    fn memory_is_bounded_and_the_refilled_go_first() {
        let t = policy(2, 10, 4);
        let start = Instant::now();
        for i in 0..200 {
            t.admit_at(v4(i), start + Duration::from_millis(u64::from(i)));
            assert!(t.remembered() <= 4, "after {i}");
        }
        // Refilled entries are dropped before a locked-out one.
        let t = policy(2, 10, 3);
        t.admit_at(v4(1), start);
        t.admit_at(v4(1), start);
        t.admit_at(v4(2), start);
        t.admit_at(v4(3), start + Duration::from_secs(50));
        t.admit_at(v4(3), start + Duration::from_secs(50));
        t.admit_at(v4(4), start + Duration::from_secs(55));
        assert!(refused(t.admit_at(v4(3), start + Duration::from_secs(55))));
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(a.into())), ClientKey::of(Some(b.into())));
        assert_ne!(ClientKey::of(Some(a.into())), ClientKey::of(Some(c.into())));
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(mapped.into())), v4(1));
    }

    #[test]
    fn ranges_parse_and_match() {
        let t = TrustedProxies::parse("10.20.0.0/24, 192.0.2.7 ,fd00::/8").unwrap();
        assert!(t.contains("10.20.0.99".parse().unwrap()));
        assert!(!t.contains("10.20.1.1".parse().unwrap()));
        assert!(t.contains("192.0.2.7".parse().unwrap()));
        assert!(!t.contains("192.0.2.8".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(t.contains("::ffff:10.20.0.5".parse().unwrap()));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains("203.0.113.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "host.example", "10.0.0.0/x", "::/129"] {
            assert_eq!(TrustedProxies::parse(bad), Err(bad.to_string()));
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn forwarded_entries_take_ports_and_brackets() {
        for (entry, address) in [
            (" 203.0.113.9 ", "203.0.113.9"),
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
        ] {
            let expected = Some(address.parse().unwrap());
            assert_eq!(parse_forwarded(entry), expected, "{entry}");
        }
        assert_eq!(parse_forwarded("unknown"), None);
    }
}
