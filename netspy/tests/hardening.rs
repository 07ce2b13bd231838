//! The daemon under hostile or careless clients: DNS rebinding and foreign origins on every
//! route, session and connection floods, silent and slow clients, shutdown while clients
//! hang on, log floods, and malformed MCP messages on every transport. Each test reproduces
//! a defect found by an outside test of the release build.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::daemon::{DaemonProcess, bare_api_with, client, url};
use netspy::{
    api::{AccessPolicy, ApiOptions, ServerLimits},
    mcp::SessionLimits,
};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

/// Every route the daemon serves, with a method it answers.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/api/programs"),
    ("GET", "/api/events"),
    ("GET", "/api/connection-summary"),
    ("POST", "/api/list-connections"),
    ("GET", "/api/analyze-patterns"),
    ("GET", "/api/packet-drop-summary"),
    ("GET", "/api/list-packet-drops"),
    ("GET", "/api/list-dns"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/no/such/route"),
    ("POST", "/mcp"),
    ("GET", "/sse"),
    ("POST", "/messages?sessionId=x"),
];

fn send(base: &str, method: &str, path: &str, headers: &[(&str, HeaderValue)]) -> (u16, Value) {
    let c = client();
    let target = format!("{base}{path}");
    let mut request = match method {
        "GET" => c.get(&target),
        _ => c.post(&target).body("{}"),
    };
    for (name, value) in headers {
        request = request.header(*name, value.clone());
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let body = if path == "/sse" && status == 200 {
        Value::Null // an open event stream: do not read it
    } else {
        response.json().unwrap_or(Value::Null)
    };
    (status, body)
}

#[test]
fn every_route_refuses_rebound_hosts_and_foreign_or_unreadable_origins() {
    let base = url();
    let port = base.rsplit(':').next().unwrap();
    let bad: [(&str, &str, HeaderValue); 5] = [
        (
            "host",
            "DNS-rebinding",
            HeaderValue::from_static("evil.example"),
        ),
        (
            "host",
            "DNS-rebinding",
            HeaderValue::from_str(&format!("evil.example:{port}")).unwrap(),
        ),
        (
            "host",
            "Host header",
            HeaderValue::from_bytes(b"localhost\xff").unwrap(),
        ),
        (
            "origin",
            "Origin",
            HeaderValue::from_static("https://evil.example"),
        ),
        (
            "origin",
            "Origin",
            HeaderValue::from_bytes(b"https://evil.example\xff").unwrap(),
        ),
    ];
    for (method, path) in ROUTES {
        for (name, says, value) in &bad {
            let (status, body) = send(base, method, path, &[(name, value.clone())]);
            assert_eq!(
                status, 403,
                "{method} {path} with {name}: {value:?}: {body}"
            );
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(says), "{method} {path}: {body}");
        }
        let local = HeaderValue::from_str(&format!("localhost:{port}")).unwrap();
        let (status, body) = send(
            base,
            method,
            path,
            &[
                ("host", local),
                ("origin", HeaderValue::from_static("http://localhost:6274")),
            ],
        );
        assert_ne!(status, 403, "{method} {path} from localhost: {body}");
    }
}

