//! The REST API against the real daemon (probes loaded in this process) and real traffic:
//! exact answers for the test's own connects and drops, the original API's field contract,
//! health, OpenAPI and docs (bad input and tokens: `api_edges.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::net::{TcpListener, TcpStream, UdpSocket};

use common::daemon::{client, get, poll, post, url};
use serde_json::{Value, json};

/// Runs `traffic` in a thread named `name`: its events carry that name as their command, so
/// each test can count exactly its own.
fn as_command(name: &str, traffic: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(traffic)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn connection_summary_counts_exactly_the_tests_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let closed = common::closed_tcp_port();
    url();
    as_command("nsq-summary", move || {
        for _ in 0..3 {
            drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
        assert!(TcpStream::connect(("127.0.0.1", closed)).is_err());
        // No handshake: counted, but not among the TCP outcomes.
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.connect(("127.0.0.1", port)).unwrap();
        assert!(std::os::unix::net::UnixStream::connect("/nonexistent/netspy.sock").is_err());
    });
    let body = poll("/api/connection-summary?command=nsq-summary", |b| {
        b["count"] == 6 && b["outcomes"]["refused"] == 1 && b["outcomes"]["established"] == 3
    });
    assert_eq!(body["command"], "nsq-summary");
    assert_eq!(body["duration_seconds"], 60);
    assert_eq!(
        body["outcomes"],
        json!({"established": 3, "refused": 1, "timed_out": 0, "failed": 0, "aborted": 0, "unknown": 0}),
        "{body}"
    );
    assert_eq!(body["failed_calls"], 2);
    // The same question as a POST body with the original alias, as curl -d sends it.
    let (status, posted) = post(
        "/api/connection-summary",
        r#"{"process_name": "nsq-summary", "duration_seconds": 300}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(posted["count"], 6);
    assert_eq!(posted["duration_seconds"], 300);
    // Globs select by name pattern.
    assert_eq!(
        get("/api/connection-summary?command=nsq-sum*").1["count"],
        6
    );
}

#[test]
fn list_connections_by_pid_and_by_name_have_the_right_fields() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    url();
    let pid = common::bash(&format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; exec 4<>/dev/tcp/127.0.0.1/{port}"
    ));

    let body = poll(&format!("/api/list-connections?pid={pid}"), |b| {
        b["total_events"] == 2
    });
    assert_eq!(body["total_pids"], 1);
    let events = body["events_by_pid"][pid.to_string()].as_array().unwrap();
    for e in events {
        assert_eq!(e["type"], "connection");
        assert_eq!(e["pid"], pid);
        assert_eq!(e["command"], "bash");
        assert_eq!(e["destination"], format!("127.0.0.1:{port}"));
        assert_eq!(e["destination_ip"], "127.0.0.1");
        assert_eq!(e["destination_port"], port);
        assert_eq!(e["address_family"], 2);
        assert_eq!(e["protocol"], "TCP");
        assert_eq!(e["socket_type"], "SOCK_STREAM");
        assert_eq!(e["return_code"], 0);
        assert_eq!(e["raw_ipv4"], 0x7f00_0001);
        assert_eq!(e["outcome"], "established");
        assert!(e["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(e["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    // By name: bash is common, so combine with the pid; and POST form.
    let (status, posted) = post(
        "/api/list-connections",
        json!({"pid": pid, "command": "bash", "limit": 1}).to_string(),
    );
    assert_eq!(status, 200);
    assert_eq!(posted["total_events"], 1);
    assert_eq!(posted["matched_events"], 2);
    assert_eq!(posted["limit"], 1);
}

#[test]
fn packet_drops_show_reason_tuple_and_routine_split() {
    url();
    let port = common::closed_udp_port("127.0.0.1");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sport = socket.local_addr().unwrap().port();
    as_command("nsq-drops", move || {
        socket.send_to(b"x", ("127.0.0.1", port)).unwrap();
    });
    let body = poll("/api/list-packet-drops?limit=500", |b| {
        find_drop(b, port).is_some()
    });
    let drop = find_drop(&body, port).unwrap();
    assert_eq!(drop["type"], "packet_drop");
    assert_eq!(drop["drop_reason"], "NO_SOCKET");
    assert_eq!(drop["category"], "no_socket");
    assert_eq!(drop["protocol"], "UDP");
    assert_eq!(drop["source_ip"], "127.0.0.1");
    assert_eq!(drop["source_port"], sport);
    assert_eq!(drop["destination_port"], port);
    assert!(
        drop["location"]
            .as_str()
            .unwrap()
            .starts_with("__udp4_lib_rcv+")
    );
    assert_eq!(drop["routine"], false);
    // Routine drops are left out unless asked for, and counted.
    let summary = get("/api/packet-drop-summary?duration_seconds=600").1;
    assert!(
        summary["by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "NO_SOCKET"),
        "{summary}"
    );
    assert!(
        summary["by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["category"] != "routine")
    );
    let all = get("/api/list-packet-drops?include_routine=true&limit=500").1;
    let routine = get("/api/list-packet-drops?limit=500").1;
    assert!(all["matched_events"].as_u64().unwrap() >= routine["matched_events"].as_u64().unwrap());
}

fn find_drop(body: &Value, port: u16) -> Option<Value> {
    body["events_by_pid"]
        .as_object()?
        .values()
        .flat_map(|list| list.as_array().cloned().unwrap_or_default())
        .find(|d| d["destination_port"] == port && d["drop_reason"] == "NO_SOCKET")
}

#[test]
fn netfilter_drop_reaches_the_api_with_its_5_tuple() {
    let netns = common::netns::Netns::create();
    url();
    let socket = UdpSocket::bind((netns.host_ip.as_str(), 0)).unwrap();
    let sport = socket.local_addr().unwrap().port();
    socket
        .send_to(
            b"x",
            (netns.peer_ip.as_str(), common::netns::DROPPED_UDP_PORT),
        )
        .unwrap();
    let found = |b: &Value| {
        b["events"].as_array().and_then(|events| {
            events
                .iter()
                .find(|e| e["drop_reason"] == "NETFILTER_DROP" && e["source_port"] == sport)
                .cloned()
        })
    };
    let body = poll("/api/events?type=packet_drop&limit=500", |b| {
        found(b).is_some()
    });
    let drop = found(&body).unwrap();
    assert_eq!(drop["category"], "policy");
    assert_eq!(drop["source_ip"], netns.host_ip);
    assert_eq!(drop["destination_ip"], netns.peer_ip);
    assert_eq!(drop["destination_port"], common::netns::DROPPED_UDP_PORT);
    assert!(
        drop["location"]
            .as_str()
            .unwrap()
            .starts_with("nft_do_chain+")
    );
}

#[test]
fn original_client_fields_have_the_original_types() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    url();
    as_command("nsq-contract", move || {
        drop(TcpStream::connect(("127.0.0.1", port)).unwrap())
    });
    poll("/api/connection-summary?command=nsq-contract", |b| {
        b["count"] == 1
    });

    let is = |v: &Value, field: &str, kind: &str| {
        let f = &v[field];
        let ok = match kind {
            "string" => f.is_string(),
            "integer" => f.is_i64() || f.is_u64(),
            "number" => f.is_number(),
            "object" => f.is_object(),
            "array" => f.is_array(),
            "bool" => f.is_boolean(),
            _ => false,
        };
        assert!(ok, "{field} should be {kind}: {v}");
    };
    let (status, health) = get("/health");
    assert_eq!(status, 200);
    for (f, k) in [
        ("status", "string"),
        ("component", "string"),
        ("uptime", "string"),
        ("version", "string"),
    ] {
        is(&health, f, k);
    }
    assert_eq!(health["status"], "healthy");
    let summary = get("/api/connection-summary?command=nsq-contract").1;
    for (f, k) in [
        ("count", "integer"),
        ("pid", "integer"),
        ("command", "string"),
        ("duration_seconds", "integer"),
        ("query_time", "string"),
    ] {
        is(&summary, f, k);
    }
    let list = get("/api/list-connections?command=nsq-contract").1;
    for (f, k) in [
        ("total_events", "integer"),
        ("total_pids", "integer"),
        ("events_by_pid", "object"),
        ("query_time", "string"),
    ] {
        is(&list, f, k);
    }
    let event = list["events_by_pid"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()[0]
        .clone();
    for (f, k) in [
        ("id", "string"),
        ("type", "string"),
        ("pid", "integer"),
        ("command", "string"),
        ("time", "string"),
        ("timestamp", "integer"),
        ("destination", "string"),
        ("destination_ip", "string"),
        ("destination_port", "integer"),
        ("address_family", "integer"),
        ("protocol", "string"),
        ("socket_type", "string"),
        ("return_code", "integer"),
        ("raw_ipv4", "integer"),
        ("raw_ipv6", "array"),
        ("raw_protocol", "integer"),
        ("raw_socktype", "integer"),
    ] {
        is(&event, f, k);
    }
    let drops = get("/api/packet-drop-summary").1;
    for (f, k) in [
        ("count", "integer"),
        ("pid", "integer"),
        ("command", "string"),
        ("duration_seconds", "integer"),
        ("query_time", "string"),
    ] {
        is(&drops, f, k);
    }
    let drop_list = get("/api/list-packet-drops?include_routine=true").1;
    for (f, k) in [
        ("total_events", "integer"),
        ("total_pids", "integer"),
        ("events_by_pid", "object"),
        ("query_time", "string"),
    ] {
        is(&drop_list, f, k);
    }
    if let Some(d) = drop_list["events_by_pid"]
        .as_object()
        .unwrap()
        .values()
        .next()
    {
        for (f, k) in [
            ("pid", "integer"),
            ("command", "string"),
            ("drop_reason", "string"),
            ("timestamp", "integer"),
            ("id", "string"),
            ("type", "string"),
            ("time", "string"),
        ] {
            is(&d[0], f, k);
        }
    }
    let programs = get("/api/programs").1;
    is(&programs, "programs", "array");
    is(&programs, "total_count", "integer");
    for p in programs["programs"].as_array().unwrap() {
        for (f, k) in [
            ("name", "string"),
            ("type", "string"),
            ("status", "string"),
            ("id", "integer"),
            ("loaded", "bool"),
            ("attached", "bool"),
            ("event_count", "integer"),
            ("dropped_count", "integer"),
            ("drop_rate", "number"),
        ] {
            is(p, f, k);
        }
    }
    let events = get("/api/events?limit=5").1;
    for (f, k) in [
        ("events", "array"),
        ("count", "integer"),
        ("total_count", "integer"),
        ("query_time", "string"),
        ("filters", "object"),
    ] {
        is(&events, f, k);
    }
}

#[test]
fn health_reports_probes_and_counters() {
    url();
    let (status, health) = get("/health");
    assert_eq!(status, 200);
    assert_eq!(health["ready"], true);
    let probes = health["probes"].as_array().unwrap();
    let hook = |name: &str| probes.iter().find(|p| p["name"] == name).unwrap()["hook"].clone();
    assert_eq!(
        hook("connect"),
        "tracepoint:syscalls/sys_exit_connect:connect_exit"
    );
    assert_eq!(hook("tcp_outcome"), "tracepoint:sock/inet_sock_set_state");
    assert_eq!(hook("packet_drop"), "tp_btf:kfree_skb");
    assert_eq!(
        hook("socket_owners"),
        "tracepoint:syscalls/sys_exit_socket + tracepoint:syscalls/sys_enter_bind + tracepoint:syscalls/sys_exit_accept4 + tracepoint:syscalls/sys_exit_accept"
    );
    assert!(
        health["events"]["received"]["connection"]
            .as_u64()
            .is_some()
    );
    assert!(
        health["events"]["lost_in_kernel"]["packet_drop"]
            .as_u64()
            .is_some()
    );
    assert!(health["store"]["evicted_by_age"].as_u64().is_some());
    assert!(health["uptime_seconds"].as_u64().is_some());
}

#[test]
fn openapi_and_docs_describe_every_endpoint() {
    url();
    let (status, doc) = get("/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/health",
        "/api/programs",
        "/api/events",
        "/api/connection-summary",
        "/api/list-connections",
        "/api/analyze-patterns",
        "/api/packet-drop-summary",
        "/api/list-packet-drops",
        "/api/list-dns",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} GET");
    }
    let params = doc["paths"]["/api/connection-summary"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "process_name"));
    assert!(doc["paths"]["/api/list-connections"]["post"]["requestBody"].is_object());
    assert!(
        doc["components"]["schemas"]["ConnectionView"]["properties"]["raw_socktype"].is_object()
    );
    let page = client()
        .get(format!("{}/docs", url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("/api/list-packet-drops") && page.contains("duration_seconds"));
}

#[test]
fn metrics_parse_with_prometheus_own_parser() {
    url();
    drop(
        TcpStream::connect(
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap(),
        )
        .unwrap(),
    );
    poll("/health", |h| {
        h["events"]["received"]["connection"].as_u64() > Some(0)
    });
    let response = client().get(format!("{}/metrics", url())).send().unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().unwrap();
    // The Python client library of the Prometheus project parses what a scraper would.
    let parse = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        key = s.name + "".join("|%s=%s" % kv for kv in sorted(s.labels.items()))
        out[key] = s.value
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(common::daemon::mcp_python())
        .args(["-c", parse])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the parser refused:\n{text}");
    let samples: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(samples["netspy_ready"], 1.0);
    let samples_map = samples.as_object().unwrap();
    for probe in ["connect", "tcp_outcome", "packet_drop", "socket_owners"] {
        // Labelled with the hook that works: `hook=<program>`, never empty when attached.
        let (key, attached) = samples_map
            .iter()
            .find(|(k, _)| {
                k.starts_with("netspy_probe_attached|hook=")
                    && k.ends_with(&format!("|probe={probe}"))
            })
            .unwrap_or_else(|| panic!("{probe}: {samples}"));
        assert_eq!(*attached, 1.0, "{key}");
        assert!(!key.contains("hook=|"), "{key}");
    }
    // The per-process counts (a series new since an earlier scrape shows 0 once).
    let connects = samples_map
        .iter()
        .find(|(k, _)| k.starts_with("netspy_connect_attempts_total|process="))
        .unwrap_or_else(|| panic!("no connect attempts: {samples}"));
    assert!(connects.1.as_f64().unwrap() >= 0.0, "{connects:?}");
    assert!(
        samples["netspy_events_received_total|kind=connection"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        samples["netspy_events_lost_in_kernel_total|kind=connection"],
        0.0
    );
    assert!(
        samples["netspy_history_events|kind=connection"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    // Every stored event's delay from the kernel is observed: at least the connect above,
    // and (reads every 50 ms by default) within a second.
    let stored = samples["netspy_ingest_lag_seconds_count"].as_f64().unwrap();
    assert!(stored >= 1.0, "{samples}");
    assert!(
        samples["netspy_ingest_lag_seconds_bucket|le=1.0"]
            .as_f64()
            .unwrap()
            >= stored * 0.99,
        "{samples}"
    );
    assert_eq!(
        samples["netspy_events_sampled_out_total|kind=packet_drop"],
        0.0
    );
}

#[test]
fn a_datagram_to_a_closed_port_is_the_connecting_process_drop() {
    // Loopback orphans the datagram too; the UDP socket's connect told its local port.
    url();
    let closed = common::closed_udp_port("127.0.0.1");
    let (tx, rx) = std::sync::mpsc::channel();
    as_command("nsq-udp-orphan", move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(("127.0.0.1", closed)).unwrap();
        socket.send(b"anyone?").unwrap();
        tx.send(socket.local_addr().unwrap().port()).unwrap();
    });
    let sport = rx.recv().unwrap();
    let body = poll("/api/list-packet-drops?command=nsq-udp-orphan", |b| {
        b["total_events"] == 1
    });
    let drop = body["events_by_pid"][std::process::id().to_string()][0].clone();
    assert_eq!(drop["drop_reason"], "NO_SOCKET", "{drop}");
    assert_eq!(drop["protocol"], "UDP");
    assert_eq!(drop["attributed"], true);
    assert_eq!(drop["source_port"], sport);
    assert_eq!(drop["destination_port"], closed);
    let connects = get("/api/list-connections?command=nsq-udp-orphan").1;
    let connect = &connects["events_by_pid"][std::process::id().to_string()][0];
    assert_eq!(connect["source"], format!("127.0.0.1:{sport}"), "{connect}");
}

#[test]
fn a_syn_refused_by_a_closed_port_is_the_connecting_process_drop() {
    // Loopback orphans the SYN, so the kernel drops it (NO_SOCKET) with no socket; the
    // connect's TCP outcome tells whose it was.
    url();
    let closed = common::closed_tcp_port();
    as_command("nsq-orphan", move || {
        assert!(TcpStream::connect(("127.0.0.1", closed)).is_err())
    });
    let path = "/api/list-packet-drops?command=nsq-orphan";
    let body = poll(path, |b| b["total_events"] == 1);
    let drop = body["events_by_pid"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()[0]
        .clone();
    assert_eq!(drop["drop_reason"], "NO_SOCKET");
    assert_eq!(drop["command"], "nsq-orphan");
    assert_eq!(drop["pid"], std::process::id());
    assert_eq!(drop["attributed"], true);
    assert_eq!(drop["destination_port"], closed);
    let summary = get("/api/packet-drop-summary?command=nsq-orphan").1;
    assert_eq!(summary["count"], 1);
}

/// A listener whose SYN-ACK goes unanswered sends it again: that retransmission is the
/// listener's owner's, in state NEW_SYN_RECV, to the client's address.
#[test]
fn a_listener_s_syn_ack_sent_again_is_its_owner_s() {
    const PORT: u16 = 7778;
    let netns = common::netns::Netns::create();
    url();
    // The namespace's client completes its handshake, but its ACK never leaves.
    assert!(
        netns.exec(
            "nft add chain inet netspy_test output '{ type filter hook output priority 0; }'"
        )
    );
    assert!(netns.exec(&format!(
        "nft add rule inet netspy_test output tcp dport {PORT} 'tcp flags & (syn | ack) == ack' drop"
    )));
    let host = netns.host_ip.clone();
    let listener = std::thread::Builder::new()
        .name("nsq-synack".into())
        .spawn(move || TcpListener::bind((host.as_str(), PORT)).unwrap())
        .unwrap()
        .join()
        .unwrap();
    let server: std::net::SocketAddr = format!("{}:{PORT}", netns.host_ip).parse().unwrap();
    let client = netns.connect_inside(server);
    let list = poll("/api/list-retransmits?command=nsq-synack", |b| {
        b["matched_events"].as_u64() >= Some(1)
    });
    let events = list["events_by_pid"][std::process::id().to_string()]
        .as_array()
        .unwrap_or_else(|| panic!("no retransmission of this process: {list}"));
    let client_port = client.local_addr().unwrap().port();
    for e in events {
        assert_eq!(
            (
                &e["state"],
                &e["syn"],
                &e["segments"],
                &e["command"],
                &e["source_ip"],
                &e["source_port"],
                &e["destination_ip"],
                &e["destination_port"],
            ),
            (
                &json!("NEW_SYN_RECV"),
                &json!(false),
                &json!(1),
                &json!("nsq-synack"),
                &json!(netns.host_ip),
                &json!(PORT),
                &json!(netns.peer_ip),
                &json!(client_port),
            ),
            "{list}"
        );
    }
    // The summary counts them apart, as SYN-ACKs, not as data sent again.
    let (status, summary) = get("/api/retransmit-summary?command=nsq-synack");
    assert_eq!(status, 200, "{summary}");
    assert!(
        summary["syn_ack"].as_u64() >= Some(1)
            && summary["syn_ack"] == summary["count"]
            && summary["syn"] == 0,
        "{summary}"
    );
    let owner = &summary["processes"][0];
    assert_eq!(owner["syn_ack"], owner["count"], "{summary}");
    drop((client, listener));
}

#[test]
fn retransmissions_are_counted_by_process_and_connection() {
    use std::{io::Write, time::Duration};
    let netns = common::netns::Netns::create();
    url();
    let listener = netns.listen_inside(7777);
    let peer = netns.peer_ip.clone();
    let (ns, done) = (std::sync::Arc::new(netns), std::sync::mpsc::channel::<()>());
    let inside = ns.clone();
    let client = std::thread::Builder::new()
        .name("nsq-retx".into())
        .spawn(move || {
            // Data: the connection is established, then the namespace drops what it sends.
            let mut stream = TcpStream::connect((peer.as_str(), 7777)).unwrap();
            let (_accepted, _) = listener.accept().unwrap();
            assert!(inside.exec("nft add rule inet netspy_test input tcp dport 7777 drop"));
            stream.write_all(&[0; 1024]).unwrap();
            // A SYN: the namespace drops it, so it is sent again after about 1 s; the user
            // timeout ends the connect at 1.5 s.
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .set_tcp_user_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            let dropped: std::net::SocketAddr =
                format!("{peer}:{}", common::netns::DROPPED_TCP_PORT)
                    .parse()
                    .unwrap();
            assert!(socket.connect(&dropped.into()).is_err());
            // Keeps the data connection (and its retransmissions) until the test has seen them.
            let _ = done.1.recv_timeout(Duration::from_secs(20));
        })
        .unwrap();
    let summary = poll("/api/retransmit-summary?command=nsq-retx", |b| {
        b["syn"].as_u64() >= Some(1) && b["count"].as_u64() >= Some(3)
    });
    let owner = &summary["processes"][0];
    assert_eq!(
        summary["processes"].as_array().unwrap().len(),
        1,
        "{summary}"
    );
    assert_eq!(owner["pid"], std::process::id());
    assert_eq!(owner["command"], "nsq-retx");
    let connection = |port: u16| {
        owner["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["destination"] == format!("{}:{port}", ns.peer_ip))
            .cloned()
            .unwrap_or_else(|| panic!("no connection to port {port}: {summary}"))
    };
    let data = connection(7777);
    assert_eq!(data["syn"], 0, "{data}");
    assert!(data["count"].as_u64() >= Some(2), "{data}");
    assert!(
        data["source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", ns.host_ip))
    );
    let syn = connection(common::netns::DROPPED_TCP_PORT);
    assert_eq!(syn["syn"], syn["count"], "{syn}");
    // A SYN is one segment; 1 KiB of data too.
    assert_eq!(syn["segments"], syn["count"], "{syn}");
    assert_eq!(data["segments"], data["count"], "{data}");

    let list = poll("/api/list-retransmits?command=nsq-retx", |b| {
        b["matched_events"].as_u64() >= Some(3)
    });
    let events = list["events_by_pid"][std::process::id().to_string()]
        .as_array()
        .unwrap();
    let states: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains("SYN_SENT") && states.contains("ESTABLISHED"),
        "{list}"
    );
    assert!(events.iter().all(|e| e["type"] == "retransmit"
        && e["segments"] == 1
        && e["source_ip"] == ns.host_ip
        && e["destination_ip"] == ns.peer_ip));
    // The same events in the generic search and the stream (from another run's id: from
    // the oldest record of this one).
    let (status, found) = get("/api/events?type=retransmit&command=nsq-retx");
    assert_eq!(
        (status, &found["filters"]["type"]),
        (200, &json!("retransmit"))
    );
    let found = found["events"].as_array().unwrap();
    assert!(found.len() >= events.len(), "{found:?}");
    assert!(
        found
            .iter()
            .all(|e| e["type"] == "retransmit" && e["pid"] == std::process::id())
    );
    let mut stream = common::daemon::client()
        .get(format!(
            "{}/api/stream?type=retransmit&command=nsq-retx",
            url()
        ))
        .header("last-event-id", "1-0-0-0")
        .send()
        .unwrap();
    let (mut seen, mut buffer) = (String::new(), [0; 4096]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\n\n") && std::time::Instant::now() < deadline {
        use std::io::Read as _;
        let n = stream.read(&mut buffer).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    let first = seen.split("\n\n").next().unwrap();
    assert!(
        first.contains("event: retransmit")
            && first.contains(&format!("\"destination_ip\":\"{}\"", ns.peer_ip)),
        "{seen}"
    );
    drop(stream);

    let metrics = common::daemon::client()
        .get(format!("{}/metrics", url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("netspy_tcp_retransmits_total{")
                && l.contains("state=\"SYN_SENT\"")),
        "{metrics}"
    );
    assert!(metrics.contains("netspy_events_received_total{kind=\"retransmit\"}"));
    // One segment per resend in these tests (a SYN, 1 KiB of data, a SYN-ACK; nothing else
    // here loses packets): as many segments as resends, whichever process slot counts them.
    // A series shows 0 at its first scrape (so that rate() sees its first increase).
    let series = |metrics: &str, name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let scrape = || {
        common::daemon::client()
            .get(format!("{}/metrics", url()))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = scrape();
        if series(&metrics, "netspy_tcp_retransmits_total{") >= 3 {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        series(&metrics, "netspy_tcp_retransmitted_segments_total{"),
        series(&metrics, "netspy_tcp_retransmits_total{"),
        "{metrics}"
    );
    // The MCP tools' text, through the CLI.
    let tool_text = |tool: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_netspy"))
            .args(["--server", url(), "--tool", tool, "--process", "nsq-retx"])
            .env("NO_COLOR", "1")
            .env_remove("NETSPY_TOKEN")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = tool_text("get_retransmit_summary");
    assert!(text.starts_with("Process 'nsq-retx' had "), "{text}");
    let syns = match syn["count"].as_u64() {
        Some(1) => "1 SYN".to_owned(),
        n => format!("{} SYNs", n.unwrap_or(0)),
    };
    let syn_line = format!(
        " -> {}:{}: {} ({syns}), last at ",
        ns.peer_ip,
        common::netns::DROPPED_TCP_PORT,
        syn["count"],
    );
    assert!(text.contains(&syn_line), "{text}");
    // The list tool's text: a burst on one connection and state is one line with its count.
    let text = tool_text("list_retransmits");
    assert!(
        text.starts_with("Recent TCP retransmissions in the last 60 seconds ("),
        "{text}"
    );
    let line = |port: u16, state: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" -> {}:{port} {state}", ns.peer_ip)))
            .unwrap_or_else(|| panic!("no {state} line to port {port}: {text}"))
            .to_owned()
    };
    let data_line = line(7777, "ESTABLISHED");
    assert!(
        data_line.contains(&format!("({}, thread nsq-retx) | ", std::process::id()))
            && data_line.contains(" times, last "),
        "{text}"
    );
    line(common::netns::DROPPED_TCP_PORT, "SYN_SENT");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(":7777 ESTABLISHED"))
            .count(),
        1,
        "{text}"
    );
    drop(done.0);
    client.join().unwrap();
}
