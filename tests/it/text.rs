//! Issue 25: text in photos. The local PP-OCRv4 reader on images with known text
//! (`tests/fixtures/text/`), and text end to end: the emulator's Vision reads it, the real `func`
//! binary stores lines, words and search terms, and `GET /api/images?q=` finds the image by a
//! word in it. Also: text turned off, and a document written before text detection.
//!
//! The OCR runs on tract, which the dev profile optimises (Cargo.toml), so these take seconds,
//! not a minute, in a debug build.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ocivision::detect::{
    Detector, DetectorConfig, LocalDetector, LocalTextReader, TextConfig, TextReader,
};
use ocivision::document::{AnalysisDocument, Status, TextLine};
use ocivision::oci::vision::{ImageObject, ImageText};
use ocivision::web::{App, Settings};
use serde_json::{json, Value};

use crate::support::emulator::{
    deadline, rectangle, spawn_func_with, Env, FixedDetector, FuncProcess,
};
use crate::support::wait_until;
use crate::support::web::{body_text, Web, COLLECTION};

const SIGN: &[u8] = include_bytes!("../fixtures/text/sign.png");
const DOG_SIGN: &[u8] = include_bytes!("../fixtures/text/dog-sign.jpg");
const RECEIPT: &[u8] = include_bytes!("../fixtures/text/receipt.png");
/// A photographed page (scikit-image's sample): uneven light, a slight tilt, camera noise.
const PAGE: &[u8] = include_bytes!("../fixtures/text/page.png");

/// One reader for every test: loading and optimising both graphs is the slow part.
fn reader() -> Arc<LocalTextReader> {
    static READER: OnceLock<Arc<LocalTextReader>> = OnceLock::new();
    Arc::clone(READER.get_or_init(|| {
        Arc::new(LocalTextReader::load(TextConfig::default()).expect("OCR models load"))
    }))
}

fn detector() -> Arc<LocalDetector> {
    static DETECTOR: OnceLock<Arc<LocalDetector>> = OnceLock::new();
    Arc::clone(DETECTOR.get_or_init(|| {
        Arc::new(LocalDetector::load(DetectorConfig::default()).expect("model loads"))
    }))
}

/// The words read, lower case.
fn words(text: &ImageText) -> Vec<String> {
    text.words.iter().map(|w| w.text.to_lowercase()).collect()
}

/// Every polygon has four normalised corners and every line is its words.
fn assert_well_formed(text: &ImageText) {
    for polygon in text
        .words
        .iter()
        .map(|w| &w.bounding_polygon)
        .chain(text.lines.iter().map(|l| &l.bounding_polygon))
    {
        let v = &polygon.normalized_vertices;
        assert_eq!(v.len(), 4);
        assert!(v
            .iter()
            .all(|p| (0.0..=1.0).contains(&p.x) && (0.0..=1.0).contains(&p.y)));
        assert!(
            v[0].x < v[1].x && v[1].y < v[2].y,
            "clockwise from top-left: {v:?}"
        );
    }
    for line in &text.lines {
        let joined: Vec<&str> = line
            .word_indexes
            .iter()
            .map(|&i| text.words[i].text.as_str())
            .collect();
        assert_eq!(joined.join(" "), line.text);
        assert!((0.5..=1.0).contains(&line.confidence), "{line:?}");
    }
}

#[test]
fn the_local_reader_reads_a_sign_in_reading_order() {
    let text = reader().read(SIGN).expect("reads");
    assert_well_formed(&text);
    let found = words(&text);
    for expected in ["bakery", "fresh", "bread", "daily", "open"] {
        assert!(
            found.contains(&expected.to_string()),
            "{expected} in {found:?}"
        );
    }
    assert!(!found.contains(&"pizza".to_string()));
    // "BAKERY" is the first line, in the top left third of the sign.
    let first = &text.lines[0];
    assert_eq!(first.text.to_lowercase(), "bakery", "{:?}", text.lines);
    let corner = first.bounding_polygon.normalized_vertices[0];
    assert!(corner.x < 0.2 && corner.y < 0.35, "{corner:?}");
    let bread = text
        .words
        .iter()
        .find(|w| w.text.eq_ignore_ascii_case("bread"))
        .unwrap();
    let fresh = text
        .words
        .iter()
        .find(|w| w.text.eq_ignore_ascii_case("fresh"))
        .unwrap();
    assert!(
        fresh.bounding_polygon.normalized_vertices[1].x
            <= bread.bounding_polygon.normalized_vertices[0].x + 0.02,
        "words are placed left to right on their line"
    );
    assert!(reader().read(b"not an image").is_err());
}

