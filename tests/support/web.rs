//! The web app on loopback against the emulator: an [`App`] built from the emulator's clients,
//! served on 127.0.0.1:0, an optional in-process Fn function that records what it is sent, and
//! helpers that write documents the way the analysis function would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocivision::document::{AnalysisDocument, DetectedObject, Ontology, Status};
use ocivision::http::{Limits, Request, Response, Server};
use ocivision::oci::functions::Functions;
use ocivision::soda::{document_key, Soda};
use ocivision::web::{App, Invoker, Settings};
use serde_json::Value;

use super::emulator::{deadline, rectangle, Env};
use super::http::{request, Reply};

pub const FUNCTION_ID: &str = "ocid1.fnfunc.oc1..webapp-test";
pub const COLLECTION: &str = "IMAGE_ANALYSIS";

pub struct Web {
    pub env: Env,
    pub app: Arc<App>,
    pub server: Server,
    pub base: String,
    pub soda: Soda,
    /// Bodies the test function received, parsed.
    pub calls: Arc<Mutex<Vec<Value>>>,
    _function: Option<Server>,
}

/// The body of a handler's in-memory response.
pub fn body_text(resp: &Response) -> String {
    String::from_utf8_lossy(resp.body_bytes().unwrap_or(b"")).into_owned()
}

impl Web {
    pub fn start(tag: &str, settings: Settings, function: bool) -> Web {
        let env = Env::start(tag);
        let soda = env.soda(COLLECTION);
        soda.ensure_collection(deadline(5)).expect("collection");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut fn_server = None;
        let invoker = if function {
            let socket = env.dir.path().join("fn.sock");
            let record = Arc::clone(&calls);
            fn_server = Some(
                Server::bind_unix(&socket, Limits::fn_socket(), move |req: &Request| {
                    let body = req.read_body(1 << 20)?;
                    let value: Value = serde_json::from_slice(&body)?;
                    record.lock().unwrap().push(value);
                    Ok(Response::new(200))
                })
                .expect("function socket"),
            );
            env.emulator.register_function(FUNCTION_ID, &socket, false);
            Some(Invoker {
                client: Functions::new(env.transport.clone(), env.emulator.base_url()),
                function_id: FUNCTION_ID.into(),
                compartment_id: "ocid1.compartment.oc1..test".into(),
            })
        } else {
            None
        };
        let app = Arc::new(App::new(
            env.object_storage(),
            env.bucket(),
            env.soda(COLLECTION),
            invoker,
            settings,
        ));
        let server = ocivision::web::serve(Arc::clone(&app), "127.0.0.1:0".parse().unwrap())
            .expect("web app starts");
        let base = format!("http://{}", server.tcp_addr().unwrap());
        Web {
            env,
            app,
            server,
            base,
            soda,
            calls,
            _function: fn_server,
        }
    }

    /// Calls the handler directly with a fake request.
    pub fn handle(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.app
            .handle(&Request::fake(method, target, headers, body))
            .expect("handlers never fail; errors are rendered")
    }

    /// Sends one request over loopback and reads the whole answer.
    pub fn fetch(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let lines: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let addr = self.server.tcp_addr().unwrap();
        request(addr, method, path, &lines, body, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("reading the answer to {method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.fetch("GET", path, &[], b"")
    }

    /// The form token in the page at `page` for the form posting to `action`.
    pub fn token(&self, page: &str, action: &str) -> String {
        let html = self.handle("GET", page, &[], b"");
        token_in(&body_text(&html), action)
    }

    /// Uploads raw bytes with `PUT /api/images/{name}`; returns the new id.
    pub fn upload(&self, name: &str, bytes: &[u8]) -> String {
        let path = format!("/api/images/{}", ocivision::oci::encode::component(name));
        let resp = self.handle("PUT", &path, &[("Content-Type", "image/jpeg")], bytes);
        let text = body_text(&resp);
        assert_eq!(resp.status(), 201, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    pub fn object_name(id: &str) -> String {
        format!("uploads/{id}")
    }

    pub fn key(&self, id: &str) -> String {
        let b = self.env.bucket();
        document_key(&b.namespace, &b.name, &Web::object_name(id))
    }

    pub fn document(&self, id: &str) -> Option<AnalysisDocument> {
        self.soda
            .get(&self.key(id), deadline(5))
            .unwrap()
            .map(|d| AnalysisDocument::from_json(d.value).unwrap())
    }

    /// Writes a `done` document for `id` as the function would.
    pub fn write_done(&self, id: &str, objects: &[(&str, f64, [f64; 4])]) {
        let mut doc = self.document(id).unwrap_or_else(|| {
            let b = self.env.bucket();
            AnalysisDocument::new(
                &b.namespace,
                &b.name,
                &Web::object_name(id),
                Status::Pending,
            )
        });
        doc.status = Status::Done;
        doc.attempts = 1;
        doc.analyzed_at = Some("2026-11-28T10:00:00.000Z".into());
        doc.objects = objects
            .iter()
            .map(|(name, confidence, corners)| DetectedObject {
                name: name.to_string(),
                confidence: *confidence,
                polygon: rectangle(*corners),
            })
            .collect();
        doc.ontology = objects
            .iter()
            .map(|(name, _, _)| Ontology {
                name: name.to_string(),
                parents: match *name {
                    "Car" | "Bus" => vec!["Vehicle".into()],
                    "Dog" | "Cat" => vec!["Animal".into()],
                    _ => vec![],
                },
            })
            .collect();
        doc.terms = doc.search_terms();
        doc.model_versions.object_detection = Some("1.3".into());
        doc.timings.vision_ms = Some(812);
        self.soda
            .put(&self.key(id), &doc.to_json(), deadline(5))
            .unwrap();
    }

    /// Object Storage requests that wrote or removed objects under `uploads/`.
    pub fn object_writes(&self) -> usize {
        self.env
            .emulator
            .requests()
            .iter()
            .filter(|r| {
                matches!(r.method.as_str(), "PUT" | "DELETE") && r.target.contains("/o/uploads")
            })
            .count()
    }

    /// SODA document writes.
    pub fn document_writes(&self) -> usize {
        self.env
            .emulator
            .requests()
            .iter()
            .filter(|r| {
                r.method == "PUT"
                    && r.target.contains("/soda/")
                    && r.target.matches('/').count() > 5
            })
            .count()
    }
}

/// The `csrf` value of the form whose action is `action`.
pub fn token_in(html: &str, action: &str) -> String {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let rest = &html[at..];
    let start = rest.find("name=\"csrf\" value=\"").expect("token field") + 19;
    rest[start..start + rest[start..].find('"').unwrap()].to_string()
}

/// A multipart body with the given parts (name, optional file name, bytes), boundary `XyZ`.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, data) in parts {
        out.extend_from_slice(b"--XyZ\r\n");
        match filename {
            // As browsers do (WHATWG multipart/form-data encoding): `"` → %22, CR/LF → %0D/%0A.
            Some(f) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{}\"\r\nContent-Type: image/jpeg\r\n\r\n",
                    f.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--XyZ--\r\n");
    out
}

pub const MULTIPART: &str = "multipart/form-data; boundary=XyZ";
