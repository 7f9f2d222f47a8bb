//! The reconciler's lease: one document in the SODA collection that says which instance may run
//! a pass and until when, so passes never overlap across web-app instances.
//!
//! Taking it is a read, then a conditional write (`If-Match` on the etag just read): of several
//! instances that read the same version only one write succeeds, the others get 412 and skip
//! this round. The document is created once with `If-None-Match: *` (an insert that never
//! replaces). While a pass runs a thread renews the lease every third of its lifetime, again
//! with `If-Match`; the pass asks [`Lease::held`] between repairs and stops when the lease was
//! lost or is about to expire without renewal. A crashed holder renews nothing, so its lease
//! expires and the next instance takes it. Expiry compares wall clocks of different machines:
//! lifetimes are minutes, skews milliseconds. The document also records when the last pass
//! started, so the scheduled loop can skip a round another instance has just done.
//!
//! A renewal that fails (the database unreachable, or ORDS answering a write without the
//! version) is logged as an error and tried again at the next third; until one succeeds, the
//! failure is kept in [`Health`], which `/readyz` shows, so a reconciler that stops is never
//! silent. Where ORDS ignores the write conditions, the lease cannot keep instances apart: then
//! only the instance the configuration names runs the reconciler (`fallback.rs`).
//!
//! Not here: the pass itself (`reconcile.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::App;
use crate::error::{Error, Result};
use crate::soda::{document_key, Soda};

/// What this process's reconciler lease is going through, for `/readyz`.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// The last renewal failure not yet followed by a success.
    renewal_failure: Mutex<Option<String>>,
}

impl Health {
    /// `None` while renewals succeed (or none was needed); else the failure, in words.
    pub(crate) fn renewal_failure(&self) -> Option<String> {
        self.renewal_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self, failure: Option<String>) {
        *self
            .renewal_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = failure;
    }
}

/// The lease document's `kind`.
pub(crate) const KIND: &str = "reconciler-lease";

/// The lease document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    kind: String,
    /// `namespace/bucket` the lease is for.
    #[serde(default)]
    bucket: String,
    /// Who holds it; `None` when free.
    #[serde(default)]
    holder: Option<String>,
    /// Unix milliseconds after which it is free whatever `holder` says.
    #[serde(default)]
    expires_at_ms: u64,
    /// Unix milliseconds when the last pass started.
    #[serde(default)]
    pass_started_at_ms: u64,
}

/// What [`Lease::take`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Ours until released or lost.
    Held(Box<Lease>),
    /// Another instance holds it (or took it a moment before us).
    Busy { holder: String },
    /// A pass started `ago` before now, within the gap asked for.
    Recent { ago: Duration },
}

/// A held lease. Dropping it stops the renewal and frees the lease.
pub(crate) struct Lease {
    soda: Soda,
    key: String,
    state: State,
    ttl: Duration,
    shared: Arc<Shared>,
    health: Arc<Health>,
    renewer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({:?})", self.state.holder)
    }
}

/// What the renewal thread and the pass share.
#[derive(Debug)]
struct Shared {
    etag: Mutex<String>,
    expires_at_ms: AtomicU64,
    lost: AtomicBool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The lease document's key for `app`'s bucket (never a 64-hex analysis key).
pub(crate) fn key(app: &App) -> String {
    format!(
        "LEASE-{}",
        document_key(&app.bucket.namespace, &app.bucket.name, "reconciler")
    )
}

/// Who we are in the lease document: host, process and a random part (one per take).
fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= 64)
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}/{}/{}",
        std::process::id(),
        crate::random::hex::<4>()
    )
}

impl Lease {
    /// Tries to take the lease for `ttl`. With a non-zero `min_gap`, a pass that started less
    /// than that long ago (anywhere) makes this round [`Taken::Recent`].
    pub(crate) fn take(app: &App, ttl: Duration, min_gap: Duration) -> Result<Taken> {
        let soda = app.soda.clone();
        let key = key(app);
        let deadline = || Instant::now() + ttl.min(Duration::from_secs(20));
        let bucket = format!("{}/{}", app.bucket.namespace, app.bucket.name);
        // A missing document is created free, then read again; twice is plenty.
        for _ in 0..3 {
            let Some(doc) = soda.get(&key, deadline())? else {
                let free = State {
                    kind: KIND.into(),
                    bucket: bucket.clone(),
                    ..State::default()
                };
                soda.insert_if_absent(&key, &serde_json::to_value(&free)?, deadline())?;
                continue;
            };
            // Unreadable content is overwritten (conditionally, like any other state).
            let found: State = serde_json::from_value(doc.value).unwrap_or_default();
            let now = now_ms();
            if let Some(holder) = found.holder.filter(|_| found.expires_at_ms > now) {
                return Ok(Taken::Busy { holder });
            }
            let since_last = now.saturating_sub(found.pass_started_at_ms);
            if !min_gap.is_zero() && since_last < millis(min_gap) {
                return Ok(Taken::Recent {
                    ago: Duration::from_millis(since_last),
                });
            }
            let state = State {
                kind: KIND.into(),
                bucket,
                holder: Some(holder_id()),
                expires_at_ms: now + millis(ttl),
                pass_started_at_ms: now,
            };
            let written =
                soda.put_if_match(&key, &serde_json::to_value(&state)?, &doc.etag, deadline())?;
            return Ok(match written {
                Some(etag) => Taken::Held(Box::new(Lease {
                    shared: Arc::new(Shared {
                        etag: Mutex::new(etag),
                        expires_at_ms: AtomicU64::new(state.expires_at_ms),
                        lost: AtomicBool::new(false),
                    }),
                    soda,
                    key,
                    state,
                    ttl,
                    health: Arc::clone(&app.lease_health),
                    renewer: None,
                })),
                None => Taken::Busy {
                    holder: "an instance that wrote first".into(),
                },
            });
        }
        Err(Error::Config(format!(
            "the reconciler lease document {key} disappears as soon as it is created"
        )))
    }

