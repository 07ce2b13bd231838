//! What netspy costs the traced syscalls, beside what bpftrace costs on the same tracepoints,
//! measured in one run (absolute times on a shared 2-core machine drift by 2x between runs;
//! side-by-side differences and ratios do not):
//! - each workload (UDP connect, TCP connect + accept, socket + close, a dropped datagram)
//!   with nothing, the netspy daemon, bpftrace empty programs and bpftrace counting programs
//!   attached, in alternating rounds, medians;
//! - netspy's per-program cost from `kernel.bpf_stats_enabled`;
//! - one process making connects back to back, and a drop storm: what arrives, what is lost;
//! - the daemon's time from start to ready.
//!
//! Needs root, bpftrace and bpftool (`cargo xtask bench` installs them and writes the report
//! into BENCHMARKS.md); `cargo bench -p netspy --bench overhead` prints it.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark prints its report and stops on a broken set-up"
)]

mod tracers;
mod workloads;

use std::{
    fmt::Write as _,
    net::UdpSocket,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracers::{Kind, Running};
use workloads::{Sockets, WORKLOADS};

const ROUNDS: usize = 5;
const BACK_TO_BACK: u32 = 1_000_000;
const DROP_STORM: u32 = 1_000_000;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn counter(health: &Value, path: &str) -> u64 {
    health.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

fn main() {
    let others = tracers::tracepoint_programs();
    assert!(
        others.is_empty(),
        "tracepoint programs are attached already (another netspy or tracer?): they would be \
         measured too. Stop them first: {:?}",
        others.iter().map(|p| &p["name"]).collect::<Vec<_>>()
    );
    let sockets = Sockets::new();
    let mut report = String::new();

    // Alternating rounds: [tracer][workload] -> samples.
    let mut samples = vec![vec![Vec::new(); WORKLOADS.len()]; Kind::ALL.len()];
    let mut startups = Vec::new();
    let (mut received, mut lost) = (0, 0);
    for _ in 0..ROUNDS {
        for (t, kind) in Kind::ALL.into_iter().enumerate() {
            let tracer = Running::start(kind);
            if kind == Kind::Netspy {
                startups.push(tracer.startup.as_secs_f64() * 1000.0);
            }
            for (w, workload) in WORKLOADS.iter().enumerate() {
                // A short warm-up: the tracer's own start-up work must not land in the sample.
                workload.warm_up(&sockets);
                samples[t][w].push(workload.measure(&sockets));
            }
            if kind == Kind::Netspy {
                std::thread::sleep(Duration::from_millis(300));
                let health = tracer.health();
                received += health["events"]["received"]
                    .as_object()
                    .map_or(0, |o| o.values().filter_map(Value::as_u64).sum::<u64>());
                lost += health["events"]["lost_in_kernel"]
                    .as_object()
                    .map_or(0, |o| o.values().filter_map(Value::as_u64).sum::<u64>());
            }
        }
    }
    let medians: Vec<Vec<f64>> = samples
        .into_iter()
        .map(|per_workload| per_workload.into_iter().map(median).collect())
        .collect();
    let _ = writeln!(
        report,
        "### Cost per traced call\n\nNanoseconds per call, median of {ROUNDS} alternating rounds; \
         the tracer columns say what it adds to the bare call.\n"
    );
    let names = Kind::ALL.map(Kind::name);
    let _ = writeln!(
        report,
        "| call | {} | netspy / bpftrace counting |",
        names.join(" | ")
    );
    let _ = writeln!(report, "|{}", " --- |".repeat(names.len() + 2));
    for (w, workload) in WORKLOADS.iter().enumerate() {
        let base = medians[0][w];
        let added = |t: usize| medians[t][w] - base;
        let _ = writeln!(
            report,
            "| {} | {base:.0} | +{:.0} | +{:.0} | +{:.0} | {:.2} |",
            workload.name,
            added(1),
            added(2),
            added(3),
            added(1) / added(3).max(1.0)
        );
    }
    let _ = writeln!(
        report,
        "\nnetspy received {received} events over the rounds, lost {lost} in the kernel.\n"
    );

    per_program_cost(&sockets, &mut report);
    back_to_back(&mut report);
    drop_storm(&mut report);
    let _ = writeln!(
        report,
        "### Start to ready\n\n`netspy daemon` from exec to `/health` 200 (probes attached): median \
         {:.0} ms of {ROUNDS} starts.",
        median(startups)
    );
    println!("{report}");
    if let Some(path) = std::env::var_os("NETSPY_BENCH_OUT") {
        std::fs::write(path, report).unwrap();
    }
}

/// netspy's programs, one workload at a time, with `kernel.bpf_stats_enabled`.
fn per_program_cost(sockets: &Sockets, report: &mut String) {
    let tracer = Running::start(Kind::Netspy);
    let _ = writeln!(
        report,
        "### netspy's programs\n\n`kernel.bpf_stats_enabled=1` (which itself adds some ns per \
         run), one workload at a time: nanoseconds of program time per run.\n"
    );
    let _ = writeln!(report, "| call | program | runs | ns per run |");
    let _ = writeln!(report, "| --- | --- | --- | --- |");
    for workload in &WORKLOADS {
        set_bpf_stats(true);
        let before = program_stats();
        workload.measure(sockets);
        let after = program_stats();
        set_bpf_stats(false);
        for (name, (runs, ns)) in after {
            let (runs0, ns0) = before.get(&name).copied().unwrap_or((0, 0));
            let runs = runs - runs0;
            // Programs another call touches once or twice (the sockets' own set-up) are noise.
            if runs * 10 < u64::from(workload.calls) {
                continue;
            }
            let _ = writeln!(
                report,
                "| {} | {name} | {runs} | {:.0} |",
                workload.name,
                (ns - ns0) as f64 / runs as f64
            );
        }
    }
    drop(tracer);
    report.push('\n');
}

/// Runs and run time per loaded tracepoint program, by name.
fn program_stats() -> std::collections::BTreeMap<String, (u64, u64)> {
    tracers::tracepoint_programs()
        .into_iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("?").to_owned(),
                (
                    p["run_cnt"].as_u64().unwrap_or(0),
                    p["run_time_ns"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

fn set_bpf_stats(on: bool) {
    let value = if on { "1" } else { "0" };
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", value).unwrap();
}

/// One thread connecting as fast as it can while the daemon runs on the other core.
fn back_to_back(report: &mut String) {
    let tracer = Running::start(Kind::Netspy);
    let before = tracer.health();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let start = Instant::now();
    for _ in 0..BACK_TO_BACK {
        socket.connect(target).unwrap();
    }
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let after = tracer.health();
    let delta = |path: &str| counter(&after, path) - counter(&before, path);
    let _ = writeln!(
        report,
        "### Back to back\n\n{BACK_TO_BACK} UDP connects from one thread in {:.2} s ({:.0}k/s): \
         {} received, {} lost in the kernel.\n",
        elapsed.as_secs_f64(),
        f64::from(BACK_TO_BACK) / elapsed.as_secs_f64() / 1000.0,
        delta("/events/received/connection"),
        delta("/events/lost_in_kernel/connection"),
    );
}

/// Datagrams to a closed port, each a NO_SOCKET drop, from one thread.
fn drop_storm(report: &mut String) {
    let tracer = Running::start(Kind::Netspy);
    let before = tracer.health();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let start = Instant::now();
    for _ in 0..DROP_STORM {
        let _ = socket.send_to(b"x", closed);
    }
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let after = tracer.health();
    let delta = |path: &str| counter(&after, path) - counter(&before, path);
    let _ = writeln!(
        report,
        "### Drop storm\n\n{DROP_STORM} datagrams to a closed port from one thread in {:.2} s \
         ({:.0}k drops/s): {} drop events received, {} lost in the kernel.\n",
        elapsed.as_secs_f64(),
        f64::from(DROP_STORM) / elapsed.as_secs_f64() / 1000.0,
        delta("/events/received/packet_drop"),
        delta("/events/lost_in_kernel/packet_drop"),
    );
}