#[test]
fn the_local_reader_reads_a_receipt_line_by_line() {
    let text = reader().read(RECEIPT).expect("reads");
    assert_well_formed(&text);
    assert!(text.lines.len() >= 15, "{} lines", text.lines.len());
    let all: String = text
        .lines
        .iter()
        .map(|l| l.text.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    for expected in ["grocery", "total", "53.82", "thank"] {
        assert!(all.contains(expected), "{expected} in\n{all}");
    }
    // Reading order: the shop's name comes before the total, the total before the thanks.
    let at = |s: &str| all.find(s).unwrap();
    assert!(at("grocery") < at("total") && at("total") < at("thank"));
}

#[test]
fn the_local_reader_reads_a_photographed_page() {
    let text = reader().read(PAGE).expect("reads");
    assert_well_formed(&text);
    let found = words(&text);
    // Words the local model reads apart (it runs some small words together: "markersof").
    for expected in [
        "segmentation",
        "determine",
        "unambiguously",
        "histogram",
        "pixels",
    ] {
        assert!(
            found.contains(&expected.to_string()),
            "{expected} in {found:?}"
        );
    }
    let heading = text.lines[0].text.to_lowercase();
    assert!(heading.contains("segmentation"), "{:?}", text.lines);
}

/// The app over `env`'s storage and database, as the web binary builds it.
fn app(env: &Env) -> App {
    env.soda(COLLECTION).ensure_collection(deadline(5)).unwrap();
    env.app(Settings {
        reconcile_grace: Duration::ZERO,
        ..Settings::default()
    })
}

fn call(app: &App, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let reply = app
        .handle(&ocivision::http::Request::fake(
            method, target, headers, body,
        ))
        .unwrap();
    let text = body_text(&reply);
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {target}: {text}"))
}

fn upload(app: &App, name: &str, bytes: &[u8], kind: &str) -> String {
    let reply = call(
        app,
        "PUT",
        &format!("/api/images/{name}"),
        &[("Content-Type", kind)],
        bytes,
    );
    reply["id"].as_str().expect("an id").to_string()
}

fn search_ids(app: &App, query: &str) -> Vec<String> {
    call(app, "GET", &format!("/api/images?{query}"), &[], b"")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn document(env: &Env, id: &str) -> Option<AnalysisDocument> {
    env.soda(COLLECTION)
        .get(
            &ocivision::soda::document_key("emulatorns", "images", &format!("uploads/{id}")),
            deadline(5),
        )
        .unwrap()
        .map(|d| AnalysisDocument::from_json(d.value).unwrap())
}

/// A stack whose Vision answers with `detector` and `text` (none: that feature's error), the
/// real `func` binary with `func_env` added to its settings, and the app over them.
fn reading_stack(
    tag: &str,
    detector: Arc<dyn Detector>,
    text: Option<Arc<dyn TextReader>>,
    func_env: &[(&str, &str)],
) -> (Env, FuncProcess, App) {
    let env = Env::start(tag);
    env.emulator.set_detector(Some(detector));
    env.emulator.set_text_reader(text);
    let func = spawn_func_with(&env, func_env);
    let app = app(&env);
    (env, func, app)
}

fn wait_done(env: &Env, id: &str) -> AnalysisDocument {
    let mut last = None;
    let done = wait_until(Duration::from_secs(120), || {
        last = document(env, id);
        last.as_ref().is_some_and(|d| d.status == Status::Done)
    });
    assert!(done, "{id} never done: {last:?}");
    last.unwrap()
}

#[test]
fn a_word_in_a_photo_finds_it_and_an_absent_word_does_not() {
    let (env, func, app) = reading_stack(
        "text-search",
        Arc::new(FixedDetector::default()),
        Some(reader()),
        &[],
    );
    let sign = upload(&app, "sign.png", SIGN, "image/png");
    let doc = wait_done(&env, &sign);
    assert!(doc.text_error.is_none(), "{:?}", doc.text_error);
    assert_eq!(
        doc.model_versions.text_detection.as_deref(),
        Some("PP-OCRv4 (local)")
    );
    assert!(doc.text.len() >= 3, "{:?}", doc.text);
    let line = &doc.text[0];
    assert_eq!(line.polygon.len(), 4);
    assert!(!line.words.is_empty() && line.words[0].confidence > 0.5);
    assert!(doc.terms.contains(&"bakery".to_string()), "{:?}", doc.terms);
    assert!(doc.terms.contains(&"cat".to_string()), "labels stay terms");

    env.emulator.clear_requests();
    assert_eq!(search_ids(&app, "q=bakery"), [sign.as_str()]);
    // The app's requests only: the function may still be finishing (its calls sign with its
    // resource-principal token, `ST$…`).
    let requests: Vec<_> = env
        .emulator
        .requests()
        .into_iter()
        .filter(|r| {
            !r.headers
                .iter()
                .any(|(k, v)| k == "authorization" && v.contains("keyId=\"ST$"))
        })
        .collect();
    assert_eq!(requests.len(), 1, "one SODA query: {requests:?}");
    assert!(requests[0].target.contains("action=query"));
    assert_eq!(search_ids(&app, "q=BREAD"), [sign.as_str()], "any case");
    assert_eq!(search_ids(&app, "q=pizza"), Vec::<String>::new());
    assert_eq!(
        search_ids(&app, "q=brea"),
        Vec::<String>::new(),
        "whole words"
    );
    assert_eq!(search_ids(&app, "q=cat"), [sign.as_str()], "labels too");
    assert_eq!(
        search_ids(&app, "label=cat"),
        [sign.as_str()],
        "label= still works"
    );
    // The gallery's search box sends `q`.
    let html = body_text(
        &app.handle(&ocivision::http::Request::fake(
            "GET",
            "/?q=daily",
            &[],
            b"",
        ))
        .unwrap(),
    );
    assert!(html.contains(&format!("data-id=\"{sign}\"")));
    assert!(html.contains("name=\"q\""));
    drop(func);
}

#[test]
fn accents_are_folded_in_stored_words_and_in_the_query() {
    // The reader may or may not keep the accent of "Café"; folding makes both forms match.
    let (env, func, app) = reading_stack(
        "text-accents",
        Arc::new(FixedDetector::default()),
        Some(reader()),
        &[],
    );
    let sign = upload(&app, "sign.png", SIGN, "image/png");
    let doc = wait_done(&env, &sign);
    assert!(doc.terms.contains(&"cafe".to_string()), "{:?}", doc.terms);
    for query in ["q=cafe", "q=CAF%C3%89", "q=caf%C3%A9"] {
        assert_eq!(search_ids(&app, query), [sign.as_str()], "{query}");
    }
    drop(func);
}

#[test]
fn a_photo_with_objects_and_text_keeps_both() {
    let (env, func, app) = reading_stack("text-objects", detector(), Some(reader()), &[]);
    let id = upload(&app, "dog-sign.jpg", DOG_SIGN, "image/jpeg");
    let doc = wait_done(&env, &id);
    let names: Vec<&str> = doc.objects.iter().map(|o| o.name.as_str()).collect();
    assert!(
        names.contains(&"Dog") && names.contains(&"Bicycle"),
        "{names:?}"
    );
    let lines: Vec<&str> = doc.text_lines().collect();
    assert!(
        lines.iter().any(|l| l.eq_ignore_ascii_case("bike shop")),
        "{lines:?}"
    );
    // The sign is in the bottom-right corner.
    let sign = doc
        .text
        .iter()
        .find(|l| l.text.eq_ignore_ascii_case("bike shop"))
        .unwrap();
    assert!(
        sign.polygon[0].x > 0.5 && sign.polygon[0].y > 0.75,
        "{:?}",
        sign.polygon
    );
    assert!(doc.model_versions.object_detection.is_some());
    assert!(doc.model_versions.text_detection.is_some());
    for query in ["q=shop", "q=dog", "q=vehicle"] {
        assert_eq!(search_ids(&app, query), [id.as_str()], "{query}");
    }
    // The result page lists the sign's line and draws it beside the dog's box.
    let page = app
        .handle(&ocivision::http::Request::fake(
            "GET",
            &format!("/images/{id}"),
            &[],
            b"",
        ))
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = body_text(&page);
    assert!(html.contains("<g class=\"box c0\""), "the boxes");
    assert!(html.contains("<g class=\"line\""), "the lines");
    assert!(
        html.to_uppercase().contains(">BIKE SHOP</LI>"),
        "the line listed"
    );
    drop(func);
}

/// Counts reads; never finds anything.
#[derive(Default)]
struct CountingReader(AtomicUsize);

impl TextReader for CountingReader {
    fn read(&self, _: &[u8]) -> Result<ImageText, String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(ImageText::default())
    }

    fn model_version(&self) -> String {
        "counting".into()
    }
}

/// Counts detections; answers as [`FixedDetector`].
#[derive(Default)]
struct CountingDetector(AtomicUsize);

impl Detector for CountingDetector {
    fn detect(&self, image: &[u8], max: usize) -> Result<Vec<ImageObject>, String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        FixedDetector::default().detect(image, max)
    }

    fn model_version(&self) -> String {
        "counting".into()
    }
}

