//! Photos as phones take them (issue 23): all eight EXIF orientations come out upright in the
//! thumbnail and the preview; CMYK and YCCK JPEGs keep their colours; the ICC profile is carried
//! and GPS never copied; the date taken and the camera reach the document and the API; a
//! sideways-stored photo is analysed upright, its boxes and text lines in the upright frame; a 24 MP, 10 MB
//! photo goes end to end; 50 MiB is taken and one byte more refused before the body is read; a
//! connection dropped in the middle of a large upload leaves nothing behind; formats that
//! cannot be taken are named.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ocivision::oci::object_storage::ListOptions;
use ocivision::web::Settings;
use serde_json::Value;

use crate::support::emulator::{deadline, TempDir};
use crate::support::photos::{decode, quadrants, with_exif, PhoneExif, Picture};
use crate::support::web::Web;
use crate::support::Webapp;

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");
/// The dog photo with a "BIKE SHOP" sign in its bottom-right corner (issue 25's fixtures).
const DOG_SIGN: &[u8] = include_bytes!("../fixtures/text/dog-sign.jpg");

/// Red, green, blue, yellow: the quadrants' colours, top-left, top-right, bottom-left,
/// bottom-right.
const QUADRANTS: [([f64; 4], [f64; 3]); 4] = [
    ([0.1, 0.1, 0.4, 0.4], [220.0, 30.0, 30.0]),
    ([0.6, 0.1, 0.9, 0.4], [30.0, 200.0, 30.0]),
    ([0.1, 0.6, 0.4, 0.9], [30.0, 30.0, 220.0]),
    ([0.6, 0.6, 0.9, 0.9], [230.0, 220.0, 30.0]),
];

fn close(got: [f64; 3], want: [f64; 3], tolerance: f64) -> bool {
    got.iter()
        .zip(want)
        .all(|(g, w)| (g - w).abs() <= tolerance)
}

fn rendition(web: &Web, id: &str, which: &str) -> Picture {
    let reply = web.get(&format!("/images/{id}/{which}"));
    assert_eq!(reply.status, 200, "{which} of {id}");
    decode(&reply.body)
}

fn uploads(web: &Web) -> Vec<String> {
    let options = ListOptions {
        prefix: Some("uploads/".into()),
        ..ListOptions::default()
    };
    let bucket = web.env.bucket();
    web.env
        .object_storage()
        .list(&bucket, options, deadline(5))
        .map(|o| o.unwrap().name)
        .collect()
}

fn documents(web: &Web) -> usize {
    web.soda
        .query(&serde_json::json!({}), deadline(5))
        .unwrap()
        .count()
}

#[test]
fn all_eight_orientations_come_out_upright_in_thumbnail_and_preview() {
    let web = Web::start("photos-orientations", Settings::default(), false);
    let upright = quadrants(640, 480);
    for tag in 1..=8u16 {
        let stored = upright.stored_for(tag);
        let exif = PhoneExif {
            orientation: Some(tag),
            ..PhoneExif::default()
        };
        let id = web.upload(
            &format!("turned-{tag}.jpg"),
            &with_exif(&stored.jpeg(92), &exif),
        );
        for (which, size) in [("thumb", (400, 300)), ("preview", (640, 480))] {
            let picture = rendition(&web, &id, which);
            assert_eq!(
                (picture.width, picture.height),
                size,
                "{which}, orientation {tag}"
            );
            for (area, colour) in QUADRANTS {
                let got = picture.mean(area);
                assert!(
                    close(got, colour, 40.0),
                    "{which}, orientation {tag}: {area:?} is {got:?}, not {colour:?}"
                );
            }
        }
        let doc = web.document(&id).expect("the pending document");
        assert_eq!(
            (doc.width, doc.height),
            (Some(640), Some(480)),
            "upright size, tag {tag}"
        );
        // The original is stored byte for byte, EXIF and all.
        let raw = web.get(&format!("/images/{id}/raw"));
        assert_eq!(raw.body, with_exif(&stored.jpeg(92), &exif), "tag {tag}");
    }
}

