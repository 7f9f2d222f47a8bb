//! Issue 24: the cloud behaviours no Oracle source confirms, each reproduced by an emulator
//! switch (`src/emulator/switches.rs`): the doctor reports it and the app's fallback holds.

use ocivision::emulator::Switches;
use ocivision::web::Settings;

use crate::support::emulator::deadline;
use crate::support::web::Web;

const PHOTO: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");

#[test]
fn a_lost_reply_on_the_image_put_loses_no_upload() {
    let web = Web::start("deploy-lost-reply", Settings::default(), false);
    web.env.emulator.set_switches(Switches {
        lose_put_replies: 1,
        ..Switches::default()
    });
    web.env.emulator.clear_requests();
    // The first PUT is stored and its reply lost; the transport's retry gets 412 (the object
    // exists), and the upload still answers 201 because the object carries its request id.
    let id = web.upload("lost-reply.jpg", PHOTO);
    assert_eq!(
        web.env.emulator.switches().lose_put_replies,
        0,
        "a reply was lost"
    );
    let name = Web::object_name(&id);
    let puts: Vec<u16> = web
        .env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("/o/uploads") && r.target.contains(&id))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        puts,
        vec![0, 412],
        "stored with the reply dropped, then refused"
    );
    let info = web
        .env
        .object_storage()
        .head(&web.env.bucket(), &name, deadline(5))
        .unwrap();
    assert!(info.is_some(), "the object was not withdrawn");
    let doc = web.document(&id).expect("the pending document was kept");
    assert_eq!(doc.image_name, name);
}

#[test]
fn an_invoke_that_reached_the_service_is_not_sent_again() {
    use ocivision::emulator::faults::Service;
    use ocivision::oci::functions::{Functions, InvokeMode};

    let web = Web::start("deploy-invoke-once", Settings::default(), true);
    let functions = Functions::new(web.env.transport.clone(), web.env.emulator.base_url());
    web.env.emulator.fail_next(Service::Functions, 1, 503);
    web.env.emulator.clear_requests();
    let sent = functions.invoke(
        crate::support::web::FUNCTION_ID,
        b"{}",
        InvokeMode::Sync,
        1024,
        deadline(10),
    );
    assert_eq!(
        sent.unwrap_err().service_error().map(|e| e.status),
        Some(503)
    );
    let invokes = web
        .env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.target.ends_with("/actions/invoke"))
        .count();
    assert_eq!(
        invokes, 1,
        "a 503 from Functions is not retried (the function may have run)"
    );
    // Other calls on the same transport still retry a 503.
    web.env.emulator.fail_next(Service::ObjectStorage, 1, 503);
    assert!(web
        .env
        .object_storage()
        .head(&web.env.bucket(), "uploads/none", deadline(10))
        .unwrap()
        .is_none());
}