#[test]
fn with_text_off_one_feature_is_asked_and_no_text_is_stored() {
    let objects = Arc::new(CountingDetector::default());
    let text = Arc::new(CountingReader::default());
    let (env, func, app) = reading_stack(
        "text-off",
        objects.clone(),
        Some(text.clone()),
        &[("VISION_TEXT", "off")],
    );
    let id = upload(&app, "sign.png", SIGN, "image/png");
    let doc = wait_done(&env, &id);
    assert_eq!(objects.0.load(Ordering::SeqCst), 1, "OBJECT_DETECTION once");
    assert_eq!(
        text.0.load(Ordering::SeqCst),
        0,
        "TEXT_DETECTION never asked"
    );
    assert!(doc.text.is_empty() && doc.text_error.is_none());
    assert_eq!(doc.model_versions.text_detection, None);
    let stored = env
        .soda(COLLECTION)
        .get(&doc.key(), deadline(5))
        .unwrap()
        .unwrap()
        .value;
    assert!(stored.get("text").is_none(), "{stored}");
    assert_eq!(stored["terms"], json!(["animal", "cat"]));
    drop(func);

    // With text on (the default) the same image costs the same one call, with both features.
    let objects = Arc::new(CountingDetector::default());
    let text = Arc::new(CountingReader::default());
    let (env, func, app) = reading_stack("text-on", objects.clone(), Some(text.clone()), &[]);
    let id = upload(&app, "sign.png", SIGN, "image/png");
    let doc = wait_done(&env, &id);
    let vision_calls = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.target == "/20220125/actions/analyzeImage")
        .count();
    assert_eq!(vision_calls, 1, "one call for both features");
    assert_eq!(
        (
            objects.0.load(Ordering::SeqCst),
            text.0.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert_eq!(
        doc.model_versions.text_detection.as_deref(),
        Some("counting")
    );
    drop(func);
}

#[test]
fn a_text_failure_leaves_the_objects_done() {
    // No text reader in the emulator: TEXT_DETECTION is that feature's error, objects stand.
    let (env, func, app) = reading_stack(
        "text-unavailable",
        Arc::new(FixedDetector::default()),
        None,
        &[],
    );
    let id = upload(&app, "sign.png", SIGN, "image/png");
    let doc = wait_done(&env, &id);
    assert_eq!(doc.objects.len(), 1);
    assert_eq!(doc.error, None);
    assert_eq!(
        doc.text_error.as_ref().map(|e| e.code.as_str()),
        Some("TextDetectionUnavailable")
    );
    assert_eq!(search_ids(&app, "q=cat"), [id.as_str()]);
    let page = app
        .handle(&ocivision::http::Request::fake(
            "GET",
            &format!("/images/{id}"),
            &[],
            b"",
        ))
        .unwrap();
    let html = body_text(&page);
    assert!(
        html.contains("The text could not be read: this emulator has no text reader"),
        "the page says why there is no text"
    );
    drop(func);
}

#[test]
fn a_document_written_before_text_renders_and_is_found_by_label() {
    let web = Web::start("text-old-document", Settings::default(), false);
    let id = web.upload("old.jpg", include_bytes!("../fixtures/photos/dog.jpg"));
    // Exactly the fields a document had before text detection: no `text`, no `text_error`,
    // no `model_versions.text_detection`, labels lower-cased but not folded.
    let b = web.env.bucket();
    let old = json!({
        "schema": 1, "image_name": format!("uploads/{id}"), "bucket_name": b.name,
        "namespace": b.namespace, "etag": "e-old", "size": 5, "content_type": "image/jpeg",
        "original_name": "old.jpg", "status": "done", "attempts": 1,
        "uploaded_at": "2025-03-01T10:15:31.000Z", "analyzed_at": "2025-03-01T10:15:33.000Z",
        "updated_at": "2025-03-01T10:15:33.000Z",
        "objects": [{"name": "Dog", "confidence": 0.9, "polygon": [{"x": 0.1, "y": 0.2},
            {"x": 0.5, "y": 0.2}, {"x": 0.5, "y": 0.9}, {"x": 0.1, "y": 0.9}]}],
        "labels": [], "ontology": [{"name": "Dog", "parents": ["Animal"]}],
        "terms": ["animal", "dog"], "model_versions": {"object_detection": "1.3"},
        "timings": {"vision_ms": 800}
    });
    web.soda
        .put(&web.key(&id), &old, deadline(5))
        .expect("old document written");
    let page = web.handle("GET", &format!("/images/{id}"), &[], b"");
    assert_eq!(page.status(), 200);
    assert!(body_text(&page).contains("Dog"));
    let api = web.get(&format!("/api/images/{id}")).json();
    assert_eq!(api["document"]["status"], "done", "{api}");
    for query in ["label=dog", "label=Animal", "q=dog", "q=DOG"] {
        let found = web.get(&format!("/api/images?{query}")).json();
        let ids: Vec<&str> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "{query}");
    }
    let html = body_text(&page);
    assert!(!html.contains("Text in the photo") && !html.contains("show-lines"));
    assert!(html.contains("id=\"show-boxes\""));
    let doc = web.document(&id).unwrap();
    assert!(doc.text.is_empty() && doc.text_error.is_none());
}

