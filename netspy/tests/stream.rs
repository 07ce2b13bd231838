//! The live event stream of a real daemon (`GET /api/stream`): events as the lists give
//! them, resumed after `Last-Event-ID`, capped, told what it missed when it fell behind the
//! history; and `netspy trace --server` following it as an unprivileged user.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    io::{BufRead, BufReader, Read as _, Write as _},
    net::TcpStream,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{
    KillOnDrop, bash, closed_tcp_port,
    daemon::{DaemonProcess, client},
};
use serde_json::Value;

/// `n` refused connects from a bash named `name` (bash's `/dev/tcp` connects itself).
fn refused_connects(name: &str, n: usize) {
    let port = closed_tcp_port();
    bash(&format!(
        "printf {name} > /proc/self/comm; for i in $(seq {n}); do {{ : <>/dev/tcp/127.0.0.1/{port}; }} 2>/dev/null; done; true"
    ));
}

/// An SSE event: (event, id, data).
type Sse = (String, String, Value);

/// An open stream: its events arrive on `rx`; dropping it closes the connection.
#[derive(Debug)]
struct Follower {
    rx: mpsc::Receiver<Sse>,
    socket: TcpStream,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// Opens `/api/stream?<query>` (with `Last-Event-ID` when given) over a plain socket, so
/// that the test can close it when it likes; an answer other than 200 is its status and
/// JSON body. (Each SSE event is one HTTP chunk: its lines are read between the chunk-size
/// lines.)
fn open(address: &str, query: &str, last_id: Option<&str>) -> Result<Follower, (u16, Value)> {
    let mut socket = TcpStream::connect(address).unwrap();
    let last_id = last_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
    write!(
        socket,
        "GET /api/stream?{query} HTTP/1.1\r\nhost: localhost\r\n{last_id}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push(line.trim_end().to_owned());
    }
    let status: u16 = head[0].split(' ').nth(1).unwrap().parse().unwrap();
    if status != 200 {
        let length: usize = head
            .iter()
            .find_map(|h| {
                h.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .unwrap()
            .parse()
            .unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        return Err((status, serde_json::from_slice(&body).unwrap()));
    }
    assert!(
        head.iter().any(|h| h == "content-type: text/event-stream"),
        "{head:?}"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut event, mut id) = (String::new(), String::new());
        for line in reader.lines().map_while(Result::ok) {
            if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_owned();
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                let data = serde_json::from_str(v).unwrap();
                if tx.send((event.clone(), id.clone(), data)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(Follower { rx, socket })
}

/// The next `n` events, waiting up to 20 s.
fn take(follower: &Follower, n: usize) -> Vec<Sse> {
    let rx = &follower.rx;
    let deadline = Instant::now() + Duration::from_secs(20);
    (0..n)
        .map(|i| {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("only {i} of {n} events came"))
        })
        .collect()
}

#[test]
fn a_stream_follows_resumes_and_is_capped() {
    let daemon = DaemonProcess::start(&["--max-streams", "3"]);
    daemon.wait_ready();
    let url = daemon.url();
    let address = daemon.address.clone();
    let live = open(&address, "command=nsp-stream&type=connection", None).unwrap();
    refused_connects("nsp-stream", 3);
    let events = take(&live, 3);
    for (event, _, data) in &events {
        assert_eq!(event, "connection");
        assert_eq!(data["command"], "nsp-stream");
        assert_eq!(data["type"], "connection");
        // Sent a second after they happen: with their result.
        assert_eq!(data["outcome"], "refused", "{data}");
        assert_eq!(data["error"], "ECONNREFUSED");
    }

    // Resumed after the first: the other two, the same JSON.
    let resumed = open(
        &address,
        "command=nsp-stream&type=connection",
        Some(&events[0].1),
    )
    .unwrap();
    let again = take(&resumed, 2);
    assert_eq!(again[0].2, events[1].2);
    assert_eq!(again[1].2, events[2].2);

    // A cursor of another daemon run (a client coming back after a restart): from the
    // oldest record this run holds, so the same three.
    let restarted = open(
        &address,
        "command=nsp-stream&type=connection",
        Some("7-99999999-99999999-99999999"),
    )
    .unwrap();
    let replay = take(&restarted, 3);
    assert_eq!(
        replay.iter().map(|e| &e.2).collect::<Vec<_>>(),
        events.iter().map(|e| &e.2).collect::<Vec<_>>()
    );

    // Three open: a fourth is refused, in words.
    let (status, body) = open(&address, "", None).unwrap_err();
    assert_eq!(status, 503);
    assert!(
        body["error"].as_str().unwrap().contains("--max-streams"),
        "{body}"
    );
    // Bad filters and ids are the client's mistake.
    assert_eq!(open(&address, "command=", None).unwrap_err().0, 400);
    assert_eq!(open(&address, "", Some("yesterday")).unwrap_err().0, 400);
    assert_eq!(open(&address, "", Some("1-2")).unwrap_err().0, 400);

    // Closed streams give their places back (the daemon notices at its next write: the
    // keep-alive comment, every 15 s on a quiet stream).
    drop((live, resumed, restarted));
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let metrics = client()
            .get(format!("{url}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if metrics.contains("netspy_streams_open 0\n") {
            assert!(
                metrics.contains("netspy_streams_refused_total 1\n"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "streams still open:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_stream_behind_the_history_is_told_what_it_missed() {
    let daemon = DaemonProcess::start(&["--max-events", "10"]);
    daemon.wait_ready();
    // This run's id, from a first event; then a cursor of this run at its very first record.
    let first = open(&daemon.address, "command=nsp-behind&type=connection", None).unwrap();
    // With ten records of history, other tests' traffic may evict records before this
    // stream's first step: `missed` notices, which carry no id, come instead, and the
    // connect itself may be among them. Connect again until one is streamed (bounded).
    let mut attempts = 0;
    let id = 'streamed: loop {
        attempts += 1;
        assert!(
            attempts <= 5,
            "no connect of nsp-behind streamed in {attempts} tries"
        );
        refused_connects("nsp-behind", 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok((_, id, _)) = first
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if !id.is_empty() {
                break 'streamed id;
            }
        }
    };
    drop(first);
    let run = id.split('-').next().unwrap().to_owned();
    refused_connects("nsp-behind", 30);
    // Wait for the last of them to be stored, then follow from the very first record.
    std::thread::sleep(Duration::from_millis(1500));
    let rx = open(
        &daemon.address,
        "command=nsp-behind&type=connection",
        Some(&format!("{run}-0-0-0")),
    )
    .unwrap();
    let (event, _, data) = take(&rx, 1).remove(0);
    assert_eq!(event, "missed");
    assert_eq!(data["type"], "connection");
    assert!(data["missed"].as_u64().unwrap() >= 20, "{data}");
    // Then only what it asked for: more of the same notice if the history moves on faster
    // than it reads (other tests' traffic), or what the history still holds.
    while let Ok((event, _, data)) = rx.rx.recv_timeout(Duration::from_secs(3)) {
        match event.as_str() {
            "missed" => assert_eq!(data["type"], "connection"),
            _ => assert_eq!(data["command"], "nsp-behind", "{event} {data}"),
        }
    }
}

#[test]
fn trace_follows_a_daemon_without_privileges() {
    let daemon = DaemonProcess::start(&[]);
    daemon.wait_ready();
    let mut trace = KillOnDrop(
        // As nobody, with no groups (util-linux's setpriv).
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_netspy"))
            .args(["trace", "--server", &daemon.url(), "--process", "nsp-tr*"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = trace.0.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Once it follows, the traffic it should print.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client()
        .get(format!("{}/metrics", daemon.url()))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .contains("netspy_streams_open 1\n")
    {
        assert!(Instant::now() < deadline, "trace --server never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    refused_connects("nsp-traced", 1);
    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("trace --server printed nothing");
    let rest = line.split_once(' ').unwrap().1;
    assert!(
        rest.starts_with("nsp-traced(") && rest.contains(") "),
        "{line}"
    );
    let line = if line.contains(" drop ") {
        lines.recv_timeout(Duration::from_secs(20)).unwrap()
    } else {
        line
    };
    assert!(
        line.contains(" connect TCP 127.0.0.1:") && line.ends_with("ms"),
        "{line}"
    );
    assert!(
        line.contains("ECONNREFUSED refused (ECONNREFUSED)"),
        "{line}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(trace.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = stderr_at_exit(&mut trace.0);
    assert!(output.contains("netspy trace: printed"), "{output}");
}

/// A child's stderr, once it has exited successfully (its stdout is read elsewhere).
fn stderr_at_exit(child: &mut std::process::Child) -> String {
    use std::io::Read as _;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exited {status}: {stderr}");
    stderr
}
