//! `webapp doctor`'s probes of what the app assumes and no Oracle source confirms (issue 24;
//! docs/DEPLOY.md, "First step after apply", lists them): each tried from the deployed
//! configuration and reported on one line, "observed: … — app: …", with what the app does
//! about it (its fallback), failing only where the app has none or it is not configured yet.
//!
//! Everything written is the doctor's own and removed at the end: one `probe-…` document in the
//! collection, a scratch collection `OCIVISION_DOCTOR_…` (for index creation and the QBE forms),
//! a scratch image `doctor/probe-….png` (outside the event rule's `uploads/`) for the function's
//! self-test, and one `uploads/doctor-probe-….png` with its document for end-to-end delivery.
//! No person's image or document is read or written.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Check, Verdict};
use crate::config::CloudConfig;
use crate::oci::auth::{KeyProvider, ResourcePrincipalProvider};
use crate::oci::client::{Auth, Call, Transport};
use crate::oci::functions::{Functions, InvokeMode};
use crate::oci::object_storage::{Bucket, Condition, ObjectStorage};
use crate::oci::secrets::Secrets;
use crate::ords_probe;
use crate::pacer::{CONDITIONAL_WRITES, MAX_INSTANCES};
use crate::soda::{document_key, gallery_indexes, Soda, SodaConfig};

/// The image the probes store: the doctor's blank 32×32 PNG.
const PROBE_PNG: &[u8] = include_bytes!("../doctor-probe.png");
/// How long end-to-end delivery may take by default (`DOCTOR_DELIVERY_WAIT`, seconds).
const DELIVERY_WAIT: u64 = 120;

fn line(observed: &str, app: &str) -> String {
    format!("observed: {observed} — app: {app}")
}

fn pass(name: &'static str, observed: &str, app: &str) -> Check {
    Check {
        name,
        detail: line(observed, app),
        verdict: Verdict::Pass,
    }
}

fn fail(name: &'static str, observed: &str, fix: &str) -> Check {
    Check {
        name,
        detail: String::new(),
        verdict: Verdict::Fail {
            problem: format!("observed: {observed}"),
            fix: fix.to_string(),
        },
    }
}

