//! The REST API's edges against the real daemon: schemathesis fuzzing from the OpenAPI
//! document, bearer tokens, and refusing to serve beyond loopback without one. (The
//! bad-input matrix needs no kernel: it is a unit test of the router, `src/api/tests.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use common::daemon::{bare_api, client, url};
use serde_json::Value;

#[test]
fn token_protects_every_route() {
    let base = bare_api(Some("s3cret"));
    let c = client();
    for path in [
        "/health",
        "/api/connection-summary",
        "/openapi.json",
        "/nope",
    ] {
        let missing = c.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(missing.status(), 401, "{path}");
        assert_eq!(missing.headers()["www-authenticate"], "Bearer");
        let body: Value = missing.json().unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("missing bearer token")
        );
        let wrong = c
            .get(format!("{base}{path}"))
            .bearer_auth("s3cre")
            .send()
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    // With the token the request gets through (503: this bare API has no probes), whatever
    // the case of the scheme (RFC 9110).
    let lower = c
        .get(format!("{base}/health"))
        .header("authorization", "bearer s3cret")
        .send()
        .unwrap();
    assert_eq!(lower.status(), 503);
    let right = c
        .get(format!("{base}/health"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(right.status(), 503);
    let body: Value = right.json().unwrap();
    assert_eq!(body["status"], "starting");
    let data = c
        .get(format!("{base}/api/connection-summary"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(data.status(), 503);
}

#[test]
fn non_loopback_listen_without_token_refuses_to_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_netspy"))
        .args(["daemon", "--listen", "0.0.0.0:0"])
        .env_remove("NETSPY_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0 without a token"),
        "{stderr}"
    );
}

#[test]
fn schemathesis_finds_nothing_wrong_with_the_openapi_contract() {
    // An outside fuzzer drives every operation from /openapi.json with every check, valid
    // and invalid data alike: no 5xx, every answer and error matches its declared schema,
    // schema-valid input is accepted and invalid input refused, 405s carry Allow. The two
    // rules a schema cannot state (until after since; a glob must parse), which the
    // schemas say in words, are taught to it by a hook.
    let schemathesis = common::daemon::mcp_python().replace("/python", "/schemathesis");
    let output = std::process::Command::new(&schemathesis)
        .args(["run", &format!("{}/openapi.json", url()), "--url", url()])
        .args(["--checks", "all", "--mode", "all"])
        // Bounded: 100 cases an operation and mode, 10 s a request.
        .args([
            "--max-examples",
            "100",
            "--seed",
            "1",
            "--request-timeout",
            "10",
        ])
        .arg("--no-color")
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
        // schemathesis keeps a cache in its working directory: keep it out of the source tree.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap_or_else(|e| panic!("{schemathesis}: {e} (run `cargo xtask setup`)"));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(report.contains("No issues found"), "{report}");
}
