//! The reconciler: makes objects and documents agree again after lost events, a database
//! outage during upload, a crashed function or a half-finished delete.
//!
//! Three repairs, each left alone while younger than the grace period (an upload writes its
//! document a moment before the object): a document whose object is gone (or never came: an
//! upload whose object PUT failed and whose document could not be removed) is removed; an
//! object without a document gets a `pending` one (and an analysis when a function is
//! configured); a document stuck in `analyzing` or `pending` past `stuck_after` is analysed
//! again when a function is configured (at most three attempts), else marked `failed`; and a
//! document `failed` only because Vision was throttled or unavailable (the function's retries
//! ran out) is analysed again when a function is configured (at most three attempts); a
//! document `waiting` (the function deferred it at Vision's rate limit, docs/SCALING.md) whose
//! `next_attempt` has come is analysed again, earliest first, at most [`DRIP_PER_PASS`] a pass
//! spaced [`DRIP_SPACING`] apart (the function paces Vision itself; this only keeps the drip
//! from fanning out faster than Vision can take it), with no limit on deferrals. Beside
//! those: an image without its thumbnail or preview gets them made again, a rendition whose
//! image is gone is deleted, and a `done` document without the `terms` a label search matches
//! (written before they existed) gets them. It runs as `webapp reconcile` or periodically inside
//! the server; either way a pass runs only while it holds the reconciler lease (`lease.rs`), so
//! several web-app instances never run passes at once, and a pass stops between repairs if the
//! lease is lost. A pass costs one ListObjects per 1,000 objects, one SODA query page per 100
//! documents, one lease read and two lease writes (plus one renewal per third of the lease's
//! lifetime), and the repairs themselves. Not here: other objects outside `uploads/` (the app
//! never shows them) and documents of other buckets.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::catalog;
use super::lease::{Lease, Taken};
use super::renditions;
use super::App;
use crate::document::{self, AnalysisDocument, Failure, Status};
use crate::document::{id_of, id_of_rendition, object_name, preview_name, thumb_name};
use crate::document::{PREVIEW_PREFIX, THUMB_PREFIX, UPLOAD_PREFIX};
use crate::error::Result;
use crate::oci::object_storage::{Condition, ListOptions};

/// Attempts after which a stuck analysis is given up.
const MAX_ATTEMPTS: u32 = 3;

/// Most `waiting` images one pass sends to the function again.
const DRIP_PER_PASS: usize = 600;

/// The pause between two of those invocations: Vision's 10 requests a second, so the drip
/// never asks for more than Vision can take.
const DRIP_SPACING: Duration = Duration::from_millis(100);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Object names whose orphaned documents were removed.
    pub removed_documents: Vec<String>,
    /// Object names that got a `pending` document.
    pub created_documents: Vec<String>,
    /// Object names sent to the function.
    pub invoked: Vec<String>,
    /// Object names whose stuck analysis was marked `failed`.
    pub failed_stuck: Vec<String>,
    /// Object names whose missing thumbnail or preview was made again.
    pub created_renditions: Vec<String>,
    /// Renditions deleted because their image is gone.
    pub removed_renditions: Vec<String>,
    /// Object names whose document got its search `terms`.
    pub added_terms: Vec<String>,
    /// Repairs that could not be made, in words.
    pub errors: Vec<String>,
    /// Why no pass ran (another instance holds the lease, or has just run one); `None` when
    /// this was a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Why a pass stopped early.
const LEASE_LOST: &str = "the reconciler lease was lost (renewal failed or another instance \
took it after expiry): the pass stopped; the next one finishes the work";

fn older_than(timestamp: &str, age: Duration) -> bool {
    if age.is_zero() {
        return true;
    }
    match document::parse_time(timestamp) {
        Some(t) => SystemTime::now()
            .duration_since(t)
            .is_ok_and(|elapsed| elapsed >= age),
        // No readable time: old enough, or it would never be repaired.
        None => true,
    }
}

/// One full pass over the bucket and the collection, unless another instance is running one
/// (then the report says so in `skipped`).
pub fn reconcile(app: &App) -> Result<ReconcileReport> {
    leased_pass(app, Duration::ZERO)
}

