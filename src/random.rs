//! Randomness from ring's system RNG (already compiled in for TLS): jitter, fault dice, ids.
//!
//! Not for keys: nothing here is used where secrecy matters beyond unguessable ids.

use ring::rand::SecureRandom as _;

/// `N` random bytes. Falls back to a time-derived value only if the OS RNG fails.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if ring::rand::SystemRandom::new().fill(&mut out).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = nanos[i % nanos.len()] ^ (i as u8);
        }
    }
    out
}

/// Uniform in [0, 1).
pub fn unit() -> f64 {
    (u64::from_le_bytes(bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
}

/// A random UUID (version 4), lower-case and hyphenated, as OCI etags look.
pub fn uuid() -> String {
    let mut b = bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_v4_shape_and_differ() {
        let a = uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, uuid());
        let u = unit();
        assert!((0.0..1.0).contains(&u));
    }
}
