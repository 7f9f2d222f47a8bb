//! The gallery at real-photo scale: thumbnails and previews made at upload, served, deleted
//! with the image and made again by the reconciler; a label search that finds an image only a
//! later listing page holds, in one query; ontology parents from the local detector's classes
//! ("vehicle" finds a motorcycle) through the real function; and a PNG decompression bomb,
//! which gets the placeholder while the server carries on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocivision::oci::object_storage::Condition;
use ocivision::web::{App, Settings};
use serde_json::Value;

use crate::support::emulator::{deadline, spawn_func, Env, FixedDetector};
use crate::support::wait_until;
use crate::support::web::{body_text, Web, COLLECTION};

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");
const CAT: &[u8] = include_bytes!("../fixtures/photos/chelsea.png");
const BOMB: &[u8] = include_bytes!("../fixtures/bomb-10000x10000.png");

fn settings() -> Settings {
    Settings {
        reconcile_grace: Duration::ZERO,
        ..Settings::default()
    }
}

/// Width and height of a JPEG.
fn jpeg_size(bytes: &[u8]) -> (u16, u16) {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().expect("a JPEG");
    let info = decoder.info().unwrap();
    (info.width, info.height)
}

fn exists(web: &Web, name: &str) -> bool {
    web.env
        .object_storage()
        .head(&web.env.bucket(), name, deadline(5))
        .unwrap()
        .is_some()
}

#[test]
fn gallery_renditions_are_made_served_deleted_and_made_again() {
    let web = Web::start("gallery-renditions", settings(), false);
    let dog = web.upload("dog.jpg", DOG);
    let cat = web.upload("chelsea.png", CAT);
    for id in [&dog, &cat] {
        assert!(
            exists(&web, &format!("thumbs/{id}.jpg")),
            "thumbnail of {id}"
        );
        assert!(
            exists(&web, &format!("previews/{id}.jpg")),
            "preview of {id}"
        );
    }

    // Served as JPEG, at most 400 px (thumbnail) and never enlarged (preview).
    let thumb = web.get(&format!("/images/{dog}/thumb"));
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    assert!(thumb.header("cache-control").unwrap().contains("max-age"));
    assert_eq!(jpeg_size(&thumb.body), (400, 300));
    assert!(thumb.body.len() < 60_000, "{} bytes", thumb.body.len());
    let preview = web.get(&format!("/images/{dog}/preview"));
    assert_eq!(jpeg_size(&preview.body), (768, 576));
    assert_eq!(
        jpeg_size(&web.get(&format!("/images/{cat}/thumb")).body),
        (400, 266)
    );

    // The pages use them; the original only behind an explicit download.
    let gallery = body_text(&web.handle("GET", "/", &[], b""));
    assert!(
        gallery.contains(&format!("src=\"/images/{dog}/thumb\"")),
        "{gallery}"
    );
    assert!(!gallery.contains("/raw\""), "no original in the gallery");
    let detail = body_text(&web.handle("GET", &format!("/images/{dog}"), &[], b""));
    assert!(detail.contains(&format!("src=\"/images/{dog}/preview\"")));
    assert!(detail.contains(&format!("href=\"/images/{dog}/raw\" download")));

    // Lost renditions come back with the reconciler; orphans go.
    let thumb_name = format!("thumbs/{dog}.jpg");
    let storage = web.env.object_storage();
    storage
        .delete(&web.env.bucket(), &thumb_name, Condition::None, deadline(5))
        .unwrap();
    let missing = web.get(&format!("/images/{dog}/thumb"));
    assert_eq!(missing.status, 200, "a placeholder while it is missing");
    assert_eq!(missing.header("cache-control"), Some("no-store"));
    assert_eq!(jpeg_size(&missing.body), (400, 300));
    let orphan = "thumbs/0123456789abcdef01234567.jpg.jpg";
    web.env.put_object(orphan, &missing.body, &[]);
    let report = ocivision::web::reconcile(&web.app).unwrap();
    assert_eq!(
        report.created_renditions,
        [format!("uploads/{dog}")],
        "{report:?}"
    );
    assert_eq!(
        report.removed_renditions,
        [orphan.to_string()],
        "{report:?}"
    );
    assert!(exists(&web, &format!("thumbs/{dog}.jpg")) && !exists(&web, orphan));
    let again = ocivision::web::reconcile(&web.app).unwrap();
    assert!(again.created_renditions.is_empty() && again.removed_renditions.is_empty());

    // Deleted with the image.
    assert_eq!(
        web.fetch("DELETE", &format!("/api/images/{dog}"), &[], b"")
            .status,
        200
    );
    assert!(!exists(&web, &format!("thumbs/{dog}.jpg")));
    assert!(!exists(&web, &format!("previews/{dog}.jpg")));
    assert!(
        exists(&web, &format!("thumbs/{cat}.jpg")),
        "the other image keeps its own"
    );
}

