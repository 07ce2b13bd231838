//! MCP with a real client written by others (the official Python SDK) over stdio, Streamable
//! HTTP and legacy SSE, against a daemon that saw the test's own traffic; REST/MCP parity;
//! bad arguments; Origin and token protection; a daemon that is down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::OnceLock,
};

use common::daemon::{bare_api, client, get, mcp_client, poll, url};
use serde_json::{Value, json};
use socket2::{Domain, Socket, Type};

const NAME: &str = "nsq-mcp";

/// Once per binary: 3 established TCP connects, 1 refused, 1 UDP connect, and receive-queue
/// drops attributed to that UDP socket, all under the command name `nsq-mcp`. Returns the listener port.
fn traffic() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        url();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::mem::forget(listener);
        let closed = common::closed_tcp_port();
        std::thread::Builder::new()
            .name(NAME.into())
            .spawn(move || {
                for _ in 0..3 {
                    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
                }
                assert!(TcpStream::connect(("127.0.0.1", closed)).is_err());
                let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
                let receiver = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
                receiver
                    .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
                    .unwrap();
                receiver.set_recv_buffer_size(1).unwrap();
                receiver
                    .connect(&sender.local_addr().unwrap().into())
                    .unwrap();
                let to = receiver.local_addr().unwrap().as_socket().unwrap();
                for _ in 0..64 {
                    sender.send_to(&[0u8; 1024], to).unwrap();
                }
                std::mem::forget(receiver);
            })
            .unwrap()
            .join()
            .unwrap();
        poll(&format!("/api/connection-summary?command={NAME}"), |b| {
            b["count"] == 5 && b["outcomes"]["refused"] == 1
        });
        poll(&format!("/api/packet-drop-summary?command={NAME}"), |b| {
            b["count"].as_u64() > Some(0)
        });
        port
    })
}

fn plan() -> Value {
    json!([
        ["get_network_summary", {"process_name": NAME}],
        ["list_connections", {"process_name": NAME, "max_events": 2}],
        ["analyze_patterns", {"process_name": NAME, "duration": 300}],
        ["get_packet_drop_summary", {"process_name": NAME}],
        ["list_packet_drops", {"process_name": NAME, "max_events": 5}],
        ["ai_insights", {"summary_text": "curl made 5 connections"}],
        ["contextual_analysis", {"query": "why does nsq-mcp fail?", "process_name": NAME}],
        ["get_network_summary", {"duration": -5}],
        ["list_connections", {"max_events": 0}],
        ["get_network_summary", {"pid": "abc"}],
        ["get_network_summary", {"bogus": 1}],
        ["no_such_tool", {}],
        ["get_network_summary", {"process_name": "nsq-nobody"}],
        ["get_retransmit_summary", {"process_name": NAME}],
    ])
}

