//! Credentials in memory: a string that never prints, and a comparison that does not leak
//! where two credentials differ.
//!
//! Used by the transport (ORDS Basic auth), the OCI Vault client, configuration and the web
//! app's login; none of them needs to know the others.

/// A secret string (password, token). `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Compares two byte strings in time that depends only on their lengths, for credentials.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison_is_still_a_comparison() {
        assert!(constant_time_eq(b"ADMIN:pw", b"ADMIN:pw"));
        assert!(!constant_time_eq(b"ADMIN:pw", b"ADMIN:px"));
        assert!(!constant_time_eq(b"ADMIN:pw", b"ADMIN:pw2"));
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2-very-secret");
        let shown = format!("{secret:?} {secret} {:?}", Some(secret.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }
}