#[test]
fn cmyk_and_ycck_jpegs_keep_their_colours() {
    let web = Web::start("photos-cmyk", Settings::default(), false);
    let original = quadrants(800, 600);
    for ycck in [false, true] {
        let id = web.upload("print.jpg", &original.cmyk_jpeg(ycck));
        let thumb = rendition(&web, &id, "thumb");
        for (area, colour) in QUADRANTS {
            let got = thumb.mean(area);
            assert!(
                close(got, colour, 16.0),
                "{} {area:?}: {got:?}, not {colour:?}",
                if ycck { "YCCK" } else { "CMYK" }
            );
        }
    }
}

/// A made-up RGB ICC profile: the header's colour space says `RGB `, the rest is filler.
fn rgb_profile() -> Vec<u8> {
    let mut profile = vec![0u8; 560];
    profile[..4].copy_from_slice(&560u32.to_be_bytes());
    profile[12..16].copy_from_slice(b"mntr");
    profile[16..20].copy_from_slice(b"RGB ");
    profile[36..40].copy_from_slice(b"acsp");
    profile[100..124].copy_from_slice(b"ocivision-test-profile!!");
    profile
}

fn with_icc(jpeg: &[u8], profile: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE2]);
    out.extend_from_slice(&((profile.len() + 16) as u16).to_be_bytes());
    out.extend_from_slice(b"ICC_PROFILE\0");
    out.extend_from_slice(&[1, 1]);
    out.extend_from_slice(profile);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn date_taken_and_camera_are_kept_gps_is_not_and_the_profile_is_carried() {
    let web = Web::start("photos-exif", Settings::default(), false);
    let exif = PhoneExif {
        orientation: Some(1),
        make: Some("Google"),
        model: Some("Pixel 8 Pro"),
        taken: Some("2025:06:14 18:03:09"),
        offset: Some("+02:00"),
        gps_marker: Some("GPS-MARKER-51N"),
    };
    let photo = with_exif(
        &with_icc(&quadrants(640, 480).jpeg(90), &rgb_profile()),
        &exif,
    );
    let id = web.upload("holiday.jpg", &photo);

    let doc = web.document(&id).expect("document");
    assert_eq!(doc.taken_at.as_deref(), Some("2025-06-14T18:03:09+02:00"));
    assert_eq!(doc.taken_local.as_deref(), Some("2025-06-14T18:03:09"));
    assert_eq!(doc.camera_make.as_deref(), Some("Google"));
    assert_eq!(doc.camera_model.as_deref(), Some("Pixel 8 Pro"));
    let api = web.get(&format!("/api/images/{id}")).json();
    assert_eq!(api["document"]["taken_at"], "2025-06-14T18:03:09+02:00");
    let listed = web.get("/api/images").json();
    assert_eq!(
        listed["items"][0]["taken_at"], "2025-06-14T18:03:09+02:00",
        "{listed}"
    );
    let page = web.get(&format!("/images/{id}")).text();
    assert!(
        page.contains("14 June 2025"),
        "the result page says when it was taken"
    );
    assert!(page.contains("Pixel 8 Pro"), "and with what");

    // Newest taken first: an older photo uploaded later comes after it, one without a date is
    // not in that order at all.
    let older = PhoneExif {
        taken: Some("2019:01:02 03:04:05"),
        ..PhoneExif::default()
    };
    let older_id = web.upload("older.jpg", &with_exif(&quadrants(64, 48).jpeg(80), &older));
    let undated = web.upload("undated.jpg", &quadrants(64, 40).jpeg(80));
    let by_taken = web.get("/api/images?order=taken").json();
    let ids: Vec<&str> = by_taken["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str(), older_id.as_str()], "{by_taken}");
    let by_upload = web.get("/api/images").json();
    assert_eq!(by_upload["items"][0]["id"], undated.as_str());
    assert!(web.get("/?order=taken").text().contains("newest taken"));
    assert_eq!(web.get("/api/images?order=sideways").status, 400);

    let needle = b"GPS-MARKER";
    let has = |bytes: &[u8], what: &[u8]| bytes.windows(what.len()).any(|w| w == what);
    assert!(has(&photo, needle), "the original holds GPS");
    for which in ["thumb", "preview"] {
        let bytes = web.get(&format!("/images/{id}/{which}")).body;
        assert!(
            !has(&bytes, needle) && !has(&bytes, b"Exif\0"),
            "{which} carries no EXIF"
        );
        assert!(
            has(&bytes, b"ocivision-test-profile"),
            "{which} carries the ICC profile"
        );
    }
    let raw_doc = web.get(&format!("/api/images/{id}")).text();
    assert!(!raw_doc.contains("GPS"), "{raw_doc}");
    assert!(!page.contains("GPS-MARKER"));
    // The original keeps everything: it is the person's photo.
    assert_eq!(web.get(&format!("/images/{id}/raw")).body, photo);
}

#[test]
fn formats_that_cannot_be_taken_are_named_and_damaged_files_are_not_stored() {
    let web = Web::start("photos-formats", Settings::default(), false);
    let put = |name: &str, body: &[u8]| {
        web.fetch(
            "PUT",
            &format!("/api/images/{name}"),
            &[("Content-Type", "application/octet-stream")],
            body,
        )
    };
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heicmiaf\0\0\0\0";
    let reply = put("IMG_0001.HEIC", heic);
    assert_eq!(reply.status, 415);
    let text = reply.text();
    assert!(
        text.contains("HEIC") && text.contains("JPEG and PNG"),
        "{text}"
    );
    let reply = put("a.webp", b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0");
    assert_eq!(reply.status, 415);
    assert!(reply.text().contains("WebP"), "{}", reply.text());
    let reply = put("a.dng", b"II*\0\x08\0\0\0\0\0\0\0");
    assert_eq!(reply.status, 415);
    assert!(reply.text().contains("raw"), "{}", reply.text());

    // A JPEG cut off in its image data: a clear 4xx, and nothing stored.
    let cut = &DOG[..DOG.len() * 6 / 10];
    let reply = put("cut.jpg", cut);
    assert!(
        (400..500).contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text()
    );
    assert!(reply.text().contains("damaged"), "{}", reply.text());
    assert!(
        uploads(&web).is_empty(),
        "nothing stored: {:?}",
        uploads(&web)
    );
    assert_eq!(documents(&web), 0, "no document");
}

/// Sends a request head, then `body`, then either the rest or nothing, over a raw socket.
fn raw_put(web: &Web, length: u64, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(web.server.tcp_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "PUT /api/images/big.jpg HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream
}

/// `DOG` followed by zeros up to `size` bytes: a valid JPEG of that size (bytes after the
/// end-of-image marker are ignored by decoders, as phones' trailers are).
fn padded_dog(size: usize) -> Vec<u8> {
    let mut bytes = DOG.to_vec();
    bytes.resize(size, 0);
    bytes
}

#[test]
fn fifty_mib_is_taken_and_one_byte_more_is_refused_before_the_body() {
    let web = Web::start("photos-limit", Settings::default(), false);
    let limit = 50 * 1024 * 1024;
    // curl asks `Expect: 100-continue` for large bodies: the answer comes before any body byte
    // is invited. A client that does not ask gets it after its first bytes, and the rest of
    // its 50 MB is never read.
    for (expect, first_bytes) in [(true, 0), (false, 16 * 1024)] {
        let mut stream = TcpStream::connect(web.server.tcp_addr().unwrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "PUT /api/images/big.jpg HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n{}\r\n",
            limit + 1,
            if expect { "Expect: 100-continue\r\n" } else { "" }
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .write_all(&padded_dog(limit as usize + 1)[..first_bytes])
            .unwrap();
        let started = Instant::now();
        let mut answer = vec![0; 4096];
        let n = stream.read(&mut answer).unwrap_or(0);
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "expect {expect}: {answer}"
        );
        assert!(answer.contains("50.0 MB"), "names the limit: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "expect {expect}: at once"
        );
    }

    let body = padded_dog(limit as usize);
    let reply = web.fetch(
        "PUT",
        "/api/images/big.jpg",
        &[("Content-Type", "image/jpeg")],
        &body,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap().to_string();
    let info = web
        .env
        .object_storage()
        .head(&web.env.bucket(), &format!("uploads/{id}"), deadline(5))
        .unwrap()
        .expect("stored");
    assert_eq!(info.content_length, limit);
    assert_eq!(web.document(&id).unwrap().size, limit);
}

#[test]
fn a_connection_dropped_in_the_middle_of_a_large_upload_leaves_nothing_behind() {
    let web = Web::start("photos-dropped", Settings::default(), false);
    let body = padded_dog(20 * 1024 * 1024);
    let spools = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("ocivision-upload-")
            })
            .count()
    };
    for (what, sent) in [("raw PUT", 6 * 1024 * 1024), ("raw PUT, head only", 100)] {
        let stream = raw_put(&web, body.len() as u64, &body[..sent]);
        std::thread::sleep(Duration::from_millis(200));
        drop(stream);
        // The server notices the close, abandons the spool and with it the object PUT.
        let until = Instant::now() + Duration::from_secs(10);
        while web.app.uploads_in_flight() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(web.app.uploads_in_flight(), 0, "{what}: the upload ended");
        assert!(
            uploads(&web).is_empty(),
            "{what}: no object: {:?}",
            uploads(&web)
        );
        assert_eq!(documents(&web), 0, "{what}: no document");
    }
    // And the same through the form: the part is cut short.
    let mut stream = TcpStream::connect(web.server.tcp_addr().unwrap()).unwrap();
    let boundary = "----cut";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&body[..4 * 1024 * 1024]);
    let head = format!(
        "POST /api/images HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len() + 200
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&form).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(stream);
    let until = Instant::now() + Duration::from_secs(10);
    while web.app.uploads_in_flight() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(uploads(&web).is_empty(), "form: no object");
    assert_eq!(documents(&web), 0, "form: no document");
    // Other tests' uploads create spools too, each visible for the instant between its
    // creation and its unlinking: a file left behind is one still there a moment later.
    let left = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(30));
            spools()
        })
        .min()
        .unwrap_or(0);
    assert_eq!(
        left, 0,
        "no spool file is left on disk (they are unlinked at once)"
    );
}

