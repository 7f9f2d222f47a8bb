//! A real browser against the app: headless Chromium driven through chromedriver over the W3C
//! WebDriver protocol (ureq + serde_json). Uploads two photos through the file input, watches
//! the progress bars and the badges turn to done without a reload, opens a result, checks the
//! boxes, hides them with the slider, then walks upload → result → slider → delete → undo by
//! keyboard alone, reading what Chromium's accessibility tree says at each stop, and lets a
//! delete run out its undo window. Every page and state it passes through (empty gallery,
//! pending, analysing, done, failed, result pages, the confirmation dialog and page, the undo
//! and too-late notices, errors, sign-in) is audited with axe-core, and any violation fails the
//! test with the list. Screenshots and the keyboard transcript go to target/browser-screenshots/.
//! Where chromium, chromedriver or axe-core (`npm ci` in `$CARGO_TARGET_DIR/npm`, which
//! `.ci/run` does) is missing the test says what to install and passes without running, except
//! under `CI=true`, where that is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::emulator::{deadline, TempDir};
use crate::support::web::Web;
use ocivision::detect::{LocalTextReader, TextConfig, TextReader};
use ocivision::document::{Failure, Status, TextLine};
use ocivision::secret::Secret;
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

    /// POSTs `body` to the session's `rest`.
    fn post(&self, rest: &str, body: Value) -> Value {
        self.call("POST", &self.session_path(rest), Some(body))
    }

    /// GETs the session's `rest`.
    fn get(&self, rest: &str) -> Value {
        self.call("GET", &self.session_path(rest), None)
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
        self.post("/url", json!({"url": url}));
    }

    fn find(&self, css: &str) -> String {
        let v = self.post("/element", json!({"using": "css selector", "value": css}));
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    fn script_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
    }

    /// Presses and releases one key (a WebDriver key code such as `\u{E004}` for Tab).
    fn press(&self, key: &str) {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        );
        self.call("DELETE", &self.session_path("/actions"), None);
    }

    /// What a screen reader would say for the focused element: Chromium's computed role and
    /// accessible name, with the value text of a slider.
    fn focused(&self) -> String {
        let active = self.call("GET", &self.session_path("/element/active"), None);
        let Some(id) = active[ELEMENT].as_str() else {
            return "(nothing focused)".into();
        };
        let role = self.get(&format!("/element/{id}/computedrole"));
        let label = self.get(&format!("/element/{id}/computedlabel"));
        let value = self.eval(
            "const e = document.activeElement;
             return e.getAttribute('aria-valuetext') || '';",
        );
        let mut said = format!(
            "{} \"{}\"",
            role.as_str().unwrap_or(""),
            label.as_str().unwrap_or("")
        );
        if let Some(v) = value.as_str().filter(|v| !v.is_empty()) {
            said.push_str(&format!(", {v}"));
        }
        said
    }

    /// Presses Tab until the focused element matches `css` (at most `max` presses); returns
    /// how many it took.
    fn tab_to(&self, css: &str, max: usize) -> usize {
        for n in 1..=max {
            self.press(TAB);
            let here = self.script(
                "return document.activeElement && document.activeElement.matches(arguments[0]);",
                json!([css]),
            );
            if here == true {
                return n;
            }
        }
        panic!("{css} not reached in {max} Tab presses");
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

    /// Runs a script without arguments, returning its value.
    fn eval(&self, script: &str) -> Value {
        self.script(script, json!([]))
    }

    /// [`Driver::wait_for`] a script without arguments.
    fn wait(&self, what: &str, script: &str) -> Value {
        self.wait_for(what, script, json!([]))
    }

    /// Sends keys to an element, as typing into it does.
    fn type_into(&self, element: &str, text: &str) {
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
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

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const ARROW_RIGHT: &str = "\u{E014}";

/// What the test needs, as a Debian user installs it.
const INSTALL: &str = "apt-get install chromium chromium-driver";

/// Where axe-core is looked for, and how it gets there.
const AXE_INSTALL: &str =
    "cp .ci/npm/package*.json \"${CARGO_TARGET_DIR:-target}/npm/\" && npm ci --prefix \"${CARGO_TARGET_DIR:-target}/npm\" (.ci/run does this)";

/// axe-core's script: `$AXE_CORE_JS`, else `npm/node_modules/axe-core/axe.min.js` in the target
/// directory this test binary was built in (or in `target/`). `None` after saying what to run,
/// except under `CI=true`, where a missing axe-core fails the test.
fn axe_source() -> Option<String> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let rel = "npm/node_modules/axe-core/axe.min.js";
    if let Ok(exe) = std::env::current_exe() {
        // target/debug/deps/it-… → target/
        if let Some(target) = exe.ancestors().nth(3) {
            candidates.push(target.join(rel));
        }
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(rel),
    );
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(std::fs::read_to_string(found).expect("axe.min.js readable"));
    }
    let message = format!("axe-core not installed: {AXE_INSTALL}");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message} (CI=true: the accessibility audit must run)"
    );
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "browser test skipped: {message}");
    None
}

