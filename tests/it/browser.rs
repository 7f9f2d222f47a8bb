//! A real browser against the app: headless Chromium driven through chromedriver over the W3C
//! WebDriver protocol (ureq + serde_json). Uploads two photos through the file input, watches
//! the progress bars and the badges turn to done without a reload, opens a result, checks the
//! boxes, hides them with the slider, deletes the image. Screenshots go to
//! target/browser-screenshots/. Where chromium or chromedriver is missing the test says what to
//! install and passes without running, except under `CI=true`, where that is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::emulator::TempDir;
use crate::support::web::Web;
use ocivision::web::Settings;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills chromedriver (and so its browser) when the test ends, however it ends.
struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{s}", self.base))
                .call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(chromedriver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
            session: None,
        };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut r) = driver.agent.get(&format!("{}/status", driver.base)).call() {
                let v: Value = r.body_mut().read_json().unwrap_or(Value::Null);
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < until, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().expect("webdriver answers JSON");
        assert!(status < 300, "webdriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_deref().unwrap())
    }

    fn open(&mut self, chromium: &Path, profile: &Path) {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-proxy-server",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v = self.call("POST", "/session", Some(caps));
        self.session = Some(v["sessionId"].as_str().expect("session id").to_string());
    }

    fn go(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.script(script, args.clone());
            if !v.is_null() && v != false {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, dir: &Path, name: &str) {
        let v = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// What the test needs, as a Debian user installs it.
const INSTALL: &str = "apt-get install chromium chromium-driver";

/// What to do when the `missing` programs are missing: `Ok` with the message to print before
/// skipping, or, when `ci` (the `CI` variable) is `true`, `Err` with the message to fail with.
fn when_missing(missing: &[&str], ci: Option<&str>) -> Result<String, String> {
    let message = format!("{} not installed: {INSTALL}", missing.join(" and "));
    if ci == Some("true") {
        Err(format!("{message} (CI=true: the browser test must run)"))
    } else {
        Ok(format!("browser test skipped: {message}"))
    }
}

/// Chromium and chromedriver, or `None` after saying what to install (see [`when_missing`]).
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_program(&["chromedriver"]);
    let missing: Vec<&str> = [
        ("chromium", chromium.is_none()),
        ("chromedriver", chromedriver.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, gone)| gone.then_some(name))
    .collect();
    if missing.is_empty() {
        return chromium.zip(chromedriver);
    }
    match when_missing(&missing, std::env::var("CI").ok().as_deref()) {
        Ok(skip) => {
            // Straight to stderr, past the test harness's capture, so `cargo test` shows it.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{skip}");
            None
        }
        Err(fail) => panic!("{fail}"),
    }
}

#[test]
fn browser_missing_programs_skip_with_what_to_install_except_under_ci() {
    let skip = when_missing(&["chromedriver"], None).unwrap();
    assert!(skip.contains("chromedriver not installed"), "{skip}");
    assert!(skip.contains(INSTALL), "{skip}");
    assert!(when_missing(&["chromium"], Some("false")).is_ok());
    let fail = when_missing(&["chromium", "chromedriver"], Some("true")).unwrap_err();
    assert!(
        fail.contains("chromium and chromedriver not installed"),
        "{fail}"
    );
    assert!(fail.contains(INSTALL), "{fail}");
}

#[test]
fn browser_upload_watch_results_inspect_and_delete() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = TempDir::new("chromium-profile");
    let web = Web::start("browser", Settings::default(), false);
    let mut driver = Driver::start(&chromedriver);
    driver.open(&chromium, profile.path());

    driver.go(&format!("{}/", web.base));
    driver.screenshot(&shots, "01-empty-gallery");
    let input = driver.find("#file-input");
    let multiple = driver.call(
        "GET",
        &driver.session_path(&format!("/element/{input}/property/multiple")),
        None,
    );
    assert_eq!(multiple, true, "the file input accepts several files");
    driver.script("window.__sameDocument = 'yes';", json!([]));

    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    let files = format!(
        "{}\n{}",
        photos.join("dog.jpg").display(),
        photos.join("chelsea.png").display()
    );
    driver.call(
        "POST",
        &driver.session_path(&format!("/element/{input}/value")),
        Some(json!({"text": files})),
    );
    let bars = driver.wait_for(
        "two finished progress bars",
        "const rows = document.querySelectorAll('#upload-list li');
         const bars = document.querySelectorAll('#upload-list progress');
         return rows.length === 2 && bars.length === 2
             && [...rows].every(r => r.className === 'ok')
             && [...bars].every(b => b.value === 100) ? bars.length : null;",
        json!([]),
    );
    assert_eq!(bars, 2);
    let ids = driver.wait_for(
        "two cards",
        "const c = [...document.querySelectorAll('#grid .card')].map(c => c.dataset.id);
         return c.length === 2 ? c : null;",
        json!([]),
    );
    let ids: Vec<String> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    driver.screenshot(&shots, "02-uploaded-pending");

    // The function's part, as it would write it.
    for id in &ids {
        web.write_done(
            id,
            &[
                ("Dog", 0.93, [0.16, 0.22, 0.58, 0.93]),
                ("Bicycle", 0.71, [0.12, 0.2, 0.74, 0.8]),
                ("Car", 0.48, [0.6, 0.13, 0.9, 0.3]),
            ],
        );
    }
    driver.wait_for(
        "both badges done without a reload",
        "const b = [...document.querySelectorAll('#grid .card [data-badge]')];
         return window.__sameDocument === 'yes' && b.length === 2
             && b.every(x => x.classList.contains('done') && x.textContent.startsWith('done'));",
        json!([]),
    );
    driver.screenshot(&shots, "03-gallery-done");
    // Freshly loaded, the gallery's tiles are thumbnails, not the originals.
    driver.go(&format!("{}/", web.base));
    let widths = driver.wait_for(
        "every tile loaded from its thumbnail",
        "const imgs = [...document.querySelectorAll('#grid .card img')];
         if (imgs.length !== 2 || !imgs.every(i => i.complete && i.naturalWidth > 0)) return null;
         return imgs.map(i => [i.naturalWidth, new URL(i.src).pathname.endsWith('/thumb')]);",
        json!([]),
    );
    for tile in widths.as_array().unwrap() {
        assert!(tile[0].as_u64().unwrap() <= 400, "{widths}");
        assert_eq!(tile[1], true, "{widths}");
    }

    let id = &ids[0];
    driver.go(&format!("{}/images/{id}", web.base));
    let drawn = driver.wait_for(
        "a labelled box drawn over the image",
        "const boxes = [...document.querySelectorAll('svg.boxes .box')];
         const label = document.querySelector('.box-label');
         const img = document.querySelector('.stage img');
         if (!img.complete || img.naturalWidth === 0) return null;
         if (!new URL(img.src).pathname.endsWith('/preview')) return 'not the preview: ' + img.src;
         const r = boxes[0].querySelector('polygon').getBoundingClientRect();
         return boxes.length === 3 && label && label.textContent.includes('Dog')
             && getComputedStyle(boxes[0]).display !== 'none' && r.width > 50 && r.height > 50
             ? boxes.length : null;",
        json!([]),
    );
    assert_eq!(drawn, 3);
    // Hovering a row highlights its box.
    let row = driver.find("tr[data-index='1']");
    driver.call(
        "POST",
        &driver.session_path("/actions"),
        Some(json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "origin": {ELEMENT: row}, "x": 0, "y": 0}]}]})),
    );
    driver.wait_for(
        "the hovered row's box highlighted",
        "return document.querySelector('.box[data-index=\"1\"]').classList.contains('active');",
        json!([]),
    );
    driver.screenshot(&shots, "04-result");

    // The slider to 1.0 with the keyboard: every box and row is hidden.
    let slider = driver.find("#min-confidence");
    driver.call(
        "POST",
        &driver.session_path(&format!("/element/{slider}/value")),
        Some(json!({"text": "\u{E010}"})),
    );
    driver.wait_for(
        "all boxes hidden at confidence 1.0",
        "const s = document.getElementById('min-confidence');
         const hidden = n => getComputedStyle(n).display === 'none';
         return s.value === '1' && [...document.querySelectorAll('.box, .box-label, tr[data-index]')].every(hidden);",
        json!([]),
    );
    driver.screenshot(&shots, "05-slider-at-1");

    let delete = driver.find("#delete-button");
    driver.call(
        "POST",
        &driver.session_path(&format!("/element/{delete}/click")),
        Some(json!({})),
    );
    driver.wait_for(
        "back on the gallery without the deleted image",
        "return location.pathname === '/' && document.querySelectorAll('#grid .card').length === 1
             && !document.querySelector('[data-id=\"' + arguments[0] + '\"]');",
        json!([id]),
    );
    driver.screenshot(&shots, "06-after-delete");
    // The same gallery on a phone-sized window: one column, nothing cut off.
    driver.call(
        "POST",
        &driver.session_path("/window/rect"),
        Some(json!({"width": 400, "height": 860})),
    );
    let overflow = driver.script(
        "return document.documentElement.scrollWidth > window.innerWidth;",
        json!([]),
    );
    assert_eq!(
        overflow, false,
        "no horizontal scrolling on a narrow screen"
    );
    driver.screenshot(&shots, "07-narrow-gallery");
    assert!(web
        .env
        .emulator
        .read_object("images", &Web::object_name(id))
        .is_none());
    assert!(web.document(id).is_none());
}
