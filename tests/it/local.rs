//! Local mode end to end: the `webapp` binary with no cloud configuration runs the whole
//! pipeline (emulator, local detector, the function behind the Fn contract); an uploaded photo
//! becomes a `done` document with the right objects, and survives a restart.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::emulator::TempDir;
use crate::support::Webapp;

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");

fn start(data: &std::path::Path) -> Webapp {
    let data = data.display().to_string();
    let env = [("HOME", &data), ("OCIVISION_DATA", &data)];
    let app = Webapp::run(&[], env.map(|(k, v)| (k.into(), v.clone())).to_vec(), None);
    assert!(
        app.log().contains("mode: local"),
        "the start-up log says local mode and why: {}",
        app.log()
    );
    app
}

fn images(app: &Webapp) -> Vec<Value> {
    let mut reply = ureq::get(format!("http://{}/api/images", app.addr))
        .call()
        .unwrap();
    let body: Value = reply.body_mut().read_json().unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_uploaded_photo_is_analysed_locally_and_survives_a_restart() {
    let dir = TempDir::new("local-mode");
    let app = start(dir.path());
    let mut reply = ureq::put(format!("http://{}/api/images/my%20dog.jpg", app.addr))
        .header("content-type", "image/jpeg")
        .send(DOG)
        .unwrap();
    assert_eq!(reply.status().as_u16(), 201);
    let uploaded: Value = reply.body_mut().read_json().unwrap();
    let id = uploaded["id"].as_str().unwrap().to_string();

    let started = Instant::now();
    let done = loop {
        let found = images(&app).into_iter().find(|i| i["id"] == id.as_str());
        match found {
            Some(item) if item["status"] == "done" => break item,
            Some(item) if item["status"] == "failed" => panic!("analysis failed: {item}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not done within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let labels: Vec<&str> = done["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert!(labels.contains(&"Dog"), "{labels:?}");
    assert!(labels.contains(&"Bicycle"), "{labels:?}");
    // The local model's ontology: its bicycle makes the photo a vehicle, its dog an animal.
    for label in ["vehicle", "animal"] {
        let mut reply = ureq::get(format!("http://{}/api/images?label={label}", app.addr))
            .call()
            .unwrap();
        let body: Value = reply.body_mut().read_json().unwrap();
        assert_eq!(body["items"][0]["id"], id.as_str(), "{label}: {body}");
    }
    // The function kept the upload's name, not the percent-encoded metadata form.
    assert_eq!(done["name"], "my dog.jpg");

    drop(app);
    let again = start(dir.path());
    let after = images(&again);
    let kept = after
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("still listed after a restart");
    assert_eq!(kept["status"], "done");
    assert_eq!(kept["labels"], done["labels"]);
}
