//! The REST API as a plain unit test: the whole router (every layer) over a ready query
//! handle whose probes stand in for the kernel's, driven with `tower::ServiceExt::oneshot`.
//! The bad-input matrix runs here, on every data question of the route table.

use axum::{
    Router,
    body::Body,
    http::{Method, Request},
    response::Response,
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ApiOptions, ENDPOINTS, router};
use crate::query::fixtures;

/// The API of a ready daemon with an empty history.
fn ready_api() -> Router {
    router(
        fixtures::ready_query(),
        &ApiOptions::default(),
        Router::new(),
    )
}

/// The answer to one request naming `host`.
async fn answer(
    api: &Router,
    method: Method,
    uri: &str,
    host: &str,
    body: impl Into<Body>,
) -> Response {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host)
        .body(body.into())
        .expect("a valid request");
    api.clone().oneshot(request).await.expect("an answer")
}

/// An answer's body as text.
async fn text(response: Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Its status and JSON body (null when it is not JSON).
async fn parsed(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = text(response).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The status and JSON body of one request from this machine.
async fn send(api: &Router, method: Method, uri: &str, body: impl Into<Body>) -> (u16, Value) {
    parsed(answer(api, method, uri, "127.0.0.1:8080", body).await).await
}

async fn get(api: &Router, uri: &str) -> (u16, Value) {
    send(api, Method::GET, uri, Body::empty()).await
}

async fn post(api: &Router, uri: &str, body: &str) -> (u16, Value) {
    send(api, Method::POST, uri, body.to_owned()).await
}

#[track_caller]
fn expect(answer: &(u16, Value), status: u16, contains: &str, what: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{what}: {body}");
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error field in {body}"));
    assert!(
        error.contains(contains),
        "{what}: {error:?} should mention {contains:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_json_error_on_every_data_question() {
    let api = ready_api();
    let data: Vec<&str> = ENDPOINTS
        .iter()
        .filter(|e| e.request.is_some())
        .map(|e| e.path)
        .collect();
    assert!(
        data.len() >= 9,
        "every data question is in the route table: {data:?}"
    );
    for path in data {
        let api = &api;
        expect(
            &post(api, path, "{\"pid\": ").await,
            400,
            "invalid JSON body",
            path,
        );
        expect(&post(api, path, " ").await, 400, "invalid JSON body", path);
        expect(
            &post(api, path, r#"{"pid": "seven"}"#).await,
            400,
            "invalid type",
            path,
        );
        expect(
            &post(api, path, r#"{"pid": -1}"#).await,
            400,
            "invalid value",
            path,
        );
        expect(
            &get(api, &format!("{path}?pid=abc")).await,
            400,
            "pid",
            path,
        );
        for seconds in ["-5", "99999999999"] {
            expect(
                &get(api, &format!("{path}?duration_seconds={seconds}")).await,
                400,
                &format!("duration_seconds must be between 1 and 31536000, got {seconds}"),
                path,
            );
        }
        expect(
            &get(api, &format!("{path}?bogus=1")).await,
            400,
            "unknown field",
            path,
        );
        expect(
            &get(api, &format!("{path}?since=yesterday")).await,
            400,
            "since",
            path,
        );
        let backwards = format!("{path}?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z");
        expect(
            &get(api, &backwards).await,
            400,
            "until must be after since",
            path,
        );
        let (s, b) = get(api, &format!("{path}?until=9999-12-31T23:59:59Z")).await;
        assert_eq!(s, 200, "{path}: far-future instants clamp: {b}");
        // One rule, as the schema states it: command wins over its alias.
        let (s, b) = get(
            api,
            &format!("{path}?command=python3&process_name=__main__"),
        )
        .await;
        assert_eq!(s, 200, "{path}: {b}");
        // Summaries and analyses echo the filter applied, the search in its filters; lists
        // do not.
        let (list, search) = (path.contains("list"), path == "/api/events");
        let echoed = match (list, search) {
            (true, _) => &json!("python3"),
            (false, true) => &b["filters"]["command"],
            (false, false) => &b["command"],
        };
        assert_eq!(echoed, "python3", "{path}: {b}");
        // A window that only ends: it reaches back from its end.
        let (s, b) = get(api, &format!("{path}?until=2000-01-01T00:00:00Z")).await;
        assert_eq!(s, 200, "{path}: {b}");
        // duration_seconds is checked even where since makes it unused.
        let unused = r#"{"duration_seconds":31536001,"since":"0011-01-13T00:35:01+05:58"}"#;
        expect(
            &post(api, path, unused).await,
            400,
            "duration_seconds must be between",
            path,
        );
        let (s, b) = post(api, path, r#"{"since":"0011-01-13T00:35:01+05:58"}"#).await;
        assert_eq!(s, 200, "{path}: {b}");
        if !list && !search {
            let since_1970 = chrono::Utc::now().timestamp() as u64;
            let seconds = b["duration_seconds"].as_u64().expect("a summary's window");
            assert!(
                seconds <= since_1970 && seconds > since_1970 - 60,
                "{path}: the window starts at 1970: {b}"
            );
        }
        let long = format!("{path}?process_name={}", "x".repeat(1025));
        expect(
            &get(api, &long).await,
            400,
            "process_name must be at most 1024 characters",
            path,
        );
        expect(
            &get(api, &format!("{path}?command=[x")).await,
            400,
            "invalid process name pattern",
            path,
        );
        let (s, _) = post(api, &format!("{path}?pid=1"), "{}").await;
        assert_eq!(s, 400, "{path}: query and body");
        let big = format!("{{\"command\": \"{}\"}}", "x".repeat(100_000));
        expect(&post(api, path, &big).await, 413, "too large", path);
        let delete = answer(api, Method::DELETE, path, "127.0.0.1:8080", Body::empty()).await;
        assert_eq!(delete.headers()["allow"], "GET,HEAD,POST", "{path}");
        let (s, b) = parsed(delete).await;
        assert_eq!(s, 405, "{path}: {b}");
        assert!(b["error"].is_string(), "{path}: {b}");
        // A list takes a limit of at least 1, capped and said; a summary takes none.
        let (s, b) = get(api, &format!("{path}?limit=0")).await;
        if list || search {
            expect(&(s, b), 400, "limit must be at least 1, got 0", path);
            let (s, b) = get(api, &format!("{path}?limit=1000000000")).await;
            assert_eq!((s, &b["limit_capped"]), (200, &json!(true)), "{path}: {b}");
        } else {
            expect(&(s, b), 400, "unknown field `limit`", path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_the_edges_answer_in_json() {
    let api = &ready_api();
    // Absent filters are left out, as the original API (a string when present) has them.
    let (_, b) = get(api, "/api/events").await;
    assert!(b["filters"].get("since").is_none(), "{b}");
    assert!(b["filters"].get("until").is_none(), "{b}");
    let (_, b) = get(api, "/api/events?since=2026-01-01T00:00:00Z").await;
    assert_eq!(b["filters"]["since"], "2026-01-01T00:00:00Z", "{b}");
    expect(
        &get(api, "/api/events?type=nope").await,
        400,
        "unknown variant `nope`, expected one of `connection`, `packet_drop`, `dns`",
        "events type",
    );
    expect(
        &get(api, "/api/events?outcome=maybe").await,
        400,
        "unknown variant `maybe`",
        "outcome",
    );
    // An outcome with a kind that has no TCP result: the stream, which would send nothing
    // ever, refuses it; the search answers empty at once (schemathesis holds it to 2xx).
    expect(
        &get(api, "/api/stream?type=packet_drop&outcome=refused").await,
        400,
        "outcome filters connections by their TCP result; packet_drop events have none",
        "stream outcome",
    );
    let (s, b) = get(api, "/api/events?type=retransmit&outcome=refused").await;
    assert_eq!((s, &b["count"]), (200, &json!(0)), "{b}");
    // Every filter given is echoed.
    let (s, b) = get(
        api,
        "/api/events?type=connection&outcome=refused&unit=a.service&include_routine=true",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            &b["filters"]["outcome"],
            &b["filters"]["unit"],
            &b["filters"]["include_routine"]
        ),
        (&json!("refused"), &json!("a.service"), &json!(true)),
        "{b}"
    );
    let (_, b) = get(api, "/api/events").await;
    for absent in ["outcome", "unit", "container", "include_routine"] {
        assert!(b["filters"].get(absent).is_none(), "{absent}: {b}");
    }
    expect(
        &post(api, "/api/connection-summary", "[null, null]").await,
        400,
        "must be an object",
        "array",
    );
    let (s, b) = post(
        api,
        "/api/connection-summary",
        r#"{"duration_seconds": 30.0}"#,
    )
    .await;
    assert_eq!(
        (s, &b["duration_seconds"]),
        (200, &json!(30)),
        "30.0 is an integer to JSON: {b}"
    );
    expect(
        &get(api, "/no/such/thing").await,
        404,
        "no such endpoint",
        "404",
    );
    let (s, _) = send(api, Method::PUT, "/health", Body::empty()).await;
    assert_eq!(s, 405);
    // Ready: health says every probe is attached.
    let (s, b) = get(api, "/health").await;
    assert_eq!(
        (s, &b["status"], &b["ready"]),
        (200, &json!("healthy"), &json!(true)),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_this_machine_is_refused_before_anything_else() {
    let api = ready_api();
    let uri = "/api/connection-summary";
    let response = answer(
        &api,
        Method::GET,
        uri,
        "attacker.example:8080",
        Body::empty(),
    )
    .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_every_probe_of_the_table() {
    let api = ready_api();
    let response = answer(&api, Method::GET, "/metrics", "localhost", Body::empty()).await;
    assert_eq!(response.status(), 200);
    let text = text(response).await;
    for probe in crate::probes::PROBES.iter() {
        let line = format!(
            "netspy_probe_attached{{probe=\"{0}\",hook=\"stand-in:{0}\"}} 1",
            probe.name
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert!(text.contains("netspy_ready 1"), "{text}");
}