/// No schema inside `schema` has a `type` array (single-type dialects refuse them: the MCP
/// Inspector's `--strict` check) or a numeric `format` JSON Schema does not define (the
/// TypeScript SDK warns "unknown format \"uint64\"").
fn assert_portable(schema: &Value, at: &str) {
    match schema {
        Value::Object(map) => {
            assert!(
                !map.get("type").is_some_and(Value::is_array),
                "{at}: type array in {schema}"
            );
            if let Some(format) = map.get("format").and_then(Value::as_str) {
                assert!(
                    ["date-time", "uri", "email", "uuid"].contains(&format),
                    "{at}: format {format:?} in {schema}"
                );
            }
            for (key, value) in map {
                assert_portable(value, &format!("{at}.{key}"));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| assert_portable(v, at)),
        _ => {}
    }
}

fn call(report: &Value, index: usize) -> &Value {
    &report["calls"][index]
}

/// A data tool's text without its last line when that is the note of a window netspy did
/// not watch whole (this test's daemon is younger than some windows it is asked about).
fn answer_text(c: &Value) -> &str {
    let text = c["text"].as_str().unwrap();
    match text.rsplit_once('\n') {
        Some((body, note)) if note.starts_with("  Not the whole window: ") => {
            assert!(
                note.starts_with("  Not the whole window: netspy began collecting at "),
                "only the daemon's start is missing from these windows: {text}"
            );
            assert_eq!(c["structured"]["coverage"]["complete"], false, "{c}");
            body
        }
        _ => {
            assert_eq!(c["structured"]["coverage"]["complete"], true, "{c}");
            text
        }
    }
}

/// Everything a client must see, whatever the transport.
fn check(report: &Value, port: u16) {
    let version = report["protocol_version"].as_str().unwrap();
    assert!(
        ["2025-06-18", "2025-11-25", "2026-07-28"].contains(&version),
        "negotiated {version}"
    );
    assert_eq!(report["server_name"], "network-telemetry");
    let tools = report["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ai_insights",
            "analyze_patterns",
            "contextual_analysis",
            "get_network_summary",
            "get_packet_drop_summary",
            "get_retransmit_summary",
            "list_connections",
            "list_dns_lookups",
            "list_packet_drops",
            "list_retransmits"
        ]
    );
    for tool in tools {
        for schema in ["input_schema", "output_schema"] {
            assert_portable(&tool[schema], &format!("{}.{schema}", tool["name"]));
        }
        assert_eq!(
            tool["annotations"]["readOnlyHint"], true,
            "{}",
            tool["name"]
        );
        assert_eq!(tool["input_schema"]["type"], "object");
        let name = tool["name"].as_str().unwrap();
        if !name.contains("insights") && !name.contains("contextual") {
            assert!(
                tool["output_schema"].is_object(),
                "{name} has an output schema"
            );
        }
    }
    let summary = tools
        .iter()
        .find(|t| t["name"] == "get_network_summary")
        .unwrap();
    for arg in ["pid", "process_name", "duration"] {
        assert!(
            summary["input_schema"]["properties"][arg].is_object(),
            "argument {arg}"
        );
    }
    let list = tools
        .iter()
        .find(|t| t["name"] == "list_connections")
        .unwrap();
    assert!(list["input_schema"]["properties"]["max_events"].is_object());
    let insights = tools.iter().find(|t| t["name"] == "ai_insights").unwrap();
    assert_eq!(
        insights["input_schema"]["required"],
        json!(["summary_text"])
    );

    let c = call(report, 0);
    assert_eq!(c["is_error"], false, "{c}");
    let text = answer_text(c);
    let (first, drops) = text.split_once('\n').unwrap_or((text, ""));
    assert_eq!(
        first,
        format!(
            "Process '{NAME}' made 5 outbound connection attempts over the last 60 seconds (TCP: 3 established, 1 refused; 1 failed call: ECONNREFUSED 1)"
        ),
        "the refused blocking connect is a TCP result and a failed call"
    );
    assert!(
        drops.starts_with("  Packet drops in the same window: ")
            && drops.contains("NO_SOCKET 1")
            && drops.contains("SOCKET_RCVBUFF "),
        "the summary tells the drops of its window: {text}"
    );
    assert_eq!(c["structured"]["count"], 5);
    assert_eq!(
        c["structured"]["call_errors"],
        json!([{"name": "ECONNREFUSED", "count": 1}])
    );
    assert_eq!(c["structured"]["outcomes"]["refused"], 1);

    let c = call(report, 1);
    let text = answer_text(c);
    assert!(
        text.starts_with("Recent connection events in the last 60 seconds (5 total):\n"),
        "{text}"
    );
    assert!(text.ends_with("  ... and 3 more events"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let fields: Vec<&str> = lines[1].trim().split(" | ").collect();
    assert_eq!(fields[0].len(), 8, "{text}");
    assert!(fields[1].starts_with("127.0.0.1:"), "{text}");
    assert_eq!(fields[2], "TCP", "{text}");
    assert!(
        fields[3].ends_with(&format!(", thread {NAME})")),
        "process, pid and thread: {text}"
    );
    assert!(
        fields[4].starts_with("refused in ") && fields[4].ends_with(" ms"),
        "result and handshake time: {text}"
    );
    assert!(
        lines[2].contains(" | UDP | ") && lines[2].ends_with(')'),
        "a UDP connect has no result to show: {text}"
    );
    assert_eq!(c["structured"]["total_events"], 2);
    assert_eq!(c["structured"]["matched_events"], 5);

    let c = call(report, 2);
    let text = answer_text(c);
    assert!(text.starts_with("Connection Analysis:\n"), "{text}");
    assert!(text.contains("  Top destinations:\n"), "{text}");
    assert!(
        text.contains(&format!("    127.0.0.1:{port} (3 attempts)")),
        "{text}"
    );
    assert!(text.contains("  Protocols: TCP (4), UDP (1)"), "{text}");
    assert!(text.contains("ECONNREFUSED (1)"), "{text}");
    assert!(
        text.contains("\n  TCP results: 3 established, 1 refused\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  Handshake times (3 established): p50 "),
        "{text}"
    );
    assert_eq!(c["structured"]["total_connections"], 5);

    let c = call(report, 3);
    let text = answer_text(c);
    assert!(
        text.starts_with(&format!("Process '{NAME}' had ")),
        "{text}"
    );
    assert!(text.contains("SOCKET_RCVBUFF"), "{text}");
    assert!(c["structured"]["count"].as_u64().unwrap() >= 1);

    let c = call(report, 4);
    let text = answer_text(c);
    assert!(
        text.starts_with("Recent packet drops in the last 60 seconds ("),
        "{text}"
    );
    assert!(text.contains("| SOCKET_RCVBUFF | UDP 127.0.0.1:"), "{text}");
    assert!(text.contains(&format!(", thread {NAME}) |")), "{text}");

    for i in [5, 6] {
        let c = call(report, i);
        assert_eq!(c["is_error"], false, "{c}");
        let text = c["text"].as_str().unwrap();
        assert!(
            text.contains("no AI endpoint is configured") && text.contains("OPENAI_API_KEY"),
            "{text}"
        );
        assert!(
            text.contains("Connection Analysis:"),
            "the local analysis stands in: {text}"
        );
    }

    let c = call(report, 7);
    assert_eq!(c["is_error"], true);
    assert_eq!(c["text"], "duration must be between 1 and 31536000, got -5");
    let c = call(report, 8);
    assert_eq!(c["is_error"], true);
    assert_eq!(c["text"], "max_events must be at least 1, got 0");
    for i in [9, 10] {
        let c = call(report, i);
        let said = format!(
            "{}{}",
            c["text"].as_str().unwrap_or(""),
            c["exception"].as_str().unwrap_or("")
        );
        assert!(c["is_error"] == true || c["exception"].is_string(), "{c}");
        assert!(said.contains("abc") || said.contains("bogus"), "{said}");
    }
    let c = call(report, 11);
    assert!(
        c["exception"].as_str().unwrap().contains("tool not found"),
        "{c}"
    );
    let c = call(report, 12);
    assert_eq!(
        answer_text(c),
        "No network connections found for process 'nsq-nobody' in the last 60 seconds"
    );
    // Loopback loses nothing: the structured answer matches its schema, with nothing in it.
    let c = call(report, 13);
    assert_eq!(
        answer_text(c),
        format!("No TCP retransmissions found for process '{NAME}' in the last 60 seconds")
    );
    assert_eq!(c["structured"]["count"], 0, "{c}");
    assert_eq!(c["structured"]["processes"], json!([]), "{c}");
}

#[test]
fn streamable_http_client_uses_every_tool() {
    let port = traffic();
    let report = mcp_client(&["http", &format!("{}/mcp", url())], &plan());
    check(&report, port);
}

#[test]
fn legacy_sse_client_uses_every_tool() {
    let port = traffic();
    let report = mcp_client(&["sse", &format!("{}/sse", url())], &plan());
    check(&report, port);
}

#[test]
fn stdio_client_uses_every_tool_through_netspy_mcp() {
    let port = traffic();
    let report = mcp_client(
        &[
            "stdio",
            env!("CARGO_BIN_EXE_netspy"),
            "mcp",
            "--server",
            url(),
        ],
        &plan(),
    );
    check(&report, port);
}

#[test]
fn rest_and_mcp_give_the_same_numbers() {
    traffic();
    let report = mcp_client(
        &["http", &format!("{}/mcp", url())],
        &json!([
            ["get_network_summary", {"process_name": NAME, "duration": 600}],
            ["get_packet_drop_summary", {"process_name": NAME, "duration": 600}],
            ["analyze_patterns", {"process_name": NAME, "duration": 600}]
        ]),
    );
    let rest = |path: &str| get(&format!("{path}?command={NAME}&duration_seconds=600")).1;
    let summary = rest("/api/connection-summary");
    assert_eq!(call(&report, 0)["structured"]["count"], summary["count"]);
    assert_eq!(
        call(&report, 0)["structured"]["outcomes"],
        summary["outcomes"]
    );
    let drops = rest("/api/packet-drop-summary");
    assert_eq!(call(&report, 1)["structured"]["count"], drops["count"]);
    assert_eq!(
        call(&report, 1)["structured"]["by_reason"],
        drops["by_reason"]
    );
    let analysis = rest("/api/analyze-patterns");
    assert_eq!(
        call(&report, 2)["structured"]["top_destinations"],
        analysis["top_destinations"]
    );
    assert_eq!(call(&report, 2)["structured"]["errors"], analysis["errors"]);
}

#[test]
fn stdio_server_with_the_daemon_down_says_how_to_start_it() {
    let report = mcp_client(
        &[
            "stdio",
            env!("CARGO_BIN_EXE_netspy"),
            "mcp",
            "--server",
            "http://127.0.0.1:1",
        ],
        &json!([["get_network_summary", {}]]),
    );
    let c = call(&report, 0);
    assert_eq!(c["is_error"], true);
    let text = c["text"].as_str().unwrap();
    assert!(
        text.contains("not reachable at http://127.0.0.1:1 (connection refused)"),
        "{text}"
    );
    assert!(
        text.contains("sudo netspy daemon") && text.contains("curl http://127.0.0.1:1/health"),
        "{text}"
    );
}

#[test]
fn foreign_origins_and_hosts_are_refused_with_403() {
    url();
    let c = client();
    for (path, method) in [
        ("/mcp", "POST"),
        ("/sse", "GET"),
        ("/messages?sessionId=x", "POST"),
    ] {
        let request = |builder: reqwest::blocking::RequestBuilder| {
            builder
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .body(initialize("2025-06-18").to_string())
        };
        let target = format!("{}{path}", url());
        let builder = if method == "GET" {
            c.get(&target)
        } else {
            c.post(&target)
        };
        let evil = request(builder)
            .header("origin", "https://evil.example")
            .send()
            .unwrap();
        assert_eq!(evil.status(), 403, "{path}");
        let body: Value = evil.json().unwrap();
        assert!(body["error"].as_str().unwrap().contains("Origin"), "{path}");
        let builder = if method == "GET" {
            c.get(&target)
        } else {
            c.post(&target)
        };
        let rebound = request(builder)
            .header("host", "evil.example")
            .send()
            .unwrap();
        assert_eq!(rebound.status(), 403, "{path}: DNS rebinding");
    }
    let local = c
        .post(format!("{}/mcp", url()))
        .header("origin", "http://localhost:6274")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(initialize("2025-06-18").to_string())
        .send()
        .unwrap();
    assert_eq!(local.status(), 200);
}

#[test]
fn mcp_routes_need_the_token_when_one_is_set() {
    let base = bare_api(Some("t0ken"));
    let c = client();
    let post = |token: Option<&str>| {
        let mut r = c
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(initialize("2025-06-18").to_string());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap().status().as_u16()
    };
    assert_eq!(post(None), 401);
    assert_eq!(post(Some("nope")), 401);
    assert_eq!(post(Some("t0ken")), 200);
    assert_eq!(c.get(format!("{base}/sse")).send().unwrap().status(), 401);
}

#[test]
fn broken_sse_messages_get_clear_errors() {
    url();
    let c = client();
    let missing = c
        .post(format!("{}/messages", url()))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = c
        .post(format!("{}/messages?sessionId=nope", url()))
        .body(initialize("2025-06-18").to_string())
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let junk = c
        .post(format!("{}/messages?sessionId=nope", url()))
        .body("not json")
        .send()
        .unwrap();
    assert_eq!(junk.status(), 400);
    let body: Value = junk.json().unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");
    assert_eq!(body["id"], Value::Null, "{body}");
}

#[test]
fn streamable_http_negotiates_the_versions_current_clients_speak() {
    url();
    for version in ["2025-06-18", "2025-11-25"] {
        let response = post_mcp(None, initialize(version));
        assert_eq!(response.status(), 200, "{version}");
        let text = response.text().unwrap();
        // The answer comes as one JSON body or as an SSE `data:` line.
        let answer: Value = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("data: ")
                    .and_then(|d| serde_json::from_str(d).ok())
            })
            .or_else(|| serde_json::from_str(&text).ok())
            .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"));
        assert_eq!(answer["result"]["protocolVersion"], version, "{answer}");
        assert_eq!(answer["result"]["serverInfo"]["name"], "network-telemetry");
        assert!(answer["result"]["capabilities"]["tools"].is_object());
    }
}

