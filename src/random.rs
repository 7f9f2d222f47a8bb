//! Randomness from the operating system only (ring's `SystemRandom`, already compiled in for
//! TLS): session-secret generation, process keys, jitter, fault dice, ids.
//!
//! There is no fallback: [`check`] runs at start-up and the binaries refuse to start when the
//! OS cannot supply randomness; after that a failure is a broken kernel, and [`bytes`] panics
//! rather than hand out predictable bytes (the HTTP layer turns a panic in a handler into a 500).

use ring::rand::SecureRandom as _;

use crate::error::{Error, Result};

/// Proves the OS random number generator answers; call once before serving anything.
pub fn check() -> Result<()> {
    let mut probe = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut probe)
        .map_err(|_| {
            Error::Config(
            "the operating system's random number generator is unavailable (getrandom failed): \
             refusing to start without it"
                .into(),
        )
        })
}

/// `N` random bytes from the OS. Panics if the OS generator fails (see the module header).
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if ring::rand::SystemRandom::new().fill(&mut out).is_err() {
        panic!("the operating system's random number generator failed");
    }
    out
}

/// Uniform in [0, 1).
pub fn unit() -> f64 {
    (u64::from_le_bytes(bytes::<8>()) >> 11) as f64 / (1u64 << 53) as f64
}

/// Lower-case hex of `N` random bytes.
pub fn hex<const N: usize>() -> String {
    bytes::<N>().iter().map(|b| format!("{b:02x}")).collect()
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

    #[test]
    fn the_os_generator_answers_and_hex_has_two_digits_a_byte() {
        check().unwrap();
        let h = hex::<16>();
        assert_eq!(h.len(), 32);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(h, hex::<16>());
    }
}
