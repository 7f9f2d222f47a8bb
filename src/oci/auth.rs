//! STUB (replaced by the credentials work): who signs.

use std::sync::Arc;

use crate::oci::sign::PrivateKey;
use crate::Result;

/// A key id and the key that goes with it, read together so they always match.
#[derive(Clone)]
pub struct Credentials {
    /// `tenancy/user/fingerprint` or `ST$<token>`.
    pub key_id: String,
    /// The private key.
    pub key: Arc<PrivateKey>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// Supplies credentials for signing.
pub trait KeyProvider: Send + Sync {
    /// Current credentials, refreshed first when close to expiry.
    fn credentials(&self) -> Result<Credentials>;
    /// Forces a re-read after a 401 (no-op for static keys).
    fn refresh(&self) -> Result<()> {
        Ok(())
    }
    /// The region this provider belongs to, when it knows one.
    fn region(&self) -> Option<String> {
        None
    }
}