fn local_app(dir: &std::path::Path) -> Webapp {
    let data = dir.display().to_string();
    let env = [("HOME", &data), ("OCIVISION_DATA", &data)];
    Webapp::run(&[], env.map(|(k, v)| (k.into(), v.clone())).to_vec(), None)
}

fn upload_and_wait(app: &Webapp, name: &str, bytes: &[u8]) -> Value {
    let mut reply = ureq::put(format!("http://{}/api/images/{name}", app.addr))
        .header("content-type", "image/jpeg")
        .send(bytes)
        .unwrap();
    assert_eq!(reply.status().as_u16(), 201);
    let id = reply.body_mut().read_json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    loop {
        let mut reply = ureq::get(format!("http://{}/api/images/{id}", app.addr))
            .call()
            .unwrap();
        let body: Value = reply.body_mut().read_json().unwrap();
        match body["document"]["status"].as_str() {
            Some("done") => return body,
            Some("failed") => panic!("{name}: analysis failed: {body}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{name}: not done"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(label, [left, top, right, bottom])` of each detected object.
fn boxes(answer: &Value) -> Vec<(String, [f64; 4])> {
    answer["document"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                bounds(&o["polygon"]),
            )
        })
        .collect()
}

/// `[left, top, right, bottom]` of a polygon as the document stores it (`[{x, y}, …]`).
fn bounds(polygon: &Value) -> [f64; 4] {
    let corners = polygon.as_array().unwrap();
    let xs: Vec<f64> = corners.iter().map(|v| v["x"].as_f64().unwrap()).collect();
    let ys: Vec<f64> = corners.iter().map(|v| v["y"].as_f64().unwrap()).collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    [min(&xs), min(&ys), max(&xs), max(&ys)]
}

fn overlap(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

#[test]
fn a_photo_stored_sideways_is_analysed_upright_with_its_boxes_in_the_upright_frame() {
    let dir = TempDir::new("photos-sideways");
    let app = local_app(dir.path());
    let upright = decode(DOG);
    let exif = PhoneExif {
        orientation: Some(6),
        ..PhoneExif::default()
    };
    let sideways = with_exif(&upright.stored_for(6).jpeg(95), &exif);
    let reference = boxes(&upload_and_wait(&app, "upright.jpg", DOG));
    let turned_answer = upload_and_wait(&app, "sideways.jpg", &sideways);
    let turned = boxes(&turned_answer);
    let copy = &turned_answer["document"]["analyzed"]["upright_copy"];
    assert!(
        copy["reason"]
            .as_str()
            .unwrap_or("")
            .contains("orientation 6"),
        "Vision saw the upright copy: {turned_answer}"
    );
    assert_eq!(
        (copy["width"].as_u64(), copy["height"].as_u64()),
        (Some(768), Some(576))
    );
    assert_eq!(turned_answer["document"]["width"], 768);
    for label in ["Dog", "Bicycle"] {
        let a = reference.iter().find(|(l, _)| l == label).expect(label).1;
        let b = turned
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("{label} found in the sideways photo: {turned:?}"))
            .1;
        assert!(
            overlap(a, b) > 0.8,
            "{label}: upright {a:?}, sideways-stored {b:?} (IoU {:.2})",
            overlap(a, b)
        );
    }
}

/// `[left, top, right, bottom]` of the first text line containing `needle` (any case).
fn text_box(answer: &Value, needle: &str) -> Option<[f64; 4]> {
    let line = answer["document"]["text"].as_array()?.iter().find(|l| {
        l["text"]
            .as_str()
            .is_some_and(|t| t.to_uppercase().contains(needle))
    })?;
    Some(bounds(&line["polygon"]))
}

#[test]
fn a_sideways_photo_s_text_is_read_upright_and_placed_in_the_upright_frame() {
    let dir = TempDir::new("photos-sideways-text");
    let app = local_app(dir.path());
    let exif = PhoneExif {
        orientation: Some(6),
        ..PhoneExif::default()
    };
    let sideways = with_exif(&decode(DOG_SIGN).stored_for(6).jpeg(95), &exif);
    let upright = upload_and_wait(&app, "sign-upright.jpg", DOG_SIGN);
    let turned = upload_and_wait(&app, "sign-sideways.jpg", &sideways);
    let a = text_box(&upright, "BIKE SHOP").expect("the sign read in the upright photo");
    let b = text_box(&turned, "BIKE SHOP")
        .unwrap_or_else(|| panic!("the sign read in the sideways photo: {turned}"));
    // The sign is in the bottom-right corner of the upright photo, whichever way it was stored.
    assert!(b[0] > 0.5 && b[1] > 0.75, "{b:?}");
    assert!(
        overlap(a, b) > 0.8,
        "upright {a:?}, sideways-stored {b:?} (IoU {:.2})",
        overlap(a, b)
    );
}

#[test]
fn a_24_megapixel_10_mb_phone_photo_goes_end_to_end() {
    let dir = TempDir::new("photos-24mp");
    let app = local_app(dir.path());
    let photo = crate::support::photos::phone_photo_24mp();
    assert!(
        (8_000_000..13_000_000).contains(&photo.len()),
        "about 10 MB: {}",
        photo.len()
    );
    let answer = upload_and_wait(&app, "PXL_24mp.jpg", &photo);
    let doc = &answer["document"];
    assert_eq!(
        (doc["width"].as_u64(), doc["height"].as_u64()),
        (Some(6000), Some(4000))
    );
    assert_eq!(doc["size"].as_u64(), Some(photo.len() as u64));
    let copy = &doc["analyzed"]["upright_copy"];
    assert!(
        copy["reason"].as_str().unwrap_or("").contains("MB"),
        "{answer}"
    );
    assert!(copy["bytes"].as_u64().unwrap() <= 5_000_000, "{copy}");
    assert_eq!(
        (copy["width"].as_u64(), copy["height"].as_u64()),
        (Some(3000), Some(2000))
    );
    let id = answer["id"].as_str().unwrap();
    let mut thumb = Vec::new();
    ureq::get(format!("http://{}/images/{id}/thumb", app.addr))
        .call()
        .unwrap()
        .body_mut()
        .as_reader()
        .read_to_end(&mut thumb)
        .unwrap();
    let thumb = decode(&thumb);
    assert_eq!((thumb.width, thumb.height), (400, 267));
}
