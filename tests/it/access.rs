//! Sessions and logins over loopback: cookies and form tokens are keyed by the deployment's
//! session secret (not the password), a password change signs everyone out, the `webapp` binary
//! reads its secret from the Vault, and wrong passwords are throttled per client address (form
//! and `Bearer` alike) while other visitors and `/healthz` carry on.

use std::sync::Arc;
use std::time::Duration;

use ocivision::emulator::secrets::SecretEntry;
use ocivision::secret::Secret;
use ocivision::web::{LoginThrottle, Settings, TrustedProxies};

use crate::support::emulator::{Env, VAULT_ID};
use crate::support::web::{token_in, Web};
use crate::support::{Reply, Webapp};

const SECRET_A: &str = "a-session-secret-of-thirty-two-chars";
const SECRET_B: &str = "another-session-secret-32-chars-xx";
const SAME_ORIGIN: (&str, &str) = ("Sec-Fetch-Site", "same-origin");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn with_password(password: &str, secret: &str) -> Settings {
    Settings {
        password: Some(Secret::new(password)),
        session_secret: Some(Secret::new(secret)),
        ..Settings::default()
    }
}

/// Posts the login form of `web` with `password`, adding `headers`.
fn post_login(web: &Web, password: &str, headers: &[(&str, &str)]) -> Reply {
    let token = token_in(&web.get("/login").text(), "/login");
    let mut all = vec![SAME_ORIGIN, FORM];
    all.extend_from_slice(headers);
    web.fetch(
        "POST",
        "/login",
        &all,
        format!(
            "csrf={token}&password={}",
            ocivision::oci::encode::component(password)
        )
        .as_bytes(),
    )
}