#[test]
fn configured_host_names_and_origins_are_let_through() {
    let base = bare_api_with(
        ApiOptions {
            access: AccessPolicy::new(
                &["netspy.internal".to_owned()],
                &["https://grafana.example".to_owned()],
            ),
            ..ApiOptions::default()
        },
        ServerLimits::default(),
        SessionLimits::default(),
    );
    let host = |h: &'static str| ("host", HeaderValue::from_static(h));
    assert_eq!(
        send(
            &base,
            "GET",
            "/openapi.json",
            &[host("netspy.internal:8080")]
        )
        .0,
        200
    );
    assert_eq!(
        send(&base, "GET", "/openapi.json", &[host("10.1.2.3:8080")]).0,
        200
    );
    assert_eq!(
        send(&base, "GET", "/openapi.json", &[host("other.example")]).0,
        403
    );
    let origin = |o: &'static str| ("origin", HeaderValue::from_static(o));
    assert_eq!(
        send(
            &base,
            "GET",
            "/openapi.json",
            &[origin("https://grafana.example")]
        )
        .0,
        200
    );
    assert_eq!(
        send(
            &base,
            "GET",
            "/openapi.json",
            &[
                host("netspy.internal:8080"),
                origin("http://netspy.internal:8080")
            ]
        )
        .0,
        200,
        "a page of netspy itself, under an allowed name"
    );
    assert_eq!(
        send(&base, "GET", "/openapi.json", &[origin("null")]).0,
        403
    );
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

fn post_mcp(
    base: &str,
    session: Option<&str>,
    body: impl Into<reqwest::blocking::Body>,
) -> reqwest::blocking::Response {
    let mut request = client()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request.body(body).send().unwrap()
}

/// The value of `name{labels}` in an OpenMetrics text, 0 when absent.
fn metric(base: &str, series: &str) -> f64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn mcp_sessions_are_capped_counted_and_expire_when_idle() {
    let base = bare_api_with(
        ApiOptions::default(),
        ServerLimits::default(),
        SessionLimits {
            max_sessions: 3,
            idle_timeout: Duration::from_secs(2),
        },
    );
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let response = post_mcp(&base, None, initialize().to_string());
        assert_eq!(response.status(), 200);
        sessions.push(
            response.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let refused = post_mcp(&base, None, initialize().to_string());
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("at most 3"),
        "{body}"
    );
    assert_eq!(
        metric(&base, r#"netspy_mcp_sessions{transport="streamable_http"}"#),
        3.0
    );
    assert_eq!(
        metric(
            &base,
            r#"netspy_mcp_sessions_refused_total{transport="streamable_http"}"#
        ),
        1.0
    );
    // Idle sessions go after their timeout, and make room.
    let deadline = Instant::now() + Duration::from_secs(15);
    while metric(&base, r#"netspy_mcp_sessions{transport="streamable_http"}"#) > 0.0 {
        assert!(Instant::now() < deadline, "idle sessions never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    assert_eq!(
        post_mcp(&base, Some(&sessions[0]), ping.to_string()).status(),
        404
    );
    assert_eq!(
        post_mcp(&base, None, initialize().to_string()).status(),
        200
    );

    // The legacy SSE transport has the same cap.
    let c = client();
    let streams: Vec<_> = (0..3)
        .map(|_| c.get(format!("{base}/sse")).send().unwrap())
        .collect();
    assert!(streams.iter().all(|s| s.status() == 200));
    let refused = c.get(format!("{base}/sse")).send().unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(
        metric(&base, r#"netspy_mcp_sessions{transport="sse"}"#),
        3.0
    );
    assert_eq!(
        metric(
            &base,
            r#"netspy_mcp_sessions_refused_total{transport="sse"}"#
        ),
        1.0
    );
}

/// Waits until the daemon at `base` has at least `n` connections open (counting the scrape).
fn wait_open_connections(base: &str, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(base, "netspy_http_open_connections") < f64::from(n) {
        assert!(
            Instant::now() < deadline,
            "the connections were never accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads from `stream` until the server closes it (or 10 s pass); what it sent.
fn read_until_closed(stream: &mut TcpStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&got).into_owned());
            }
            Err(e) => {
                return Err(format!(
                    "still open ({e}) after {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
}

#[test]
fn silent_half_sent_and_slow_clients_are_cut_off_while_health_still_answers() {
    let base = bare_api_with(
        ApiOptions {
            body_timeout: Duration::from_secs(1),
            ..ApiOptions::default()
        },
        ServerLimits {
            max_connections: 50,
            header_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        },
        SessionLimits::default(),
    );
    let address = base.trim_start_matches("http://").to_owned();
    // Eight times the cap in silent connections (few enough for a 1024 open-file limit,
    // with the server in this process): the idlest make room for real clients.
    let silent: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    let health = client().get(format!("{base}/health")).send().unwrap();
    assert_eq!(
        health.status(),
        503,
        "answers (503: a bare API has no probes)"
    );
    // connect() returns once the kernel queued a connection, before the server accepts it
    // (and evicts an idler for it): under load the count catches up a little later. On a
    // slow run some idlers reach the 1 s header timeout before a newcomer evicts them.
    let count = |event: &str| {
        metric(
            &base,
            &format!(r#"netspy_http_connections_total{{event="{event}"}}"#),
        )
    };
    let gone = || count("evicted") + count("header_timeout");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gone() <= 300.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gone() > 300.0 && count("evicted") > 100.0,
        "{} evicted, {} timed out",
        count("evicted"),
        count("header_timeout")
    );
    drop(silent);

    // A silent connection and a half-sent request head are closed after the header timeout.
    let mut quiet = TcpStream::connect(&address).unwrap();
    assert_eq!(read_until_closed(&mut quiet), Ok(String::new()));
    let mut partial = TcpStream::connect(&address).unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    assert_eq!(read_until_closed(&mut partial), Ok(String::new()));
    assert!(
        metric(
            &base,
            r#"netspy_http_connections_total{event="header_timeout"}"#
        ) >= 2.0
    );

    // A body that never arrives whole gets 408.
    let mut slow = TcpStream::connect(&address).unwrap();
    slow.write_all(
        b"POST /api/connection-summary HTTP/1.1\r\nHost: localhost\r\ncontent-length: 100\r\n\r\n{",
    )
    .unwrap();
    let answer = read_until_closed(&mut slow).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");

    // An idle keep-alive connection is closed too.
    let mut kept = TcpStream::connect(&address).unwrap();
    kept.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut kept).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        metric(
            &base,
            r#"netspy_http_connections_total{event="idle_timeout"}"#
        ) >= 1.0
    );
}

#[test]
fn when_every_connection_is_busy_a_newcomer_gets_503_at_once() {
    let base = bare_api_with(
        ApiOptions {
            body_timeout: Duration::from_secs(60),
            ..ApiOptions::default()
        },
        ServerLimits {
            max_connections: 2,
            ..ServerLimits::default()
        },
        SessionLimits::default(),
    );
    let address = base.trim_start_matches("http://").to_owned();
    // Two requests whose bodies are still coming: both connections busy.
    let busy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(&address).unwrap();
            s.write_all(
                b"POST /api/events HTTP/1.1\r\nHost: localhost\r\ncontent-length: 10\r\n\r\n{",
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A real client gets a real answer it can read.
    let refused = client().get(format!("{base}/health")).send().unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many open connections"),
        "{body}"
    );
    drop(busy);
}

#[test]
fn a_client_that_never_reads_its_answer_is_cut_off() {
    let stats = std::sync::Arc::new(netspy::api::HttpStats::default());
    let server_stats = stats.clone();
    // A 64 MiB answer: far more than the socket buffers hold.
    let app = axum::Router::new().route(
        "/big",
        axum::routing::get(|| async { vec![b'x'; 64 << 20] }),
    );
    let address = common::daemon::spawn(move |listener| async move {
        let limits = ServerLimits {
            write_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        };
        netspy::api::serve(
            listener,
            app,
            limits,
            server_stats,
            tokio_util::sync::CancellationToken::new(),
        )
        .await;
    });
    let mut reader = TcpStream::connect(address).unwrap();
    reader
        .write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let cut = || {
        stats
            .connections
            .get_or_create(&netspy::api::ConnectionEvent {
                event: "write_timeout",
            })
            .get()
    };
    while cut() == 0 {
        assert!(
            Instant::now() < deadline,
            "a reader that stopped was never cut off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(reader);
}

#[test]
fn sigterm_stops_the_daemon_within_its_deadline_while_clients_hang_on() {
    // Long header and body timeouts: only the shutdown deadline can end these clients.
    let mut daemon = DaemonProcess::start(&[
        "--shutdown-timeout",
        "6s",
        "--header-timeout",
        "10m",
        "--body-timeout",
        "10m",
    ]);
    daemon.wait_ready();
    let mut stream = client()
        .get(format!("{}/sse", daemon.url()))
        .send()
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut first = [0u8; 64];
    assert!(stream.read(&mut first).unwrap() > 0, "the endpoint event");
    let mut partial = TcpStream::connect(&daemon.address).unwrap();
    partial.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    let mut body = TcpStream::connect(&daemon.address).unwrap();
    body.write_all(b"POST /api/events HTTP/1.1\r\nHost: localhost\r\ncontent-length: 50\r\n\r\n{")
        .unwrap();
    // All three accepted (the scrape itself is a fourth) before the signal.
    wait_open_connections(&daemon.url(), 4);
    let signalled = Instant::now();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    // The event stream (a session never initialized) is ended at once, not at the deadline.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "the event stream lasted until the 6 s deadline"
    );
    let status = daemon.exit_within(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "still running 20 s after SIGTERM (deadline 6 s): {status:?}"
    );
    let log = daemon.new_lines().join("\n");
    assert!(log.contains("connections still open after 6s"), "{log}");
}

#[test]
fn a_second_signal_stops_the_daemon_at_once() {
    let mut daemon = DaemonProcess::start(&["--shutdown-timeout", "10m"]);
    daemon.wait_ready();
    // A request whose body never ends keeps the graceful shutdown waiting.
    let mut body = TcpStream::connect(&daemon.address).unwrap();
    body.write_all(b"POST /api/events HTTP/1.1\r\nHost: localhost\r\ncontent-length: 50\r\n\r\n{")
        .unwrap();
    wait_open_connections(&daemon.url(), 2);
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(daemon.exit_within(Duration::from_millis(500)).is_none());
    daemon.signal(nix::sys::signal::Signal::SIGINT);
    let status = daemon.exit_within(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{status:?}");
    let log = daemon.new_lines().join("\n");
    assert!(log.contains("second signal: exiting now"), "{log}");
}

#[test]
fn clients_cannot_flood_the_log() {
    let daemon = DaemonProcess::start(&["--max-sessions", "1"]);
    daemon.wait_ready();
    let startup = daemon
        .early
        .iter()
        .chain(&daemon.new_lines())
        .cloned()
        .collect::<Vec<_>>();
    assert!(
        !startup.iter().any(|l| l.contains("ERROR")),
        "503s of /health before the probes attach are not errors: {startup:?}"
    );
    let c = client();
    let _open = c.get(format!("{}/sse", daemon.url())).send().unwrap();
    for _ in 0..300 {
        assert_eq!(
            c.get(format!("{}/sse", daemon.url()))
                .send()
                .unwrap()
                .status(),
            503
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let flood = daemon.new_lines();
    assert!(
        flood.len() < 3,
        "300 refused sessions wrote {} log lines: {flood:?}",
        flood.len()
    );
    assert_eq!(
        metric(
            &daemon.url(),
            r#"netspy_http_answers_total{route="/sse",status="503"}"#
        ),
        300.0
    );
    // Failing MCP calls: rmcp warns about each error answer it sends.
    let response = post_mcp(&daemon.url(), None, initialize().to_string());
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    for id in 0..100 {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "vendor/unknown"});
        let (_, answer) = message_of(post_mcp(&daemon.url(), Some(&session), call.to_string()));
        assert_eq!(answer["error"]["code"], -32601, "{answer}");
    }
    // At most 10 lines per 10 s window: the calls touch one window, or more on a slow run.
    let windows = started.elapsed().as_secs() / 10 + 2;
    std::thread::sleep(Duration::from_millis(300));
    let flood = daemon.new_lines();
    assert!(
        flood.len() as u64 <= 10 * windows,
        "100 failed MCP calls over {} windows wrote {} log lines: {flood:?}",
        windows,
        flood.len()
    );
    assert!(
        metric(&daemon.url(), "netspy_log_lines_suppressed_total") >= 90.0,
        "rmcp's warning for each error answer, past the first 10, is counted"
    );
}

/// The `data:` message of an SSE answer (Streamable HTTP), or the JSON body.
fn message_of(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .find_map(|d| serde_json::from_str(d.trim()).ok())
        .or_else(|| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    (status, value)
}

/// Malformed messages and the JSON-RPC error each must get: (body, code, id).
fn malformed() -> Vec<(Vec<u8>, i64, Value)> {
    vec![
        (b"{not json".to_vec(), -32700, Value::Null),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":NaN}".to_vec(), -32700, Value::Null),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}".to_vec(), -32700, Value::Null),
        (br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(), -32600, Value::Null),
        (br#"{"jsonrpc":"1.0","id":5,"method":"ping"}"#.to_vec(), -32600, json!(5)),
        (br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"arguments":{}}}"#.to_vec(), -32602, json!(6)),
        (
            br#"{"jsonrpc":"2.0","id":"seven","method":"tools/call","params":{"name":"list_connections","arguments":[1]}}"#.to_vec(),
            -32602,
            json!("seven"),
        ),
    ]
}

#[test]
fn malformed_mcp_messages_over_http_get_json_rpc_errors() {
    let base = url();
    let response = post_mcp(base, None, initialize().to_string());
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    for (body, code, id) in malformed() {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, answer) = message_of(post_mcp(base, Some(&session), body.clone()));
        assert_eq!(status, 400, "{shown}: {answer}");
        assert_eq!(
            (&answer["error"]["code"], &answer["id"]),
            (&json!(code), &id),
            "{shown}: {answer}"
        );
        let legacy = client()
            .post(format!("{base}/messages?sessionId=x"))
            .body(body)
            .send()
            .unwrap();
        let (status, answer) = message_of(legacy);
        assert_eq!(
            (status, &answer["error"]["code"]),
            (400, &json!(code)),
            "SSE {shown}"
        );
    }
    let huge = vec![b' '; 300 * 1024];
    let (status, answer) = message_of(post_mcp(base, Some(&session), huge));
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!(-32600)),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("262144 bytes")
    );
}

/// `netspy mcp` on stdio: send lines, read one answer per request.
struct StdioServer {
    child: common::KillOnDrop,
    input: std::process::ChildStdin,
    output: BufReader<std::process::ChildStdout>,
}

impl StdioServer {
    fn start(server: &str) -> Self {
        let mut child = common::KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_netspy"))
                .args(["mcp", "--server", server])
                .env_remove("OPENAI_API_KEY")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
        }
    }

    fn send(&mut self, line: &[u8]) -> Value {
        self.input.write_all(line).unwrap();
        self.input.write_all(b"\n").unwrap();
        self.input.flush().unwrap();
        let mut answer = String::new();
        self.output.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
    }
}

fn tool_call(id: i64, name: &str, arguments: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}})
    .to_string()
    .into_bytes()
}

