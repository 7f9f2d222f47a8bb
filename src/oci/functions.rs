//! Functions invoke (API 20181201): call a function by OCID on its invoke endpoint.
//!
//! The web app uses it to re-analyse an image. The invoke endpoint is per function (the
//! `invokeEndpoint` of the function resource); looking it up through the management API is left
//! to configuration.

use std::time::Instant;

use crate::error::Result;
use crate::oci::client::{Call, Transport};
use crate::oci::encode;

const SERVICE: &str = "functions";

/// How the service should run the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeMode {
    /// Wait for the function's answer.
    Sync,
    /// Return at once (202); the function runs on its own.
    Detached,
}

/// A Functions invoke client bound to one function's invoke endpoint.
#[derive(Debug, Clone)]
pub struct Functions {
    transport: Transport,
    origin: String,
}

impl Functions {
    /// A client for the invoke endpoint `origin` (or the emulator).
    pub fn new(transport: Transport, origin: impl Into<String>) -> Functions {
        Functions {
            transport,
            origin: origin.into().trim_end_matches('/').to_string(),
        }
    }

    /// Invokes `function_id` with a JSON `body`; returns the function's answer (at most
    /// `limit` bytes; empty when detached).
    pub fn invoke(
        &self,
        function_id: &str,
        body: &[u8],
        mode: InvokeMode,
        limit: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>> {
        let path = format!(
            "/20181201/functions/{}/actions/invoke",
            encode::component(function_id)
        );
        // Not retried once sent: the function may have run (Oracle's SDKs do not retry invoke).
        let mut call = Call::new(SERVICE, "POST", &self.origin, path, deadline)
            .with_json(body)
            .not_idempotent();
        if mode == InvokeMode::Detached {
            call.headers
                .push(("fn-invoke-type".to_string(), "detached".to_string()));
        }
        self.transport.send(call)?.bytes(limit)
    }
}
