//! The real `netspy` binary as a user runs it: `trace` and `daemon` with real traffic,
//! signals, exit codes and messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const NETSPY: &str = env!("CARGO_BIN_EXE_netspy");

/// A running `netspy trace` whose stdout lines arrive on a channel. Killed when dropped
/// unstopped (a failing test), so no tracer outlives the test run.
struct Trace {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Trace {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(NETSPY)
            .arg("trace")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child: Some(child),
            lines,
        }
    }

    /// Repeats `traffic` until a line satisfies `pick` (the probes attach in the background).
    fn line_after(&mut self, mut traffic: impl FnMut(), pick: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            traffic();
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
                if pick(&line) {
                    return line;
                }
                seen.push(line);
            }
        }
        panic!("no matching line; saw:\n{}", seen.join("\n"));
    }

    /// SIGTERM, then the exit status and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let child = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

#[test]
fn json_lines_for_own_pid_and_clean_exit_with_counts() {
    let pid = std::process::id().to_string();
    let mut trace = Trace::start(&["--json", "--pid", &pid]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let line = trace.line_after(
        || drop(TcpStream::connect(("127.0.0.1", port)).unwrap()),
        |l| l.contains("\"type\":\"connection\"") && l.contains(&format!("\"port\":{port}")),
    );
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["process"]["pid"], std::process::id());
    assert_eq!(event["protocol"], "TCP");
    assert_eq!(event["socket_type"], "SOCK_STREAM");
    assert_eq!(event["return_code"], 0);
    assert_eq!(event["destination"]["ip"], "127.0.0.1");
    assert!(event["time"].as_str().unwrap().ends_with('Z'));

    let (status, stderr) = trace.stop();
    assert!(status.success(), "exit {status}, stderr:\n{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("netspy trace: received"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(summary.contains("lost in the kernel 0"), "{summary}");
    assert!(!summary.contains("received 0 events"), "{summary}");
}

#[test]
fn a_refused_connects_syn_drop_is_traced_as_the_senders() {
    // Loopback orphans the SYN, so the NO_SOCKET drop carries no socket; trace holds it until
    // the connect's outcome names the sender. With --pid, an unattributed drop is not shown.
    let pid = std::process::id().to_string();
    let mut trace = Trace::start(&["--pid", &pid]);
    let port = common::closed_tcp_port();
    let line = trace.line_after(
        || drop(TcpStream::connect(("127.0.0.1", port))),
        |l| l.contains(" drop NO_SOCKET ") && l.contains(&format!("-> 127.0.0.1:{port} ")),
    );
    // 14:02:11 drop_cli(4312) drop NO_SOCKET TCP 127.0.0.1:51234 -> 127.0.0.1:9 at tcp_v4_rcv+0x1
    let fields: Vec<&str> = line.split(' ').collect();
    assert!(fields[1].ends_with(&format!("({pid})")), "{line}");
    assert_eq!(fields[4], "TCP", "{line}");
    assert!(fields[5].starts_with("127.0.0.1:"), "{line}");
    assert_eq!(fields[7], format!("127.0.0.1:{port}"), "{line}");
    assert!(fields[9].starts_with("tcp_v4_rcv+"), "{line}");
    let (status, _) = trace.stop();
    assert!(status.success());
}

#[test]
fn text_lines_show_refused_outcomes() {
    let pid = std::process::id().to_string();
    let mut trace = Trace::start(&["--pid", &pid]);
    let port = common::closed_tcp_port();
    let line = trace.line_after(
        || drop(TcpStream::connect(("127.0.0.1", port))),
        |l| l.contains(&format!("-> 127.0.0.1:{port} refused (ECONNREFUSED)")),
    );
    // 14:02:11 trace_cli(4312) TCP 127.0.0.1:51234 -> 127.0.0.1:9 refused (ECONNREFUSED) 0.1ms
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0].len(), 8, "{line}");
    assert!(fields[1].ends_with(&format!("({pid})")), "{line}");
    assert_eq!(fields[2], "TCP", "{line}");
    assert!(fields.last().unwrap().ends_with("ms"), "{line}");
    let (status, _) = trace.stop();
    assert!(status.success());
}

#[test]
fn unprivileged_user_is_told_what_is_needed() {
    for command in [&["trace"][..], &["daemon", "--listen", "127.0.0.1:0"]] {
        let output = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                NETSPY,
            ])
            .args(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains("needs root or CAP_BPF + CAP_PERFMON"),
            "{command:?}: {stderr}"
        );
        assert!(
            !stderr.contains("serving the API"),
            "{command:?} serves nothing unprivileged"
        );
    }
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(NETSPY)
        .args(["trace", "--pid", "abc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("invalid value 'abc' for '--pid <N>'")
    );

    let output = Command::new(NETSPY)
        .args(["trace", "--disable-hook", "kprobe:nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown hook \"kprobe:nope\""), "{stderr}");
    assert!(stderr.contains("tracepoint:skb/kfree_skb"), "{stderr}");

    // The daemon checks every option before it binds or serves anything.
    let output = Command::new(NETSPY)
        .args([
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--disable-hook",
            "bogus",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown hook \"bogus\""), "{stderr}");
    assert!(!stderr.contains("serving the API"), "{stderr}");
}

