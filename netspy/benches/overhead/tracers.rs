//! What is attached while the workloads run: nothing, the netspy daemon (the release binary,
//! as users run it), or bpftrace on the same tracepoints with empty or counting programs.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

/// A tracer to compare.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No program attached.
    Nothing,
    /// `netspy daemon`.
    Netspy,
    /// bpftrace, empty programs on netspy's tracepoints.
    BpftraceEmpty,
    /// bpftrace, a counting map update per event on the same tracepoints.
    BpftraceCounting,
}

impl Kind {
    /// Every tracer, in report order.
    pub const ALL: [Self; 4] = [
        Self::Nothing,
        Self::Netspy,
        Self::BpftraceEmpty,
        Self::BpftraceCounting,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nothing => "nothing",
            Self::Netspy => "netspy daemon",
            Self::BpftraceEmpty => "bpftrace, empty programs",
            Self::BpftraceCounting => "bpftrace, `count()` per event",
        }
    }
}

/// netspy's tracepoints, as bpftrace names them.
const TRACEPOINTS: [&str; 8] = [
    "syscalls:sys_enter_connect",
    "syscalls:sys_exit_connect",
    "syscalls:sys_exit_socket",
    "syscalls:sys_enter_bind",
    "syscalls:sys_exit_accept4",
    "syscalls:sys_exit_accept",
    "sock:inet_sock_set_state",
    "skb:kfree_skb",
];

/// The counting programs: the map update bpftrace users write first.
fn counting_body(tracepoint: &str) -> &'static str {
    match tracepoint {
        "syscalls:sys_enter_connect" | "syscalls:sys_enter_bind" => "@c[comm] = count();",
        "sock:inet_sock_set_state" => "@t[args->newstate] = count();",
        "skb:kfree_skb" => "@d[args->reason] = count();",
        _ => "@r[args->ret] = count();",
    }
}

/// A running tracer, stopped when dropped (also when a step of the bench fails).
pub struct Running {
    child: Option<Child>,
    /// The daemon's API, for netspy.
    pub url: Option<String>,
    /// Start to ready.
    pub startup: Duration,
}

impl Running {
    /// Starts `kind` and waits until it is attached.
    pub fn start(kind: Kind) -> Self {
        let started = Instant::now();
        match kind {
            Kind::Nothing => Self {
                child: None,
                url: None,
                startup: Duration::ZERO,
            },
            Kind::Netspy => {
                let mut child = Command::new(env!("CARGO_BIN_EXE_netspy"))
                    .args(["daemon", "--listen", "127.0.0.1:0"])
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("netspy daemon (run as root)");
                let lines = lines(child.stderr.take().unwrap());
                let mut running = Self {
                    child: Some(child),
                    url: None,
                    startup: Duration::ZERO,
                };
                let address = loop {
                    let line = lines
                        .recv_timeout(Duration::from_secs(60))
                        .expect("the daemon never said where it serves");
                    if let Some(rest) = line.split("serving the API on http://").nth(1) {
                        break rest.split_whitespace().next().unwrap().to_owned();
                    }
                };
                let url = format!("http://{address}");
                while get(&format!("{url}/health")).is_none() {
                    assert!(started.elapsed() < Duration::from_secs(60), "never ready");
                    std::thread::sleep(Duration::from_millis(10));
                }
                running.url = Some(url);
                running.startup = started.elapsed();
                running
            }
            Kind::BpftraceEmpty | Kind::BpftraceCounting => {
                let script: String = TRACEPOINTS
                    .iter()
                    .map(|tp| {
                        let body = if kind == Kind::BpftraceEmpty {
                            ""
                        } else {
                            counting_body(tp)
                        };
                        format!("tracepoint:{tp} {{ {body} }}\n")
                    })
                    .collect();
                let mut child = Command::new("bpftrace")
                    .args(["-e", &script])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("bpftrace (cargo xtask bench installs it)");
                let lines = lines(child.stdout.take().unwrap());
                let mut running = Self {
                    child: Some(child),
                    url: None,
                    startup: Duration::ZERO,
                };
                loop {
                    let line = lines
                        .recv_timeout(Duration::from_secs(60))
                        .expect("bpftrace never attached");
                    if line.starts_with("Attaching") {
                        break;
                    }
                }
                // "Attaching" comes just before the attach itself.
                std::thread::sleep(Duration::from_millis(500));
                running.startup = started.elapsed();
                running
            }
        }
    }

    /// The daemon's `/health`.
    pub fn health(&self) -> Value {
        self.url
            .as_ref()
            .and_then(|url| get(&format!("{url}/health")))
            .unwrap_or(Value::Null)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = child.wait();
        }
    }
}

/// A stream's lines on a channel (drained in a thread, so the child never blocks on it).
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// GET `url`: the JSON body of a 200, else None.
pub fn get(url: &str) -> Option<Value> {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        netspy::tls::install_provider();
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    });
    let response = client.get(url).send().ok()?;
    (response.status() == 200).then(|| response.json().ok())?
}

/// Tracepoint programs loaded now (any tracer's), by `bpftool prog show`.
pub fn tracepoint_programs() -> Vec<Value> {
    let output = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .expect("bpftool (cargo xtask bench installs it)");
    let all: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
    all.into_iter()
        .filter(|p| p["type"] == "tracepoint" || p["type"] == "raw_tracepoint")
        .collect()
}
