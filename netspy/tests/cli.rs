//! The `netspy` CLI as a person uses it: interactive mode driven in a pseudo-terminal, and
//! single-command mode for every tool, against a live daemon that saw the test's traffic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    net::{TcpListener, TcpStream},
    process::Command,
    sync::OnceLock,
};

use common::{
    cgroup::TestCgroup,
    daemon::{DaemonProcess, poll, poll_at, url},
};
use rexpect::session::spawn_command;

const NETSPY: &str = env!("CARGO_BIN_EXE_netspy");
const NAME: &str = "nsq-cli";

/// Once: two connects under the command name `nsq-cli`, visible through the daemon.
fn traffic() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        url();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::Builder::new()
            .name(NAME.into())
            .spawn(move || {
                for _ in 0..2 {
                    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
                }
            })
            .unwrap()
            .join()
            .unwrap();
        poll(&format!("/api/connection-summary?command={NAME}"), |b| {
            b["count"] == 2
        });
    });
}

fn netspy(args: &[&str]) -> Command {
    let mut command = Command::new(NETSPY);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("NETSPY_TOKEN");
    command
}

#[test]
fn interactive_mode_in_a_terminal() {
    traffic();
    let data = std::env::temp_dir().join(format!("netspy-cli-test-{}", std::process::id()));
    let mut command = netspy(&["--server", url()]);
    command.env("XDG_DATA_HOME", &data);
    let mut p = spawn_command(command, Some(30_000)).unwrap();
    p.exp_string("Network Telemetry MCP Server").unwrap();
    p.exp_string("Starting interactive mode...").unwrap();
    p.exp_string("Connected to the netspy daemon").unwrap();
    p.exp_string("Available commands:").unwrap();
    p.exp_string("netspy-mcp> ").unwrap();

    // rustyline flushes type-ahead when it enters raw mode: wait for each prompt.
    let mut ask = |line: &str, answers: &[&str]| {
        p.send_line(line).unwrap();
        for answer in answers {
            p.exp_string(answer)
                .unwrap_or_else(|e| panic!("{line:?} should print {answer:?}: {e}"));
        }
        p.exp_string("netspy-mcp> ").unwrap();
    };
    ask(
        &format!("summary --process {NAME}"),
        &[&format!(
            "Process '{NAME}' made 2 outbound connection attempts over the last 60 seconds"
        )],
    );
    ask(
        &format!("list --process {NAME} --max-events 1"),
        &[
            "Recent connection events in the last 60 seconds (2 total):",
            // The test process's thread: shown with its process.
            &format!(", thread {NAME}) | established in "),
            "... and 1 more event\r\n",
        ],
    );
    ask(
        &format!("analyze --process {NAME}"),
        &["Connection Analysis:", "Protocols: TCP (2)"],
    );
    ask(
        "dropsummary --process nsq-nobody",
        &["No packet drops found for process 'nsq-nobody' in the last 60 seconds"],
    );
    ask(
        "insights \"curl made 50 connections to 10.0.0.5\"",
        &["AI Network Insights:"],
    );
    ask("tools", &["list_packet_drops"]);
    // Mistakes are explained and the session goes on.
    ask(
        "frobnicate",
        &["unknown command \"frobnicate\"; type help for the list"],
    );
    ask(
        "summary --pid abc",
        &["invalid value 'abc' for '--pid <N>'"],
    );
    ask("insights \"unclosed", &["close the quote"]);

    // Tab completes commands; Ctrl-C drops the line being typed.
    p.send("dropsu\t").unwrap();
    p.flush().unwrap();
    p.exp_string("dropsummary ").unwrap();
    p.send_line("--process nsq-nobody").unwrap();
    p.exp_string("No packet drops found for process 'nsq-nobody'")
        .unwrap();
    p.exp_string("netspy-mcp> ").unwrap();
    p.send("summary --process this-is-dropped").unwrap();
    p.flush().unwrap();
    p.exp_string("this-is-dropped").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("netspy-mcp> ").unwrap();
    p.send_line("help").unwrap();
    p.exp_string("quit").unwrap();
    p.exp_string("netspy-mcp> ").unwrap();

    // Ctrl-D leaves.
    p.send_control('d').unwrap();
    p.exp_string("Goodbye!").unwrap();
    p.exp_eof().unwrap();
    let status = format!("{:?}", p.process().wait().unwrap());
    assert!(
        status.starts_with("Exited(") && status.ends_with(", 0)"),
        "{status}"
    );

    let history = std::fs::read_to_string(data.join("netspy/history")).unwrap();
    assert!(
        history.contains(&format!("summary --process {NAME}")),
        "{history}"
    );
    assert!(!history.contains("this-is-dropped"), "{history}");
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn single_command_mode_runs_every_tool() {
    traffic();
    let run = |args: &[&str]| {
        let mut all = vec!["--server", url()];
        all.extend_from_slice(args);
        let out = netspy(&all).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["--tool", "get_network_summary", "--process", NAME]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with(&format!(
            "Process '{NAME}' made 2 outbound connection attempts"
        )),
        "{out}"
    );

    let (code, out, _) = run(&[
        "--tool",
        "list_connections",
        "--process",
        NAME,
        "--max-events",
        "1",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("Recent connection events in the last 60 seconds (2 total):")
            && out.contains("... and 1 more event\n"),
        "{out}"
    );

    let (code, out, _) = run(&["--tool", "analyze_patterns", "--process", NAME]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("Connection Analysis:"), "{out}");

    let (code, out, _) = run(&[
        "--tool",
        "get_packet_drop_summary",
        "--process",
        "nsq-nobody",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("No packet drops found for process 'nsq-nobody'"),
        "{out}"
    );

    let (code, out, _) = run(&["--tool", "list_packet_drops", "--max-events", "3"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("Recent packet drops in the last 60 seconds (")
            || out.starts_with("No packet drops found in the last 60 seconds"),
        "{out}"
    );

    let (code, out, _) = run(&[
        "--tool",
        "ai_insights",
        "--summary-text",
        "curl made 50 connections",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("AI Network Insights:"), "{out}");

    let (code, out, _) = run(&[
        "--tool",
        "contextual_analysis",
        "--query",
        "why?",
        "--process",
        NAME,
    ]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("AI Network Insights:"), "{out}");

    // --json gives the structured answer.
    let (code, out, _) = run(&["--tool", "get_network_summary", "--process", NAME, "--json"]);
    assert_eq!(code, Some(0));
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["count"], 2);
    assert_eq!(answer["command"], NAME);

    // A flag the tool does not take is ignored with a word.
    let (code, _, err) = run(&["--tool", "get_network_summary", "--max-events", "5"]);
    assert_eq!(code, Some(0));
    assert!(
        err.contains("--max-events does not apply to get_network_summary; ignored"),
        "{err}"
    );
}

#[test]
fn single_command_mode_failures_exit_non_zero_with_a_message() {
    let out = netspy(&[
        "--server",
        "http://127.0.0.1:1",
        "--tool",
        "get_network_summary",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not reachable at http://127.0.0.1:1 (connection refused)"),
        "{err}"
    );
    assert!(
        err.contains("sudo netspy daemon") && err.contains("curl http://127.0.0.1:1/health"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = netspy(&["--server", url(), "--tool", "no_such_tool"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap knows the tools");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: invalid value 'no_such_tool' for '--tool <NAME>'")
            && err.contains("[possible values: get_network_summary, list_connections,"),
        "{err}"
    );

    // Mistakes are named by their flag, with the daemon's ranges, before anything is sent.
    let stderr_of = |args: &[&str]| {
        let out = netspy(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (args, code, message) in [
        (
            &["--tool", "get_network_summary", "--duration", "-5"][..],
            2,
            "error: invalid value '-5' for '--duration <S>': -5 is not in 1..=31536000",
        ),
        (
            &["--tool", "get_network_summary", "--duration", "99999999999"],
            2,
            "error: invalid value '99999999999' for '--duration <S>': 99999999999 is not in 1..=31536000",
        ),
        (
            &[
                "--server",
                "127.0.0.1:8080",
                "--tool",
                "get_network_summary",
            ],
            1,
            "netspy: error: invalid server URL \"127.0.0.1:8080\": write it with its scheme, http://127.0.0.1:8080",
        ),
        (
            &["--server", url(), "--tool", "ai_insights"],
            1,
            "netspy: error: ai_insights needs --summary-text",
        ),
        (
            &[
                "--server",
                url(),
                "--tool",
                "get_network_summary",
                "--process",
                "foo[",
            ],
            1,
            "invalid process name pattern \"foo[\": unclosed character class; missing ']'; to match *, ? or [ itself, put a backslash before it (\\[)",
        ),
    ] {
        let (status, err) = stderr_of(args);
        assert_eq!(status, Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().next(), Some(message), "{args:?}: {err}");
    }
    // Something else listening where the daemon should be.
    let other = fake_server(Vec::new());
    let (status, err) = stderr_of(&["--server", &other, "--tool", "get_network_summary"]);
    assert_eq!(status, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "{other} is not a netspy daemon: {other}/api/connection-summary answered HTTP 404 Not Found"
        )
    );
    // Flags without --tool do not vanish into interactive mode unsaid; a line longer than
    // any input is refused with the limit; a mistyped command gets the nearest one.
    let mut repl = netspy(&["--server", url(), "--pid", "1", "--process", "x"]);
    repl.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = repl.spawn().unwrap();
    let long = "x".repeat(20_000);
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("{long}\nsumary\nquit\n").as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "--pid, --process apply to --tool; starting interactive mode, where each command takes its own flags",
        "the line is 20000 characters long; the most is 17408",
        "unknown command \"sumary\"; did you mean summary? (help lists them)",
    ] {
        assert!(
            err.lines().any(|l| l.ends_with(expected)),
            "{expected:?} in {err}"
        );
    }
    let out = netspy(&["--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--json needs --tool");
    let out = netspy(&["--server", "ftp://x", "--tool", "get_network_summary"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http:// is supported"));
}

#[test]
fn version_help_completions_and_man_page() {
    let out = netspy(&["--version"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("netspy {}", env!("CARGO_PKG_VERSION"))
    );
    let out = netspy(&["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--tool",
        "--server",
        "--process",
        "--max-events",
        "daemon",
        "trace",
        "mcp",
        "completions",
    ] {
        assert!(help.contains(word), "{word} in --help");
    }
    let out = netspy(&["completions", "bash"]).output().unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && script.contains("_netspy()") && script.contains("--max-events")
    );
    assert!(
        script.contains("get_network_summary") && script.contains("contextual_analysis"),
        "--tool completes the tool names"
    );
    let out = netspy(&["man"])
        .env("NETSPY_SERVER", "host-without-scheme:8080")
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && page.starts_with(".ie") && page.contains("netspy\\-daemon"),
        "the tool modes' server setting does not concern other subcommands"
    );
    // One page per subcommand, with every option it takes.
    let out = netspy(&["man", "daemon"]).output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{page}");
    for word in [
        ".TH netspy-daemon 1",
        "\\-\\-max\\-events",
        "\\-\\-retention",
        "\\-\\-allow\\-host",
    ] {
        assert!(page.contains(word), "{word} in netspy-daemon(1)");
    }
}

/// A process whose events were evicted is not reported as quiet: the answer says the
/// history of its window is gone, in text and in structure.
#[test]
fn evicted_history_is_said_not_passed_off_as_quiet() {
    let daemon = DaemonProcess::start(&["--max-events", "20"]);
    daemon.wait_ready();
    let url = daemon.url();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = move || {
        for _ in 0..3 {
            drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
    };
    std::thread::Builder::new()
        .name("nsq-gone".into())
        .spawn(connect)
        .unwrap()
        .join()
        .unwrap();
    let gone = "/api/connection-summary?command=nsq-gone";
    poll_at(&url, gone, |b| b["count"] == 3);
    // UDP connects send nothing; 40 of them push every older record out of 20.
    std::thread::Builder::new()
        .name("nsq-flood".into())
        .spawn(|| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..40 {
                socket.connect(("127.0.0.1", 9)).unwrap();
            }
        })
        .unwrap()
        .join()
        .unwrap();
    let answer = poll_at(&url, gone, |b| b["count"] == 0);
    let coverage = &answer["coverage"];
    assert_eq!(coverage["complete"], false, "{answer}");
    assert!(coverage["history_since"].is_string(), "{answer}");
    assert!(coverage["evicted"].as_u64() >= Some(23), "{answer}");

    let out = netspy(&[
        "--server",
        &url,
        "--tool",
        "get_network_summary",
        "--process",
        "nsq-gone",
    ])
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("No network connections found for process 'nsq-gone' in the last 60 seconds"),
        "{text}"
    );
    let note = lines.next().unwrap_or_default();
    assert!(
        note.starts_with("  Not the whole window: netspy began collecting at ")
            && note.contains("; history since ")
            && note.contains(" only (older connect events evicted: ")
            && note.ends_with(" since netspy started, of all processes)"),
        "{text}"
    );
}

/// A process is found by its own name and by its thread's, and shown with both: the connect
/// of thread `nsq-worker` of process `nsq-thrmain` (both names set with prctl).
#[test]
fn a_thread_s_connect_is_its_process_s_and_says_which_thread() {
    url();
    let script = r#"
import ctypes, os, socket, sys, threading
libc = ctypes.CDLL(None)
libc.prctl(15, b"nsq-thrmain", 0, 0, 0)
def work():
    libc.prctl(15, b"nsq-worker", 0, 0, 0)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", 9))
    s.close()
t = threading.Thread(target=work)
t.start()
t.join()
print(os.getpid())
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let list = poll("/api/list-connections?command=nsq-thrmain", |b| {
        b["total_events"] == 1
    });
    let event = &list["events_by_pid"][pid.to_string()][0];
    assert_eq!(
        (&event["command"], &event["process_name"], &event["pid"]),
        (&"nsq-worker".into(), &"nsq-thrmain".into(), &pid.into()),
        "{list}"
    );
    // The thread's name finds it too.
    poll("/api/connection-summary?command=nsq-worker", |b| {
        b["count"] == 1
    });
    let out = netspy(&[
        "--server",
        url(),
        "--tool",
        "list_connections",
        "--process",
        "nsq-thr*",
    ])
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            " | 127.0.0.1:9 | UDP | nsq-thrmain ({pid}, thread nsq-worker)\n"
        )),
        "{text}"
    );
}

/// netspy's own CLI is left out of what the daemon reports (its calls to the daemon would
/// fill the history), unless the daemon is told to report it.
#[test]
fn netspy_s_own_clients_are_left_out_unless_asked_for() {
    let count_netspy = |args: &[&str]| {
        let daemon = DaemonProcess::start(args);
        daemon.wait_ready();
        let url = daemon.url();
        for _ in 0..2 {
            let out = netspy(&["--server", &url, "--tool", "list_connections"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        // A later connect of this test, seen, says the CLI's connects were read before it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::Builder::new()
            .name("nsq-marker".into())
            .spawn(move || drop(TcpStream::connect(("127.0.0.1", port)).unwrap()))
            .unwrap()
            .join()
            .unwrap();
        poll_at(&url, "/api/connection-summary?command=nsq-marker", |b| {
            b["count"] == 1
        });
        let (_, summary) = common::daemon::get_at(&url, "/api/connection-summary?command=netspy");
        summary["count"].as_u64().unwrap()
    };
    assert_eq!(count_netspy(&[]), 0, "the CLI's connects are left out");
    assert!(
        count_netspy(&["--report-netspy-clients"]) >= 2,
        "each CLI run connects to the daemon at least once"
    );
}

/// An HTTP server on 127.0.0.1 answering each path that starts with a route's prefix with
/// its JSON, and 404 to anything else; its base URL.
fn fake_server(routes: Vec<(&'static str, serde_json::Value)>) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let (mut head, mut line) = (Vec::new(), String::new());
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                head.push(std::mem::take(&mut line));
            }
            let length = head
                .iter()
                .find_map(|h| {
                    h.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = head
                .first()
                .and_then(|h| h.split(' ').nth(1))
                .unwrap_or("")
                .to_owned();
            let answer = routes.iter().find(|(prefix, _)| path.starts_with(prefix));
            let (status, body) = match answer {
                Some((_, json)) => ("200 OK", json.to_string()),
                None => ("404 Not Found", String::new()),
            };
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

/// netspy's CLI against the original ebpf-server's API: its answers (fewer fields) are
/// read, and what it lacks is said.
#[test]
fn the_cli_works_against_the_original_ebpf_server() {
    use serde_json::json;
    let event = json!({
        "id": "c1", "type": "connection", "pid": 4312, "command": "curl",
        "time": "2026-01-01T10:00:00.000000001Z", "timestamp": 1_767_261_600_000_000_001i64,
        "destination": "10.0.0.5:443", "destination_ip": "10.0.0.5", "destination_port": 443,
        "address_family": 2, "protocol": "TCP", "socket_type": "SOCK_STREAM", "return_code": 0,
        "raw_ipv4": 167_772_165, "raw_ipv6": vec![0; 16], "raw_protocol": 6, "raw_socktype": 1,
    });
    // The original lists every process's events whatever it is asked.
    let mut other = event.clone();
    other["pid"] = json!(77);
    other["command"] = json!("wget");
    let original = fake_server(vec![
        (
            "/health",
            json!({"status": "healthy", "component": "ebpf-server", "uptime": "5m", "version": "1.0.0"}),
        ),
        (
            "/api/connection-summary",
            json!({"count": 5, "pid": 0, "command": "curl", "duration_seconds": 60,
                   "query_time": "2026-01-01T10:00:01Z"}),
        ),
        (
            "/api/packet-drop-summary",
            json!({"count": 0, "pid": 0, "command": "curl", "duration_seconds": 60,
                   "query_time": "2026-01-01T10:00:01Z", "message": null}),
        ),
        (
            "/api/list-connections",
            json!({"total_events": 2, "total_pids": 2,
                   "events_by_pid": {"4312": [event], "77": [other]},
                   "query_time": "2026-01-01T10:00:01Z"}),
        ),
    ]);
    let run = |tool: &str| {
        let out = netspy(&["--server", &original, "--tool", tool, "--process", "curl"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run("get_network_summary");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim_end(),
        "Process 'curl' made 5 outbound connection attempts over the last 60 seconds"
    );
    let (code, out, err) = run("list_connections");
    assert_eq!(code, Some(0), "{err}");
    let mut lines = out.lines();
    // As the original answers: every process's events, whatever was asked.
    assert_eq!(lines.next(), Some("Recent connection events (2 total):"));
    assert!(
        lines.any(|l| l.ends_with(" | 10.0.0.5:443 | TCP | curl (4312)")),
        "{out}"
    );
    // No analysis there: the client computes it from the list, and says so.
    let (code, out, err) = run("analyze_patterns");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim_end(),
        "Connection Analysis:\n  Total: 1 connection attempt in the last 60 seconds (1.0/minute)\n  \
         Top destinations:\n    10.0.0.5:443 (1 attempt)\n  Protocols: TCP (1)\n  Ports: 443 (1)\n  \
         Processes: curl (1)\n  Computed by netspy's client from the connect events the server \
         listed (1 of 2 for this process and window; it may not list them all): the server is \
         not a netspy daemon and has no pattern analysis"
    );
    let mut repl = netspy(&["--server", &original]);
    repl.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = repl.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"quit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{original} is not a netspy daemon (it calls itself \"ebpf-server\")"
        )),
        "{err}"
    );
}

/// A process in a cgroup named like a systemd unit, or like a container's scope, is
/// reported with that unit or container, and found by them (REST, CLI), and the analysis
/// counts by unit.
#[test]
fn a_process_in_a_unit_or_container_is_reported_and_found_by_it() {
    url();
    let unit = format!("nsq-{}.service", std::process::id());
    let service = TestCgroup::new(&unit);
    let connect =
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.connect(('127.0.0.1', 9))";
    let pid = service.python(connect);
    let list = poll(&format!("/api/list-connections?unit={unit}"), |b| {
        b["total_events"] == 1
    });
    let event = &list["events_by_pid"][pid.to_string()][0];
    assert_eq!(
        (&event["unit"], &event["cgroup"], &event["container"]),
        (
            &unit.as_str().into(),
            &service.path().into(),
            &serde_json::Value::Null
        ),
        "{list}"
    );
    // A glob finds it; another unit does not.
    poll(
        &format!("/api/connection-summary?unit=nsq-{}.s*", std::process::id()),
        |b| b["count"] == 1,
    );
    poll(
        &format!("/api/connection-summary?pid={pid}&unit=other.service"),
        |b| b["count"] == 0,
    );
    let out = netspy(&[
        "--server",
        url(),
        "--tool",
        "list_connections",
        "--unit",
        &unit,
    ])
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            " | 127.0.0.1:9 | UDP | python3 ({pid}) in {unit}\n"
        )),
        "{text}"
    );
    let out = netspy(&[
        "--server",
        url(),
        "--tool",
        "analyze_patterns",
        "--unit",
        &unit,
    ])
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("\n  Units: {unit} (1)")), "{text}");

    // A container's scope: found by a glob of its id, shown by its short id.
    let id = format!("{:016x}", u64::from(std::process::id())).repeat(4);
    let scope = TestCgroup::new(&format!("docker-{id}.scope"));
    let pid = scope.python(connect);
    let list = poll(
        &format!("/api/list-connections?container={}*", &id[..8]),
        |b| b["events_by_pid"][pid.to_string()].is_array(),
    );
    let event = &list["events_by_pid"][pid.to_string()][0];
    assert_eq!(event["container"], id.as_str(), "{list}");
    let out = netspy(&[
        "--server",
        url(),
        "--tool",
        "list_connections",
        "--container",
        &id,
        "--pid",
        &pid.to_string(),
    ])
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(" | python3 ({pid}) in container {}\n", &id[..12])),
        "{text}"
    );
    drop((service, scope));
}

/// Starts `command` with pipes for stdin and stdout and reads its first line: a process
/// that reports itself and then waits for its stdin to close.
fn spawn_waiting(command: &mut Command) -> (std::process::Child, String) {
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line)
}

/// An event names its process's executable (what tells two programs of one name apart),
/// and the analysis counts by it.
#[test]
fn events_name_their_process_s_executable() {
    url();
    let script = "import os, socket, sys\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.connect(('127.0.0.1', 9))\n\
                  print(os.getpid(), os.readlink('/proc/self/exe'), flush=True)\n\
                  sys.stdin.read()";
    let (mut child, line) = spawn_waiting(Command::new("python3").args(["-c", script]));
    let (pid, exe) = line.trim().split_once(' ').unwrap();
    // The process waits until its event is in: it is alive when the daemon first sees it.
    // Its connect is found by its destination and name: with HOME unset (CI), Python (and a
    // pyenv shell shim, under the same pid) first try nscd's socket for passwd lookups.
    let ours = |b: &serde_json::Value| -> Option<serde_json::Value> {
        b["events_by_pid"][pid]
            .as_array()?
            .iter()
            .find(|c| c["destination"] == "127.0.0.1:9")
            .cloned()
    };
    let list = poll(
        &format!("/api/list-connections?pid={pid}&command=python3"),
        |b| ours(b).is_some(),
    );
    let connect = ours(&list).unwrap();
    assert_eq!(connect["exe"], exe, "{list}");
    let out = netspy(&[
        "--server",
        url(),
        "--tool",
        "analyze_patterns",
        "--pid",
        pid,
        "--process",
        "python3",
    ])
    .output()
    .unwrap();
    drop(child.stdin.take());
    child.wait().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("\n  Executables: {exe} (")),
        "{text}"
    );
}

