//! The web app against the emulator: every route through `Request::fake`, uploads (good and
//! hostile) over loopback, the upload's document-before-object order and its undoing when the
//! object cannot be stored, CSRF and the password gate, escaping, delete, re-analysis, the
//! reconciler's three repairs, paging with one listing and one query per page, and the curl
//! examples of docs/API.md and of README.md's JSON API section run as written.

use std::time::Duration;

use ocivision::document::{AnalysisDocument, Status};
use ocivision::emulator::faults::{FaultPlan, Faults, Service};
use ocivision::oci::object_storage::Condition;
use ocivision::secret::Secret;
use ocivision::web::Settings;
use serde_json::json;

use crate::support::emulator::deadline;
use crate::support::web::{body_text, multipart, token_in, Web, MULTIPART};
use crate::support::{wait_until, Reply};

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");
const CAT: &[u8] = include_bytes!("../fixtures/photos/chelsea.png");
const SAME_ORIGIN: (&str, &str) = ("Sec-Fetch-Site", "same-origin");
/// The headers of an upload form posted by a page's script, which asks for JSON.
const JSON_FORM: [(&str, &str); 3] = [
    ("Content-Type", MULTIPART),
    SAME_ORIGIN,
    ("Accept", "application/json"),
];

fn settings() -> Settings {
    Settings {
        reconcile_grace: Duration::ZERO,
        ..Settings::default()
    }
}

/// A web app with [`settings`] as `change` leaves them, without a function.
fn start_with(tag: &str, change: impl FnOnce(&mut Settings)) -> Web {
    let mut settings = settings();
    change(&mut settings);
    Web::start(tag, settings, false)
}

/// A real PNG of the given size, `extra` making it distinct.
fn png(width: u32, height: u32, extra: &[u8]) -> Vec<u8> {
    crate::support::photos::png(width, height, extra)
}

/// Only a PNG header of the given size (for refusals judged on the header).
fn png_header(width: u32, height: u32, extra: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(extra);
    bytes
}

/// A JPEG of exactly `size` bytes (at least dog.jpg's): dog.jpg, then padding after its end.
fn jpeg_of_size(size: usize) -> Vec<u8> {
    let mut bytes = DOG.to_vec();
    bytes.resize(size, 0x55);
    bytes
}

/// Whether an image's object is stored.
fn exists(web: &Web, id: &str) -> bool {
    web.env
        .emulator
        .read_object("images", &Web::object_name(id))
        .is_some()
}

