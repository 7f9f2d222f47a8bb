//! Access and CSRF: the optional shared password, the signed session cookie, the cross-origin
//! check on every state change, and stateless form tokens.
//!
//! Session cookies and form tokens are `expiry.hmac` with HMAC-SHA256 (ring) over a purpose and
//! the expiry, so nothing is stored server-side. With a password the keys are derived from it
//! (every instance agrees and a password change logs everyone out); without one they are random
//! per process. Cross-origin requests are refused by `Sec-Fetch-Site`, else by comparing
//! `Origin` to the configured public origin (never to `Host`, which proxies rewrite); requests
//! carrying neither header are not from a browser and pass that check, but browser forms must
//! still carry a valid token. Not here: accounts, rate limiting (the WAF's job), Basic auth,
//! the login page and what the form posts answer (`pages.rs`, `actions.rs`).

use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;

use super::form::Pairs;
use super::App;
use crate::error::{Error, Result};
use crate::http::Request;
use crate::secret::{constant_time_eq, Secret};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ocv_session";
/// How long a session lasts, in seconds.
const SESSION_SECS: u64 = 12 * 3600;
/// How long a form token is good for, in seconds (a page left open all day still works).
const TOKEN_SECS: u64 = 24 * 3600;
/// The hidden form field carrying the token.
pub(crate) const TOKEN_FIELD: &str = "csrf";

/// The form actions tokens are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Upload,
    Delete,
    Reanalyze,
    Login,
    Logout,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Upload => "upload",
            Action::Delete => "delete",
            Action::Reanalyze => "reanalyze",
            Action::Login => "login",
            Action::Logout => "logout",
        }
    }
}