/// Runs axe-core on the page as it is now and records its violations under `state`.
struct Audit {
    axe: String,
    /// (state, violations as "rule: help (targets)").
    results: Vec<(String, Vec<String>)>,
}

impl Audit {
    fn run(&mut self, driver: &Driver, state: &str) {
        let loaded = driver.eval("return typeof window.axe === 'object';");
        if loaded != true {
            driver.script(
                &format!("{}\n;return typeof window.axe;", self.axe),
                json!([]),
            );
        }
        let found = driver.script_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                   + v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
            json!([]),
        );
        let list: Vec<String> = found
            .as_array()
            .unwrap_or_else(|| panic!("axe answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect();
        self.results.push((state.to_string(), list));
    }

    /// Proves the audit can fail: a picture without alt text must be reported.
    fn self_check(&mut self, driver: &Driver) {
        driver.eval(
            "const i = document.createElement('img'); i.id = 'axe-self-check';
             i.src = '/favicon.ico'; document.body.appendChild(i);",
        );
        self.run(driver, "self-check");
        let (_, found) = self.results.pop().unwrap();
        assert!(
            found.iter().any(|v| v.starts_with("image-alt")),
            "axe-core did not report an image without alt text: {found:?}"
        );
        driver.eval("document.getElementById('axe-self-check').remove();");
    }

    /// Fails with every violation of every state; writes the per-state summary beside the
    /// screenshots.
    fn finish(&self, dir: &Path) {
        let mut summary = String::from("axe-core violations per page and state\n");
        for (state, list) in &self.results {
            summary.push_str(&format!("{:>3}  {state}\n", list.len()));
            for v in list {
                summary.push_str(&format!("       {v}\n"));
            }
        }
        std::fs::write(dir.join("axe.txt"), &summary).unwrap();
        let failed: Vec<&(String, Vec<String>)> =
            self.results.iter().filter(|(_, l)| !l.is_empty()).collect();
        assert!(failed.is_empty(), "{summary}");
    }
}

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

/// Sets a document's status as the function would on its way (`analyzing`) or at its end
/// (`failed`).
fn write_status(web: &Web, id: &str, status: Status) {
    let mut doc = web.document(id).expect("a document");
    doc.status = status;
    if status == Status::Failed {
        doc.error = Some(Failure {
            code: "VisionUnavailable".into(),
            message: "the analysis service did not answer; try again later".into(),
        });
    }
    web.soda
        .put(&web.key(id), &doc.to_json(), deadline(5))
        .unwrap();
}

#[test]
fn browser_upload_watch_results_inspect_and_delete() {
    let Some((chromium, chromedriver)) = browser_programs() else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let mut audit = Audit {
        axe,
        results: Vec::new(),
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = TempDir::new("chromium-profile");
    // A short undo window, so the test sees a delete carried out.
    let window = Duration::from_secs(10);
    let web = Web::start(
        "browser",
        Settings {
            undo_window: window,
            ..Settings::default()
        },
        false,
    );
    let mut driver = Driver::start(&chromedriver);
    driver.open(&chromium, profile.path());

    driver.go(&format!("{}/", web.base));
    driver.screenshot(&shots, "01-empty-gallery");
    audit.self_check(&driver);
    audit.run(&driver, "gallery: empty");
    let icon = driver.script_async(
        "const done = arguments[arguments.length - 1];
         fetch('/favicon.ico').then(r => done(r.status)).catch(() => done(0));",
        json!([]),
    );
    assert_eq!(icon, 200, "a favicon, no console error");
    let disabled = driver.eval(
        "return document.querySelector('.bulk-delete') === null
            || document.querySelector('.bulk-delete').disabled;",
    );
    assert_eq!(disabled, true, "nothing selected: bulk delete disabled");
    let input = driver.find("#file-input");
    let multiple = driver.get(&format!("/element/{input}/property/multiple"));
    assert_eq!(multiple, true, "the file input accepts several files");
    driver.eval("window.__sameDocument = 'yes';");

    let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    let files = format!(
        "{}\n{}",
        photos.join("dog.jpg").display(),
        photos.join("chelsea.png").display()
    );
    driver.type_into(&input, &files);
    let bars = driver.wait(
        "two finished progress bars",
        "const rows = document.querySelectorAll('#upload-list li');
         const bars = document.querySelectorAll('#upload-list progress');
         return rows.length === 2 && bars.length === 2
             && [...rows].every(r => r.className === 'ok')
             && [...bars].every(b => b.value === 100) ? bars.length : null;",
    );
    assert_eq!(bars, 2);
    let ids = driver.wait(
        "two cards",
        "const c = [...document.querySelectorAll('#grid .card')].map(c => c.dataset.id);
         return c.length === 2 ? c : null;",
    );
    let ids: Vec<String> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    driver.screenshot(&shots, "02-uploaded-pending");
    audit.run(&driver, "gallery: uploads finished, pending (live)");
    driver.go(&format!("{}/", web.base));
    audit.run(&driver, "gallery: pending");
    // The result page while it waits.
    driver.go(&format!("{}/images/{}", web.base, ids[0]));
    audit.run(&driver, "result: pending");
    write_status(&web, &ids[0], Status::Analyzing);
    driver.go(&format!("{}/images/{}", web.base, ids[0]));
    audit.run(&driver, "result: analysing");
    write_status(&web, &ids[1], Status::Failed);
    driver.go(&format!("{}/images/{}", web.base, ids[1]));
    audit.run(&driver, "result: failed");
    driver.go(&format!("{}/", web.base));
    audit.run(&driver, "gallery: analysing and failed");
    driver.go(&format!("{}/?status=done", web.base));
    audit.run(&driver, "gallery: filter with no match");
    driver.go(&format!("{}/", web.base));
    driver.eval("window.__sameDocument = 'yes';");

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
    driver.wait(
        "the analysing badge done without a reload",
        "const b = [...document.querySelectorAll('#grid .card [data-badge]')];
         return window.__sameDocument === 'yes'
             && b.some(x => x.classList.contains('done') && x.textContent.startsWith('done'));",
    );
    driver.screenshot(&shots, "03-gallery-done");
    // Freshly loaded, the gallery's tiles are thumbnails, not the originals, and the first
    // row is not lazy (it holds the largest paint).
    driver.go(&format!("{}/", web.base));
    let widths = driver.wait(
        "every tile loaded from its thumbnail",
        "const imgs = [...document.querySelectorAll('#grid .card img')];
         if (imgs.length !== 2 || !imgs.every(i => i.complete && i.naturalWidth > 0)) return null;
         return imgs.map(i => [i.naturalWidth, new URL(i.src).pathname.endsWith('/thumb'), i.loading]);");
    for tile in widths.as_array().unwrap() {
        assert!(tile[0].as_u64().unwrap() <= 400, "{widths}");
        assert_eq!(tile[1], true, "{widths}");
        assert_eq!(tile[2], "eager", "{widths}");
    }
    audit.run(&driver, "gallery: done");
    let clipped = driver.eval("return getComputedStyle(document.querySelector('.card')).overflow;");
    assert_eq!(clipped, "visible", "the card does not clip the focus ring");

    let id = &ids[0];
    driver.go(&format!("{}/images/{id}", web.base));
    let drawn = driver.wait(
        "a labelled box drawn over the image",
        "const boxes = [...document.querySelectorAll('svg.boxes .box')];
         const label = document.querySelector('.box-label');
         const img = document.querySelector('.stage img');
         if (!img.complete || img.naturalWidth === 0) return null;
         if (!new URL(img.src).pathname.endsWith('/preview')) return 'not the preview: ' + img.src;
         if (!img.getAttribute('width') || !img.getAttribute('height')) return 'no dimensions';
         const r = boxes[0].querySelector('polygon').getBoundingClientRect();
         return boxes.length === 3 && label && label.textContent.includes('Dog')
             && getComputedStyle(boxes[0]).display !== 'none' && r.width > 50 && r.height > 50
             ? boxes.length : null;",
    );
    assert_eq!(drawn, 3);
    audit.run(&driver, "result: done");
    // Hovering a row highlights its box.
    let row = driver.find("tr[data-index='1']");
    driver.post("/actions", json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "origin": {ELEMENT: row}, "x": 0, "y": 0}]}]}));
    driver.wait(
        "the hovered row's box highlighted",
        "return document.querySelector('.box[data-index=\"1\"]').classList.contains('active');",
    );
    driver.call("DELETE", &driver.session_path("/actions"), None);
    driver.screenshot(&shots, "04-result");

    // The slider to 1.0 with the keyboard: every box and row is hidden.
    let slider = driver.find("#min-confidence");
    driver.type_into(&slider, "\u{E010}");
    driver.wait(
        "all boxes hidden at confidence 1.0",
        "const s = document.getElementById('min-confidence');
         const hidden = n => getComputedStyle(n).display === 'none';
         return s.value === '1' && [...document.querySelectorAll('.box, .box-label, tr[data-index]')].every(hidden);");
    driver.screenshot(&shots, "05-slider-at-1");
    audit.run(&driver, "result: slider at 100 %");

    // ---- By keyboard alone: upload → result → slider → delete → undo ----------------------
    let name = web.document(id).unwrap().original_name.unwrap();
    let mut said = Vec::new();
    let mut note = |step: &str, heard: String| {
        said.push(format!("{step}\n    → {heard}"));
    };
    driver.go(&format!("{}/", web.base));
    let n = driver.tab_to("#file-input", 20);
    note(
        &format!("gallery, Tab ×{n} to the drop zone's file input"),
        driver.focused(),
    );
    // (The file chooser itself is the system's; WebDriver types the path into the input.)
    let input = driver.find("#file-input");
    driver.type_into(&input, &photos.join("horses.jpg").display().to_string());
    driver.wait(
        "the third upload listed",
        "return document.querySelectorAll('#upload-list li.ok').length === 1
            && document.querySelectorAll('#grid .card').length === 3;",
    );
    let status = driver.eval(
        "return document.querySelector('#upload-list').getAttribute('aria-live') + ': '
            + document.querySelector('#upload-list li').innerText.replace(/\\s+/g, ' ');",
    );
    note("choose horses.jpg", format!("live region {status}"));
    let n = driver.tab_to("#grid .card a.thumb", 30);
    note(
        &format!("Tab ×{n} to the first tile (its focus ring drawn in full)"),
        driver.focused(),
    );
    let n = driver.tab_to(&format!("#grid .card[data-id='{id}'] a.name"), 30);
    note(
        &format!("Tab ×{n} to the first analysed image's name link"),
        driver.focused(),
    );
    driver.press(ENTER);
    driver.wait(
        "the result page",
        "return location.pathname.startsWith('/images/') && document.readyState === 'complete';",
    );
    note(
        "Enter: the result page opens",
        driver
            .eval("return document.title;")
            .as_str()
            .unwrap_or("")
            .to_string(),
    );
    let n = driver.tab_to("#min-confidence", 20);
    note(&format!("Tab ×{n} to the slider"), driver.focused());
    for _ in 0..60 {
        driver.press(ARROW_RIGHT);
    }
    let valuetext = driver
        .eval("return document.getElementById('min-confidence').getAttribute('aria-valuetext');");
    assert_eq!(valuetext, "60 %", "the slider speaks per cent");
    let caption = driver.eval(
        "const c = document.getElementById('caption');
         return c.getAttribute('aria-live') + ': ' + c.textContent;",
    );
    assert_eq!(
        caption, "polite: 2 of 3 objects at 60% confidence or more",
        "the caption is a live region the slider is described by"
    );
    note(
        "Right arrow ×60",
        format!("{}; caption ({caption})", driver.focused()),
    );
    let focusable_boxes = driver.eval(
        "return [...document.querySelectorAll('svg.boxes *')].filter(n => n.tabIndex >= 0).length;",
    );
    assert_eq!(focusable_boxes, 0, "no Tab stops inside the hidden drawing");
    let n = driver.tab_to("#delete-button", 20);
    note(&format!("Tab ×{n} to Delete…"), driver.focused());
    driver.press(ENTER);
    driver.wait(
        "the confirmation dialog",
        "const d = document.querySelector('dialog.confirm');
         return d && d.open && document.activeElement.textContent === 'Cancel';",
    );
    let dialog = driver
        .eval("return document.querySelector('dialog.confirm').innerText.replace(/\\s+/g, ' ');");
    assert!(
        dialog
            .as_str()
            .unwrap()
            .contains(&format!("Delete {name}?")),
        "{dialog}"
    );
    driver.screenshot(&shots, "06-confirm-dialog");
    audit.run(&driver, "result: delete confirmation dialog");
    note(
        "Enter: a modal dialog opens, focus on Cancel",
        format!(
            "dialog \"{}\"; {}",
            dialog.as_str().unwrap(),
            driver.focused()
        ),
    );
    driver.press(TAB);
    note("Tab", driver.focused());
    driver.press(ENTER);
    driver.wait_for(
        "back on the gallery, the image hidden, the undo notice focused",
        "return location.pathname === '/' && location.search.startsWith('?deleted=')
             && !document.querySelector('[data-id=\"' + arguments[0] + '\"]')
             && document.activeElement && document.activeElement.id === 'undo-notice';",
        json!([id]),
    );
    driver.screenshot(&shots, "07-undo-notice");
    audit.run(&driver, "gallery: after a delete, undo notice");
    note(
        "Enter: the gallery, without the image; focus on the notice (role status)",
        driver.focused(),
    );
    driver.press(TAB);
    note("Tab", driver.focused());
    driver.press(ENTER);
    driver.wait_for(
        "the image back",
        "return location.search === '?restored=1'
             && !!document.querySelector('[data-id=\"' + arguments[0] + '\"]');",
        json!([id]),
    );
    let restored = driver.eval("return document.querySelector('.notice').textContent;");
    note(
        "Enter: the gallery with the image back",
        format!("notice \"{}\"", restored.as_str().unwrap_or("")),
    );
    audit.run(&driver, "gallery: after undo");
    let transcript = said.join("\n");
    std::fs::write(shots.join("keyboard-walkthrough.txt"), &transcript).unwrap();
    eprintln!("keyboard walk-through:\n{transcript}");
    // What a screen reader says at each stop (role, accessible name, a slider's value text),
    // and how many Tab presses each stop takes.
    let expected: Vec<String> = [
        (
            "gallery, Tab ×3 to the drop zone's file input",
            "button \"Drop JPEG or PNG photos here or choose files: up to 50 MB each, at least 32 \
             pixels a side\""
                .to_string(),
        ),
        (
            "choose horses.jpg",
            "live region \"polite: horses.jpg Uploaded, analysis pending\"".into(),
        ),
        (
            "Tab ×6 to the first tile (its focus ring drawn in full)",
            "link \"horses.jpg (not analysed yet)\"".into(),
        ),
        (
            "Tab ×4 to the first analysed image's name link",
            format!("link \"{name}\""),
        ),
        (
            "Enter: the result page opens",
            format!("{name} · ocivision"),
        ),
        (
            "Tab ×5 to the slider",
            "slider \"Minimum confidence\", 0 %".into(),
        ),
        (
            "Right arrow ×60",
            "slider \"Minimum confidence\", 60 %; caption (\"polite: 2 of 3 objects at 60% \
             confidence or more\")"
                .into(),
        ),
        ("Tab ×4 to Delete…", "button \"Delete…\"".into()),
        (
            "Enter: a modal dialog opens, focus on Cancel",
            format!(
                "dialog \"Delete {name}? It leaves the gallery at once. You can undo this for 10 \
                 seconds; then the files and their analyses are deleted for good. Cancel \
                 Delete\"; button \"Cancel\""
            ),
        ),
        ("Tab", "button \"Delete\"".into()),
        (
            "Enter: the gallery, without the image; focus on the notice (role status)",
            format!("status \"Deleted {name}. You can undo this for 10 seconds.\""),
        ),
        ("Tab", "button \"Undo\"".into()),
        (
            "Enter: the gallery with the image back",
            "notice \"Restored 1 image: the deletion is undone.\"".into(),
        ),
    ]
    .into_iter()
    .map(|(step, heard)| format!("{step}\n    → {heard}"))
    .collect();
    assert_eq!(said, expected, "the keyboard walk-through");

    // Bulk: select one, delete by the dialog, and let the window run out.
    let other = &ids[1];
    let checkbox = driver.find(&format!("input[type=checkbox][value='{other}']"));
    driver.post(&format!("/element/{checkbox}/click"), json!({}));
    let label = driver.eval(
        "const b = document.querySelector('.bulk-delete'); return [b.disabled, b.textContent];",
    );
    assert_eq!(label, json!([false, "Delete 1 selected…"]));
    let bulk = driver.find(".bulk-delete");
    driver.post(&format!("/element/{bulk}/click"), json!({}));
    let confirm = driver.find("#confirm-delete");
    driver.post(&format!("/element/{confirm}/click"), json!({}));
    driver.wait_for(
        "back on the gallery without the deleted image",
        "return location.pathname === '/' && document.querySelectorAll('#grid .card').length === 2
             && !document.querySelector('[data-id=\"' + arguments[0] + '\"]');",
        json!([other]),
    );
    assert!(
        crate::support::wait_until(window + Duration::from_secs(10), || web
            .env
            .emulator
            .read_object("images", &Web::object_name(other))
            .is_none()
            && web.document(other).is_none()),
        "the server carried the delete out when the window closed"
    );
    driver.wait(
        "the notice says the window has closed",
        "return document.querySelector('#undo-notice').textContent.includes('has closed')
             && !document.querySelector('#undo-button');",
    );
    audit.run(&driver, "gallery: undo window closed");
    // Undo after the window (a form posted late): a notice, not an error page.
    driver.go(&format!("{}/?restored=0", web.base));
    audit.run(&driver, "gallery: too late to undo");
    // The same gallery on a phone-sized window: one column, nothing cut off.
    driver.post("/window/rect", json!({"width": 400, "height": 860}));
    let overflow = driver.eval("return document.documentElement.scrollWidth > window.innerWidth;");
    assert_eq!(
        overflow, false,
        "no horizontal scrolling on a narrow screen"
    );
    driver.screenshot(&shots, "08-narrow-gallery");
    audit.run(&driver, "gallery: narrow screen");
    driver.post("/window/rect", json!({"width": 1280, "height": 1000}));

    // Pages a browser without JavaScript sees: the confirmation page and "nothing selected".
    driver.script(
        "const f = document.createElement('form');
         f.method = 'post'; f.action = '/images/' + arguments[0] + '/delete';
         const t = document.createElement('input'); t.type = 'hidden'; t.name = 'csrf';
         t.value = document.querySelector('#bulk input[name=csrf]').value;
         f.appendChild(t); document.body.appendChild(f); HTMLFormElement.prototype.submit.call(f);",
        json!([id]),
    );
    driver.wait(
        "the confirmation page",
        "return !!document.getElementById('confirm-title');",
    );
    audit.run(&driver, "confirmation page (no JavaScript)");
    driver.go(&format!("{}/", web.base));
    driver.eval(
        "const f = document.getElementById('bulk'); HTMLFormElement.prototype.submit.call(f);",
    );
    driver.wait(
        "the nothing-selected page",
        "return document.title.startsWith('Nothing selected');",
    );
    audit.run(&driver, "nothing selected (no JavaScript)");
    driver.go(&format!("{}/images/0123456789abcdef01234567.jpg", web.base));
    audit.run(&driver, "error page: no such image");

    text_on_the_result_page(&driver, &web, &mut audit, &shots);

    // Sign-in, on an app with a password: the form, then a wrong password.
    let locked = Web::start(
        "browser-login",
        Settings {
            password: Some(Secret::new("correct horse battery")),
            ..Settings::default()
        },
        false,
    );
    driver.go(&format!("{}/login", locked.base));
    audit.run(&driver, "login");
    let password = driver.find("#password");
    driver.type_into(&password, "wrong\u{E007}");
    driver.wait(
        "the wrong-password notice",
        "return !!document.querySelector('.notice.error');",
    );
    audit.run(&driver, "login: wrong password");
    audit.finish(&shots);
}