#[test]
fn daemon_binary_serves_counts_and_stops_cleanly_on_sigterm() {
    let mut child = common::KillOnDrop(
        Command::new(NETSPY)
            .args(["daemon", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no address in {log:?}"));
        if let Some(rest) = line.split("serving the API on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        log.push(line);
    };
    let http = common::daemon::client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("http://{address}/health"))
        .send()
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "daemon never became healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Traffic from a child process: the daemon ignores only its own pid.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pid = common::bash(&format!("exec 3<>/dev/tcp/127.0.0.1/{port}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body: serde_json::Value = http
            .post(format!("http://{address}/api/connection-summary"))
            .body(format!("{{\"pid\": {pid}}}"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if body["count"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "count never reached 1: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
}

/// `netspy daemon` run with a config file, the environment and flags, printing what it
/// would run with: each layer wins over the one before, and the file's mistakes are named.
fn daemon_with_config(file: &str, env: &[(&str, &str)], flags: &[&str]) -> (i32, String) {
    let path = std::env::temp_dir().join(format!("netspy-config-{}.toml", std::process::id()));
    std::fs::write(&path, file).unwrap();
    let output = Command::new(NETSPY)
        .args(["daemon", "--config", path.to_str().unwrap()])
        .args(flags)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn config_file_settings_sit_between_the_defaults_and_the_environment() {
    let file = "max-events = 3000\nmax-list = 40\nretention = \"2h\"\ntoken = \"file-secret\"\n";
    let (code, printout) = daemon_with_config(
        file,
        &[("NETSPY_MAX_LIST", "50")],
        &["--retention", "3h", "--print-config"],
    );
    assert_eq!(code, 0, "{printout}");
    for line in [
        "max-events = 3000  # file",
        "max-list = 50  # environment",
        "retention = \"3h\"  # flag",
        "query-timeout = \"10s\"  # default",
        "token = \"<hidden>\"  # file",
    ] {
        assert!(
            printout.lines().any(|l| l == line),
            "no {line:?} in\n{printout}"
        );
    }
    assert!(!printout.contains("file-secret"), "{printout}");

    let (code, error) = daemon_with_config("retention = \"1h\"\nmax-events = -1\n", &[], &[]);
    assert_eq!(code, 1, "{error}");
    assert!(
        error.contains(".toml:2: `max-events`: invalid value '-1'"),
        "{error}"
    );
    assert!(!error.contains("serving the API"), "{error}");
}

#[test]
fn the_packaged_config_file_names_every_setting_with_its_true_default() {
    let template = include_str!("../../packaging/netspy.toml");
    // `# key = value` lines: every setting, commented out.
    let commented: BTreeMap<&str, &str> = template
        .lines()
        .filter_map(|l| l.strip_prefix("# ")?.split_once(" = "))
        .filter(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    let (code, printout) = daemon_with_config("", &[], &["--print-config"]);
    assert_eq!(code, 0, "{printout}");
    let mut settings = BTreeMap::new();
    for line in printout.lines() {
        if let Some((key, value)) = line
            .strip_suffix("  # default")
            .and_then(|l| l.split_once(" = "))
        {
            settings.insert(key, Some(value));
        } else if let Some(key) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            settings.insert(key, None);
        }
    }
    assert_eq!(
        commented.keys().collect::<Vec<_>>(),
        settings.keys().collect::<Vec<_>>(),
        "packaging/netspy.toml and the daemon's settings differ"
    );
    for (key, default) in settings {
        if let Some(default) = default {
            assert_eq!(commented[key], default, "{key}");
        }
    }
}

/// `--unit` keeps the events of processes in that unit's cgroup only.
#[test]
fn trace_by_unit_shows_only_that_unit_s_processes() {
    let unit = format!("nsq-tr-{}.service", std::process::id());
    let service = common::cgroup::TestCgroup::new(&unit);
    let mut trace = Trace::start(&["--json", "--unit", &unit]);
    let (inside, outside) = (
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let (port_in, port_out) = (
        inside.local_addr().unwrap().port(),
        outside.local_addr().unwrap().port(),
    );
    let line = trace.line_after(
        || {
            // This test's own connect (not in the unit), then one from inside it.
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.connect(("127.0.0.1", port_out)).unwrap();
            service.python(&format!(
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.connect(('127.0.0.1', {port_in}))"
            ));
        },
        |l| {
            // Whatever comes out is the unit's: never this test's own connects.
            assert!(!l.contains(&format!("\"port\":{port_out}")), "{l}");
            l.contains(&format!("\"port\":{port_in}"))
        },
    );
    assert!(line.contains("\"type\":\"connection\""), "{line}");
    // A last outside connect, after the probes are surely attached.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(("127.0.0.1", port_out)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let rest: Vec<String> = trace.lines.try_iter().collect();
    assert!(
        rest.iter()
            .all(|l| !l.contains(&format!("\"port\":{port_out}"))),
        "{rest:?}"
    );
    let (status, stderr) = trace.stop();
    assert!(status.success(), "exit {status}, stderr:\n{stderr}");
    drop(service);
}
