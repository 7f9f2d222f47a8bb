//! Every typed client call against the emulator over loopback with real signatures: each test
//! asserts both what the client returned and what the emulator saw on the wire.

use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};

use ocivision::http::{Limits, Response, Server};
use ocivision::oci::functions::{Functions, InvokeMode};
use ocivision::oci::object_storage::{Condition, ListOptions};
use ocivision::oci::vision::{AnalyzeImage, ImageSource};
use ocivision::soda::document_key;
use ocivision::Error;
use serde_json::json;

use crate::support::emulator::{deadline, Env, FixedDetector, TempDir};

const DOG: &[u8] = include_bytes!("../fixtures/photos/dog.jpg");
const CAT: &[u8] = include_bytes!("../fixtures/photos/chelsea.png");

fn signed_headers(authorization: &str) -> String {
    let start = authorization.find("headers=\"").expect("headers param") + 9;
    let end = authorization[start..].find('"').unwrap() + start;
    authorization[start..end].to_string()
}

#[test]
fn object_storage_put_head_get_delete_round_trip() {
    let env = Env::start("os-round-trip");
    let os = env.object_storage();
    assert_eq!(os.namespace(deadline(5)).unwrap(), "emulatorns");

    let name = "uploads/my dog.jpg";
    let etag = os
        .put(
            &env.bucket(),
            name,
            &mut Cursor::new(DOG.to_vec()),
            DOG.len() as u64,
            "image/jpeg",
            &[("original-name", "Dog at the beach.jpg")],
            Condition::None,
            deadline(10),
        )
        .unwrap();
    assert_eq!(etag.len(), 36, "etag is a UUID: {etag}");

    let seen = env.emulator.requests();
    let put = seen
        .iter()
        .find(|r| r.method == "PUT")
        .expect("PUT recorded");
    assert_eq!(put.target, "/n/emulatorns/b/images/o/uploads/my%20dog.jpg");
    assert_eq!(put.body_len, DOG.len());
    assert_eq!(put.status, 200);
    assert_eq!(put.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        put.header("opc-meta-original-name"),
        Some("Dog at the beach.jpg")
    );
    assert_eq!(
        put.header("x-content-sha256"),
        None,
        "PutObject bodies are not hashed"
    );
    assert_eq!(
        signed_headers(put.header("authorization").unwrap()),
        "date (request-target) host"
    );

    let info = os
        .head(&env.bucket(), name, deadline(5))
        .unwrap()
        .expect("exists");
    assert_eq!(info.etag, etag);
    assert_eq!(info.content_length, DOG.len() as u64);
    assert_eq!(info.content_type, "image/jpeg");
    assert_eq!(
        info.metadata,
        vec![(
            "original-name".to_string(),
            "Dog at the beach.jpg".to_string()
        )]
    );

    let (info, bytes) = os
        .get_bytes(&env.bucket(), name, 10 << 20, deadline(5))
        .unwrap();
    assert_eq!(bytes, DOG);
    assert_eq!(info.etag, etag);

    let mut part = os
        .get(&env.bucket(), name, Some((2, Some(9))), 1024, deadline(5))
        .unwrap();
    let mut first = Vec::new();
    part.body.read_to_end(&mut first).unwrap();
    assert_eq!(first, &DOG[2..10]);
    assert_eq!(
        part.content_range.as_deref(),
        Some(format!("bytes 2-9/{}", DOG.len()).as_str())
    );

    assert!(os
        .delete(&env.bucket(), name, Condition::None, deadline(5))
        .unwrap());
    assert!(!os
        .delete(&env.bucket(), name, Condition::None, deadline(5))
        .unwrap());
    assert_eq!(os.head(&env.bucket(), name, deadline(5)).unwrap(), None);
    let statuses: Vec<(String, u16)> = env
        .emulator
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        statuses[statuses.len() - 3..],
        [
            ("DELETE".into(), 204),
            ("DELETE".into(), 404),
            ("HEAD".into(), 404)
        ]
    );
}