#[test]
fn malformed_mcp_lines_on_stdio_get_answers_and_the_server_reads_on() {
    // No daemon behind it: the gate and the argument checks answer without one.
    let mut stdio = StdioServer::start("http://127.0.0.1:1");
    let init = stdio.send(initialize().to_string().as_bytes());
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    stdio
        .input
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .unwrap();
    for (line, code, id) in malformed() {
        let answer = stdio.send(&line);
        assert_eq!(
            (&answer["error"]["code"], &answer["id"]),
            (&json!(code), &id),
            "{}: {answer}",
            String::from_utf8_lossy(&line)
        );
    }
    let mut huge = br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_connections","arguments":{"process_name":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 << 20));
    huge.extend(br#""}}}"#);
    let answer = stdio.send(&huge);
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("262144 bytes"),
        "{answer}"
    );
    // One size rule for a long argument, on stdio as over HTTP.
    let long = "x".repeat(200 * 1024);
    let answer = stdio.send(&tool_call(
        9,
        "list_connections",
        json!({"process_name": long}),
    ));
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        text,
        "process_name must be at most 1024 characters, got 204800"
    );
    let ping = stdio.send(br#"{"jsonrpc":"2.0","id":10,"method":"ping"}"#);
    assert_eq!(ping["id"], 10, "{ping}");

    let base = url();
    let response = post_mcp(base, None, initialize().to_string());
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    post_mcp(
        base,
        Some(&session),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
    );
    let (_, answer) = message_of(post_mcp(
        base,
        Some(&session),
        tool_call(
            9,
            "list_connections",
            json!({"process_name": "x".repeat(200 * 1024)}),
        ),
    ));
    assert_eq!(
        answer["result"]["content"][0]["text"].as_str(),
        Some(text.as_str()),
        "{answer}"
    );
    drop(stdio.child);
}