/// A process looks up a name it serves itself (an `/etc/hosts` of its own, in a private
/// mount namespace, with the files as the only source: nothing leaves the host), connects
/// to the answer, and looks up a name that does not exist: the lookups are listed with
/// their answers and error, and the connection carries the name in the REST answer, the
/// connection list and the pattern analysis.
#[test]
fn lookups_are_listed_and_name_the_connections_to_their_answers() {
    url();
    let dir = std::env::temp_dir().join(format!("nsq-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("nsq-dns-{}.test", std::process::id());
    let missing = format!("nsq-missing-{}.test", std::process::id());
    let hosts = dir.join("hosts");
    let nsswitch = dir.join("nsswitch.conf");
    std::fs::write(&hosts, format!("127.0.0.1 {name}\n")).unwrap();
    std::fs::write(&nsswitch, "hosts: files\n").unwrap();
    let script = "import os, socket, sys\n\
                  name, missing = sys.argv[1], sys.argv[2]\n\
                  ai = socket.getaddrinfo(name, 9, socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  s.connect(ai[0][4])\n\
                  try:\n    socket.getaddrinfo(missing, 9, socket.AF_INET, socket.SOCK_DGRAM)\n\
                  except socket.gaierror as e:\n    print(os.getpid(), e.errno, flush=True)\n\
                  sys.stdin.read()";
    let shell = format!(
        "mount --bind {} /etc/hosts && mount --bind {} /etc/nsswitch.conf && exec python3 -c \"$0\" \"$1\" \"$2\"",
        hosts.display(),
        nsswitch.display()
    );
    let (mut child, line) = spawn_waiting(
        Command::new("unshare").args(["--mount", "sh", "-c", &shell, script, &name, &missing]),
    );
    let (pid, errno) = line.trim().split_once(' ').unwrap();
    assert_eq!(errno, libc::EAI_NONAME.to_string(), "{line}");

    let lookups = poll(&format!("/api/list-dns?pid={pid}&command=python3"), |b| {
        b["total_events"] == 2
    });
    let found = &lookups["events_by_pid"][pid];
    assert_eq!(found[0]["name"], name.as_str(), "{lookups}");
    assert_eq!(found[0]["answers"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(found[0]["return_code"], 0);
    assert!(found[0]["error"].is_null());
    assert_eq!(found[0]["process_name"], "python3");
    assert_eq!(found[1]["name"], missing.as_str());
    assert_eq!(found[1]["error"], "EAI_NONAME");
    assert_eq!(found[1]["return_code"], libc::EAI_NONAME);
    assert_eq!(found[1]["answers"], serde_json::json!([]));
    assert_eq!(
        (lookups["matched_events"].clone(), lookups["failed"].clone()),
        (2.into(), 1.into())
    );

    // The generic search has them when asked for by type; the stream says where they are.
    let events = poll(
        &format!("/api/events?type=dns&pid={pid}&command=python3"),
        |b| b["count"] == 2,
    );
    assert_eq!(events["events"][1]["type"], "dns", "{events}");
    assert_eq!(events["events"][1]["error"], "EAI_NONAME", "{events}");
    assert_eq!(events["filters"]["type"], "dns");
    let (status, refused) = common::daemon::get("/api/stream?type=dns");
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("/api/list-dns"),
        "{refused}"
    );

    let connections = poll(
        &format!("/api/list-connections?pid={pid}&command=python3"),
        |b| b["total_events"].as_u64() >= Some(1),
    );
    let ours: Vec<_> = connections["events_by_pid"][pid]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["destination"] == "127.0.0.1:9")
        .collect();
    assert_eq!(ours.len(), 1, "{connections}");
    assert_eq!(ours[0]["destination_name"], name.as_str(), "{connections}");

    let tool = |tool: &str| {
        let out = netspy(&[
            "--server",
            url(),
            "--tool",
            tool,
            "--pid",
            pid,
            "--process",
            "python3",
        ])
        .output()
        .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = tool("list_connections");
    assert!(
        list.contains(&format!(" | 127.0.0.1:9 ({name}) | UDP | python3 ({pid})")),
        "{list}"
    );
    let analysis = tool("analyze_patterns");
    assert!(
        analysis.contains(&format!("127.0.0.1:9 ({name})")),
        "{analysis}"
    );
    let dns = tool("list_dns_lookups");
    assert!(dns.contains("(2 total, 1 failed)"), "{dns}");
    assert!(
        dns.contains(&format!(" | {name} -> 127.0.0.1 | python3 ({pid}) | ")),
        "{dns}"
    );
    assert!(
        dns.contains(&format!(" | {missing} EAI_NONAME | python3 ({pid}) | ")),
        "{dns}"
    );

    drop(child.stdin.take());
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