    /// Who holds it (this process).
    pub(crate) fn holder(&self) -> &str {
        self.state.holder.as_deref().unwrap_or("")
    }

    /// True while the lease is ours with a margin before expiry: a pass stops when this is false.
    pub(crate) fn held(&self) -> bool {
        let margin = millis(self.ttl / 10);
        !self.shared.lost.load(Ordering::SeqCst)
            && now_ms() + margin < self.shared.expires_at_ms.load(Ordering::SeqCst)
    }

    /// Renews the lease on a background thread every third of its lifetime until dropped.
    pub(crate) fn keep_alive(&mut self) -> std::io::Result<()> {
        let (stop, stopped) = mpsc::channel::<()>();
        let soda = self.soda.clone();
        let key = self.key.clone();
        let state = self.state.clone();
        let shared = Arc::clone(&self.shared);
        let health = Arc::clone(&self.health);
        let ttl = self.ttl;
        let handle = std::thread::Builder::new()
            .name("reconcile-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(ttl / 3) {
                    if !renew(&soda, &key, &state, ttl, &shared, &health) {
                        break;
                    }
                }
            })?;
        self.renewer = Some((stop, handle));
        Ok(())
    }

    /// Frees the lease now (also done on drop).
    pub(crate) fn release(mut self) {
        self.free();
    }

    fn free(&mut self) {
        if let Some((stop, handle)) = self.renewer.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        if self.shared.lost.swap(true, Ordering::SeqCst) {
            return;
        }
        let free = State {
            holder: None,
            expires_at_ms: 0,
            ..self.state.clone()
        };
        let etag = self
            .shared
            .etag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let deadline = Instant::now() + self.ttl.min(Duration::from_secs(20));
        let freed = serde_json::to_value(&free)
            .map_err(Error::from)
            .and_then(|value| self.soda.put_if_match(&self.key, &value, &etag, deadline));
        match freed {
            Ok(Some(_)) => {}
            // Someone took it after it expired: nothing of ours to free.
            Ok(None) => {}
            Err(e) => {
                log::warn!(target: "webapp", "freeing the reconciler lease failed (it expires by itself): {e}")
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.free();
    }
}

/// One renewal; false once the lease is lost for good.
fn renew(
    soda: &Soda,
    key: &str,
    state: &State,
    ttl: Duration,
    shared: &Shared,
    health: &Health,
) -> bool {
    let expires_at_ms = now_ms() + millis(ttl);
    let renewed = State {
        expires_at_ms,
        ..state.clone()
    };
    let etag = shared
        .etag
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let deadline = Instant::now() + (ttl / 3).max(Duration::from_millis(200));
    let written = serde_json::to_value(&renewed)
        .map_err(Error::from)
        .and_then(|value| soda.put_if_match(key, &value, &etag, deadline));
    match written {
        Ok(Some(new_etag)) => {
            *shared.etag.lock().unwrap_or_else(|e| e.into_inner()) = new_etag;
            shared.expires_at_ms.store(expires_at_ms, Ordering::SeqCst);
            health.record(None);
            true
        }
        Ok(None) => {
            log::warn!(target: "webapp", "the reconciler lease was taken by another instance: this pass stops");
            shared.lost.store(true, Ordering::SeqCst);
            false
        }
        // The database may be back before expiry; `held` turns false if it is not.
        Err(e) => {
            log::error!(target: "webapp", "renewing the reconciler lease failed (tried again in {} s; the pass stops if the lease expires first): {e}", (ttl / 3).as_secs());
            health.record(Some(format!(
                "renewing the reconciler lease failed at {}: {e}",
                crate::timefmt::format(SystemTime::now(), crate::timefmt::Precision::Seconds)
            )));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::client::{Auth, RetryPolicy, Transport, TransportConfig};
    use crate::soda::{Password, SodaConfig};

    #[test]
    fn a_failed_renewal_is_kept_for_readyz_and_tried_again() {
        // A database that cannot be reached: connection refused on a closed local port.
        let transport = Transport::new(
            Auth::None,
            TransportConfig {
                retry: RetryPolicy {
                    max_attempts: 1,
                    ..RetryPolicy::default()
                },
                ..TransportConfig::default()
            },
        );
        let config = SodaConfig {
            base_url: "http://127.0.0.1:9/ords/".into(),
            schema: "admin".into(),
            collection: "C".into(),
            user: "ADMIN".into(),
            password: Password::Literal(crate::secret::Secret::new("x")),
        };
        let soda = Soda::connect(&transport, &config, None, Instant::now()).unwrap();
        let shared = Shared {
            etag: Mutex::new("E1".into()),
            expires_at_ms: AtomicU64::new(now_ms() + 60_000),
            lost: AtomicBool::new(false),
        };
        let health = Health::default();
        assert_eq!(health.renewal_failure(), None);
        let again = renew(
            &soda,
            "LEASE-K",
            &State::default(),
            Duration::from_secs(3),
            &shared,
            &health,
        );
        assert!(again, "a failed renewal is tried again at the next third");
        assert!(
            !shared.lost.load(Ordering::SeqCst),
            "not lost: only not renewed"
        );
        let failure = health.renewal_failure().expect("the failure is kept");
        assert!(
            failure.contains("renewing the reconciler lease failed"),
            "{failure}"
        );
    }
}
