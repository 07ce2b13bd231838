//! The daemon under load: a steady 200k UDP connects a second of ingest while 1000 HTTP
//! clients (wrk, 500 on the connection summary and 500 on a 100-event list) ask as fast as
//! they can for 30 s, on the same 2 cores. Reports what the kernel lost, each route's
//! latency (p50, p99), errors, and the requests shed with 503 (the query gate).
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
    let before = get(&format!("{url}/health")).unwrap();

    let stop = AtomicBool::new(false);
    let made = AtomicU64::new(0);
    let (summary, list) = std::thread::scope(|scope| {
        scope.spawn(|| connect_steadily(&stop, &made));
        let wrk = |path: &str| {
            let url = format!("{url}{path}");
            scope.spawn(move || run_wrk(&url))
        };
        let summary = wrk("/api/connection-summary?duration_seconds=60");
        let list = wrk("/api/list-connections?limit=100&duration_seconds=60");
        let answers = (summary.join().unwrap(), list.join().unwrap());
        stop.store(true, Ordering::Relaxed);
        answers
    });
    std::thread::sleep(Duration::from_secs(1));
    let after = get(&format!("{url}/health")).unwrap();
    let metrics = text_of(&format!("{url}/metrics"));
    let _ = Command::new("kill")
        .args(["-INT", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();

    let delta = |path: &str| counter(&after, path) - counter(&before, path);
    let shed = |reason: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    r#"netspy_queries_shed_total{{reason="{reason}"}} "#
                ))
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    println!(
        "### Under load\n\nFor {SECONDS} s: UDP connects paced at {}k/s ({} made, {:.0}k/s \
         achieved) while wrk runs {CLIENTS_PER_ROUTE} connections on each route (2 threads \
         each), all on this machine's CPUs beside the daemon (default limits: as many \
         queries at once as CPUs, 64 waiting, 10 s deadline).\n\n\
         | route | requests/s | p50 | p99 | answered 200 | shed (503) | other errors |\n\
         | --- | --- | --- | --- | --- | --- | --- |",
        CONNECTS_PER_SECOND / 1000,
        made.load(Ordering::Relaxed),
        made.load(Ordering::Relaxed) as f64 / SECONDS as f64 / 1000.0,
    );
    for (route, run) in [
        ("connection summary (60 s)", &summary),
        ("list 100 (60 s)", &list),
    ] {
        println!(
            "| {route} | {:.0} | {} | {} | {} | {} | {} |",
            run.rate, run.p50, run.p99, run.ok, run.non_2xx, run.errors
        );
    }
    println!(
        "\nDaemon: {} connect events received, {} lost in the kernel; queries shed: {} with \
         the queue full, {} past their deadline.",
        delta("/events/received/connection"),
        delta("/events/lost_in_kernel/connection"),
        shed("queue_full"),
        shed("deadline"),
    );
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
