//! What is attached while the workloads run: nothing, the netspy daemon (the release binary,
//! as users run it), or bpftrace on the same tracepoints with empty or counting programs.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt as _,
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
    /// `netspy daemon` of another build (`NETSPY_BENCH_BASELINE=path/to/netspy`), to compare
    /// two builds side by side in one run.
    Baseline,
    /// bpftrace, empty programs on netspy's tracepoints.
    BpftraceEmpty,
    /// bpftrace, a counting map update per event on the same tracepoints.
    BpftraceCounting,
}

impl Kind {
    /// Every tracer of this run, in report order (the baseline build only when given).
    pub fn compared() -> Vec<Self> {
        let mut kinds = vec![Self::Nothing, Self::Netspy];
        if baseline_binary().is_some() {
            kinds.push(Self::Baseline);
        }
        kinds.extend([Self::BpftraceEmpty, Self::BpftraceCounting]);
        kinds
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nothing => "nothing",
            Self::Netspy => "netspy daemon",
            Self::Baseline => "netspy daemon, baseline build",
            Self::BpftraceEmpty => "bpftrace, empty programs",
            Self::BpftraceCounting => "bpftrace, `count()` per event",
        }
    }
}

/// The other netspy build to compare, from `NETSPY_BENCH_BASELINE`.
fn baseline_binary() -> Option<String> {
    std::env::var("NETSPY_BENCH_BASELINE")
        .ok()
        .filter(|p| !p.is_empty())
}

/// netspy's tracepoints, as bpftrace names them.
const TRACEPOINTS: [&str; 9] = [
    "syscalls:sys_enter_connect",
    "syscalls:sys_exit_connect",
    "syscalls:sys_exit_socket",
    "syscalls:sys_enter_bind",
    "syscalls:sys_exit_accept4",
    "syscalls:sys_exit_accept",
    "sock:inet_sock_set_state",
    "skb:kfree_skb",
    "tcp:tcp_retransmit_skb",
];

/// The counting programs: the map update bpftrace users write first.
fn counting_body(tracepoint: &str) -> &'static str {
    match tracepoint {
        "syscalls:sys_enter_connect" | "syscalls:sys_enter_bind" => "@c[comm] = count();",
        "sock:inet_sock_set_state" => "@t[args->newstate] = count();",
        "skb:kfree_skb" => "@d[args->reason] = count();",
        "tcp:tcp_retransmit_skb" => "@s[args->state] = count();",
        _ => "@r[args->ret] = count();",
    }
}

/// Runs `command` on every CPU but the workloads' (when there are others), so that the
/// tracer's own work does not land in the measured thread's time.
fn off_the_workload_cpu(command: &mut Command) -> &mut Command {
    let cpus = crate::workloads::cpus();
    if cpus > 1 {
        let workload = crate::workloads::workload_cpu();
        // SAFETY: between fork and exec the closure only makes one system call.
        unsafe {
            command
                .pre_exec(move || crate::workloads::pin((0..cpus).filter(|&cpu| cpu != workload)));
        }
    }
    command
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
    /// Starts `kind` (netspy with `args`) and waits until it is attached.
    pub fn start(kind: Kind, args: &[&str]) -> Self {
        let started = Instant::now();
        match kind {
            Kind::Nothing => Self {
                child: None,
                url: None,
                startup: Duration::ZERO,
            },
            Kind::Netspy | Kind::Baseline => {
                let binary = match kind {
                    Kind::Baseline => baseline_binary().expect("NETSPY_BENCH_BASELINE"),
                    _ => env!("CARGO_BIN_EXE_netspy").to_owned(),
                };
                let mut child = off_the_workload_cpu(
                    Command::new(binary)
                        .args(["daemon", "--listen", "127.0.0.1:0"])
                        .args(args)
                        .stderr(Stdio::piped()),
                )
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
                Self::bpftrace(&script)
            }
        }
    }

    /// Starts bpftrace with `script` and waits until it is attached.
    pub fn bpftrace(script: &str) -> Self {
        let started = Instant::now();
        let mut child = off_the_workload_cpu(
            Command::new("bpftrace")
                .args(["-e", script])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
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

    /// The daemon's `/health`.
    pub fn health(&self) -> Value {
        self.url
            .as_ref()
            .and_then(|url| get(&format!("{url}/health")))
            .unwrap_or(Value::Null)
    }

    /// The daemon's resident memory now, in MiB: (heap and other private memory, mapped
    /// files: its executable and the kernel's ring buffers), from /proc/PID/status.
    pub fn resident_mib(&self) -> (f64, f64) {
        let pid = self.child.as_ref().expect("a daemon").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("RssAnon:") / 1024.0, kib("RssFile:") / 1024.0)
    }

    /// The daemon's ingest lag histogram now.
    pub fn lag(&self) -> Lag {
        let url = self.url.as_ref().expect("a daemon");
        let text = client()
            .get(format!("{url}/metrics"))
            .send()
            .and_then(reqwest::blocking::Response::text)
            .unwrap_or_default();
        Lag::parse(&text)
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

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        netspy::tls::install_provider();
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    })
}

/// GET `url`: the JSON body of a 200, else None.
pub fn get(url: &str) -> Option<Value> {
    let response = client().get(url).send().ok()?;
    (response.status() == 200).then(|| response.json().ok())?
}

/// `netspy_ingest_lag_seconds` as `/metrics` renders it: cumulative bucket counts by upper
/// bound, the sum and the count.
#[derive(Clone, Debug, Default)]
pub struct Lag {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Lag {
    fn parse(metrics: &str) -> Self {
        let mut lag = Self::default();
        for line in metrics.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            if let Some(bound) = series
                .strip_prefix("netspy_ingest_lag_seconds_bucket{le=\"")
                .and_then(|rest| rest.strip_suffix("\"}"))
            {
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().unwrap()
                };
                lag.buckets.push((bound, value.parse().unwrap()));
            } else if series == "netspy_ingest_lag_seconds_sum" {
                lag.sum = value.parse().unwrap();
            } else if series == "netspy_ingest_lag_seconds_count" {
                lag.count = value.parse().unwrap();
            }
        }
        lag
    }

    /// What was observed after `before`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            buckets: self
                .buckets
                .iter()
                .zip(&before.buckets)
                .map(|((bound, now), (_, then))| (*bound, now - then))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// Mean lag in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        self.sum / self.count.max(1) as f64 * 1000.0
    }

    /// "≤ N ms": the upper bound of the bucket holding the 99th percentile.
    pub fn p99_bound(&self) -> String {
        let want = (self.count as f64 * 0.99).ceil() as u64;
        match self
            .buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= want)
        {
            Some((bound, _)) if bound.is_finite() => format!("≤ {:.0} ms", bound * 1000.0),
            _ => "> 5 s".to_owned(),
        }
    }
}