#[test]
fn gallery_label_search_finds_an_image_on_a_later_page_in_one_query() {
    let mut settings = settings();
    settings.page_size = 2;
    let web = Web::start("gallery-search", settings, false);
    let mut ids: Vec<String> = (0..7u32)
        .map(|i| web.upload(&format!("img{i}.png"), &[CAT, &[i as u8]].concat()))
        .collect();
    ids.sort();
    // ids sort newest first: the giraffe is the oldest image, on the listing's fourth page.
    let oldest = ids.last().unwrap().clone();
    for id in &ids {
        let objects: &[(&str, f64, [f64; 4])] = if *id == oldest {
            &[
                ("Giraffe", 0.9, [0.1, 0.1, 0.5, 0.5]),
                ("Person", 0.8, [0.2, 0.2, 0.3, 0.3]),
            ]
        } else {
            &[
                ("Person", 0.8, [0.2, 0.2, 0.3, 0.3]),
                ("Person", 0.7, [0.5, 0.5, 0.6, 0.6]),
            ]
        };
        web.write_done(id, objects);
    }
    let first = web.get("/api/images").json();
    assert!(!first["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == oldest.as_str()));

    web.env.emulator.clear_requests();
    let found = web.get("/api/images?label=GIRAFFE").json();
    let requests = web.env.emulator.requests();
    assert_eq!(requests.len(), 1, "one query, no listing: {requests:?}");
    assert!(requests[0].target.contains("action=query"));
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["id"], oldest.as_str());
    assert_eq!(found["next"], Value::Null);
    // Labels are unique names with a count; `objects` stays the number of boxes.
    let person = web.get("/api/images?label=person&status=done").json();
    let page = person["items"].as_array().unwrap();
    assert_eq!(page.len(), 2, "a full page of the seven");
    assert_eq!(
        page[0]["labels"],
        serde_json::json!([{"name": "Person", "count": 2}])
    );
    assert_eq!(page[0]["objects"], 2);
    // Later pages continue where the search left off, newest first, without repeats.
    let mut seen: Vec<String> = page
        .iter()
        .map(|i| i["id"].as_str().unwrap().into())
        .collect();
    let mut next = person["next"].as_str().map(str::to_string);
    while let Some(start) = next {
        let more = web
            .get(&format!(
                "/api/images?label=person&status=done&start={start}"
            ))
            .json();
        seen.extend(
            more["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        next = more["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen, ids, "every image once, newest first");
    // The gallery's filter is the same search.
    let html = body_text(&web.handle("GET", "/?label=giraffe", &[], b""));
    assert!(html.contains(&format!("data-id=\"{oldest}\"")));
    assert_eq!(html.matches("class=\"card\"").count(), 1);
    let none = body_text(&web.handle("GET", "/?label=zebra", &[], b""));
    assert!(none.contains("No image matches the filter."));
}

#[test]
fn gallery_vehicle_finds_a_motorcycle_through_the_local_ontology() {
    // The emulator's Vision adds the local detector's ontology parents; the real function
    // binary stores them as search terms; the web app's search finds them.
    let env = Env::start("gallery-ontology");
    env.emulator
        .set_detector(Some(Arc::new(FixedDetector::labelled("Motorcycle"))));
    let func = spawn_func(&env);
    let soda = env.soda(COLLECTION);
    soda.ensure_collection(deadline(5)).unwrap();
    let app = App::new(env.object_storage(), env.bucket(), soda, None, settings());
    let request = ocivision::http::Request::fake(
        "PUT",
        "/api/images/ride.jpg",
        &[("Content-Type", "image/jpeg")],
        DOG,
    );
    let reply = app.handle(&request).unwrap();
    assert_eq!(reply.status(), 201, "{}", body_text(&reply));
    let search = |label: &str| -> Value {
        let path = format!("/api/images?label={label}");
        let reply = app.handle(&ocivision::http::Request::fake("GET", &path, &[], b""));
        serde_json::from_str(&body_text(&reply.unwrap())).unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(30), || search("vehicle")["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1)),
        "vehicle never found the motorcycle"
    );
    let found = search("Vehicle");
    assert_eq!(found["items"][0]["labels"][0]["name"], "Motorcycle");
    assert_eq!(search("motorcycle")["items"].as_array().unwrap().len(), 1);
    assert_eq!(search("animal")["items"].as_array().unwrap().len(), 0);
    drop(func);
}

#[test]
fn gallery_png_bomb_gets_the_placeholder_and_the_server_carries_on() {
    let web = Web::start("gallery-bomb", settings(), false);
    let started = Instant::now();
    let reply = web.fetch(
        "PUT",
        "/api/images/bomb.png",
        &[("Content-Type", "image/png")],
        BOMB,
    );
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 201, "accepted: Vision takes 10000 × 10000 px");
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("placeholder"), "{message}");
    assert!(message.contains("50 MP"), "says why: {message}");
    assert!(elapsed < Duration::from_secs(5), "not decoded: {elapsed:?}");
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let thumb = web.get(&format!("/images/{id}/thumb"));
    assert_eq!(jpeg_size(&thumb.body), (400, 300));
    assert!(
        thumb.header("cache-control").unwrap().contains("max-age"),
        "the placeholder is its stored rendition"
    );
    // The server is fine: it answers and takes the next upload as usual.
    assert_eq!(web.get("/healthz").status, 200);
    let dog = web.upload("dog.jpg", DOG);
    assert_eq!(
        jpeg_size(&web.get(&format!("/images/{dog}/thumb")).body),
        (400, 300)
    );
}