/// The HMAC keys.
pub(crate) struct Keys {
    session: hmac::Key,
    token: hmac::Key,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    pub(crate) fn new(password: Option<&Secret>) -> Keys {
        let derive = |purpose: &str| -> hmac::Key {
            let material: Vec<u8> = match password {
                Some(p) => {
                    let salt = hmac::Key::new(hmac::HMAC_SHA256, b"ocivision web key derivation");
                    hmac::sign(&salt, format!("{purpose}\n{}", p.expose()).as_bytes())
                        .as_ref()
                        .to_vec()
                }
                None => crate::random::bytes::<32>().to_vec(),
            };
            hmac::Key::new(hmac::HMAC_SHA256, &material)
        };
        Keys {
            session: derive("session"),
            token: derive("form-token"),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn sign(key: &hmac::Key, purpose: &str, expiry: u64) -> String {
    let tag = hmac::sign(key, format!("{purpose}\n{expiry}").as_bytes());
    format!("{expiry}.{}", hex(tag.as_ref()))
}

fn verify(key: &hmac::Key, purpose: &str, token: &str, now: u64) -> bool {
    let Some((expiry, tag)) = token.split_once('.') else {
        return false;
    };
    let (Ok(expiry), Some(tag)) = (expiry.parse::<u64>(), unhex(tag)) else {
        return false;
    };
    expiry > now && hmac::verify(key, format!("{purpose}\n{expiry}").as_bytes(), &tag).is_ok()
}

/// A fresh form token for `action`.
pub(crate) fn token(app: &App, action: Action) -> String {
    sign(&app.keys.token, action.name(), now_secs() + TOKEN_SECS)
}

/// Checks a form token; `403` with a reason when it is missing, expired or forged.
pub(crate) fn check_token(app: &App, action: Action, token: Option<&str>) -> Result<()> {
    match token {
        Some(t) if verify(&app.keys.token, action.name(), t, now_secs()) => Ok(()),
        Some(_) => Err(Error::bad_request(
            403,
            "this form has expired or was not issued by this server: reload the page and try again",
        )),
        None => Err(Error::bad_request(403, "the form token is missing")),
    }
}

/// Refuses state changes that a browser sent on behalf of another site.
pub(crate) fn check_origin(app: &App, req: &Request) -> Result<()> {
    let refuse = || {
        Error::bad_request(
            403,
            "cross-origin request refused: state changes must come from this site's own pages",
        )
    };
    if let Some(site) = req.header("sec-fetch-site") {
        return match site.trim().to_ascii_lowercase().as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err(refuse()),
        };
    }
    if let Some(origin) = req.header("origin") {
        return match &app.settings.public_origin {
            Some(expected) if origin.trim() == expected => Ok(()),
            _ => Err(refuse()),
        };
    }
    Ok(())
}

/// True when the request came to the load balancer over HTTPS.
pub(crate) fn is_https(req: &Request) -> bool {
    req.header("x-forwarded-proto")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn cookie_value<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// True when no password is set, or the request carries a valid session cookie or
/// `Authorization: Bearer <password>` (for curl).
pub(crate) fn authenticated(app: &App, req: &Request) -> bool {
    let Some(password) = &app.settings.password else {
        return true;
    };
    if let Some(value) = cookie_value(req, COOKIE) {
        if verify(&app.keys.session, "session", value, now_secs()) {
            return true;
        }
    }
    req.header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| {
            constant_time_eq(given.trim().as_bytes(), password.expose().as_bytes())
        })
}

fn session_cookie(req: &Request, value: &str, max_age: u64) -> String {
    let secure = if is_https(req) { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// What a `POST /login` came to.
#[derive(Debug)]
pub(crate) enum Login {
    /// No password is set: there is nothing to sign in to.
    Open,
    /// The password was right: the `Set-Cookie` value of a new session.
    Accepted(String),
    /// The password was wrong; answered only after a pause.
    Refused,
}

/// Checks a login form (its token, then the password in constant time).
pub(crate) fn login(app: &App, req: &Request) -> Result<Login> {
    let Some(password) = &app.settings.password else {
        return Ok(Login::Open);
    };
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(16 * 1024)?))?;
    check_token(app, Action::Login, form.get(TOKEN_FIELD))?;
    let given = form.get("password").unwrap_or("");
    if !constant_time_eq(given.as_bytes(), password.expose().as_bytes()) {
        log::info!(target: "webapp", "{} failed login from {:?}", req.request_id(), req.peer_addr());
        // A pause makes guessing slow without keeping any per-client state.
        std::thread::sleep(std::time::Duration::from_millis(400));
        return Ok(Login::Refused);
    }
    let value = sign(&app.keys.session, "session", now_secs() + SESSION_SECS);
    Ok(Login::Accepted(session_cookie(req, &value, SESSION_SECS)))
}

/// Checks a logout form; the `Set-Cookie` value that ends the session.
pub(crate) fn logout(app: &App, req: &Request) -> Result<String> {
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(16 * 1024)?))?;
    check_token(app, Action::Logout, form.get(TOKEN_FIELD))?;
    Ok(session_cookie(req, "", 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_purpose_and_before_expiry() {
        let keys = Keys::new(None);
        let t = sign(&keys.token, "delete", 2000);
        assert!(verify(&keys.token, "delete", &t, 1999));
        assert!(!verify(&keys.token, "delete", &t, 2000), "expired");
        assert!(!verify(&keys.token, "upload", &t, 1999), "other action");
        assert!(!verify(&keys.session, "delete", &t, 1999), "other key");
        let forged = t.replace("2000.", "3000.");
        assert!(
            !verify(&keys.token, "delete", &forged, 1999),
            "expiry is signed"
        );
        for junk in ["", ".", "2000.", "x.y", "2000.zz"] {
            assert!(!verify(&keys.token, "delete", junk, 0), "{junk}");
        }
    }

    #[test]
    fn password_keys_agree_across_instances_and_random_keys_do_not() {
        let p = Secret::new("pw");
        let (a, b) = (Keys::new(Some(&p)), Keys::new(Some(&p)));
        let t = sign(&a.session, "session", 10);
        assert!(verify(&b.session, "session", &t, 1));
        assert!(!verify(
            &Keys::new(Some(&Secret::new("other"))).session,
            "session",
            &t,
            1
        ));
        assert!(!verify(
            &Keys::new(None).session,
            "session",
            &sign(&Keys::new(None).session, "session", 10),
            1
        ));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let req = Request::fake("GET", "/", &[("Cookie", "a=1; ocv_session=xyz; b=2")], b"");
        assert_eq!(cookie_value(&req, COOKIE), Some("xyz"));
        let https = Request::fake("GET", "/", &[("X-Forwarded-Proto", "https")], b"");
        assert!(session_cookie(&https, "v", 5).ends_with("; Secure"));
        let plain = Request::fake("GET", "/", &[], b"");
        let c = session_cookie(&plain, "v", 5);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"));
        assert!(!c.contains("Secure"));
    }
}