#[test]
fn conditional_puts_and_deletes_give_412() {
    let env = Env::start("os-conditions");
    let os = env.object_storage();
    let bucket = env.bucket();
    let create_only = |bytes: &[u8]| {
        os.put(
            &bucket,
            "a.jpg",
            &mut Cursor::new(bytes.to_vec()),
            bytes.len() as u64,
            "image/jpeg",
            &[],
            Condition::Absent,
            deadline(5),
        )
    };
    let etag = create_only(b"one").unwrap();
    let err = create_only(b"two").unwrap_err();
    let service = err.service_error().expect("service error");
    assert_eq!(
        (service.status, service.code.as_str()),
        (412, "IfNoneMatchFailed")
    );
    let seen = env.emulator.requests();
    assert_eq!(seen.last().unwrap().header("if-none-match"), Some("*"));

    let err = os
        .delete(
            &bucket,
            "a.jpg",
            Condition::Etag("not-the-etag"),
            deadline(5),
        )
        .unwrap_err();
    assert_eq!(err.service_error().unwrap().code, "IfMatchFailed");
    assert!(os
        .delete(&bucket, "a.jpg", Condition::Etag(&etag), deadline(5))
        .unwrap());
}

#[test]
fn awkward_object_names_round_trip() {
    let env = Env::start("os-names");
    let os = env.object_storage();
    let names = [
        "uploads/a b/c.jpg",
        "ünïcödé/φωτογραφία 📷.png",
        "100%/what?#&=+;,.jpg",
        "~tilde_.-",
        "//double//slash",
        "quote\"apos'<tag>",
    ];
    for (i, name) in names.iter().enumerate() {
        env.put_object(name, format!("body {i}").as_bytes(), &[]);
        let (_, bytes) = os
            .get_bytes(&env.bucket(), name, 1024, deadline(5))
            .unwrap();
        assert_eq!(bytes, format!("body {i}").as_bytes(), "{name}");
    }
    let listed: Vec<String> = os
        .list(&env.bucket(), ListOptions::default(), deadline(10))
        .map(|o| o.unwrap().name)
        .collect();
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let put_targets: Vec<String> = env
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.target)
        .collect();
    assert!(
        put_targets
            .contains(&"/n/emulatorns/b/images/o/100%25/what%3F%23%26%3D%2B%3B%2C.jpg".to_string()),
        "{put_targets:?}"
    );
}

#[test]
fn listing_follows_next_start_with_across_pages() {
    let env = Env::start("os-paging");
    let os = env.object_storage();
    let total = 1005;
    for i in 0..total {
        env.put_object(&format!("uploads/{i:05}.jpg"), b"x", &[]);
    }
    env.put_object("other/outside-the-prefix.jpg", b"x", &[]);
    env.emulator.clear_requests();
    let options = ListOptions {
        prefix: Some("uploads/".into()),
        fields: Some("name,size,etag,timeCreated".into()),
        ..ListOptions::default()
    };
    let listed: Vec<_> = os
        .list(&env.bucket(), options, deadline(20))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(listed.len(), total);
    assert_eq!(listed[0].name, "uploads/00000.jpg");
    assert_eq!(
        listed[total - 1].name,
        format!("uploads/{:05}.jpg", total - 1)
    );
    assert!(listed
        .iter()
        .all(|o| o.size == Some(1) && o.etag.is_some() && o.time_created.is_some()));
    let pages: Vec<String> = env
        .emulator
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[0].contains("limit=1000"), "{}", pages[0]);
    assert!(
        pages[1].contains("start=uploads%2F01000.jpg"),
        "{}",
        pages[1]
    );
}