#[test]
fn streamable_http_sessions_end_with_delete() {
    url();
    let response = post_mcp(None, initialize("2025-11-25"));
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let deleted = client()
        .delete(format!("{}/mcp", url()))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .unwrap();
    // 204, which the official SDK takes as success (it warns on rmcp's own 202).
    assert_eq!(deleted.status(), 204);
    let after = post_mcp(
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    assert_eq!(after.status(), 404, "the session is gone");
}

/// An initialize request in protocol `version`.
fn initialize(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

/// POSTs one JSON-RPC message to /mcp, in `session` when given.
fn post_mcp(session: Option<&str>, message: Value) -> reqwest::blocking::Response {
    let mut request = client()
        .post(format!("{}/mcp", url()))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.body(message.to_string()).send().unwrap()
}

#[test]
fn the_sdk_high_level_client_discovers_and_uses_the_server() {
    traffic();
    let report = mcp_client(
        &["client", &format!("{}/mcp", url())],
        &json!([["get_network_summary", {"process_name": NAME}]]),
    );
    assert_eq!(
        report["tools"].as_array().unwrap().len(),
        netspy::mcp::TOOL_NAMES.len()
    );
    let c = call(&report, 0);
    assert_eq!(c["structured"]["count"], 5, "{c}");
    assert!(
        c["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Process '{NAME}' made 5"))
    );
}