/// Signs in and returns the `Cookie` header value of the new session.
fn sign_in(web: &Web, password: &str) -> String {
    let r = post_login(web, password, &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// True when `cookie` opens the gallery of `web` (else it redirects to the login page).
fn accepted(web: &Web, cookie: &str) -> bool {
    let r = web.fetch("GET", "/", &[("Cookie", cookie)], b"");
    match r.status {
        200 => true,
        303 => false,
        other => panic!("unexpected {other}: {}", r.text()),
    }
}

#[test]
fn access_cookies_and_form_tokens_follow_the_session_secret_not_the_password() {
    let a = Web::start("access-secret-a", with_password("pw", SECRET_A), false);
    // Another instance of the same deployment: other emulator, other process state, same
    // secret and password.
    let twin = Web::start("access-secret-twin", with_password("pw", SECRET_A), false);
    // A deployment with the same password but its own secret.
    let other = Web::start("access-secret-other", with_password("pw", SECRET_B), false);

    let cookie = sign_in(&a, "pw");
    assert!(accepted(&a, &cookie));
    assert!(accepted(&twin, &cookie), "same secret: sessions are shared");
    assert!(
        !accepted(&other, &cookie),
        "same password, other secret: the cookie must be refused"
    );

    // A form token issued by one instance is good on its twin, not elsewhere.
    let html = a.fetch("GET", "/", &[("Cookie", &cookie)], b"").text();
    let token = token_in(&html, "/logout");
    let logout = |web: &Web| {
        web.fetch(
            "POST",
            "/logout",
            &[SAME_ORIGIN, FORM, ("Cookie", &cookie)],
            format!("csrf={token}").as_bytes(),
        )
        .status
    };
    assert_eq!(logout(&twin), 303);
    assert_eq!(logout(&other), 403);
}

#[test]
fn access_a_password_change_signs_everyone_out() {
    let before = Web::start("access-pw-before", with_password("old-pw", SECRET_A), false);
    let cookie = sign_in(&before, "old-pw");
    assert!(accepted(&before, &cookie));
    // The same deployment restarted with a new password (same secret).
    let after = Web::start("access-pw-after", with_password("new-pw", SECRET_A), false);
    assert!(!accepted(&after, &cookie), "the old session must be over");
    assert_eq!(post_login(&after, "old-pw", &[]).status, 401);
    let fresh = sign_in(&after, "new-pw");
    assert!(accepted(&after, &fresh));
    assert!(
        !accepted(&before, &fresh),
        "nor does a new session open the old password's app"
    );
}

#[test]
fn access_the_binary_reads_its_session_secret_from_the_vault() {
    let cloud = Arc::new(Env::start_with("access-vault", |config| {
        config.secrets.push(SecretEntry {
            id: "ocid1.vaultsecret.oc1..session".into(),
            name: "session-secret".into(),
            vault_id: VAULT_ID.into(),
            value: SECRET_A.into(),
        });
    }));
    let vault = [
        ("APP_PASSWORD", "pw"),
        ("SESSION_SECRET_OCID", "ocid1.vaultsecret.oc1..session"),
    ];
    let first = Webapp::spawn_with(&[], Arc::clone(&cloud), &vault);
    let second = Webapp::spawn_with(&[], Arc::clone(&cloud), &vault);
    let stranger = Webapp::spawn_with(
        &[],
        Arc::clone(&cloud),
        &[("APP_PASSWORD", "pw"), ("SESSION_SECRET", SECRET_B)],
    );
    let get =
        |app: &Webapp, path: &str, headers: &[&str]| raw_request(app, "GET", path, headers, b"");
    let token = token_in(&get(&first, "/login", &[]).text(), "/login");
    let r = raw_request(
        &first,
        "POST",
        "/login",
        &[
            "Sec-Fetch-Site: same-origin",
            "Content-Type: application/x-www-form-urlencoded",
        ],
        format!("csrf={token}&password=pw").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = format!(
        "Cookie: {}",
        r.header("set-cookie").unwrap().split(';').next().unwrap()
    );
    assert_eq!(get(&first, "/", &[&cookie]).status, 200);
    assert_eq!(
        get(&second, "/", &[&cookie]).status,
        200,
        "{}",
        second.log()
    );
    assert_eq!(get(&stranger, "/", &[&cookie]).status, 303);
    assert!(
        !first.log().contains(SECRET_A)
            && !first.log().contains("SESSION_SECRET(_OCID) is not set"),
        "{}",
        first.log()
    );
}

/// One request to a child web app on a fresh connection.
fn raw_request(app: &Webapp, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Reply {
    crate::support::request(
        app.addr,
        method,
        path,
        headers,
        body,
        Duration::from_secs(10),
    )
    .expect("an answer")
}

fn throttled_settings(trusted: &str) -> Settings {
    Settings {
        trusted_proxies: TrustedProxies::parse(trusted).unwrap(),
        login_throttle: LoginThrottle {
            burst: 3,
            refill: Duration::from_secs(60),
            ..LoginThrottle::default()
        },
        ..with_password("right", SECRET_A)
    }
}

fn retry_after(r: &Reply) -> u64 {
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    secs
}

#[test]
fn access_wrong_passwords_are_throttled_per_address_for_the_form_and_bearer() {
    // The test is the load balancer: loopback is the trusted proxy, and X-Forwarded-For says
    // who the visitor is (the LB appends the address it saw as the last entry).
    let web = Web::start("access-throttle", throttled_settings("127.0.0.1/32"), false);
    let attacker = ("X-Forwarded-For", "203.0.113.5");
    for _ in 0..3 {
        assert_eq!(post_login(&web, "guess", &[attacker]).status, 401);
    }
    let r = post_login(&web, "guess", &[attacker]);
    assert_eq!(r.status, 429, "{}", r.text());
    retry_after(&r);
    assert!(r.text().contains("Too many wrong passwords"));
    // Refused before the password is looked at: the right one fares no better now.
    let r = post_login(&web, "right", &[attacker]);
    assert_eq!((r.status, r.header("set-cookie")), (429, None));
    // The same address with Bearer, wrong or right: 429 before any check.
    for given in ["Bearer guess", "Bearer right"] {
        let r = web.fetch(
            "GET",
            "/api/images",
            &[attacker, ("Authorization", given)],
            b"",
        );
        assert_eq!(r.status, 429, "{given}");
        retry_after(&r);
        assert_eq!(r.json()["error"], "TooManyRequests");
    }
    // Writing a made-up address in front changes nothing: the last entry is the LB's.
    let spoofed = ("X-Forwarded-For", "198.51.100.99, 203.0.113.5");
    assert_eq!(post_login(&web, "guess", &[spoofed]).status, 429);
    // The health check and everyone else are unaffected.
    assert_eq!(web.fetch("GET", "/healthz", &[attacker], b"").status, 200);
    let visitor = ("X-Forwarded-For", "198.51.100.7");
    let r = post_login(&web, "right", &[visitor]);
    assert_eq!(r.status, 303);
    let r = web.fetch(
        "GET",
        "/api/images",
        &[visitor, ("Authorization", "Bearer right")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Bearer guesses count like form guesses, and a right one forgives the address.
    let curl = ("X-Forwarded-For", "192.0.2.44");
    let bearer =
        |given: &str| web.fetch("GET", "/api/images", &[curl, ("Authorization", given)], b"");
    assert_eq!(bearer("Bearer guess").status, 401);
    assert_eq!(bearer("Bearer guess").status, 401);
    assert_eq!(bearer("Bearer right").status, 200);
    for _ in 0..3 {
        assert_eq!(bearer("Bearer guess").status, 401);
    }
    assert_eq!(bearer("Bearer guess").status, 429);
    assert_eq!(
        post_login(&web, "right", &[curl]).status,
        429,
        "one bucket per address"
    );
    // A valid session cookie needs no password check, so it is never throttled.
    let cookie = sign_in(&web, "right");
    let r = web.fetch("GET", "/api/images", &[curl, ("Cookie", &cookie)], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn access_forwarded_addresses_count_only_from_trusted_proxies() {
    // Nobody trusted: X-Forwarded-For is ignored and every request is the socket peer.
    let web = Web::start("access-untrusted", throttled_settings(""), false);
    for n in 0..3 {
        let claimed = format!("203.0.113.{n}");
        let r = post_login(&web, "guess", &[("X-Forwarded-For", &claimed)]);
        assert_eq!(r.status, 401);
    }
    let r = post_login(&web, "guess", &[("X-Forwarded-For", "203.0.113.200")]);
    assert_eq!(
        r.status, 429,
        "a new X-Forwarded-For must not buy new attempts"
    );
    assert_eq!(web.get("/healthz").status, 200);
}