#[test]
fn vision_analyzes_inline_and_object_storage_images() {
    let env = Env::start("vision");
    let vision = env.vision();
    let request = |image| AnalyzeImage {
        image,
        max_objects: 10,
        max_labels: Some(3),
        text: false,
        compartment_id: "ocid1.compartment.oc1..test".into(),
    };
    // Without a detector the emulator says why, and the client reports the status.
    let err = vision
        .analyze(&request(ImageSource::Inline(CAT.to_vec())), deadline(5))
        .unwrap_err();
    assert_eq!(err.service_error().map(|e| e.status), Some(501), "{err}");
    assert!(err.to_string().contains("no object detector"), "{err}");

    env.emulator
        .set_detector(Some(Arc::new(FixedDetector::default())));
    let inline = vision
        .analyze(&request(ImageSource::Inline(CAT.to_vec())), deadline(5))
        .unwrap();
    assert_eq!(inline.image_objects[0].name, "Cat");
    assert_eq!(inline.labels[0].name, "Cat");
    assert_eq!(
        inline.object_detection_model_version.as_deref(),
        Some("fixed-1.0")
    );
    assert!(inline.errors.is_empty());
    assert!(inline.raw.get("imageText").is_some(), "raw answer kept");

    env.put_object("uploads/dog.jpg", DOG, &[]);
    let stored = vision
        .analyze(
            &request(ImageSource::ObjectStorage {
                namespace: "emulatorns".into(),
                bucket: "images".into(),
                object: "uploads/dog.jpg".into(),
            }),
            deadline(5),
        )
        .unwrap();
    assert_eq!(stored.image_objects[0].name, "Dog");
    assert_eq!(
        stored.image_objects[0]
            .bounding_polygon
            .normalized_vertices
            .len(),
        4
    );

    let seen = env.emulator.requests();
    let last = seen.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.target.as_str()),
        ("POST", "/20220125/actions/analyzeImage")
    );
    assert_eq!(
        signed_headers(last.header("authorization").unwrap()),
        "date (request-target) host content-length content-type x-content-sha256"
    );

    let err = vision
        .analyze(
            &request(ImageSource::Inline(b"GIF89a not an image".to_vec())),
            deadline(5),
        )
        .unwrap_err();
    assert_eq!(
        err.service_error().map(|e| (e.status, e.code.as_str())),
        Some((400, "InvalidParameter"))
    );
}

#[test]
fn get_start_gives_headers_whole_size_and_first_bytes_in_one_request() {
    let env = Env::start("get-start");
    let os = env.object_storage();
    env.put_object("uploads/dog.jpg", DOG, &[("original-name", "dog.jpg")]);
    env.put_object("uploads/empty.jpg", b"", &[]);
    env.emulator.clear_requests();

    let mut start = os
        .get_start(&env.bucket(), "uploads/dog.jpg", 100, deadline(5))
        .unwrap()
        .expect("exists");
    let mut first = Vec::new();
    start.body.read_to_end(&mut first).unwrap();
    assert_eq!(first, &DOG[..100]);
    assert_eq!(
        start.info.content_length,
        DOG.len() as u64,
        "the whole size"
    );
    assert_eq!(
        start.info.metadata,
        vec![("original-name".into(), "dog.jpg".into())]
    );
    let seen = env.emulator.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].status), ("GET", 206));
    assert_eq!(seen[0].header("range"), Some("bytes=0-99"));

    let mut all = Vec::new();
    os.get_start(&env.bucket(), "uploads/dog.jpg", 1 << 20, deadline(5))
        .unwrap()
        .expect("exists")
        .body
        .read_to_end(&mut all)
        .unwrap();
    assert_eq!(all, DOG, "a shorter object comes whole");

    let empty = os
        .get_start(&env.bucket(), "uploads/empty.jpg", 100, deadline(5))
        .unwrap()
        .expect("an empty object exists");
    assert_eq!(empty.info.content_length, 0);
    assert!(
        !empty.info.etag.is_empty(),
        "headers from the HEAD after the 416"
    );
    assert!(os
        .get_start(&env.bucket(), "uploads/missing.jpg", 100, deadline(5))
        .unwrap()
        .is_none());
}

