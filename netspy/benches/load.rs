//! The daemon under load: a steady 200k UDP connects a second of ingest while 1000 HTTP
//! clients (500 on the connection summary, 500 on a 100-event list) ask, on the same 2 cores,
//! twice for 30 s each:
//! - saturated: wrk's closed loop, every client asking again the moment it is answered, so
//!   the latency is that of the queue the clients build themselves (Little's law: clients /
//!   answers per second); this run measures how many answers the daemon gives at most and
//!   that it sheds rather than stalls;
//! - paced: each client asks once a second on its own schedule (1000 requests/s in all,
//!   latency counted from the scheduled time, so a late answer also delays nobody's count),
//!   the way a fleet of dashboards and assistants asks; this run measures the latency users
//!   see.
//!
//! Reports what the kernel lost, each route's latency (p50, p99), errors, and the requests
//! shed with 503 (the query gate).
//!
//! Needs root and wrk (`cargo xtask bench` installs it); bounded in time and count, on
//! loopback only. `cargo bench -p netspy --bench load`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark prints its report and stops on a broken set-up"
)]

use std::{
    io::{BufRead, BufReader},
    net::UdpSocket,
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

const SECONDS: u64 = 30;
const CONNECTS_PER_SECOND: u64 = 200_000;
const CLIENTS_PER_ROUTE: u32 = 500;
/// Requests a second each client makes in the paced run.
const PACED_PER_SECOND: u32 = 1;

fn main() {
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_netspy"))
        .args(["daemon", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("netspy daemon (run as root)");
    let mut lines = BufReader::new(daemon.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the daemon said where it serves")
            .unwrap();
        if let Some(rest) = line.split("serving the API on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let url = format!("http://{address}");
    let started = Instant::now();
    while get(&format!("{url}/health")).is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let summary_url = format!("{url}{SUMMARY}");
    let list_url = format!("{url}{LIST}");
    let saturated = under_ingest(&url, || {
        std::thread::scope(|scope| {
            let summary = scope.spawn(|| run_wrk(&summary_url));
            let list = scope.spawn(|| run_wrk(&list_url));
            (summary.join().unwrap(), list.join().unwrap())
        })
    });
    let paced = under_ingest(&url, || run_paced(&summary_url, &list_url));
    let _ = Command::new("kill")
        .args(["-INT", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();

    println!(
        "### Under load\n\nEach run: UDP connects paced at {}k/s for {SECONDS} s while {} \
         HTTP clients ask, half for the connection summary (`{SUMMARY}`), half for a list \
         (`{LIST}`), all on this machine's CPUs beside the daemon (default limits: as many \
         queries at once as CPUs, 64 waiting, 10 s deadline). The store holds its default \
         million events, all inside the 60 s window.\n",
        CONNECTS_PER_SECOND / 1000,
        2 * CLIENTS_PER_ROUTE,
    );
    let (run, (summary, list)) = &saturated;
    println!(
        "**Saturated** (wrk, closed loop: each client asks again as soon as it is answered; \
         the latency is the clients' own queue, about clients / answers per second):\n\n\
         | route | requests/s | p50 | p99 | answered 200 | shed (503) | other errors |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (route, wrk) in [("connection summary", summary), ("list 100", list)] {
        println!(
            "| {route} | {:.0} | {} | {} | {} | {} | {} |",
            wrk.rate, wrk.p50, wrk.p99, wrk.ok, wrk.non_2xx, wrk.errors
        );
    }
    println!("\n{run}\n");
    let (run, (summary, list)) = &paced;
    println!(
        "**Paced** ({PACED_PER_SECOND} request(s) a second per client, {} a second in all, \
         latency from each request's scheduled time to its answer's last byte):\n\n\
         | route | requests | answered 200: p50 | p99 | max | shed (503) | shed p99 | other errors |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |",
        2 * CLIENTS_PER_ROUTE * PACED_PER_SECOND
    );
    for (route, answers) in [("connection summary", summary), ("list 100", list)] {
        println!("| {route} | {answers} |");
    }
    println!("\n{run}");
}

const SUMMARY: &str = "/api/connection-summary?duration_seconds=60";
const LIST: &str = "/api/list-connections?limit=100&duration_seconds=60";

/// What the daemon counted during one run.
struct RunCounts {
    made: u64,
    received: u64,
    lost: u64,
    shed_queue_full: f64,
    shed_deadline: f64,
}

impl std::fmt::Display for RunCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Daemon: {} connects made ({:.0}k/s), {} connect events received, {} lost in the \
             kernel; queries shed: {} with the queue full, {} past their deadline.",
            self.made,
            self.made as f64 / SECONDS as f64 / 1000.0,
            self.received,
            self.lost,
            self.shed_queue_full,
            self.shed_deadline
        )
    }
}

/// Runs `clients` while connects are made at `CONNECTS_PER_SECOND`, and counts what the
/// daemon received, lost and shed meanwhile.
fn under_ingest<T: Send>(url: &str, clients: impl FnOnce() -> T + Send) -> (RunCounts, T) {
    let before = get(&format!("{url}/health")).unwrap();
    let metrics_before = text_of(&format!("{url}/metrics"));
    let stop = AtomicBool::new(false);
    let made = AtomicU64::new(0);
    let answers = std::thread::scope(|scope| {
        scope.spawn(|| connect_steadily(&stop, &made));
        let answers = clients();
        stop.store(true, Ordering::Relaxed);
        answers
    });
    std::thread::sleep(Duration::from_secs(1));
    let after = get(&format!("{url}/health")).unwrap();
    let metrics_after = text_of(&format!("{url}/metrics"));
    let delta = |path: &str| counter(&after, path) - counter(&before, path);
    let shed = |reason: &str| shed(&metrics_after, reason) - shed(&metrics_before, reason);
    let counts = RunCounts {
        made: made.load(Ordering::Relaxed),
        received: delta("/events/received/connection"),
        lost: delta("/events/lost_in_kernel/connection"),
        shed_queue_full: shed("queue_full"),
        shed_deadline: shed("deadline"),
    };
    (counts, answers)
}

/// Requests shed for `reason`, from the daemon's metrics.
fn shed(metrics: &str, reason: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                r#"netspy_queries_shed_total{{reason="{reason}"}} "#
            ))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// UDP connects at `CONNECTS_PER_SECOND`, in batches of a millisecond, until `stop`.
fn connect_steadily(stop: &AtomicBool, made: &AtomicU64) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let per_ms = CONNECTS_PER_SECOND / 1000;
    let start = Instant::now();
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(SECONDS + 5) {
        for _ in 0..per_ms {
            socket.connect(target).unwrap();
        }
        made.fetch_add(per_ms, Ordering::Relaxed);
        tick += 1;
        let next = start + Duration::from_millis(tick);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// What wrk reported for one route.
struct WrkRun {
    rate: f64,
    p50: String,
    p99: String,
    ok: u64,
    non_2xx: u64,
    errors: u64,
}

fn run_wrk(url: &str) -> WrkRun {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CLIENTS_PER_ROUTE}"),
            &format!("-d{SECONDS}s"),
        ])
        .args(["--timeout", "15s", "--latency", url])
        .output()
        .expect("wrk (cargo xtask bench installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
    };
    let number = |prefix: &str| field(prefix).and_then(|v| v.parse::<f64>().ok());
    let total = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let non_2xx = number("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    let errors = field("Socket errors:").map_or(0, |e| {
        e.split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    });
    WrkRun {
        rate: number("Requests/sec:").unwrap_or(0.0),
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        ok: total - non_2xx,
        non_2xx,
        errors,
    }
}