/// Every request to `service` answered 503.
fn outage(service: Service) -> FaultPlan {
    let mut plan = FaultPlan::default();
    let faults = Faults {
        error_rate: 1.0,
        error_status: 503,
        ..Default::default()
    };
    plan.set(service, faults);
    plan
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What Object Storage holds about an image's object.
fn head(web: &Web, id: &str) -> ocivision::oci::object_storage::ObjectInfo {
    let name = Web::object_name(id);
    web.env
        .object_storage()
        .head(&web.env.bucket(), &name, deadline(5))
        .unwrap()
        .unwrap()
}

/// Rewrites an image's document as `change` leaves it.
fn edit_document(web: &Web, id: &str, change: impl FnOnce(&mut AnalysisDocument)) {
    let mut doc = web.document(id).unwrap();
    change(&mut doc);
    web.soda
        .put(&web.key(id), &doc.to_json(), deadline(5))
        .unwrap();
}

/// A same-origin form post through the handler.
fn post_form(web: &Web, path: &str, form: &str) -> ocivision::http::Response {
    web.handle("POST", path, &[SAME_ORIGIN], form.as_bytes())
}

/// A page's HTML, through the handler.
fn page(web: &Web, path: &str) -> String {
    body_text(&web.handle("GET", path, &[], b""))
}

/// The status the handler answers a bodiless request with.
fn handled_status(web: &Web, method: &str, path: &str) -> u16 {
    web.handle(method, path, &[], b"").status()
}

/// The id of the first file's result in an upload form's JSON answer.
fn first_result_id(reply: &Reply) -> String {
    reply.json()["results"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_page_headers(resp: &ocivision::http::Response) {
    assert_eq!(
        resp.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = resp.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(resp.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        resp.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(resp.header("cache-control"), Some("no-store"));
}

#[test]
fn web_every_route_answers_through_the_handler() {
    let web = Web::start("web-routes", settings(), true);
    let r = web.handle("GET", "/healthz", &[], b"");
    assert_eq!((r.status(), r.body_bytes()), (200, Some(&b""[..])));
    let r = web.handle("GET", "/static/app.css", &[], b"");
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    let r = web.handle("GET", "/static/app.js", &[], b"");
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(handled_status(&web, "POST", "/healthz"), 405);

    let r = web.handle("GET", "/", &[], b"");
    assert_eq!(r.status(), 200);
    assert_page_headers(&r);
    let html = body_text(&r);
    assert!(html.contains("No images yet"), "empty state");
    assert!(html.contains("multiple") && html.contains("enctype=\"multipart/form-data\""));
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "no inline code"
    );

    let id = web.upload("dog.jpg", DOG);
    let r = web.handle("GET", "/", &[], b"");
    assert!(body_text(&r).contains(&format!("data-id=\"{id}\"")));
    let r = web.handle("GET", &format!("/images/{id}"), &[], b"");
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    assert_page_headers(&r);
    let r = web.handle("GET", &format!("/images/{id}/raw"), &[], b"");
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );
    assert_eq!(
        r.header("cross-origin-resource-policy"),
        Some("same-origin")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));
    assert!(r
        .header("cache-control")
        .unwrap()
        .starts_with("private, max-age="));
    assert_eq!(
        handled_status(&web, "GET", &format!("/images/{id}/json")),
        200
    );
    let r = web.handle("GET", &format!("/api/images/{id}"), &[], b"");
    let v: serde_json::Value = serde_json::from_str(&body_text(&r)).unwrap();
    assert_eq!(v["document"]["status"], "pending");
    let r = web.handle("GET", "/api/images", &[], b"");
    let v: serde_json::Value = serde_json::from_str(&body_text(&r)).unwrap();
    assert_eq!(v["items"][0]["id"], id.as_str());
    let r = web.handle("GET", &format!("/api/status?ids={id}"), &[], b"");
    assert_eq!(r.status(), 200);
    assert_eq!(handled_status(&web, "GET", "/readyz"), 200);
    assert_eq!(handled_status(&web, "GET", "/login"), 200);

    // Unknown ids, paths and methods.
    for path in [
        "/images/../../etc/passwd",
        "/images/0123456789abcdef01234567.jpg",
        "/images/0123456789abcdef01234567.jpg/raw",
        "/nope",
    ] {
        assert_eq!(handled_status(&web, "GET", path), 404, "{path}");
    }
    let r = web.handle("GET", &format!("/images/{id}/delete"), &[], b"");
    assert_eq!(r.status(), 405, "GET never deletes");
    assert_eq!(r.header("allow"), Some("POST"));
    assert!(exists(&web, &id));
    assert_eq!(handled_status(&web, "PUT", "/"), 405);
    let r = web.handle("PATCH", &format!("/api/images/{id}"), &[], b"");
    assert_eq!(
        (r.status(), r.header("content-type")),
        (405, Some("application/json"))
    );

    // Multipart for curl: no token, JSON back.
    let body = multipart(&[("file", Some("cat.png"), CAT)]);
    let r = web.handle("POST", "/api/images", &[("Content-Type", MULTIPART)], &body);
    assert_eq!(r.status(), 201, "{}", body_text(&r));
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Re-analyse everything outdated, from the gallery's form.
    let token = token_in(&page(&web, "/"), "/reanalyze");
    let r = post_form(&web, "/reanalyze", &format!("csrf={token}"));
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    assert!(body_text(&r).contains("nothing is outdated"));

    // Form posts: re-analyse and delete from the result page.
    let result = page(&web, &format!("/images/{id}"));
    let token = token_in(&result, &format!("/images/{id}/reanalyze"));
    let form = format!("csrf={token}");
    let r = post_form(&web, &format!("/images/{id}/reanalyze"), &form);
    assert_eq!(r.status(), 303, "{}", body_text(&r));
    // Delete asks first (without JavaScript, a page naming the image), then hides the image
    // for the undo window.
    let token = token_in(&result, &format!("/images/{id}/delete"));
    let r = post_form(
        &web,
        &format!("/images/{id}/delete"),
        &format!("csrf={token}"),
    );
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    let confirm = body_text(&r);
    assert!(confirm.contains("Delete dog.jpg?"), "{confirm}");
    assert!(confirm.contains("name=\"confirm\" value=\"yes\""));
    assert!(exists(&web, &id));
    let r = post_form(
        &web,
        &format!("/images/{id}/delete"),
        &format!("csrf={token}&confirm=yes"),
    );
    assert_eq!(r.status(), 303);
    assert!(r.header("location").unwrap().starts_with("/?deleted="));
    let gallery = page(&web, r.header("location").unwrap());
    assert!(gallery.contains("Deleted dog.jpg."), "{gallery}");
    assert!(
        !gallery.contains(&format!("data-id=\"{id}\"")),
        "hidden at once"
    );
}

#[test]
fn web_upload_stores_object_metadata_and_a_pending_document() {
    let web = Web::start("web-upload", settings(), false);
    let reply = form_upload(&web, "my dog.jpg", DOG);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = first_result_id(&reply);
    assert!(id.ends_with(".jpg") && id.len() == 28, "{id}");
    let name = Web::object_name(&id);
    assert_eq!(web.env.emulator.read_object("images", &name).unwrap(), DOG);
    let info = head(&web, &id);
    assert_eq!(info.content_type, "image/jpeg");
    let meta = |k: &str| {
        info.metadata
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let sha = sha256_hex(DOG);
    assert_eq!(meta("original-name").as_deref(), Some("my%20dog.jpg"));
    // The hash is known only once the body has passed through, after the object's headers
    // went out: it is in the document (written before the object exists), not the metadata.
    assert_eq!(meta("sha256"), None);
    assert_eq!(meta("width").as_deref(), Some("768"));
    let request_id = meta("request-id").expect("request id kept");
    let doc = web.document(&id).expect("pending document written at once");
    assert_eq!(doc.status, Status::Pending);
    assert_eq!(doc.original_name.as_deref(), Some("my dog.jpg"));
    assert_eq!(doc.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(doc.correlation_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(
        doc.etag, "",
        "written before the object; the function fills it"
    );
    assert_eq!(doc.size, DOG.len() as u64);

    // The same bytes again: recognised, not stored or analysed twice.
    let writes = web.object_writes();
    let reply = form_upload(&web, "my dog.jpg", DOG);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let again = &reply.json()["results"][0];
    assert_eq!(again["duplicate_of"]["id"], id.as_str());
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .starts_with("identical to my dog.jpg, uploaded "),
        "{again}"
    );
    assert_eq!(web.object_writes(), writes, "no second object");

    // A PNG through PUT for curl, and the plain form without JavaScript gets a page.
    let reply = web.fetch("PUT", "/api/images/cat.png", &[], CAT);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let cat = reply.json()["id"].as_str().unwrap().to_string();
    assert!(cat.ends_with(".png"));
    let info = head(&web, &cat);
    assert_eq!(info.content_type, "image/png");
    let other = png(64, 64, b"plain png bytes");
    let token = web.token("/", "/upload");
    let body = multipart(&[
        ("csrf", None, token.as_bytes()),
        ("file", Some("p.png"), &other),
    ]);
    let reply = web.fetch(
        "POST",
        "/upload",
        &[("Content-Type", MULTIPART), SAME_ORIGIN],
        &body,
    );
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        reply.text().contains("1 of 1 file uploaded"),
        "{}",
        reply.text()
    );

    // The database being down does not stop an upload.
    web.env.emulator.set_faults(outage(Service::Soda));
    let reply = web.fetch(
        "PUT",
        "/api/images/offline.png",
        &[],
        &png(100, 100, b"db down"),
    );
    web.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(reply.status, 201, "{}", reply.text());
    let offline = reply.json()["id"].as_str().unwrap().to_string();
    assert!(exists(&web, &offline));
    assert!(
        web.document(&offline).is_none(),
        "the reconciler writes it later"
    );
}

/// Positions in the emulator's record of the SODA PUT of `id`'s document and of the Object
/// Storage PUT of its object.
fn write_order(web: &Web, id: &str) -> (usize, usize) {
    let seen = web.env.emulator.requests();
    let key = web.key(id);
    let document = seen
        .iter()
        .position(|r| {
            r.service == Some(Service::Soda) && r.method == "PUT" && r.target.contains(&key)
        })
        .expect("the document was written");
    let object = seen
        .iter()
        .position(|r| {
            r.service == Some(Service::ObjectStorage) && r.method == "PUT" && r.target.contains(id)
        })
        .expect("the object was written");
    (document, object)
}

#[test]
fn web_upload_writes_the_pending_document_before_the_object() {
    let web = Web::start("web-order", settings(), false);
    // The API's raw PUT.
    let reply = web.fetch("PUT", "/api/images/dog.jpg", &[], DOG);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let (document, object) = write_order(&web, &id);
    assert!(document < object, "document #{document}, object #{object}");

    // The browser form.
    let reply = form_upload(&web, "cat.png", CAT);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = first_result_id(&reply);
    let (document, object) = write_order(&web, &id);
    assert!(document < object, "document #{document}, object #{object}");
    let doc = web.document(&id).unwrap();
    assert_eq!((doc.status, doc.etag.as_str()), (Status::Pending, ""));
    assert_eq!(doc.original_name.as_deref(), Some("cat.png"));
}

/// The browser's upload form with one file, as a page's script posts it (JSON answer).
fn form_upload(web: &Web, file: &str, bytes: &[u8]) -> Reply {
    let token = web.token("/", "/upload");
    let body = multipart(&[
        ("csrf", None, token.as_bytes()),
        ("file", Some(file), bytes),
    ]);
    let headers = JSON_FORM;
    web.fetch("POST", "/upload", &headers, &body)
}

/// Uploads `bytes` through the API and checks they were stored, not answered as a duplicate;
/// returns the new image's id.
fn stored_as_new(web: &Web, bytes: &[u8]) -> String {
    let reply = web.fetch("PUT", "/api/images/dog.jpg", &[], bytes);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert!(
        reply.json().get("duplicate_of").is_none(),
        "{}",
        reply.text()
    );
    reply.json()["id"].as_str().unwrap().to_string()
}

/// Deletes an image's object behind the app's back, leaving its document.
fn delete_object_only(web: &Web, id: &str) {
    web.env
        .object_storage()
        .delete(
            &web.env.bucket(),
            &Web::object_name(id),
            Condition::None,
            deadline(5),
        )
        .unwrap();
}

/// Documents in the collection whose `sha256` is that of `bytes`.
fn documents_of(web: &Web, bytes: &[u8]) -> Vec<AnalysisDocument> {
    let sha = sha256_hex(bytes);
    web.soda
        .query(&json!({ "sha256": sha }), deadline(5))
        .unwrap()
        .map(|d| AnalysisDocument::from_json(d.unwrap().value).unwrap())
        .collect()
}

#[test]
fn web_upload_whose_object_cannot_be_stored_leaves_no_document_and_no_twin() {
    let web = Web::start("web-put-fails", settings(), false);
    web.env.emulator.set_faults(outage(Service::ObjectStorage));
    let reply = web.fetch("PUT", "/api/images/dog.jpg", &[], DOG);
    web.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(reply.status, 502, "{}", reply.text());
    let seen = web.env.emulator.requests();
    assert!(
        seen.iter()
            .any(|r| r.service == Some(Service::Soda) && r.method == "PUT" && r.status < 300),
        "the pending document was written first"
    );
    assert!(
        seen.iter()
            .any(|r| r.service == Some(Service::Soda) && r.method == "DELETE" && r.status < 300),
        "and removed again"
    );
    assert!(documents_of(&web, DOG).is_empty(), "no document is left");

    // The same bytes again, storage back: stored, not answered as a duplicate of a ghost.
    let id = stored_as_new(&web, DOG);
    assert!(exists(&web, &id));
    assert_eq!(documents_of(&web, DOG).len(), 1);

    // The browser form gets the same answer, as a result for the file.
    web.env.emulator.set_faults(outage(Service::ObjectStorage));
    let reply = form_upload(&web, "cat.png", CAT);
    web.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.json()["results"][0]["error"], "StorageUnavailable");
    assert!(documents_of(&web, CAT).is_empty(), "no document is left");
}

#[test]
fn web_a_document_without_its_object_is_never_offered_as_a_twin() {
    let web = Web::start("web-ghost", settings(), false);
    // What an upload leaves when its object PUT failed and removing its document failed too
    // (or a delete that removed only the object): a document, no object.
    let ghost = web.upload("ghost.jpg", DOG);
    delete_object_only(&web, &ghost);
    assert!(web.document(&ghost).is_some());

    let real = stored_as_new(&web, DOG);
    assert_ne!(real, ghost);

    // The twin that exists is offered; the reconciler removes the ghost.
    let reply = web.fetch("PUT", "/api/images/again.jpg", &[], DOG);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["duplicate_of"]["id"], real.as_str());
    let report = ocivision::web::reconcile(&web.app).unwrap();
    assert_eq!(report.removed_documents, vec![Web::object_name(&ghost)]);
    assert!(web.document(&ghost).is_none());
}

#[test]
fn web_hostile_uploads_are_refused_and_nothing_is_stored() {
    // A limit set lower than the 50 MiB default, as `MAX_UPLOAD_BYTES` sets it.
    let web = start_with("web-hostile", |s| s.max_upload_bytes = 5 * 1024 * 1024);
    let token = web.token("/", "/upload");
    let headers = JSON_FORM;
    let post = |file: &str, bytes: &[u8]| {
        let body = multipart(&[
            ("csrf", None, token.as_bytes()),
            ("file", Some(file), bytes),
        ]);
        web.fetch("POST", "/upload", &headers, &body)
    };
    let mut polyglot = CAT.to_vec();
    polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "photo.jpg",
            b"<html><body>not an image</body></html>".to_vec(),
            415,
            "not a JPEG or PNG",
        ),
        (
            "evil.exe.jpg",
            b"MZ\x90\x00\x03\x00\x00\x00".to_vec(),
            415,
            "not a JPEG or PNG",
        ),
        ("poly.png", polyglot, 415, "markup"),
        ("tiny.png", png_header(1, 1, b""), 422, "1×1"),
        (
            "huge.png",
            png_header(20_000, 20_000, b""),
            422,
            "at most 50 megapixels",
        ),
        ("empty.jpg", Vec::new(), 400, "empty"),
        ("big.jpg", jpeg_of_size(5 * 1024 * 1024 + 1), 413, "limit"),
    ];
    for (file, bytes, status, words) in cases {
        let reply = post(file, &bytes);
        assert_eq!(reply.status, status, "{file}: {}", reply.text());
        let message = reply.json()["results"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(words), "{file}: {message}");
    }
    // The same through PUT.
    assert_eq!(
        web.fetch(
            "PUT",
            "/api/images/x.jpg",
            &[],
            &jpeg_of_size(5 * 1024 * 1024 + 1)
        )
        .status,
        413
    );
    assert_eq!(
        web.fetch("PUT", "/api/images/x.jpg", &[], b"GIF89a\x01\x00\x01\x00")
            .status,
        415
    );
    // Malformed bodies.
    let mut many: Vec<(&str, Option<&str>, &[u8])> = vec![("csrf", None, token.as_bytes())];
    many.extend((0..9_999).map(|_| ("file", Some("a.jpg"), &b"x"[..])));
    let reply = web.fetch("POST", "/upload", &headers, &multipart(&many));
    assert_eq!(reply.status, 400, "{}", reply.text());
    let mut truncated = multipart(&[
        ("csrf", None, token.as_bytes()),
        ("file", Some("dog.jpg"), DOG),
    ]);
    truncated.truncate(truncated.len() - 40);
    let reply = web.fetch("POST", "/upload", &headers, &truncated);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("ends"), "{}", reply.text());
    let reply = web.fetch(
        "POST",
        "/upload",
        &[("Content-Type", "application/json"), SAME_ORIGIN],
        b"{}",
    );
    assert_eq!(reply.status, 415);
    let reply = web.fetch(
        "POST",
        "/upload",
        &[("Content-Type", "multipart/form-data"), SAME_ORIGIN],
        b"x",
    );
    assert_eq!(reply.status, 400);
    let no_file = multipart(&[("csrf", None, token.as_bytes())]);
    assert_eq!(web.fetch("POST", "/upload", &headers, &no_file).status, 400);
    let nested = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\nx\r\n--XyZ--\r\n";
    let mut with_token = multipart(&[("csrf", None, token.as_bytes())]);
    with_token.truncate(with_token.len() - 9);
    with_token.extend_from_slice(&nested[..]);
    assert_eq!(
        web.fetch("POST", "/upload", &headers, &with_token).status,
        400
    );

    assert_eq!(web.object_writes(), 0, "nothing was stored");
    assert_eq!(web.document_writes(), 0, "no document was written");
    assert_eq!(
        web.get("/healthz").status,
        200,
        "the server is fine afterwards"
    );

    // A hostile file name is only display text: generated object name, escaped everywhere.
    let name = "<script>alert(1)</script> ../../etc/passwd \"quoted\" 'single' 日本語 🐕.jpg";
    let reply = post(name, DOG);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = first_result_id(&reply);
    assert!(exists(&web, &id));
    let stored = web.document(&id).unwrap().original_name.unwrap();
    // Path separators go, so `</script>` loses its slash too.
    assert_eq!(
        stored,
        "<script>alert(1)<script> ....etcpasswd \"quoted\" 'single' 日本語 🐕.jpg"
    );
    for page in ["/".to_string(), format!("/images/{id}")] {
        let html = web.get(&page).text();
        assert!(!html.contains("<script>alert"), "{page} escapes the name");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;script&gt; ....etcpasswd &quot;quoted&quot; &#39;single&#39; 日本語 🐕.jpg"), "{page}");
    }
}

