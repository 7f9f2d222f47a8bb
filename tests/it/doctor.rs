//! `webapp doctor` against the emulator: all green on a working local stack, then each check
//! made to fail on its own, reported with its fix.

use std::collections::HashMap;

use ocivision::doctor::{self, Check, Verdict};
use ocivision::local::LocalStack;

use crate::support::emulator::TempDir;

fn run(stack: &LocalStack, changes: &[(&str, Option<&str>)]) -> Vec<Check> {
    let mut env: HashMap<String, String> = stack.wiring().webapp_env().into_iter().collect();
    for (name, value) in changes {
        match value {
            Some(v) => env.insert(name.to_string(), v.to_string()),
            None => env.remove(*name),
        };
    }
    doctor::run(&|name| env.get(name).cloned())
}

fn verdict<'a>(checks: &'a [Check], name: &str) -> &'a Verdict {
    &checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
        .verdict
}

fn fix(checks: &[Check], name: &str) -> String {
    match verdict(checks, name) {
        Verdict::Fail { fix, .. } => fix.clone(),
        other => panic!("{name} should fail, got {other:?}"),
    }
}

#[test]
fn a_working_stack_is_all_green_and_each_failure_names_its_fix() {
    let dir = TempDir::new("doctor");
    let stack = LocalStack::start(dir.path()).expect("local stack");
    let checks = run(&stack, &[]);
    let (table, ok) = doctor::render(&checks);
    assert!(ok, "{table}");
    for name in [
        "credentials",
        "configuration",
        "bucket access",
        "object events",
        "ORDS",
        "collection",
        "function",
    ] {
        assert_eq!(verdict(&checks, name), &Verdict::Pass, "{table}");
    }
    assert!(
        table.contains("API key of ocid1.user.oc1..local"),
        "{table}"
    );

    // Credentials: no config file anywhere.
    let checks = run(
        &stack,
        &[
            ("OCI_CONFIG_FILE", Some("/nonexistent/config")),
            ("HOME", Some("/nonexistent")),
        ],
    );
    assert!(fix(&checks, "credentials").contains("oci setup config"));
    assert_eq!(
        checks.len(),
        1,
        "nothing else can be checked without credentials"
    );

    // Configuration: a missing setting is named.
    let checks = run(&stack, &[("BUCKET_NAME", None)]);
    let Verdict::Fail { problem, .. } = verdict(&checks, "configuration") else {
        panic!()
    };
    assert!(problem.contains("BUCKET_NAME"), "{problem}");

    // Bucket: a bucket that is not there.
    let checks = run(&stack, &[("BUCKET_NAME", Some("nosuchbucket"))]);
    assert!(fix(&checks, "bucket access").contains("manage objects in bucket nosuchbucket"));

    // Events switched off on the bucket.
    stack.emulator.set_object_events(false);
    let checks = run(&stack, &[]);
    assert!(fix(&checks, "object events").contains("--object-events-enabled true"));
    stack.emulator.set_object_events(true);

    // Vision without a detector.
    stack.emulator.set_detector(None);
    let checks = run(&stack, &[]);
    assert!(fix(&checks, "vision").contains("did not load"));

    // The password secret cannot be read.
    let checks = run(
        &stack,
        &[(
            "DB_PASSWORD_SECRET_OCID",
            Some("ocid1.vaultsecret.oc1..missing"),
        )],
    );
    assert!(fix(&checks, "database password").contains("read secret-bundles"));

    // Wrong database user.
    let checks = run(&stack, &[("DB_USERNAME", Some("SOMEONE"))]);
    assert!(fix(&checks, "ORDS").contains("DB_USERNAME"));

    // A collection that does not exist yet, and one with server-assigned keys.
    let checks = run(&stack, &[("DB_COLLECTION", Some("NOT_YET"))]);
    assert!(matches!(
        verdict(&checks, "collection"),
        Verdict::Fail { .. }
    ));
    let ords = format!(
        "{}/ords/admin/soda/latest/SERVER_KEYS",
        stack.emulator.base_url()
    );
    let (user, password) = stack.emulator.ords_credentials();
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    ureq::put(&ords)
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/json")
        .send(r#"{"keyColumn":{"name":"ID","assignmentMethod":"UUID"}}"#)
        .unwrap();
    let checks = run(&stack, &[("DB_COLLECTION", Some("SERVER_KEYS"))]);
    assert!(fix(&checks, "collection").contains("DB_COLLECTION"));

    // A function that does not exist; and none configured (skipped, not failed).
    let checks = run(&stack, &[("FUNCTION_ID", Some("ocid1.fnfunc.oc1..nope"))]);
    assert!(fix(&checks, "function").contains("fn-invocation"));
    let checks = run(&stack, &[("FUNCTION_ID", None)]);
    assert!(matches!(verdict(&checks, "function"), Verdict::Skip(_)));
}