/// Takes the lease (skipping when a pass started less than `min_gap` ago), runs a pass while
/// renewing it, and frees it.
fn leased_pass(app: &App, min_gap: Duration) -> Result<ReconcileReport> {
    let mut lease = match Lease::take(app, app.settings.reconcile_lease, min_gap)? {
        Taken::Held(lease) => lease,
        Taken::Busy { holder } => {
            return Ok(ReconcileReport {
                skipped: Some(format!(
                    "another instance is running a pass (lease held by {holder})"
                )),
                ..ReconcileReport::default()
            })
        }
        Taken::Recent { ago } => {
            return Ok(ReconcileReport {
                skipped: Some(format!("a pass started {} s ago", ago.as_secs())),
                ..ReconcileReport::default()
            })
        }
    };
    log::debug!(target: "webapp", "reconciler lease taken by {}", lease.holder());
    lease.keep_alive()?;
    let report = pass(app, &lease);
    lease.release();
    report
}

/// The pass itself; stops between repairs when `lease` is no longer held.
fn pass(app: &App, lease: &Lease) -> Result<ReconcileReport> {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let grace = app.settings.reconcile_grace;
    let mut report = ReconcileReport::default();

    let mut objects: HashMap<String, Option<String>> = HashMap::new();
    let options = ListOptions {
        prefix: Some(UPLOAD_PREFIX.into()),
        fields: Some("name,timeCreated".into()),
        ..ListOptions::default()
    };
    for object in app.storage.list(&app.bucket, options, deadline) {
        let object = object?;
        objects.insert(object.name, object.time_created);
    }
    if !lease.held() {
        report.errors.push(LEASE_LOST.into());
        return Ok(report);
    }

    let mut documented = HashSet::new();
    let mut due: Vec<(String, String)> = Vec::new();
    let mut docs = Vec::new();
    for doc in app.soda.query(
        &serde_json::json!({"bucket_name": app.bucket.name}),
        deadline,
    )? {
        let doc = doc?;
        match AnalysisDocument::from_json(doc.value) {
            Ok(d) if d.namespace == app.bucket.namespace => docs.push((doc.key, d)),
            Ok(_) => {}
            Err(e) => report
                .errors
                .push(format!("document {} unreadable: {e}", doc.key)),
        }
    }

    for (key, mut doc) in docs {
        if !lease.held() {
            report.errors.push(LEASE_LOST.into());
            return Ok(report);
        }
        documented.insert(doc.image_name.clone());
        if doc.status == Status::Done && doc.terms != doc.search_terms() {
            doc.terms = doc.search_terms();
            match app.soda.put(&key, &doc.to_json(), deadline) {
                Ok(_) => report.added_terms.push(doc.image_name.clone()),
                Err(e) => report
                    .errors
                    .push(format!("{}: terms: {e}", doc.image_name)),
            }
        }
        if !objects.contains_key(&doc.image_name) {
            if !older_than(&doc.updated_at, grace) || !doc.image_name.starts_with(UPLOAD_PREFIX) {
                continue;
            }
            match app.soda.delete(&key, deadline) {
                Ok(_) => report.removed_documents.push(doc.image_name),
                Err(e) => report.errors.push(format!("{}: {e}", doc.image_name)),
            }
            continue;
        }
        // `pending` counts too: the object's event may have been lost, or the function may
        // have failed before writing `analyzing`. (The upload writes its `pending` before the
        // object, so it can no longer land on top of a `done`; see upload.rs.)
        let unfinished = matches!(doc.status, Status::Analyzing | Status::Pending);
        if doc.status == Status::Waiting {
            // Deferred at Vision's rate limit: not stuck and not failed, only waiting its turn.
            let at = doc.next_attempt.clone().unwrap_or_default();
            if older_than(&at, Duration::from_millis(1)) && app.invoker.is_some() {
                due.push((at, doc.image_name.clone()));
            }
        } else if unfinished && older_than(&doc.updated_at, app.settings.stuck_after) {
            repair_stuck(app, &key, doc, &mut report, deadline);
        } else if failed_for_now(&doc)
            && doc.attempts < MAX_ATTEMPTS
            && app.invoker.is_some()
            && older_than(&doc.updated_at, grace)
        {
            if let Some(id) = id_of(&doc.image_name) {
                match catalog::reanalyze(app, id) {
                    Ok(()) => report.invoked.push(doc.image_name.clone()),
                    Err(e) => report
                        .errors
                        .push(format!("{}: analysis not requested: {e}", doc.image_name)),
                }
            }
        }
    }

    if !drip(app, lease, due, &mut report) {
        return Ok(report);
    }

    for (name, created) in &objects {
        if documented.contains(name) {
            continue;
        }
        if !lease.held() {
            report.errors.push(LEASE_LOST.into());
            return Ok(report);
        }
        if !created.as_deref().is_none_or(|c| older_than(c, grace)) {
            continue;
        }
        let Some(id) = id_of(name) else { continue };
        let info = match app.storage.head(&app.bucket, name, deadline) {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(e) => {
                report.errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        let doc = AnalysisDocument::from_object(&app.bucket, name, &info, SystemTime::now());
        if let Err(e) = app
            .soda
            .put(&catalog::key_of(app, id), &doc.to_json(), deadline)
        {
            report.errors.push(format!("{name}: {e}"));
            continue;
        }
        report.created_documents.push(name.clone());
        if app.invoker.is_some() {
            match catalog::reanalyze(app, id) {
                Ok(()) => report.invoked.push(name.clone()),
                Err(e) => report
                    .errors
                    .push(format!("{name}: analysis not requested: {e}")),
            }
        }
    }
    repair_renditions(app, &objects, &mut report, deadline)?;
    report.removed_documents.sort();
    report.created_documents.sort();
    report.invoked.sort();
    Ok(report)
}

/// Sends due `waiting` images (`(next_attempt, name)`) to the function again, earliest first,
/// at most [`DRIP_PER_PASS`], [`DRIP_SPACING`] apart; `false` when the lease was lost.
fn drip(
    app: &App,
    lease: &Lease,
    mut due: Vec<(String, String)>,
    report: &mut ReconcileReport,
) -> bool {
    due.sort();
    for (i, (_, name)) in due.into_iter().take(DRIP_PER_PASS).enumerate() {
        if !lease.held() {
            report.errors.push(LEASE_LOST.into());
            return false;
        }
        if i > 0 {
            std::thread::sleep(DRIP_SPACING);
        }
        let Some(id) = id_of(&name) else { continue };
        match catalog::reanalyze(app, id) {
            Ok(()) => report.invoked.push(name),
            Err(e) => report
                .errors
                .push(format!("{name}: analysis not requested: {e}")),
        }
    }
    true
}

/// Makes the thumbnails and previews images lack, and deletes those whose image is gone.
fn repair_renditions(
    app: &App,
    objects: &HashMap<String, Option<String>>,
    report: &mut ReconcileReport,
    deadline: std::time::Instant,
) -> Result<()> {
    let grace = app.settings.reconcile_grace;
    let mut stored: HashMap<String, Option<String>> = HashMap::new();
    for prefix in [THUMB_PREFIX, PREVIEW_PREFIX] {
        let options = ListOptions {
            prefix: Some(prefix.into()),
            fields: Some("name,timeCreated".into()),
            ..ListOptions::default()
        };
        for object in app.storage.list(&app.bucket, options, deadline) {
            let object = object?;
            stored.insert(object.name, object.time_created);
        }
    }
    for (name, created) in &stored {
        let orphan = id_of_rendition(name).is_none_or(|id| !objects.contains_key(&object_name(id)));
        if !orphan || !created.as_deref().is_none_or(|c| older_than(c, grace)) {
            continue;
        }
        match app
            .storage
            .delete(&app.bucket, name, Condition::None, deadline)
        {
            Ok(_) => report.removed_renditions.push(name.clone()),
            Err(e) => report.errors.push(format!("{name}: {e}")),
        }
    }
    for (name, created) in objects {
        let Some(id) = id_of(name) else { continue };
        let complete =
            stored.contains_key(&thumb_name(id)) && stored.contains_key(&preview_name(id));
        if complete || !created.as_deref().is_none_or(|c| older_than(c, grace)) {
            continue;
        }
        match renditions::remake(app, id, deadline) {
            Ok(true) => report.created_renditions.push(name.clone()),
            Ok(false) => {}
            Err(e) => report.errors.push(format!("{name}: renditions: {e}")),
        }
    }
    report.created_renditions.sort();
    report.removed_renditions.sort();
    Ok(())
}

/// A `failed` document whose cause may have passed: Vision throttling (429) or a server-side
/// error (5xx, or Vision unreachable) that outlasted the function's retries. A refused file or
/// a 4xx stays failed: analysing it again would fail the same way.
fn failed_for_now(doc: &AnalysisDocument) -> bool {
    if doc.status != Status::Failed {
        return false;
    }
    let Some(error) = &doc.error else {
        return false;
    };
    matches!(
        error.code.as_str(),
        "TooManyRequests"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "BadGateway"
            | "GatewayTimeout"
            | "VisionUnavailable"
            | "Http429"
    ) || error.code.starts_with("Http5")
}

fn repair_stuck(
    app: &App,
    key: &str,
    mut doc: AnalysisDocument,
    report: &mut ReconcileReport,
    deadline: std::time::Instant,
) {
    let name = doc.image_name.clone();
    if app.invoker.is_some() && doc.attempts < MAX_ATTEMPTS {
        if let Some(id) = id_of(&name) {
            match catalog::reanalyze(app, id) {
                Ok(()) => report.invoked.push(name),
                Err(e) => report
                    .errors
                    .push(format!("{name}: analysis not requested: {e}")),
            }
            return;
        }
    }
    doc.status = Status::Failed;
    doc.error = Some(Failure {
        code: "Stuck".into(),
        message: format!(
            "the analysis did not finish within {} minutes",
            app.settings.stuck_after.as_secs() / 60
        ),
    });
    doc.updated_at = document::now();
    match app.soda.put(key, &doc.to_json(), deadline) {
        Ok(_) => report.failed_stuck.push(name),
        Err(e) => report.errors.push(format!("{name}: {e}")),
    }
}

/// Runs a leased pass about every `interval` on a background thread, logging each report. The
/// first comes after a random part of the interval (instances started together do not all try
/// at once); a round is skipped when any instance started a pass less than half an interval
/// ago, so N instances still make about one pass per interval.
pub fn spawn_reconciler(app: Arc<App>, interval: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reconciler".into())
        .spawn(move || {
            std::thread::sleep(interval.mul_f64(0.5 + crate::random::unit() / 2.0));
            loop {
                match leased_pass(&app, interval / 2) {
                    Ok(ReconcileReport {
                        skipped: Some(why), ..
                    }) => log::debug!(target: "webapp", "reconcile skipped: {why}"),
                    Ok(r) => log::info!(
                        target: "webapp",
                        "reconcile: {} documents removed, {} created, {} analyses requested, {} stuck marked failed, {} renditions made, {} removed, {} errors",
                        r.removed_documents.len(),
                        r.created_documents.len(),
                        r.invoked.len(),
                        r.failed_stuck.len(),
                        r.created_renditions.len(),
                        r.removed_renditions.len(),
                        r.errors.len()
                    ),
                    Err(e) => log::warn!(target: "webapp", "reconcile failed: {e}"),
                }
                std::thread::sleep(interval);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_read_from_either_time_format() {
        assert!(older_than("2020-01-01T00:00:00Z", Duration::from_secs(60)));
        assert!(older_than(
            "Wed, 01 Jan 2020 00:00:00 GMT",
            Duration::from_secs(60)
        ));
        assert!(!older_than(&document::now(), Duration::from_secs(60)));
        assert!(older_than(&document::now(), Duration::ZERO));
        assert!(older_than("garbage", Duration::from_secs(60)));
    }
}