/// A `done` document for `id` with `lines` of text (each a rectangle, one below the other).
fn write_with_text(web: &Web, id: &str, lines: &[(&str, f64)]) {
    web.write_done(id, &[("Dog", 0.9, [0.1, 0.2, 0.6, 0.9])]);
    let mut doc = web.document(id).unwrap();
    doc.text = lines
        .iter()
        .enumerate()
        .map(|(i, (text, confidence))| {
            let top = 0.05 + i as f64 * 0.06;
            TextLine {
                text: text.to_string(),
                confidence: *confidence,
                polygon: rectangle([0.1, top, 0.7, top + 0.04]),
                words: Vec::new(),
            }
        })
        .collect();
    doc.model_versions.text_detection = Some("PP-OCRv4 (local)".into());
    doc.terms = doc.search_terms();
    web.soda
        .put(&web.key(id), &doc.to_json(), deadline(5))
        .unwrap();
}

#[test]
fn the_result_page_lists_the_lines_in_order_and_draws_them() {
    let web = Web::start("text-page", Settings::default(), false);
    let id = web.upload("receipt.png", RECEIPT);
    write_with_text(
        &web,
        &id,
        &[
            ("CORNER GROCERY", 0.98),
            ("Milk 2.49", 0.93),
            ("<script>alert(1)</script> & \"TOTAL\"", 0.61),
        ],
    );
    let html = body_text(&web.handle("GET", &format!("/images/{id}"), &[], b""));
    // The lines as text, in reading order, escaped.
    let list = &html[html.find("id=\"text-lines\"").expect("the lines' list")..];
    let list = &list[..list.find("</ol>").unwrap()];
    let at = |s: &str| list.find(s).unwrap_or_else(|| panic!("{s} in {list}"));
    assert!(at("CORNER GROCERY") < at("Milk 2.49"));
    assert!(at("Milk 2.49") < at("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;TOTAL&quot;"));
    assert!(!html.contains("<script>alert"), "escaped everywhere");
    assert!(list.contains("aria-label=\"3 lines, in reading order\""));
    // Drawn on the picture, each with its confidence for the slider, beside the boxes' toggle.
    assert_eq!(html.matches("<g class=\"line\" data-line=").count(), 3);
    assert!(html.contains("data-line=\"2\" data-confidence=\"0.6100\""));
    assert!(html.contains("id=\"show-boxes\" checked"));
    assert!(html.contains("id=\"show-lines\" checked"));
    // The copy button (shown by the script) and the status line it reports to.
    assert!(html.contains("id=\"copy-text\" hidden"));
    assert!(html.contains("id=\"copy-status\" role=\"status\""));
    assert!(html.contains("1 object and 3 lines of text found by the local model"));
    assert!(html.contains("<dt>Text model</dt><dd>PP-OCRv4 (local)</dd>"));

    // Text asked for and none found: said so, with no list, toggle or copy button.
    let blank = web.upload("blank.png", SIGN);
    write_with_text(&web, &blank, &[]);
    let html = body_text(&web.handle("GET", &format!("/images/{blank}"), &[], b""));
    assert!(html.contains("No text was found in this image."));
    assert!(!html.contains("id=\"text-lines\"") && !html.contains("show-lines"));
    assert!(!html.contains("copy-text"));
}