fn skip(name: &'static str, why: &str) -> Check {
    Check {
        name,
        detail: String::new(),
        verdict: Verdict::Skip(why.to_string()),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

/// Every probe, in the order of docs/DEPLOY.md's table.
pub(crate) fn run(
    transport: &Transport,
    cloud: &CloudConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let secrets = Secrets::new(transport.clone(), &cloud.secrets_url);
    match Soda::connect(transport, &cloud.soda, Some(&secrets), soon()) {
        Ok(soda) => {
            checks.extend(conditional_writes(&soda, lookup));
            checks.extend(indexes_and_queries(transport, &cloud.soda, &secrets));
        }
        Err(e) => checks.push(skip(
            "SODA conditional writes",
            &format!("no database client: {e}"),
        )),
    }
    checks.push(resource_principal(lookup));
    let storage = ObjectStorage::new(transport.clone(), &cloud.object_storage_url);
    let namespace = match &cloud.namespace {
        Some(ns) => Ok(ns.clone()),
        None => storage.namespace(soon()),
    };
    match namespace {
        Ok(namespace) => {
            let bucket = Bucket {
                namespace,
                name: cloud.bucket.clone(),
            };
            checks.push(vision_as_the_function(transport, &storage, &bucket, lookup));
            checks.push(delivery(
                transport, cloud, &storage, &bucket, &secrets, lookup,
            ));
        }
        Err(e) => checks.push(skip(
            "Vision reads OBJECT_STORAGE as the function",
            &format!("no namespace: {e}"),
        )),
    }
    checks.extend(app_secrets(&secrets, lookup));
    checks.push(load_balancer(transport, lookup));
    checks
}

/// `If-None-Match: *`, a stale and the current `If-Match`, and the `ETag` on `PUT`.
fn conditional_writes(soda: &Soda, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    let probe = match ords_probe::conditional_writes(soda, soon()) {
        Ok(probe) => probe,
        Err(e) => {
            return vec![fail(
                "SODA conditional writes",
                &format!("the probe document could not be written: {e}"),
                "see the ORDS and collection checks above",
            )]
        }
    };
    let configured_off =
        lookup(CONDITIONAL_WRITES).is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
    let ignored_fix = format!(
        "ORDS ignores write conditions, so the shared Vision pacer over-issues and two web \
         instances can both hold the reconciler lease: set {CONDITIONAL_WRITES}=off and \
         {MAX_INSTANCES} on the function, and RECONCILER_DESIGNATED=true on one web instance \
         only (Terraform: ords_conditional_writes = false), then apply"
    );
    let condition = |name: &'static str, refused: bool, honoured: &str| {
        if refused {
            pass(name, honoured, "relies on it (pacer slots, lease)")
        } else if configured_off {
            pass(
                name,
                "ignored",
                &format!(
                    "{CONDITIONAL_WRITES}=off: pacing per instance, one designated reconciler"
                ),
            )
        } else {
            fail(name, "ignored (the write was stored)", &ignored_fix)
        }
    };
    vec![
        condition(
            "SODA If-None-Match: * on an existing document",
            probe.if_none_match_refused,
            "412",
        ),
        condition("SODA stale If-Match", probe.stale_if_match_refused, "412"),
        condition(
            "SODA current If-Match",
            probe.current_if_match_accepted,
            "accepted",
        ),
        if probe.put_etag {
            pass(
                "SODA ETag header on PUT",
                "present",
                "takes the new version from it",
            )
        } else {
            pass(
                "SODA ETag header on PUT",
                "absent",
                "reads each conditional write's version back from the document (one more GET)",
            )
        },
    ]
}

/// The gallery's indexes and each QBE form the app sends, on a scratch collection.
fn indexes_and_queries(
    transport: &Transport,
    config: &SodaConfig,
    secrets: &Secrets,
) -> Vec<Check> {
    let scratch = SodaConfig {
        collection: format!(
            "OCIVISION_DOCTOR_{}",
            crate::random::hex::<4>().to_uppercase()
        ),
        ..config.clone()
    };
    let soda = match Soda::connect(transport, &scratch, Some(secrets), soon()) {
        Ok(soda) => soda,
        Err(e) => return vec![skip("SODA index creation", &e.to_string())],
    };
    if let Err(e) = soda.ensure_collection(soon()) {
        return vec![fail(
            "SODA index creation",
            &format!(
                "the scratch collection {} could not be created: {e}",
                scratch.collection
            ),
            "the app creates its collection the same way: see the collection check above",
        )];
    }
    let mut checks = vec![indexes(&soda)];
    checks.extend(queries(&soda));
    if let Err(e) = soda.drop_collection(soon()) {
        log::warn!(target: "doctor", "the scratch collection {} was not dropped: {e}", scratch.collection);
    }
    checks
}

fn indexes(soda: &Soda) -> Check {
    const NAME: &str = "SODA index creation (as the app sends it)";
    let [listing, terms, search] = gallery_indexes();
    let outcome = |spec: &Value| match soda.create_index(spec, soon()) {
        Ok(()) => "created".to_string(),
        Err(e) => format!("refused ({e})"),
    };
    let listed = outcome(&listing);
    let mut observed = format!("listing index {listed}");
    let multivalue = outcome(&terms);
    observed.push_str(&format!("; multivalue index on terms {multivalue}"));
    let search_ok = if multivalue == "created" {
        true
    } else {
        let searched = outcome(&search);
        observed.push_str(&format!("; search index {searched}"));
        searched == "created"
    };
    if listed == "created" && search_ok {
        pass(
            NAME,
            &observed,
            "creates the same at start (multivalue, else search index)",
        )
    } else {
        pass(
            NAME,
            &observed,
            "starts all the same; gallery queries scan the collection (slower with many images)",
        )
    }
}

/// The QBE forms of the gallery (by upload, by date taken, by label), the duplicate check, the
/// reconciler and delete-with-undo.
fn queries(soda: &Soda) -> Vec<Check> {
    let docs = [
        (
            "A",
            json!({"bucket_name": "b", "status": "done", "sha256": "s1", "terms": ["dog", "animal"],
                     "uploaded_at": "2026-01-02T00:00:00.000Z", "image_name": "uploads/a",
                     "taken_local": "2025-06-14T18:03:09"}),
        ),
        (
            "B",
            json!({"bucket_name": "b", "status": "pending", "sha256": "s2", "terms": [],
                     "uploaded_at": "2026-01-03T00:00:00.000Z", "image_name": "uploads/b"}),
        ),
        (
            "C",
            json!({"kind": "trash", "bucket": "ns/b", "batch": "x"}),
        ),
    ];
    for (key, value) in &docs {
        if let Err(e) = soda.put(key, value, soon()) {
            return vec![fail(
                "SODA QBE forms",
                &format!("scratch document not written: {e}"),
                "see the ORDS checks above",
            )];
        }
    }
    let order = json!({"uploaded_at": -1, "image_name": 2});
    let forms: [(&'static str, Value, &[&str], &str); 7] = [
        (
            "SODA QBE: equality (reconciler)",
            json!({"bucket_name": "b"}),
            &["A", "B"],
            "set",
        ),
        (
            "SODA QBE: two fields (duplicate check)",
            json!({"sha256": "s1", "bucket_name": "b"}),
            &["A"],
            "set",
        ),
        (
            "SODA QBE: $query with $orderby (gallery)",
            json!({"$query": {"bucket_name": "b"}, "$orderby": order}),
            &["B", "A"],
            "order",
        ),
        (
            "SODA QBE: array element equality (label search)",
            json!({"$query": {"bucket_name": "b", "terms": "dog"}, "$orderby": order}),
            &["A"],
            "order",
        ),
        (
            "SODA QBE: $exists with $orderby (gallery by date taken)",
            json!({"$query": {"bucket_name": "b", "taken_local": {"$exists": true}},
                   "$orderby": {"taken_local": -1, "image_name": 2}}),
            &["A"],
            "order",
        ),
        (
            "SODA QBE: $id list (gallery badges)",
            json!({"$id": ["A", "B"]}),
            &["A", "B"],
            "set",
        ),
        (
            "SODA QBE: marker fields (delete with undo)",
            json!({"kind": "trash", "bucket": "ns/b", "batch": "x"}),
            &["C"],
            "set",
        ),
    ];
    forms
        .into_iter()
        .map(|(name, filter, expected, how)| {
            let found = soda
                .query_page(&filter, 100, 0, soon())
                .map(|(docs, _)| docs.into_iter().map(|d| d.key).collect::<Vec<_>>());
            match found {
                Ok(mut keys) => {
                    if how == "set" {
                        keys.sort();
                    }
                    if keys == expected {
                        pass(name, &format!("{keys:?} as expected"), "sends this form")
                    } else {
                        fail(
                            name,
                            &format!("{keys:?}, expected {expected:?}"),
                            "this ORDS answers the app's query differently: report it with the \
                             ORDS version (the gallery or reconciler would be wrong)",
                        )
                    }
                }
                Err(e) => fail(
                    name,
                    &format!("refused: {e}"),
                    "this ORDS does not take the app's query form: report it with the ORDS version",
                ),
            }
        })
        .collect()
}

/// The resource principal's version, a forced renewal, and a signed call after it.
fn resource_principal(lookup: &dyn Fn(&str) -> Option<String>) -> Check {
    const NAME: &str = "resource principal version and token renewal";
    if lookup("OCI_RESOURCE_PRINCIPAL_VERSION").is_none() {
        return skip(
            NAME,
            "no resource principal here (an API key or session token signs)",
        );
    }
    let provider =
        match ResourcePrincipalProvider::from_env(lookup) {
            Ok(p) => p,
            Err(e) => return fail(
                NAME,
                &e.to_string(),
                "the platform's OCI_RESOURCE_PRINCIPAL_* variables are incomplete; versions 2.2, \
                 2.1, 2.1.1 and 2.1.2 are supported",
            ),
        };
    let before = provider.claims().exp;
    match provider.refresh().and_then(|()| provider.credentials()) {
        Ok(_) => pass(
            NAME,
            &format!(
                "version {}, renewed on demand (token expiry {} → {})",
                provider.version(),
                before,
                provider.claims().exp
            ),
            "renews 5 minutes before expiry and after a 401",
        ),
        Err(e) => fail(
            NAME,
            &format!("version {}, renewal failed: {e}", provider.version()),
            "the app would stop signing when its token expires: check the token exchange \
             endpoints (2.1.x) or the token files (2.2)",
        ),
    }
}

/// The function, invoked with a self-test, reads a scratch image and has Vision read it.
fn vision_as_the_function(
    transport: &Transport,
    storage: &ObjectStorage,
    bucket: &Bucket,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Check {
    const NAME: &str = "Vision reads an OBJECT_STORAGE image as the function";
    let (Some(function_id), Some(endpoint)) =
        (lookup("FUNCTION_ID"), lookup("FUNCTION_INVOKE_ENDPOINT"))
    else {
        return skip(NAME, "FUNCTION_ID or FUNCTION_INVOKE_ENDPOINT is not set");
    };
    let object = format!("doctor/probe-{}.png", crate::random::hex::<6>());
    if let Err(e) = put_probe(storage, bucket, &object) {
        return fail(
            NAME,
            &format!("the scratch image was not stored: {e}"),
            "see bucket access above",
        );
    }
    let body = json!({crate::selftest::KEY: {"namespace": bucket.namespace, "bucket": bucket.name, "object": object}});
    let answer = Functions::new(transport.clone(), endpoint).invoke(
        &function_id,
        &serde_json::to_vec(&body).unwrap_or_default(),
        InvokeMode::Sync,
        64 * 1024,
        Instant::now() + Duration::from_secs(60),
    );
    let _ = storage.delete(bucket, &object, Condition::None, soon());
    let answer: Value = match answer.map(|b| serde_json::from_slice::<Value>(&b)) {
        Ok(Ok(v)) if v["self_test"] == json!(1) => v,
        Ok(_) => {
            return fail(
                NAME,
                "the function did not answer the self-test",
                "deploy a function image of this version (the self-test came with it)",
            )
        }
        Err(e) => {
            return fail(
                NAME,
                &format!("invoke failed: {e}"),
                "see the function check above",
            )
        }
    };
    let principal = answer["principal"]["resource_principal_version"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    let read = &answer["object_read"];
    let vision = &answer["vision_object_storage"];
    if vision["ok"] == json!(true) {
        return pass(
            NAME,
            &format!("resource principal {principal}; object read ok; analyzeImage ok"),
            "sends OBJECT_STORAGE sources",
        );
    }
    let inline = if answer["vision_inline"]["ok"] == json!(true) {
        "the same image sent inline is analysed"
    } else {
        "inline also refused"
    };
    fail(
        NAME,
        &format!(
            "resource principal {principal}; object read {}; analyzeImage refused ({} {}); {inline}",
            if read["ok"] == json!(true) { "ok" } else { "refused" },
            vision["status"],
            vision["code"].as_str().unwrap_or("")
        ),
        "Vision reads the object with the function's rights and wants more than the bucket-scoped \
         `read objects`: add `Allow dynamic-group <function dg> to read objects in compartment id \
         <compartment>` (no bucket condition), or `use object-family`, as Oracle's Vision policy \
         page asks (Terraform: vision_broad_object_read = true)",
    )
}

fn put_probe(storage: &ObjectStorage, bucket: &Bucket, name: &str) -> crate::Result<String> {
    storage.put(
        bucket,
        name,
        &mut std::io::Cursor::new(PROBE_PNG),
        PROBE_PNG.len() as u64,
        "image/png",
        &[],
        Condition::Absent,
        soon(),
    )
}

/// A scratch object under `uploads/` whose document the function writes; both removed.
fn delivery(
    transport: &Transport,
    cloud: &CloudConfig,
    storage: &ObjectStorage,
    bucket: &Bucket,
    secrets: &Secrets,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Check {
    const NAME: &str = "end-to-end delivery (object → event → function → document)";
    let soda = match Soda::connect(transport, &cloud.soda, Some(secrets), soon()) {
        Ok(soda) => soda,
        Err(e) => return skip(NAME, &format!("no database client: {e}")),
    };
    let wait = crate::config::number(lookup, "DOCTOR_DELIVERY_WAIT", DELIVERY_WAIT)
        .unwrap_or(DELIVERY_WAIT);
    let object = format!("uploads/doctor-probe-{}.png", crate::random::hex::<6>());
    let key = document_key(&bucket.namespace, &bucket.name, &object);
    let started = Instant::now();
    if let Err(e) = put_probe(storage, bucket, &object) {
        return fail(
            NAME,
            &format!("the scratch image was not stored: {e}"),
            "see bucket access above",
        );
    }
    let mut found = None;
    while started.elapsed() < Duration::from_secs(wait) {
        match soda.get(&key, soon()) {
            Ok(Some(doc)) if doc.value["status"] != json!("pending") => {
                found = Some(doc.value["status"].as_str().unwrap_or("?").to_string());
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    let took = started.elapsed();
    let _ = storage.delete(bucket, &object, Condition::None, soon());
    // The delete event makes the function remove the document too; this is in case it lags.
    let _ = soda.delete(&key, soon());
    match found {
        Some(status) => pass(
            NAME,
            &format!(
                "document {status} after {:.1} s; object and document removed",
                took.as_secs_f64()
            ),
            "relies on object events reaching the function",
        ),
        None => fail(
            NAME,
            &format!("no document within {wait} s (object removed)"),
            "check the bucket's object events, the Events rule (uploads/*) and its policy \
             (`Allow service cloudEvents to use functions-family`), and the function's log",
        ),
    }
}

/// The web app's own secrets (the database password is checked above).
fn app_secrets(secrets: &Secrets, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    [
        (
            "secret: APP_PASSWORD_SECRET_OCID",
            "APP_PASSWORD_SECRET_OCID",
            1,
        ),
        (
            "secret: SESSION_SECRET_OCID",
            "SESSION_SECRET_OCID",
            crate::web::MIN_SESSION_SECRET,
        ),
    ]
    .into_iter()
    .map(|(name, var, min)| {
        let Some(id) = lookup(var).filter(|v| !v.trim().is_empty()) else {
            return skip(name, &format!("{var} is not set"));
        };
        match secrets.by_id(id.trim(), soon()) {
            Ok(secret) if secret.expose().len() >= min => pass(
                name,
                &format!("readable, {} characters", secret.expose().len()),
                "reads it at start",
            ),
            Ok(secret) => fail(
                name,
                &format!("{} characters", secret.expose().len()),
                &format!("the app refuses fewer than {min}: put a longer value in the secret"),
            ),
            Err(e) => fail(
                name,
                &e.to_string(),
                "a policy must let the web app's dynamic group read secret-bundles for this secret",
            ),
        }
    })
    .collect()
}

/// `GET /healthz` through the load balancer (`PUBLIC_ORIGIN`).
fn load_balancer(transport: &Transport, lookup: &dyn Fn(&str) -> Option<String>) -> Check {
    const NAME: &str = "load balancer's view of /healthz";
    let Some(origin) = lookup("PUBLIC_ORIGIN")
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
    else {
        return skip(
            NAME,
            "PUBLIC_ORIGIN is not set (terraform output application_url)",
        );
    };
    let plain = transport.with_auth(Auth::None);
    let call = Call::new("loadbalancer", "GET", &origin, "/healthz".into(), soon());
    match plain.send(call) {
        Ok(reply) => pass(
            NAME,
            &format!("{} from {origin}/healthz", reply.status()),
            "the load balancer's health check uses the same path",
        ),
        Err(e) => fail(
            NAME,
            &e.to_string(),
            "check the listener, the backend set's health (every backend 200 on /healthz) and the \
             security lists",
        ),
    }
}