#[test]
fn web_uploads_beyond_the_gate_get_503_with_retry_after() {
    let web = start_with("web-gate", |s| s.max_concurrent_uploads = Some(1));
    // The gate shows only in answers: a probe that the checks after the gate refuse (415,
    // nothing stored) is answered 503 while the slot is taken.
    let probe = || {
        web.fetch("PUT", "/api/images/probe.jpg", &[], b"not an image")
            .status
    };
    assert_eq!(probe(), 415);
    // Hold the only slot with an upload whose body never finishes arriving (more than the
    // server's 16 KiB pre-read, which a body stalling earlier never leaves). Should a probe be
    // inside the gate when it comes, it is turned away: then it comes again.
    let addr = web.server.tcp_addr().unwrap();
    let hold = || {
        use std::io::Write;
        let mut slow = std::net::TcpStream::connect(addr).unwrap();
        write!(
            slow,
            "PUT /api/images/slow.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        )
        .unwrap();
        slow.write_all(&DOG[..20_000]).unwrap();
        slow
    };
    let answered = |stream: &std::net::TcpStream| {
        stream.set_nonblocking(true).unwrap();
        let waiting = matches!(
            stream.peek(&mut [0u8; 1]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).unwrap();
        !waiting
    };
    let mut slow = hold();
    assert!(
        wait_until(Duration::from_secs(10), || {
            if answered(&slow) {
                slow = hold();
            }
            probe() == 503
        }),
        "the slow upload holds the slot"
    );
    let reply = web.fetch("PUT", "/api/images/fast.jpg", &[], DOG);
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("5"));
    drop(slow);
    assert!(
        wait_until(Duration::from_secs(10), || probe() == 415),
        "the slot is free once the slow upload has gone"
    );
    assert_eq!(
        web.fetch("PUT", "/api/images/fast.jpg", &[], DOG).status,
        201
    );
}

#[test]
fn web_cross_origin_state_changes_are_refused() {
    let web = start_with("web-csrf", |s| {
        s.public_origin = Some("https://vision.example.com".into())
    });
    let id = web.upload("dog.jpg", DOG);
    let token = web.token("/", "/upload");
    let body = multipart(&[
        ("csrf", None, token.as_bytes()),
        ("file", Some("cat.png"), CAT),
    ]);
    for headers in [
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![("Origin", "https://evil.example")],
        vec![("Origin", "null")],
    ] {
        let mut h = headers.clone();
        h.push(("Content-Type", MULTIPART));
        let r = web.handle("POST", "/upload", &h, &body);
        assert_eq!(r.status(), 403, "{headers:?}");
        let r = web.handle("DELETE", &format!("/api/images/{id}"), &headers, b"");
        assert_eq!(r.status(), 403, "{headers:?}");
        let r = web.handle("PUT", "/api/images/x.png", &headers, CAT);
        assert_eq!(r.status(), 403, "{headers:?}");
    }
    assert!(exists(&web, &id));
    // Browser form posts need a valid token for their action.
    let delete_token = web.token("/", "/delete");
    for bad in ["", "csrf=", "csrf=123.abc", "csrf=9999999999.00"] {
        let r = post_form(&web, &format!("/images/{id}/delete"), bad);
        assert_eq!(r.status(), 403, "{bad}");
    }
    let wrong_action = format!("csrf={token}");
    let r = post_form(&web, &format!("/images/{id}/delete"), &wrong_action);
    assert_eq!(r.status(), 403, "an upload token cannot delete");
    let no_token = multipart(&[("file", Some("cat.png"), CAT)]);
    let r = web.handle(
        "POST",
        "/upload",
        &[SAME_ORIGIN, ("Content-Type", MULTIPART)],
        &no_token,
    );
    assert_eq!(r.status(), 403);
    assert!(exists(&web, &id));
    // The configured origin and same-origin fetches pass.
    let ok = format!("csrf={delete_token}&confirm=yes");
    let r = web.handle(
        "POST",
        &format!("/images/{id}/delete"),
        &[("Origin", "https://vision.example.com")],
        ok.as_bytes(),
    );
    assert_eq!(r.status(), 303);
    assert!(r.header("location").unwrap().starts_with("/?deleted="));
}

/// Issue 18: text answers gzipped when the client accepts it (and only then), static files
/// under hashed names cached for a year, a favicon, no body encoding for HEAD.
#[test]
fn web_text_is_gzipped_on_request_and_static_files_are_hashed_and_cached() {
    use std::io::Read as _;
    let web = Web::start("web-gzip", settings(), false);
    for i in 0..6 {
        web.upload(
            &format!("photo-{i}.png"),
            &png(40 + i, 40, &i.to_be_bytes()),
        );
    }
    let plain = web.fetch("GET", "/", &[], b"");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let packed = web.fetch("GET", "/", &[("Accept-Encoding", "gzip, deflate, br")], b"");
    assert_eq!(packed.header("content-encoding"), Some("gzip"));
    assert!(
        packed.body.len() * 3 < plain.body.len(),
        "{} vs {}",
        packed.body.len(),
        plain.body.len()
    );
    let mut html = String::new();
    flate2::read::GzDecoder::new(&packed.body[..])
        .read_to_string(&mut html)
        .unwrap();
    assert!(html.contains("photo-5.png") && html.ends_with("</html>\n"));
    let refused = web.fetch("GET", "/", &[("Accept-Encoding", "gzip;q=0, br")], b"");
    assert_eq!(refused.header("content-encoding"), None);
    let head = web.fetch("HEAD", "/", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!((head.status, head.header("content-encoding")), (200, None));
    assert!(head.body.is_empty());
    let json = web.fetch("GET", "/api/images", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(json.header("content-encoding"), Some("gzip"));

    // The page names its files by hash; those are cached for a year, gzipped when accepted.
    let css = html
        .split("href=\"/static/app.")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("/static/app.{rest}"))
        .expect("a hashed stylesheet");
    let r = web.fetch("GET", &css, &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(html.contains("<script src=\"/static/app."));
    let icon = web.fetch("GET", "/favicon.ico", &[], b"");
    assert_eq!(
        (icon.status, icon.header("content-type")),
        (200, Some("image/svg+xml"))
    );
    // Images are never compressed again.
    let id = web.upload("dog.jpg", DOG);
    let raw = web.fetch(
        "GET",
        &format!("/images/{id}/raw"),
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!((raw.status, raw.header("content-encoding")), (200, None));
    assert_eq!(raw.body, DOG);
    // The result page reserves the picture's space: its size comes with the upload.
    let page = page(&web, &format!("/images/{id}"));
    assert!(page.contains("width=\"768\" height=\"576\""), "{page}");
}

#[test]
fn web_password_gates_everything_but_login_assets_and_health() {
    let web = start_with("web-password", |s| {
        s.password = Some(Secret::new("correct horse"))
    });
    for path in ["/healthz", "/login", "/static/app.css", "/static/app.js"] {
        assert_eq!(web.get(path).status, 200, "{path}");
    }
    for path in [
        "/",
        "/images/0123456789abcdef01234567.jpg",
        "/images/0123456789abcdef01234567.jpg/raw",
    ] {
        let r = web.get(path);
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/login")),
            "{path}"
        );
    }
    for path in ["/api/images", "/readyz", "/api/status?ids="] {
        assert_eq!(web.get(path).status, 401, "{path}");
    }
    assert_eq!(
        web.fetch("PUT", "/api/images/dog.jpg", &[], DOG).status,
        401
    );
    assert_eq!(
        web.fetch("POST", "/upload", &[("Content-Type", MULTIPART)], b"")
            .status,
        401
    );
    assert_eq!(web.object_writes(), 0);

    let login = web.get("/login").text();
    assert!(!login.contains("correct horse"));
    let token = token_in(&login, "/login");
    let r = web.fetch(
        "POST",
        "/login",
        &[
            SAME_ORIGIN,
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={token}&password=wrong").as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    let r = web.fetch(
        "POST",
        "/login",
        &[SAME_ORIGIN, ("X-Forwarded-Proto", "https")],
        format!("csrf={token}&password=correct+horse").as_bytes(),
    );
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let r = web.fetch("GET", "/", &[("Cookie", &session)], b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Sign out"));
    assert_eq!(
        web.fetch("GET", "/", &[("Cookie", "ocv_session=1.00")], b"")
            .status,
        303
    );
    let r = web.fetch(
        "PUT",
        "/api/images/dog.jpg",
        &[("Authorization", "Bearer correct horse")],
        DOG,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        web.fetch(
            "GET",
            "/api/images",
            &[("Authorization", "Bearer nope")],
            b""
        )
        .status,
        401
    );
}

#[test]
fn web_analysis_text_is_escaped_and_names_round_trip() {
    let web = Web::start("web-escape", settings(), false);
    let name = "a <\"#?> b 日本.jpg";
    let id = web.upload(name, DOG);
    web.write_done(
        &id,
        &[
            (
                "</script><script>alert(1)</script>",
                0.91,
                [0.1, 0.1, 0.5, 0.6],
            ),
            ("{{ json }} Dog", 0.55, [0.4, 0.3, 0.9, 0.95]),
        ],
    );
    let r = web.handle("GET", &format!("/images/{id}"), &[], b"");
    let html = body_text(&r);
    assert!(!html.contains("</script><script>"), "label escaped");
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        html.contains("{{ json }} Dog"),
        "a slot-like label stays literal text"
    );
    assert!(
        html.contains("a &lt;&quot;#?&gt; b 日本.jpg"),
        "name escaped"
    );
    assert!(
        html.contains("<pre tabindex=\"0\"") && html.contains("&quot;image_name&quot;"),
        "raw JSON escaped in <pre>"
    );
    assert!(html.contains("viewBox=\"0 0 1 1\"") && html.contains("preserveAspectRatio=\"none\""));
    assert_eq!(html.matches("<polygon points=").count(), 2);
    assert!(html.contains("points=\"0.1000,0.1000 0.5000,0.1000 0.5000,0.6000 0.1000,0.6000\""));
    assert!(html.contains("data-confidence=\"0.9100\""));
    assert!(
        html.contains("alt=\"a &lt;&quot;#?&gt; b 日本.jpg: &lt;/script&gt;"),
        "alt text from the labels"
    );
    assert!(!html.contains("local model"));
    let api = web.handle("GET", &format!("/api/images/{id}"), &[], b"");
    let v: serde_json::Value = serde_json::from_str(&body_text(&api)).unwrap();
    assert_eq!(v["document"]["original_name"], name);
    assert_eq!(
        v["document"]["objects"][0]["name"],
        "</script><script>alert(1)</script>"
    );
    // A local model is said so.
    edit_document(&web, &id, |doc| {
        doc.model_versions.object_detection = Some("local-nanodet-plus-m-416".into());
    });
    let html = page(&web, &format!("/images/{id}"));
    assert!(html.contains("local model"));
}

#[test]
fn web_delete_removes_object_and_document_even_when_the_object_is_gone() {
    // No undo window: the gallery's form deletes at once, as the JSON API always does.
    let web = start_with("web-delete", |s| s.undo_window = Duration::ZERO);
    let a = web.upload("a.jpg", DOG);
    let b = web.upload("b.png", CAT);
    let c = web.upload("c.png", &png(50, 50, b"c"));
    let r = web.fetch("DELETE", &format!("/api/images/{a}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"id": a, "object": true, "document": true}));
    assert!(!exists(&web, &a));
    assert!(web.document(&a).is_none());
    // Object already gone: the document still goes.
    delete_object_only(&web, &b);
    let r = web.fetch("DELETE", &format!("/api/images/{b}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"id": b, "object": false, "document": true})
    );
    assert!(web.document(&b).is_none());
    assert_eq!(
        web.fetch("DELETE", &format!("/api/images/{b}"), &[], b"")
            .status,
        404
    );
    // Many at once, from the gallery's form, with one unknown id reported on its own.
    let d = web.upload("d.png", &png(60, 60, b"d"));
    let token = web.token("/", "/delete");
    let form = format!("csrf={token}&id={c}&id={d}&confirm=yes");
    let r = web.handle("POST", "/delete", &[SAME_ORIGIN], form.as_bytes());
    assert_eq!(r.status(), 303);
    assert!(web.document(&c).is_none() && web.document(&d).is_none());
    let e = web.upload("e.png", &png(70, 70, b"e"));
    let r = web.fetch(
        "POST",
        "/api/images/delete",
        &[("Content-Type", "application/json")],
        json!({"ids": [e, "nope"]}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 207);
    assert_eq!(r.json()["results"][0]["document"], true);
    assert_eq!(r.json()["results"][1]["error"], "not an image id");
    // A storage failure is reported honestly and the document is kept.
    let f = web.upload("f.png", &png(80, 80, b"f"));
    web.env.emulator.set_faults(outage(Service::ObjectStorage));
    let r = web.fetch("DELETE", &format!("/api/images/{f}"), &[], b"");
    web.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("could not be deleted"));
    assert!(web.document(&f).is_some());
}

/// The key of an image's delete marker, as `web::undo_delete` writes it.
fn marker_key(web: &Web, id: &str) -> String {
    let bucket = web.env.bucket();
    ocivision::soda::document_key(
        &bucket.namespace,
        &bucket.name,
        &format!("pending-delete/{id}"),
    )
}

/// Issue 18: deleting from the pages names what goes, hides it at once, can be undone while
/// the window is open, and is carried out by the server when it closes, with no browser
/// involved; a marker left by an instance that died is hidden, and carried out by the sweeper.
#[test]
fn web_browser_deletes_are_confirmed_hidden_undoable_and_carried_out() {
    let window = Duration::from_secs(3);
    let web = start_with("web-undo", |s| s.undo_window = window);
    let a = web.upload("a.jpg", DOG);
    let b = web.upload("b.png", CAT);
    let c = web.upload("c.png", &png(50, 50, b"c"));
    let token = web.token("/", "/delete");
    let post = |path: &str, form: String| web.handle("POST", path, &[SAME_ORIGIN], form.as_bytes());

    // Nothing selected: a page that says how to select, not an error.
    let r = post("/delete", format!("csrf={token}"));
    assert_eq!(r.status(), 200);
    assert!(body_text(&r).contains("Nothing selected"));
    // Without confirm=yes: the confirmation names both and carries them on.
    let r = post("/delete", format!("csrf={token}&id={a}&id={b}"));
    let confirm = body_text(&r);
    assert_eq!(r.status(), 200, "{confirm}");
    assert!(confirm.contains("Delete 2 images?") && confirm.contains("<li>a.jpg</li>"));
    assert!(confirm.contains(&format!("name=\"id\" value=\"{b}\"")));
    assert!(exists(&web, &a) && exists(&web, &b));

    // Confirmed: hidden from the gallery and the API at once, still stored.
    let r = post("/delete", format!("csrf={token}&id={a}&id={b}&confirm=yes"));
    assert_eq!(r.status(), 303);
    let after = r.header("location").unwrap().to_string();
    let gallery = page(&web, &after);
    assert!(
        gallery.contains("Deleted 2 images: a.jpg and b.png. You can undo this for 3 seconds."),
        "{gallery}"
    );
    assert!(gallery.contains("action=\"/undo\""));
    for id in [&a, &b] {
        assert!(
            !gallery.contains(&format!("data-id=\"{id}\"")),
            "{id} hidden"
        );
    }
    assert!(gallery.contains(&format!("data-id=\"{c}\"")));
    let listed = web.get("/api/images").json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let detail = page(&web, &format!("/images/{a}"));
    assert!(
        detail.contains("id=\"undo-notice\""),
        "the result page offers undo too"
    );
    assert!(exists(&web, &a) && exists(&web, &b));

    // Undo: both back, markers gone.
    let batch = after.trim_start_matches("/?deleted=");
    let r = post("/undo", format!("csrf={token}&batch={batch}"));
    assert_eq!(
        (r.status(), r.header("location")),
        (303, Some("/?restored=2"))
    );
    let gallery = page(&web, "/?restored=2");
    assert!(gallery.contains("Restored 2 images"));
    for id in [&a, &b] {
        assert!(gallery.contains(&format!("data-id=\"{id}\"")));
    }
    assert!(web
        .soda
        .get(&marker_key(&web, &a), deadline(5))
        .unwrap()
        .is_none());

    // Deleted again and left alone: the server carries it out when the window closes.
    let r = post(
        &format!("/images/{a}/delete"),
        format!("csrf={token}&confirm=yes"),
    );
    let after = r.header("location").unwrap().to_string();
    let batch = after.trim_start_matches("/?deleted=").to_string();
    assert!(
        wait_until(window + Duration::from_secs(10), || {
            !exists(&web, &a) && web.document(&a).is_none()
        }),
        "carried out when the window closed"
    );
    assert!(web
        .soda
        .get(&marker_key(&web, &a), deadline(5))
        .unwrap()
        .is_none());
    assert!(exists(&web, &b), "only what was deleted");
    let late = post("/undo", format!("csrf={token}&batch={batch}"));
    assert_eq!(late.header("location"), Some("/?restored=0"));
    let gallery = page(&web, "/?restored=0");
    assert!(gallery.contains("Too late to undo"));
    let gallery = page(&web, &after);
    assert!(gallery.contains("undo window has closed"));

    // A marker whose instance died before its time: hidden, and carried out by the sweeper's
    // look for orphans (once per window), not by the page view.
    let stale = json!({"kind": "pending-delete", "bucket": format!("{}/{}", web.env.bucket().namespace, web.env.bucket().name),
        "id": b, "name": "b.png", "batch": "0123456789abcdef", "delete_at_ms": 1});
    web.soda
        .put(&marker_key(&web, &b), &stale, deadline(5))
        .unwrap();
    let gallery = page(&web, "/");
    assert!(!gallery.contains(&format!("data-id=\"{b}\"")));
    assert!(
        wait_until(Duration::from_secs(10), || !exists(&web, &b)),
        "a stale marker is carried out by the sweeper"
    );
    assert!(exists(&web, &c));
}

#[test]
fn web_reanalysis_sends_the_function_a_synthetic_update_event() {
    let web = Web::start("web-reanalyze", settings(), true);
    let id = web.upload("dog.jpg", DOG);
    web.write_done(&id, &[("Dog", 0.9, [0.1, 0.1, 0.5, 0.5])]);
    let r = web.fetch("POST", &format!("/api/images/{id}/reanalyze"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let etag = head(&web, &id).etag;
    let event = wait_for_call(&web, 1);
    assert_eq!(
        event["eventType"],
        "com.oraclecloud.objectstorage.updateobject"
    );
    assert_eq!(event["data"]["resourceName"], Web::object_name(&id));
    assert_eq!(event["data"]["additionalDetails"]["eTag"], etag.as_str());
    assert_eq!(event["data"]["additionalDetails"]["bucketName"], "images");
    assert_eq!(web.document(&id).unwrap().status, Status::Pending);

    // Everything analysed by an older model.
    let old = web.upload("cat.png", CAT);
    web.write_done(&old, &[("Cat", 0.8, [0.2, 0.2, 0.7, 0.7])]);
    edit_document(&web, &old, |doc| {
        doc.model_versions.object_detection = Some("1.2".into());
    });
    let newer = web.upload("p.png", &png(90, 90, b"new"));
    web.write_done(&newer, &[("Car", 0.7, [0.2, 0.2, 0.7, 0.7])]);
    let r = web.fetch("POST", "/api/reanalyze", &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["current"], "1.3");
    assert_eq!(r.json()["requested"], json!([old]));
    let event = wait_for_call(&web, 2);
    assert_eq!(event["data"]["resourceName"], Web::object_name(&old));

    // Without a function configured, say so.
    let plain = Web::start("web-reanalyze-off", settings(), false);
    let id = plain.upload("dog.jpg", DOG);
    let r = plain.fetch("POST", &format!("/api/images/{id}/reanalyze"), &[], b"");
    assert_eq!(r.status, 409);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("FUNCTION_ID"));
}

fn wait_for_call(web: &Web, n: usize) -> serde_json::Value {
    let mut call = None;
    wait_until(Duration::from_secs(10), || {
        call = web.calls.lock().unwrap().get(n - 1).cloned();
        call.is_some()
    });
    call.unwrap_or_else(|| panic!("the function did not receive call {n}"))
}

/// Leaves an image's document stuck in `analyzing` since 2020.
fn mark_stuck(web: &Web, id: &str) {
    edit_document(web, id, |doc| {
        doc.status = Status::Analyzing;
        doc.updated_at = "2020-01-01T00:00:00.000Z".into();
    });
}

#[test]
fn web_reconcile_makes_its_repairs() {
    let web = Web::start("web-reconcile", settings(), false);
    // 1. A document without an object.
    let gone = web.upload("gone.jpg", DOG);
    delete_object_only(&web, &gone);
    // 2. An object without a document (uploaded while the database was down).
    let orphan_name = "uploads/0000000000a0000000000001.png";
    let bytes = png(64, 64, b"orphan");
    let metadata = [
        ("original-name", "orphan%20cat.png"),
        ("sha256", "abc"),
        ("request-id", "req-9"),
    ];
    web.env.put_object(orphan_name, &bytes, &metadata);
    // 3. A document stuck in `analyzing` for an hour.
    let stuck = web.upload("stuck.png", CAT);
    mark_stuck(&web, &stuck);
    // A healthy image is left alone.
    let fine = web.upload("fine.png", &png(40, 40, b"fine"));

    let report = ocivision::web::reconcile(&web.app).unwrap();
    assert_eq!(report.removed_documents, vec![Web::object_name(&gone)]);
    assert_eq!(report.created_documents, vec![orphan_name.to_string()]);
    assert_eq!(report.failed_stuck, vec![Web::object_name(&stuck)]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(web.document(&gone).is_none());
    let created = web.document("0000000000a0000000000001.png").unwrap();
    assert_eq!(created.status, Status::Pending);
    assert_eq!(created.original_name.as_deref(), Some("orphan cat.png"));
    assert_eq!(created.correlation_id.as_deref(), Some("req-9"));
    let failed = web.document(&stuck).unwrap();
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.error.unwrap().code, "Stuck");
    assert_eq!(web.document(&fine).unwrap().status, Status::Pending);
    // A second pass finds nothing to do.
    let again = ocivision::web::reconcile(&web.app).unwrap();
    assert_eq!(again, Default::default());

    // With a function: orphans and stuck analyses are sent for analysis instead.
    let web = Web::start("web-reconcile-fn", settings(), true);
    web.env.put_object(orphan_name, &bytes, &[]);
    let stuck = web.upload("stuck.png", CAT);
    mark_stuck(&web, &stuck);
    // Failed because Vision was throttled past the function's retries: worth another try; a
    // refused file is not.
    let mark_failed = |id: &str, code: &str| {
        edit_document(&web, id, |doc| {
            doc.status = Status::Failed;
            doc.attempts = 1;
            doc.error = Some(ocivision::document::Failure {
                code: code.into(),
                message: "test".into(),
            });
            doc.updated_at = "2020-01-01T00:00:00.000Z".into();
        })
    };
    let throttled = web.upload("throttled.png", &png(48, 48, b"throttled"));
    mark_failed(&throttled, "TooManyRequests");
    let refused = web.upload("refused.png", &png(50, 50, b"refused"));
    mark_failed(&refused, "UnsupportedFormat");
    let report = ocivision::web::reconcile(&web.app).unwrap();
    let mut expected = vec![
        orphan_name.to_string(),
        Web::object_name(&stuck),
        Web::object_name(&throttled),
    ];
    expected.sort();
    assert_eq!(report.invoked, expected);
    wait_for_call(&web, 3);
    assert_eq!(web.document(&stuck).unwrap().status, Status::Pending);
    assert_eq!(web.document(&refused).unwrap().status, Status::Failed);
}

#[test]
fn web_gallery_pages_with_one_listing_and_one_query_each_and_filters() {
    let web = start_with("web-paging", |s| s.page_size = 2);
    let mut ids: Vec<String> = (0..5u32)
        .map(|i| web.upload(&format!("img{i}.png"), &png(40 + i, 40, &i.to_be_bytes())))
        .collect();
    // Listings go by name, newest first to the millisecond (ids made within one millisecond
    // sort at random): so ids[4] is the first listed, whatever the clock did meanwhile.
    ids.sort_by(|a, b| b.cmp(a));
    web.write_done(&ids[4], &[("Car", 0.8, [0.1, 0.1, 0.4, 0.4])]);
    web.write_done(&ids[3], &[("Dog", 0.8, [0.1, 0.1, 0.4, 0.4])]);
    web.env.emulator.clear_requests();
    let first = page(&web, "/");
    let requests = web.env.emulator.requests();
    let listings = requests
        .iter()
        .filter(|r| r.method == "GET" && r.target.contains("/o?"))
        .count();
    let queries = requests
        .iter()
        .filter(|r| r.target.contains("action=query"))
        .count();
    assert_eq!(
        (listings, queries, requests.len()),
        (1, 1, 2),
        "{requests:?}"
    );
    assert!(
        first.contains(&ids[4]) && first.contains(&ids[3]),
        "newest first"
    );
    assert!(!first.contains(&format!("data-id=\"{}\"", ids[2])));
    assert!(first.contains("done · 1 object"));
    let next = first
        .split("href=\"/?start=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let second = page(&web, &format!("/?start={next}"));
    assert!(
        second.contains(&ids[2])
            && second.contains(&ids[1])
            && !second.contains(&format!("data-id=\"{}\"", ids[4]))
    );
    // "vehicle" finds the car through its ontology parent.
    let filtered = page(&web, "/?label=Vehicle");
    assert!(filtered.contains(&ids[4]) && !filtered.contains(&format!("data-id=\"{}\"", ids[3])));
    let api = web.get("/api/images?label=animal&status=done").json();
    assert_eq!(api["items"].as_array().unwrap().len(), 1);
    assert_eq!(api["items"][0]["id"], ids[3].as_str());
    // A filter searches the whole collection: the three pending images, two to a page.
    let pending = web.get("/api/images?status=pending").json();
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    assert_eq!(pending["items"][0]["id"], ids[2].as_str());
    let rest = web
        .get(&format!(
            "/api/images?status=pending&start={}",
            pending["next"].as_str().unwrap()
        ))
        .json();
    assert_eq!(rest["items"][0]["id"], ids[0].as_str());
    assert_eq!(rest["next"], serde_json::Value::Null);
    assert_eq!(web.get("/api/images?status=bogus").status, 400);
    // Storage down: an error state, not a crash.
    web.env.emulator.set_faults(outage(Service::ObjectStorage));
    let r = web.handle("GET", "/", &[], b"");
    web.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(r.status(), 503);
    assert!(body_text(&r).contains("did not answer"));
}

#[test]
fn web_status_polling_uses_etags() {
    let web = Web::start("web-status", settings(), false);
    let id = web.upload("dog.jpg", DOG);
    let path = format!("/api/status?ids={id},not-an-id");
    let r = web.get(&path);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["items"][&id]["status"], "pending");
    assert_eq!(r.json()["items"].as_object().unwrap().len(), 1);
    let etag = r.header("etag").unwrap().to_string();
    let r = web.fetch("GET", &path, &[("If-None-Match", &etag)], b"");
    assert_eq!((r.status, r.body.len()), (304, 0));
    web.write_done(&id, &[("Dog", 0.9, [0.1, 0.1, 0.5, 0.5])]);
    let r = web.fetch("GET", &path, &[("If-None-Match", &etag)], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["items"][&id]["badge"], "done · 1 object");
}

#[test]
fn web_readyz_reports_each_dependency() {
    let web = Web::start("web-ready", settings(), false);
    assert_eq!(
        web.get("/readyz").json(),
        json!({"storage": "ok", "database": "ok"})
    );
    web.env.emulator.set_faults(outage(Service::Soda));
    let r = web.get("/readyz");
    web.env.emulator.set_faults(FaultPlan::default());
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({"storage": "ok", "database": "unavailable"})
    );
    assert_eq!(web.get("/healthz").body.len(), 0);
}

/// The ```sh blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<&str> {
    markdown
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect()
}

/// Runs every ```sh block of README.md's JSON API section, then of docs/API.md, with curl
/// against a live app, in order, with `$BASE` and `$ID` set, from the photo fixtures directory.
/// Each must exit 0 (`curl -f`).
#[test]
fn web_api_doc_examples_run_as_written() {
    let web = Web::start("web-api-doc", settings(), true);
    let read = |path: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let readme = read("README.md");
    let brief = readme
        .split("\n## JSON API in brief\n")
        .nth(1)
        .expect("README.md has a JSON API section")
        .split("\n## ")
        .next()
        .unwrap();
    let reference = read("docs/API.md");
    assert!(!sh_blocks(brief).is_empty(), "README.md shows the API");
    assert!(
        sh_blocks(&reference).len() >= 8,
        "docs/API.md has its examples"
    );
    let blocks = sh_blocks(brief).into_iter().chain(sh_blocks(&reference));
    let id = web.upload("seed.jpg", DOG);
    web.write_done(&id, &[("Car", 0.9, [0.1, 0.1, 0.5, 0.5])]);
    let photos = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/photos");
    for block in blocks {
        let out = std::process::Command::new("sh")
            .arg("-ec")
            .arg(block)
            .current_dir(photos)
            .env("BASE", &web.base)
            .env("ID", &id)
            .output()
            .expect("sh and curl are installed");
        assert!(
            out.status.success(),
            "example failed:\n{block}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        web.document(&id).is_none(),
        "the last example deletes the image"
    );
    let _ = AnalysisDocument::new("", "", "", Status::Pending);
}
