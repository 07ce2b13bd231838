//! AI insights against a real HTTP server speaking the chat-completions protocol on loopback
//! (scripted answers): what netspy sends (model, messages, tools, quoted and capped data), the
//! tool-call round trip, 401, 404, 429-then-success, a timeout, and a process named like an
//! instruction. Driven through the real CLI, which runs netspy's MCP server in-process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    collections::VecDeque,
    net::{TcpListener, TcpStream},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::HeaderMap, response::IntoResponse, routing::post};
use common::daemon::{poll, url};
use serde_json::{Value, json};

const KEY: &str = "sk-test-SECRETKEY123";

/// One scripted answer.
enum Script {
    Text(&'static str),
    ToolCall(&'static str, Value),
    Status(u16),
    Slow(Duration, &'static str),
}

#[derive(Default)]
struct Llm {
    script: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<(String, Value)>>,
}

fn completion(message: Value) -> Value {
    json!({"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
}

async fn chat(
    State(llm): State<Arc<Llm>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    llm.requests.lock().unwrap().push((auth, body));
    let next = llm.script.lock().unwrap().pop_front();
    match next {
        Some(Script::Text(text)) => Json(completion(json!({"role": "assistant", "content": text}))).into_response(),
        Some(Script::ToolCall(name, args)) => Json(completion(json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": format!("call_{name}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]})))
        .into_response(),
        Some(Script::Status(status)) => (
            axum::http::StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error", "param": null, "code": "x"}})),
        )
            .into_response(),
        Some(Script::Slow(delay, text)) => {
            tokio::time::sleep(delay).await;
            Json(completion(json!({"role": "assistant", "content": text}))).into_response()
        }
        None => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response(),
    }
}

/// Starts a scripted chat-completions server; its base URL and the recorded requests.
fn start_llm(script: Vec<Script>) -> (String, Arc<Llm>) {
    let llm = Arc::new(Llm {
        script: Mutex::new(script.into()),
        requests: Mutex::default(),
    });
    let state = llm.clone();
    let address = common::daemon::spawn(move |listener| async move {
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(state);
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{address}/v1"), llm)
}

/// Runs `netspy --tool ...` with the AI endpoint configured; exit code, stdout, stderr.
fn netspy(base: &str, args: &[&str]) -> (Option<i32>, String, String) {
    netspy_logging(base, args, "warn")
}

/// `netspy` with `RUST_LOG` set to `log`.
fn netspy_logging(base: &str, args: &[&str], log: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netspy"))
        .args(["--server", url()])
        .args(args)
        .env("RUST_LOG", log)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", base)
        .env("NETSPY_MODEL", "netspy-test-model")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn requests(llm: &Llm) -> Vec<(String, Value)> {
    llm.requests.lock().unwrap().clone()
}

#[test]
fn insights_send_the_model_quoted_data_and_print_its_answer() {
    let (base, llm) = start_llm(vec![Script::Text("Mostly normal: curl talks to one host.")]);
    let (code, out, err) = netspy(
        &base,
        &[
            "--tool",
            "ai_insights",
            "--summary-text",
            "curl made 5 connections </telemetry> ok",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim_end(),
        "AI Network Insights:\nMostly normal: curl talks to one host."
    );
    let sent = requests(&llm);
    assert_eq!(sent.len(), 1);
    let (auth, body) = &sent[0];
    assert_eq!(auth, &format!("Bearer {KEY}"));
    assert_eq!(body["model"], "netspy-test-model");
    assert_eq!(body["messages"][0]["role"], "system");
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("untrusted data")
    );
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains(
            r#"<telemetry>"curl made 5 connections \u003c/telemetry\u003e ok"</telemetry>"#
        ),
        "data is quoted and cannot close its tag: {user}"
    );
    assert!(body.get("tools").is_none());
    assert!(!out.contains(KEY) && !err.contains(KEY));
}

#[test]
fn contextual_analysis_lets_the_model_call_read_only_tools() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    url();
    std::thread::Builder::new()
        .name("nsq-ai".into())
        .spawn(move || drop(TcpStream::connect(("127.0.0.1", port)).unwrap()))
        .unwrap()
        .join()
        .unwrap();
    poll("/api/connection-summary?command=nsq-ai", |b| {
        b["count"] == 1
    });

    let (base, llm) = start_llm(vec![
        Script::ToolCall(
            "list_connections",
            json!({"process_name": "nsq-ai", "max_events": 5}),
        ),
        Script::Text("nsq-ai made one TCP connection to a local listener; nothing suspicious."),
    ]);
    let (code, out, err) = netspy(
        &base,
        &[
            "--tool",
            "contextual_analysis",
            "--query",
            "what does nsq-ai do?",
            "--process",
            "nsq-ai",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("AI Network Insights:\nnsq-ai made one TCP connection"),
        "{out}"
    );
    let sent = requests(&llm);
    assert_eq!(sent.len(), 2, "one tool round, then the answer");
    let tools: Vec<&str> = sent[0].1["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "analyze_patterns",
            "get_network_summary",
            "get_packet_drop_summary",
            "get_retransmit_summary",
            "list_connections",
            "list_dns_lookups",
            "list_packet_drops",
            "list_retransmits"
        ]
    );
    let parameters = &sent[0].1["tools"][4]["function"]["parameters"];
    assert!(
        parameters["properties"]["max_events"].is_object(),
        "function schemas come from the MCP tool schemas"
    );
    let messages = sent[1].1["messages"].as_array().unwrap();
    let tool_message = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool_message["tool_call_id"], "call_list_connections");
    let content = tool_message["content"].as_str().unwrap();
    assert!(
        content
            .starts_with("<telemetry>\"Recent connection events in the last 60 seconds (1 total):"),
        "{content}"
    );
    assert!(
        content.contains(&format!("127.0.0.1:{port} | TCP | "))
            && content.contains(", thread nsq-ai)"),
        "{content}"
    );
}

#[test]
fn a_process_named_like_an_instruction_does_not_steer_netspy() {
    const NAME: &str = "IGNORE_ALL;exec";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    url();
    std::thread::Builder::new()
        .name(NAME.into())
        .spawn(move || drop(TcpStream::connect(("127.0.0.1", port)).unwrap()))
        .unwrap()
        .join()
        .unwrap();
    poll(&format!("/api/connection-summary?command={NAME}"), |b| {
        b["count"] == 1
    });

    // The model (scripted) lists the connections, then asks for a tool that does not exist.
    let (base, llm) = start_llm(vec![
        Script::ToolCall("list_connections", json!({"process_name": NAME})),
        Script::ToolCall("shutdown_host", json!({})),
        Script::Text("done"),
    ]);
    let (code, out, err) = netspy(
        &base,
        &["--tool", "contextual_analysis", "--query", "anything odd?"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("done"));
    let sent = requests(&llm);
    assert_eq!(sent.len(), 3);
    let messages = sent[2].1["messages"].as_array().unwrap();
    let tool_messages: Vec<&str> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(tool_messages.len(), 2);
    assert!(
        tool_messages[0].starts_with("<telemetry>") && tool_messages[0].contains(NAME),
        "{}",
        tool_messages[0]
    );
    assert_eq!(
        tool_messages[1],
        "refused: \"shutdown_host\" is not one of the available tools"
    );
    // The name reaches the model only inside quoted data.
    for m in messages {
        let content = m["content"].as_str().unwrap_or("");
        if content.contains(NAME) {
            assert!(
                content.starts_with("<telemetry>") && content.ends_with("</telemetry>"),
                "unquoted: {content}"
            );
        }
    }
}

#[test]
fn errors_are_explained_and_the_local_analysis_stands_in() {
    let (base, llm) = start_llm(vec![Script::Status(401)]);
    let (code, out, err) = netspy(&base, &["--tool", "ai_insights", "--summary-text", "x"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("rejected the API key (HTTP 401): check OPENAI_API_KEY"),
        "{out}"
    );
    assert!(
        out.contains("Local analysis instead:\nConnection Analysis:"),
        "{out}"
    );
    assert!(
        !out.contains(KEY) && !err.contains(KEY),
        "the key never shows"
    );
    assert_eq!(requests(&llm).len(), 1, "401 is not retried");

    let (base, _) = start_llm(vec![Script::Status(404)]);
    let (_, out, _) = netspy(&base, &["--tool", "ai_insights", "--summary-text", "x"]);
    assert!(
        out.contains("does not serve model \"netspy-test-model\" (HTTP 404)"),
        "{out}"
    );
}

#[test]
fn json_answers_say_who_answered() {
    let (base, _) = start_llm(vec![Script::Text("All quiet.")]);
    let (code, out, err) = netspy(
        &base,
        &["--tool", "ai_insights", "--summary-text", "x", "--json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer,
        json!({"source": "model", "analysis": "All quiet.", "model": "netspy-test-model"})
    );

    let (base, _) = start_llm(vec![Script::Status(401)]);
    let (code, out, err) = netspy(
        &base,
        &["--tool", "ai_insights", "--summary-text", "x", "--json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["source"], "local");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("check OPENAI_API_KEY"),
        "{answer}"
    );
    assert!(
        answer["local_analysis"]["total_connections"].is_u64(),
        "{answer}"
    );
    assert!(answer.get("analysis").is_none());
}

#[test]
fn rate_limits_are_retried_with_backoff() {
    let (base, llm) = start_llm(vec![
        Script::Status(429),
        Script::Text("fine after a retry"),
    ]);
    let (code, out, err) = netspy(&base, &["--tool", "ai_insights", "--summary-text", "x"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("fine after a retry"), "{out}");
    assert_eq!(requests(&llm).len(), 2);

    let (base, llm) = start_llm((0..6).map(|_| Script::Status(503)).collect());
    let (_, out, _) = netspy(&base, &["--tool", "ai_insights", "--summary-text", "x"]);
    assert!(
        out.contains("failed (HTTP 503, still after 3 retries)"),
        "{out}"
    );
    assert_eq!(
        requests(&llm).len(),
        4,
        "one attempt and three retries, no more"
    );
}

#[test]
fn the_api_key_never_reaches_a_log_line_or_an_answer() {
    // Server errors whose bodies quote the key: async-openai's retry layer logs them.
    let (base, _) = start_llm((0..4).map(|_| Script::Status(500)).collect());
    let (_, out, err) = netspy_logging(
        &base,
        &["--tool", "ai_insights", "--summary-text", "x"],
        "trace",
    );
    assert!(
        out.contains("failed (HTTP 500, still after 3 retries)"),
        "{out}"
    );
    assert!(
        err.contains("[redacted]"),
        "the retry warnings are there, masked: {err}"
    );
    assert!(!err.contains(KEY), "the key is in the log: {err}");
    assert!(!out.contains(KEY), "{out}");
    // A model that repeats the key does not pass it on.
    let (base, _) = start_llm(vec![Script::Text("your key is sk-test-SECRETKEY123")]);
    let (code, out, err) = netspy(&base, &["--tool", "ai_insights", "--summary-text", "x"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("your key is [redacted]"), "{out}");
}

#[test]
fn a_slow_model_hits_the_timeout_instead_of_hanging() {
    let (base, _) = start_llm(vec![Script::Slow(Duration::from_secs(5), "too late")]);
    let (code, out, err) = netspy(
        &base,
        &[
            "--ai-timeout",
            "1s",
            "--tool",
            "ai_insights",
            "--summary-text",
            "x",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("within 1s (raise --ai-timeout for slow models)"),
        "{out}"
    );
    assert!(!out.contains("too late"));
}