/// Issue 25: a receipt read by the local OCR, as the function would store it, on its result
/// page: every line drawn and listed in reading order, the layer toggles, the slider over the
/// lines, the copy button by keyboard with its spoken status, and the clipboard's content.
fn text_on_the_result_page(driver: &Driver, web: &Web, audit: &mut Audit, shots: &Path) {
    let receipt = include_bytes!("../fixtures/text/receipt.png");
    let id = web.upload("receipt.png", receipt);
    let read = LocalTextReader::load(TextConfig::default())
        .expect("OCR models load")
        .read(receipt)
        .expect("the receipt is read");
    web.write_done(&id, &[]);
    let mut doc = web.document(&id).unwrap();
    doc.text = read
        .lines
        .iter()
        .map(|l| TextLine {
            text: l.text.clone(),
            confidence: l.confidence,
            polygon: l.bounding_polygon.normalized_vertices.clone(),
            words: Vec::new(),
        })
        .collect();
    doc.model_versions.text_detection = Some("PP-OCRv4 (local)".into());
    web.soda
        .put(&web.key(&id), &doc.to_json(), deadline(5))
        .unwrap();
    let texts: Vec<&str> = doc.text.iter().map(|l| l.text.as_str()).collect();
    let n = texts.len();
    assert!(n >= 15, "{texts:?}");

    driver.post("/window/rect", json!({"width": 1280, "height": 1500}));
    driver.go(&format!("{}/images/{id}", web.base));
    let drawn = driver.wait(
        "every line outlined on the picture",
        "const lines = [...document.querySelectorAll('svg.boxes .line')];
         const img = document.querySelector('.stage img');
         if (!img.complete || img.naturalWidth === 0 || !lines.length) return null;
         const r = lines[0].querySelector('polygon').getBoundingClientRect();
         return r.width > 20 && r.height > 5 ? lines.length : null;",
    );
    assert_eq!(drawn, json!(n));
    let listed = driver
        .eval("return [...document.querySelectorAll('#text-lines li')].map(li => li.textContent);");
    assert_eq!(listed, json!(texts), "the lines listed in reading order");
    let copy_shown = driver.eval("return !document.getElementById('copy-text').hidden;");
    assert_eq!(copy_shown, true, "the script shows the copy button");
    driver.screenshot(shots, "09-result-text");
    audit.run(driver, "result: text read in a receipt");

    // The toggles: lines off leaves the boxes' setting alone, and back on.
    let shown = |css: &str| {
        driver
            .script(
                "return [...document.querySelectorAll(arguments[0])]
                     .filter(n => getComputedStyle(n).display !== 'none').length;",
                json!([css]),
            )
            .as_u64()
            .unwrap()
    };
    let lines_toggle = driver.find("#show-lines");
    driver.post(&format!("/element/{lines_toggle}/click"), json!({}));
    assert_eq!(shown("svg.boxes .line"), 0, "lines hidden by their toggle");
    audit.run(driver, "result: text lines hidden");
    driver.post(&format!("/element/{lines_toggle}/click"), json!({}));
    assert_eq!(shown("svg.boxes .line") as usize, n, "and shown again");

    // The slider hides lines below it, and the caption counts them.
    let threshold = 0.9;
    let above = doc
        .text
        .iter()
        .filter(|l| l.confidence >= threshold)
        .count();
    driver.eval(
        "const s = document.getElementById('min-confidence');
         s.value = '0.9'; s.dispatchEvent(new Event('input'));",
    );
    assert_eq!(shown("svg.boxes .line") as usize, above);
    let caption = driver.eval("return document.getElementById('caption').textContent;");
    assert_eq!(
        caption,
        format!("{above} of {n} text lines at 90% confidence or more")
    );
    assert_eq!(
        shown("#text-lines li") as usize,
        n,
        "the text stays whole below the picture"
    );

    // Copy, by keyboard: the button's name, then what the status line says.
    for name in ["clipboard-read", "clipboard-write"] {
        driver.post(
            "/permissions",
            json!({"descriptor": {"name": name}, "state": "granted"}),
        );
    }
    driver.eval("document.activeElement.blur(); window.scrollTo(0, 0);");
    driver.tab_to("#copy-text", 60);
    assert_eq!(driver.focused(), "button \"Copy text\"");
    driver.press(ENTER);
    let status = driver.wait(
        "the copy reported",
        "const s = document.getElementById('copy-status');
         return s.textContent ? s.getAttribute('role') + ': ' + s.textContent : null;",
    );
    assert_eq!(status, format!("status: Copied {n} lines."));
    let copied = driver.script_async(
        "const done = arguments[arguments.length - 1];
         navigator.clipboard.readText().then(done, e => done('refused: ' + e));",
        json!([]),
    );
    assert_eq!(copied, json!(texts.join("\n")), "every line, one per line");
    audit.run(driver, "result: text copied");
    driver.post("/window/rect", json!({"width": 1280, "height": 1000}));
}