#[test]
fn secrets_by_id_and_by_name_are_decoded() {
    let env = Env::start("secrets");
    let secrets = env.secrets();
    let (_, password) = env.emulator.ords_credentials();
    let by_id = secrets
        .by_id(crate::support::emulator::SODA_SECRET_ID, deadline(5))
        .unwrap();
    assert_eq!(by_id.expose(), password);
    let by_name = secrets
        .by_name(
            "db-password",
            crate::support::emulator::VAULT_ID,
            deadline(5),
        )
        .unwrap();
    assert_eq!(by_name.expose(), password);
    assert!(!format!("{by_name:?}").contains(password));
    let seen = env.emulator.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.method, "POST");
    assert!(last
        .target
        .starts_with("/20190301/secretbundles/actions/getByName?secretName=db-password&vaultId="));
    assert_eq!(last.header("content-length"), Some("0"));
    assert_eq!(
        last.header("x-content-sha256"),
        Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    );
    let err = secrets
        .by_id("ocid1.vaultsecret.oc1..missing", deadline(5))
        .unwrap_err();
    assert_eq!(err.service_error().unwrap().code, "NotAuthorizedOrNotFound");
}

#[test]
fn functions_invoke_reaches_the_function_through_the_fn_contract() {
    let env = Env::start("invoke");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let socket = env.dir.path().join("fn.sock");
    let _function = Server::bind_unix(&socket, Limits::fn_socket(), move |request| {
        let body = request.read_body(1 << 20)?;
        record.lock().unwrap().push((
            request.method().to_string(),
            request.path().to_string(),
            request.header("fn-call-id").map(str::to_string),
            request.is_chunked(),
        ));
        Ok(Response::new(200)
            .with_header("content-type", "application/json")
            .with_body(format!("{{\"echo\":{}}}", String::from_utf8_lossy(&body))))
    })
    .unwrap();
    env.emulator
        .register_function("ocid1.fnfunc.oc1..f", &socket, false);
    let functions = Functions::new(env.transport.clone(), env.emulator.base_url());
    let answer = functions
        .invoke(
            "ocid1.fnfunc.oc1..f",
            br#"{"n":1}"#,
            InvokeMode::Sync,
            1 << 20,
            deadline(10),
        )
        .unwrap();
    assert_eq!(answer, br#"{"echo":{"n":1}}"#);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (method, path, call_id, chunked) = &calls[0];
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/call"));
    assert_eq!(call_id.as_ref().map(String::len), Some(26));
    assert!(chunked, "the agent streams bodies chunked");
    let err = functions
        .invoke(
            "ocid1.fnfunc.oc1..nope",
            b"{}",
            InvokeMode::Sync,
            1024,
            deadline(5),
        )
        .unwrap_err();
    assert_eq!(err.service_error().unwrap().status, 404);
}

#[test]
fn soda_collection_documents_paging_and_queries() {
    let env = Env::start("soda");
    let soda = env.soda("IMAGE_ANALYSIS");
    soda.ensure_collection(deadline(5)).unwrap();
    soda.ensure_collection(deadline(5)).expect("idempotent");
    let statuses: Vec<u16> = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [201, 200]);

    let key = document_key("emulatorns", "images", "uploads/a b.jpg");
    let etag = soda
        .put(
            &key,
            &json!({"image_name": "uploads/a b.jpg", "status": "done"}),
            deadline(5),
        )
        .unwrap();
    assert!(!etag.is_empty());
    let doc = soda.get(&key, deadline(5)).unwrap().expect("stored");
    assert_eq!(doc.value["image_name"], "uploads/a b.jpg");
    assert_eq!(doc.etag, etag);
    soda.put(
        &key,
        &json!({"image_name": "uploads/a b.jpg", "status": "redone"}),
        deadline(5),
    )
    .unwrap();
    assert_eq!(
        soda.get(&key, deadline(5)).unwrap().unwrap().value["status"],
        "redone"
    );
    let put = env
        .emulator
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.target,
        format!("/ords/admin/soda/latest/IMAGE_ANALYSIS/{key}")
    );
    assert!(put.header("authorization").unwrap().starts_with("Basic "));

    for i in 0..105 {
        soda.put(
            &format!("K{i:03}"),
            &json!({"image_name": format!("img{i:03}.jpg"), "n": i, "even": i % 2 == 0}),
            deadline(5),
        )
        .unwrap();
    }
    env.emulator.clear_requests();
    let all: Vec<_> = soda.list(deadline(10)).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 106);
    assert_eq!(env.emulator.requests().len(), 2, "two pages of 100");

    let query = json!({"$query": {"image_name": {"$in": ["img001.jpg", "img002.jpg", "img104.jpg"]}},
                       "$orderby": {"n": -1}});
    let found: Vec<_> = soda
        .query(&query, deadline(5))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<&str> = found
        .iter()
        .map(|d| d.value["image_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["img104.jpg", "img002.jpg", "img001.jpg"]);
    let evens: Vec<_> = soda
        .query(&json!({"even": true}), deadline(5))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(evens.len(), 53, "query pages past 100 too");

    assert_eq!(
        soda.delete_matching(&json!({"even": true}), deadline(5))
            .unwrap(),
        53
    );
    assert!(soda.delete(&key, deadline(5)).unwrap());
    assert!(
        !soda.delete(&key, deadline(5)).unwrap(),
        "a second delete is a 404, not an error"
    );
    assert_eq!(soda.get(&key, deadline(5)).unwrap(), None);
    assert_eq!(soda.list(deadline(10)).count(), 52);
}

#[test]
fn soda_refuses_a_collection_without_client_keys_and_wrong_passwords() {
    let env = Env::start("soda-meta");
    // Someone created the collection with server-assigned keys.
    let (user, password) = env.emulator.ords_credentials();
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let created = ureq::put(format!(
        "{}/ords/admin/soda/latest/SERVER_KEYS",
        env.emulator.base_url()
    ))
    .header("authorization", format!("Basic {basic}"))
    .header("content-type", "application/json")
    .send(r#"{"keyColumn":{"name":"ID","assignmentMethod":"UUID"}}"#)
    .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let err = env
        .soda("SERVER_KEYS")
        .ensure_collection(deadline(5))
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("client-assigned keys"), "{err}");

    let config = ocivision::soda::SodaConfig {
        base_url: format!("{}/ords", env.emulator.base_url()),
        schema: "admin".into(),
        collection: "X".into(),
        user: "ADMIN".into(),
        password: ocivision::soda::Password::Literal(ocivision::secret::Secret::new("wrong")),
    };
    let soda = ocivision::soda::Soda::connect(&env.transport, &config, None, deadline(5)).unwrap();
    let err = soda.ensure_collection(deadline(5)).unwrap_err();
    assert_eq!(err.service_error().unwrap().status, 401);
    let attempts = env
        .emulator
        .requests()
        .iter()
        .filter(|r| r.target == "/ords/admin/soda/latest/X")
        .count();
    assert_eq!(
        attempts, 1,
        "a 401 is never retried (it could lock the account)"
    );
}

#[test]
fn emulator_data_survives_a_restart() {
    let dir = TempDir::new("restart");
    for round in 0..2 {
        // The same directory each time: the stack finds its data again.
        let stack = crate::support::emulator::stack(dir.path()).start().unwrap();
        let transport = ocivision::oci::client::Transport::new(
            ocivision::oci::client::Auth::Oci(stack.wiring().credentials().unwrap()),
            crate::support::emulator::fast_retries(2),
        );
        let bucket = crate::support::emulator::bucket_of(stack.wiring());
        let os = ocivision::oci::object_storage::ObjectStorage::new(
            transport,
            stack.emulator.base_url(),
        );
        if round == 0 {
            os.put(
                &bucket,
                "kept.jpg",
                &mut Cursor::new(DOG.to_vec()),
                DOG.len() as u64,
                "image/jpeg",
                &[],
                Condition::None,
                deadline(5),
            )
            .unwrap();
        } else {
            let (_, bytes) = os
                .get_bytes(&bucket, "kept.jpg", 1 << 20, deadline(5))
                .unwrap();
            assert_eq!(bytes, DOG);
        }
    }
}
