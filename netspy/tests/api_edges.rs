//! The REST API's edges against the real daemon: bad input on every endpoint (a matrix, and
//! schemathesis fuzzing from the OpenAPI document), bearer tokens, and refusing to serve
//! beyond loopback without one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use common::daemon::{bare_api, client, get, post, url};
use serde_json::{Value, json};

#[test]
fn bad_input_gets_a_4xx_with_a_json_error_on_every_endpoint() {
    url();
    let data = [
        "/api/events",
        "/api/connection-summary",
        "/api/list-connections",
        "/api/analyze-patterns",
        "/api/packet-drop-summary",
        "/api/list-packet-drops",
        "/api/list-dns",
    ];
    let expect = |status: u16, body: &Value, want: u16, contains: &str, what: &str| {
        assert_eq!(status, want, "{what}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error field in {body}"));
        assert!(
            error.contains(contains),
            "{what}: {error:?} should mention {contains:?}"
        );
    };
    for path in data {
        let (s, b) = post(path, "{\"pid\": ");
        expect(s, &b, 400, "invalid JSON body", path);
        let (s, b) = post(path, " ");
        expect(s, &b, 400, "invalid JSON body", path);
        let (s, b) = post(path, r#"{"pid": "seven"}"#);
        expect(s, &b, 400, "invalid type", path);
        let (s, b) = post(path, r#"{"pid": -1}"#);
        expect(s, &b, 400, "invalid value", path);
        let (s, b) = get(&format!("{path}?pid=abc"));
        expect(s, &b, 400, "pid", path);
        let (s, b) = get(&format!("{path}?duration_seconds=-5"));
        expect(s, &b, 400, "duration_seconds must be between", path);
        let (s, b) = get(&format!("{path}?duration_seconds=99999999999"));
        expect(s, &b, 400, "duration_seconds must be between", path);
        let (s, b) = get(&format!("{path}?bogus=1"));
        expect(s, &b, 400, "unknown field", path);
        let (s, b) = get(&format!("{path}?since=yesterday"));
        expect(s, &b, 400, "since", path);
        let (s, b) = get(&format!(
            "{path}?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"
        ));
        expect(s, &b, 400, "until must be after since", path);
        let (s, _) = get(&format!("{path}?until=9999-12-31T23:59:59Z"));
        assert_eq!(s, 200, "{path}: far-future instants clamp");
        // One rule, as the schema states it: command wins over its alias.
        let (s, b) = get(&format!("{path}?command=python3&process_name=__main__"));
        assert_eq!(s, 200, "{path}: {b}");
        let summary = !path.contains("list") && path != "/api/events";
        let applied = if summary {
            &b["command"]
        } else if path == "/api/events" {
            &b["filters"]["command"]
        } else {
            &json!("python3") // lists do not echo their filter
        };
        assert_eq!(applied, "python3", "{path}: {b}");
        // A window that only ends: it reaches back from its end.
        let (s, b) = get(&format!("{path}?until=2000-01-01T00:00:00Z"));
        assert_eq!(s, 200, "{path}: {b}");
        // duration_seconds is checked even where since makes it unused.
        let (s, b) = post(
            path,
            r#"{"duration_seconds":31536001,"since":"0011-01-13T00:35:01+05:58"}"#,
        );
        expect(s, &b, 400, "duration_seconds must be between", path);
        let (s, b) = post(path, r#"{"since":"0011-01-13T00:35:01+05:58"}"#);
        assert_eq!(s, 200, "{path}: {b}");
        if summary {
            let since_1970 = chrono::Utc::now().timestamp() as u64;
            let seconds = b["duration_seconds"].as_u64().unwrap();
            assert!(
                seconds <= since_1970 && seconds > since_1970 - 60,
                "{path}: {b}"
            );
        }
        let (s, b) = get(&format!("{path}?process_name={}", "x".repeat(1025)));
        expect(
            s,
            &b,
            400,
            "process_name must be at most 1024 characters",
            path,
        );
        let (s, b) = get(&format!("{path}?command=[x"));
        expect(s, &b, 400, "invalid process name pattern", path);
        let response = client()
            .post(format!("{}{path}?pid=1", url()))
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{path}: query and body");
        let big = format!("{{\"command\": \"{}\"}}", "x".repeat(100_000));
        let (s, b) = post(path, big);
        expect(s, &b, 413, "too large", path);
        let response = client().delete(format!("{}{path}", url())).send().unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET,HEAD,POST");
        let b: Value = response.json().unwrap();
        assert!(b["error"].is_string());
    }
    for path in [
        "/api/events",
        "/api/list-connections",
        "/api/list-packet-drops",
        "/api/list-dns",
    ] {
        let (s, b) = get(&format!("{path}?limit=0"));
        expect(s, &b, 400, "limit must be at least 1", path);
        let (s, b) = get(&format!("{path}?limit=1000000000"));
        assert_eq!(s, 200, "{path}: {b}");
        assert_eq!(b["limit_capped"], true, "{path}");
    }
    // Absent filters are left out, as the original API (a string when present) has them.
    let (_, b) = get("/api/events");
    assert!(b["filters"].get("since").is_none(), "{b}");
    assert!(b["filters"].get("until").is_none(), "{b}");
    let (_, b) = get("/api/events?since=2026-01-01T00:00:00Z");
    assert_eq!(b["filters"]["since"], "2026-01-01T00:00:00Z", "{b}");
    let (s, b) = get("/api/events?type=nope");
    expect(
        s,
        &b,
        400,
        "unknown variant `nope`, expected one of `connection`, `packet_drop`, `dns`",
        "events type",
    );
    let (s, b) = get("/api/events?outcome=maybe");
    expect(s, &b, 400, "unknown variant `maybe`", "events outcome");
    let (s, b) = post("/api/connection-summary", "[null, null]");
    expect(s, &b, 400, "must be an object", "array body");
    let (s, b) = post("/api/connection-summary", r#"{"duration_seconds": 30.0}"#);
    assert_eq!(
        (s, &b["duration_seconds"]),
        (200, &json!(30)),
        "30.0 is an integer to JSON: {b}"
    );
    let (s, b) = get("/no/such/thing");
    expect(s, &b, 404, "no such endpoint", "404");
    let response = client().put(format!("{}/health", url())).send().unwrap();
    assert_eq!(response.status(), 405);
    // The daemon is still there and answering.
    assert_eq!(get("/health").0, 200);
}

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