#[test]
fn process_names_cannot_command_the_terminal() {
    let base = url();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::Builder::new()
        .name("esc\x1b[31mR|D".into())
        .spawn(move || TcpStream::connect(("127.0.0.1", port)).unwrap())
        .unwrap()
        .join()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let out = loop {
        let out = Command::new(env!("CARGO_BIN_EXE_netspy"))
            .args([
                "--server",
                base,
                "--tool",
                "list_connections",
                "--process",
                "esc*",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&format!(":{port} ")) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!out.contains('\x1b'), "raw escape printed: {out:?}");
    assert!(out.contains("esc\\x1b[31mR\\|D"), "{out:?}");
}

#[test]
fn data_queries_past_the_running_and_waiting_places_are_shed_with_503_and_retry_after() {
    let daemon = DaemonProcess::start(&["--max-queries", "1", "--max-queued-queries", "0"]);
    daemon.wait_ready();
    let base = daemon.url();
    // History enough that a pattern analysis takes milliseconds (it reads every event).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..100_000 {
        socket.connect(target.local_addr().unwrap()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while client()
        .get(format!("{base}/health"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["store"]["connections"]
        .as_u64()
        < Some(100_000)
    {
        assert!(
            Instant::now() < deadline,
            "the connects never reached the store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Sixteen at once: one runs, none may wait, the rest are shed at once; /health (not a
    // data query) answers meanwhile.
    let answers: Vec<(u16, Option<String>, Value)> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let response = client()
                        .get(format!("{base}/api/analyze-patterns?duration_seconds=3600"))
                        .send()
                        .unwrap();
                    let retry = response
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    (response.status().as_u16(), retry, response.json().unwrap())
                })
            })
            .collect();
        let health = client().get(format!("{base}/health")).send().unwrap();
        assert_eq!(health.status(), 200);
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    assert!(
        answers.iter().any(|(status, ..)| *status == 200),
        "one runs: {answers:?}"
    );
    assert!(!shed.is_empty(), "the rest are shed: {answers:?}");
    for (status, retry, body) in &answers {
        match status {
            200 => assert!(body["top_destinations"].is_array(), "{body}"),
            503 => {
                assert_eq!(retry.as_deref(), Some("1"));
                assert!(body["error"].as_str().unwrap().contains("busy"), "{body}");
            }
            other => panic!("answered {other}: {body}"),
        }
    }
    let counted = metric(&base, r#"netspy_queries_shed_total{reason="queue_full"}"#);
    assert_eq!(counted as usize, shed.len());
    assert!(
        metric(
            &base,
            "netspy_http_request_duration_seconds_count{route=\"/api/analyze-patterns\",status=\"503\"}"
        ) >= 1.0
    );
}
