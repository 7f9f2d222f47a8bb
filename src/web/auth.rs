//! Access and CSRF: the optional shared password, the signed session cookie, the cross-origin
//! check on every state change, stateless form tokens, and login throttling.
//!
//! Session cookies and form tokens are `expiry.hmac` with HMAC-SHA256 (ring) over a purpose and
//! the expiry, so nothing is stored server-side. The keys come from the deployment's session
//! secret (`SESSION_SECRET_OCID`, `SESSION_SECRET`, a file in local mode), never from the
//! password, so a stolen cookie cannot be used to test passwords offline; every instance with
//! the same secret accepts the others' cookies. Without a secret the keys are random per process.
//! A session is also bound to the password through a tag, HMAC(secret-derived key, password),
//! inside the MAC input and never in the cookie: changing the password signs everyone out, and
//! without the secret the tag cannot be computed. Password checks (form and `Bearer`) pass the
//! per-address throttle first (`throttle.rs`): refused attempts get `429` at once, no thread
//! sleeps. Cross-origin requests are refused by `Sec-Fetch-Site`, else by comparing `Origin` to
//! the configured public origin (never to `Host`, which proxies rewrite); requests carrying
//! neither header are not from a browser and pass that check, but browser forms must still carry
//! a valid token. Not here: accounts, Basic auth, the login page and what the form posts answer
//! (`pages.rs`, `actions.rs`).

use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;

use super::form::Pairs;
use super::throttle::{client_addr, Admission};
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

/// The HMAC keys, and the password's tag that sessions are bound to.
pub(crate) struct Keys {
    session: hmac::Key,
    token: hmac::Key,
    /// HMAC of the password under a secret-derived key (empty without a password).
    password_tag: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    /// Keys from the session secret (random per process without one); sessions bound to
    /// `password`.
    pub(crate) fn new(secret: Option<&Secret>, password: Option<&Secret>) -> Keys {
        let root = match secret {
            Some(s) => hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes()),
            None => hmac::Key::new(hmac::HMAC_SHA256, &crate::random::bytes::<32>()),
        };
        let derive = |purpose: &str| -> hmac::Key {
            let material = hmac::sign(&root, format!("ocivision web key\n{purpose}").as_bytes());
            hmac::Key::new(hmac::HMAC_SHA256, material.as_ref())
        };
        let password_tag = password
            .map(|p| hex(hmac::sign(&derive("password-tag"), p.expose().as_bytes()).as_ref()))
            .unwrap_or_default();
        Keys {
            session: derive("session"),
            token: derive("form-token"),
            password_tag,
        }
    }

    /// What a session's MAC covers besides its expiry.
    fn session_purpose(&self) -> String {
        format!("session\n{}", self.password_tag)
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

/// Whether a request may use the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No password is set, or a valid session cookie or `Bearer` password came with it.
    Granted,
    /// Neither: sign in first.
    Denied,
    /// A `Bearer` password came from an address with too many failures; it was not checked.
    Throttled { retry_after: u64 },
}

/// Checks the session cookie, then `Authorization: Bearer <password>` (for curl), which counts
/// against the address's throttle like a login.
pub(crate) fn access(app: &App, req: &Request) -> Access {
    let Some(password) = &app.settings.password else {
        return Access::Granted;
    };
    if let Some(value) = cookie_value(req, COOKIE) {
        if verify(
            &app.keys.session,
            &app.keys.session_purpose(),
            value,
            now_secs(),
        ) {
            return Access::Granted;
        }
    }
    let Some(given) = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Access::Denied;
    };
    let client = client_addr(req, &app.settings.trusted_proxies);
    if let Admission::Refused { retry_after } = app.throttle.admit(client) {
        return Access::Throttled { retry_after };
    }
    if constant_time_eq(given.trim().as_bytes(), password.expose().as_bytes()) {
        app.throttle.forgive(client);
        Access::Granted
    } else {
        log::info!(target: "webapp", "{} wrong Bearer password from {}", req.request_id(), shown(client));
        Access::Denied
    }
}

fn shown(client: Option<std::net::IpAddr>) -> String {
    client.map_or_else(|| "an unknown address".into(), |ip| ip.to_string())
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
    /// The password was wrong.
    Refused,
    /// Too many failures from this address: the password was not checked.
    Throttled { retry_after: u64 },
}

/// Checks a login form: its token, the address's throttle, then the password in constant time.
pub(crate) fn login(app: &App, req: &Request) -> Result<Login> {
    let Some(password) = &app.settings.password else {
        return Ok(Login::Open);
    };
    let form = Pairs::parse(&String::from_utf8_lossy(&req.read_body(16 * 1024)?))?;
    check_token(app, Action::Login, form.get(TOKEN_FIELD))?;
    let client = client_addr(req, &app.settings.trusted_proxies);
    if let Admission::Refused { retry_after } = app.throttle.admit(client) {
        return Ok(Login::Throttled { retry_after });
    }
    let given = form.get("password").unwrap_or("");
    if !constant_time_eq(given.as_bytes(), password.expose().as_bytes()) {
        log::info!(target: "webapp", "{} failed login from {}", req.request_id(), shown(client));
        return Ok(Login::Refused);
    }
    app.throttle.forgive(client);
    let value = sign(
        &app.keys.session,
        &app.keys.session_purpose(),
        now_secs() + SESSION_SECS,
    );
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
        let keys = Keys::new(None, None);
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
    fn keys_come_from_the_secret_and_sessions_are_bound_to_the_password() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let other_secret = Secret::new("fedcba9876543210fedcba9876543210");
        let pw = Secret::new("pw");
        let session = |k: &Keys| sign(&k.session, &k.session_purpose(), 10);
        let accepts = |k: &Keys, cookie: &str| verify(&k.session, &k.session_purpose(), cookie, 1);
        let a = Keys::new(Some(&secret), Some(&pw));
        let cookie = session(&a);
        assert!(
            accepts(&Keys::new(Some(&secret), Some(&pw)), &cookie),
            "same secret, same password"
        );
        assert!(
            !accepts(&Keys::new(Some(&other_secret), Some(&pw)), &cookie),
            "other secret"
        );
        let new_pw = Secret::new("new");
        let moved_on = Keys::new(Some(&secret), Some(&new_pw));
        assert!(!accepts(&moved_on, &cookie), "new password");
        assert!(!accepts(&Keys::new(None, Some(&pw)), &cookie), "random key");
        // The password alone derives nothing: the tag needs the secret.
        assert_ne!(
            Keys::new(Some(&secret), Some(&pw)).password_tag,
            Keys::new(Some(&other_secret), Some(&pw)).password_tag
        );
        assert!(!a.password_tag.contains("pw"));
        // Form tokens follow the secret too.
        let token = sign(&a.token, "delete", 10);
        let token_ok =
            |secret: &Secret| verify(&Keys::new(Some(secret), None).token, "delete", &token, 1);
        assert!(token_ok(&secret));
        assert!(!token_ok(&other_secret));
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