/// One route's answers in the paced run.
#[derive(Default)]
struct Paced {
    answered: Vec<Duration>,
    shed: Vec<Duration>,
    errors: u64,
}

impl std::fmt::Display for Paced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn at(sorted: &[Duration], share: f64) -> String {
            let Some(last) = sorted.len().checked_sub(1) else {
                return "-".into();
            };
            let index = ((sorted.len() as f64 * share) as usize).min(last);
            format!("{:.1} ms", sorted[index].as_secs_f64() * 1000.0)
        }
        let (mut answered, mut shed) = (self.answered.clone(), self.shed.clone());
        answered.sort_unstable();
        shed.sort_unstable();
        write!(
            f,
            "{} | {} | {} | {} | {} | {} | {}",
            answered.len() + shed.len() + self.errors as usize,
            at(&answered, 0.5),
            at(&answered, 0.99),
            at(&answered, 1.0),
            shed.len(),
            at(&shed, 0.99),
            self.errors
        )
    }
}

/// `CLIENTS_PER_ROUTE` clients on each URL, each asking `PACED_PER_SECOND` times a second
/// for `SECONDS` on its own schedule (staggered evenly), one request at a time on its own
/// connection; a latency runs from the scheduled time.
fn run_paced(summary: &str, list: &str) -> (Paced, Paced) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let every = Duration::from_secs(1) / PACED_PER_SECOND;
    let clients = 2 * CLIENTS_PER_ROUTE;
    runtime.block_on(async {
        let start = tokio::time::Instant::now() + Duration::from_millis(100);
        let end = start + Duration::from_secs(SECONDS);
        let mut tasks = tokio::task::JoinSet::new();
        for number in 0..clients {
            let url = if number % 2 == 0 { summary } else { list }.to_owned();
            let http = http.clone();
            let first = start + every * number / clients;
            tasks.spawn(async move {
                let mut paced = Paced::default();
                let mut due = first;
                while due < end {
                    tokio::time::sleep_until(due).await;
                    // The whole answer is read: the latency is until its last byte, and
                    // the connection is kept for the next request.
                    let status = match http.get(&url).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            response.bytes().await.map(|_| status)
                        }
                        Err(e) => Err(e),
                    };
                    let latency = due.elapsed();
                    match status {
                        Ok(200) => paced.answered.push(latency),
                        Ok(503) => paced.shed.push(latency),
                        _ => paced.errors += 1,
                    }
                    due += every;
                }
                (number % 2 == 0, paced)
            });
        }
        let (mut summary, mut list) = (Paced::default(), Paced::default());
        while let Some(done) = tasks.join_next().await {
            let (is_summary, paced) = done.unwrap();
            let into = if is_summary { &mut summary } else { &mut list };
            into.answered.extend(paced.answered);
            into.shed.extend(paced.shed);
            into.errors += paced.errors;
        }
        (summary, list)
    })
}

fn counter(health: &Value, path: &str) -> u64 {
    health.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        netspy::tls::install_provider();
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    })
}

fn get(url: &str) -> Option<Value> {
    let response = client().get(url).send().ok()?;
    (response.status() == 200).then(|| response.json().ok())?
}

fn text_of(url: &str) -> String {
    client()
        .get(url)
        .send()
        .and_then(reqwest::blocking::Response::text)
        .unwrap_or_default()
}
