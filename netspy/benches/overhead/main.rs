//! What netspy costs the traced syscalls, beside what bpftrace costs on the same tracepoints,
//! measured in one run (absolute times on a shared 2-core machine drift by 2x between runs;
//! side-by-side differences and ratios do not):
//! - each workload (UDP connect, TCP connect + accept, socket + close, a dropped datagram)
//!   with nothing, the netspy daemon, bpftrace empty programs and bpftrace counting programs
//!   attached, in alternating rounds, medians;
//! - netspy's per-program cost from `kernel.bpf_stats_enabled`;
//! - what watching TCP retransmissions costs per resend, and what netspy counted of them;
//! - each ring wakeup policy: program cost and delivery latency;
//! - one process making connects back to back, and a drop storm: what arrives, what is lost;
//! - the daemon's time from start to ready;
//! - what watching host-name lookups (uprobes on `getaddrinfo`) costs the process.
//!
//! Needs root, bpftrace and bpftool (`cargo xtask bench` installs them and writes the report
//! into BENCHMARKS.md); `cargo bench -p netspy --bench overhead` prints it, and
//! `cargo bench -p netspy --bench overhead -- retransmits` only the sections named.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark prints its report and stops on a broken set-up"
)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod lookups;
mod retransmits;
mod stats;
mod tracers;
mod workloads;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::UdpSocket,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracers::{Kind, Running};
use workloads::{Sockets, WORKLOADS};

const ROUNDS: usize = 7;

/// Alternating rounds of the program-time measurement.
const PROGRAM_ROUNDS: usize = 5;
const BACK_TO_BACK: u32 = 1_000_000;
const DROP_STORM: u32 = 1_000_000;
/// Threads sending the drop storm, one per CPU of these machines.
const SENDERS: usize = 2;

/// netspy's added cost over bpftrace counting's, as the report writes it. A difference
/// below zero is the noise of this machine, not a saving.
fn ratio(netspy: f64, counting: f64) -> String {
    if netspy > 0.0 && counting > 0.0 {
        format!("{:.2}", netspy / counting)
    } else {
        "within noise".to_owned()
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The CPUs the wall-clock rounds run the workload on: the first and the last.
fn measured_cpus() -> Vec<usize> {
    let last = workloads::cpus() - 1;
    if last == 0 { vec![0] } else { vec![0, last] }
}

fn counter(health: &Value, path: &str) -> u64 {
    health.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

/// One part of the report, written into it.
type Section<'a> = dyn Fn(&mut String) + 'a;

fn main() {
    let others = stats::tracepoint_programs();
    assert!(
        others.is_empty(),
        "tracing programs are attached already (another netspy or tracer?): they would be \
         measured too. Stop them first: {:?}",
        others.iter().map(|p| &p["name"]).collect::<Vec<_>>()
    );
    // The measured thread on one CPU, tracers on the others (see tracers.rs): migrations and
    // the daemon's own work stay out of the samples.
    workloads::run_on(workloads::cpus() - 1).expect("pinning the workload thread");
    let sockets = Sockets::new();
    let mut report = String::new();
    let sections: [(&str, &Section); 7] = [
        ("side_by_side", &|r| side_by_side(&sockets, r)),
        ("per_program_cost", &|r| per_program_cost(&sockets, r)),
        ("retransmits", &retransmits::retransmits),
        ("lookups", &lookups::lookups),
        ("wakeup_policies", &wakeup_policies),
        ("back_to_back", &back_to_back),
        ("drop_storm", &drop_storm),
    ];
    // `cargo bench --bench overhead -- <section>...` runs only those (cargo's own `--bench`
    // flag aside); `cargo xtask bench` runs them all.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for (name, section) in sections {
        if only.is_empty() || only.iter().any(|o| o == name) {
            section(&mut report);
        }
    }
    println!("{report}");
}

/// Every workload under every tracer, in alternating rounds, on the first and on the last
/// CPU in turn (the tracers on the others); the daemon's start-up time.
fn side_by_side(sockets: &Sockets, report: &mut String) {
    let kinds = Kind::compared();
    let cpus = measured_cpus();
    // [cpu][tracer][workload] -> samples.
    let mut samples = vec![vec![vec![Vec::new(); WORKLOADS.len()]; kinds.len()]; cpus.len()];
    let mut startups = Vec::new();
    let (mut received, mut lost) = (0, 0);
    for _ in 0..ROUNDS {
        for (c, &cpu) in cpus.iter().enumerate() {
            workloads::run_on(cpu).expect("pinning the workload thread");
            for (t, &kind) in kinds.iter().enumerate() {
                let tracer = Running::start(kind, &[]);
                if kind == Kind::Netspy {
                    startups.push(tracer.startup.as_secs_f64() * 1000.0);
                }
                for (w, workload) in WORKLOADS.iter().enumerate() {
                    // A short warm-up: the tracer's own start-up work must not land in the
                    // sample.
                    workload.warm_up(sockets);
                    samples[c][t][w].push(workload.best_of_three(sockets));
                }
                if kind == Kind::Netspy {
                    // The counts of this build only (a baseline build may name them otherwise).
                    std::thread::sleep(Duration::from_millis(300));
                    let health = tracer.health();
                    let sum = |counts: &Value| {
                        counts
                            .as_object()
                            .map_or(0, |o| o.values().filter_map(Value::as_u64).sum::<u64>())
                    };
                    received += sum(&health["events"]["received"]);
                    lost += sum(&health["events"]["lost_in_kernel"]);
                }
            }
        }
    }
    workloads::run_on(workloads::cpus() - 1).expect("pinning the workload thread");
    let _ = writeln!(
        report,
        "### Cost per traced call\n\nNanoseconds per call: the median over {ROUNDS} alternating \
         rounds of each round's best of three runs, the workload pinned to one CPU and the \
         tracers to the other; the tracer columns say what it adds to the bare call. The \
         rounds alternate the workload between the first and the last CPU, each reported on \
         its own row: on these machines the same tracer's added cost differs by up to 2x \
         between the two CPUs, and not by the same factor for every tracer. bpftrace attaches \
         the same tracepoints netspy can use (connect enter and exit, socket, bind, accept, \
         inet_sock_set_state, kfree_skb); its counting programs are `@[comm] = count()` on \
         syscall entries and `@[args->ret] = count()` on exits (`@[args->reason]` on \
         kfree_skb). The last column is netspy's added cost over bpftrace counting's: at most \
         1.0 means netspy delivers a full event for less than bpftrace's counting costs.\n"
    );
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        report,
        "| call | CPU | {} | netspy / bpftrace counting |",
        names.join(" | ")
    );
    let _ = writeln!(report, "|{}", " --- |".repeat(names.len() + 3));
    let column = |kind: Kind| kinds.iter().position(|k| *k == kind).unwrap();
    for (w, workload) in WORKLOADS.iter().enumerate() {
        for (c, cpu) in cpus.iter().enumerate() {
            let medians: Vec<f64> = (0..kinds.len())
                .map(|t| median(samples[c][t][w].clone()))
                .collect();
            let base = medians[0];
            let added = |t: usize| medians[t] - base;
            let cells: Vec<String> = (1..kinds.len())
                .map(|t| format!("{:+.0}", added(t)))
                .collect();
            let (netspy, counting) = (
                added(column(Kind::Netspy)),
                added(column(Kind::BpftraceCounting)),
            );
            let ratio = ratio(netspy, counting);
            let _ = writeln!(
                report,
                "| {} | {cpu} | {base:.0} | {} | {ratio} |",
                workload.name,
                cells.join(" | ")
            );
        }
    }
    let _ = writeln!(
        report,
        "\nnetspy received {received} events over the rounds and lost {lost} in the kernel.\n\n\
         ### Start to ready\n\n`netspy daemon` from exec to `/health` 200 (probes attached): \
         median {:.0} ms of {ROUNDS} starts.\n",
        median(startups)
    );
}

/// Program time per traced call, netspy's (and the baseline build's, when given) and bpftrace
/// counting's, from `kernel.bpf_stats_enabled`: steadier than wall-clock differences on a
/// shared machine, though it leaves out what firing a tracepoint costs (netspy fires one per
/// connect, bpftrace's enter + exit two). In alternating rounds, medians, with the range of
/// the rounds' ratios: one pair of runs drifted from 0.94 to 1.59 between two bench runs.
/// Then netspy's programs one by one.
fn per_program_cost(sockets: &Sockets, report: &mut String) {
    let mut kinds = vec![Kind::Netspy];
    if Kind::compared().contains(&Kind::Baseline) {
        kinds.push(Kind::Baseline);
    }
    kinds.push(Kind::BpftraceCounting);
    // [kind][workload] -> per round (runs per call, ns per call).
    let mut per_call = vec![vec![Vec::new(); WORKLOADS.len()]; kinds.len()];
    // [workload] -> program -> per round ns per run (netspy's).
    let mut netspy_programs: Vec<BTreeMap<String, (u64, Vec<f64>)>> =
        vec![BTreeMap::new(); WORKLOADS.len()];
    for _ in 0..PROGRAM_ROUNDS {
        for (k, &kind) in kinds.iter().enumerate() {
            let tracer = Running::start(kind, &[]);
            for (w, workload) in WORKLOADS.iter().enumerate() {
                let programs = stats::while_running(|| {
                    workload.measure(sockets);
                });
                let (runs, ns): (u64, u64) = programs
                    .values()
                    .fold((0, 0), |(r, n), (runs, ns)| (r + runs, n + ns));
                let calls = f64::from(workload.calls);
                per_call[k][w].push((runs as f64 / calls, ns as f64 / calls));
                if kind == Kind::Netspy {
                    for (name, (runs, ns)) in programs {
                        let entry = netspy_programs[w].entry(name).or_default();
                        entry.0 = runs;
                        entry.1.push(ns as f64 / runs.max(1) as f64);
                    }
                }
            }
            drop(tracer);
        }
    }
    let baseline = kinds.contains(&Kind::Baseline);
    let _ = writeln!(
        report,
        "### Program time per traced call\n\n`kernel.bpf_stats_enabled=1` (which itself adds \
         some ns per run), one workload at a time, {PROGRAM_ROUNDS} alternating rounds: \
         nanoseconds of eBPF program time per call, all programs the call ran, the median of \
         the rounds; the ratio is of the medians, with the lowest and highest of the rounds' \
         own ratios. Steadier than the wall-clock columns above; it leaves out what firing a \
         tracepoint costs, of which netspy's UDP connect fires one and bpftrace's two.\n\n\
         | call | netspy: programs run | netspy: ns per call |{} bpftrace counting: \
         programs run | bpftrace counting: ns per call | netspy / bpftrace (rounds) |\n\
         | --- | --- | --- |{} --- | --- | --- |",
        if baseline {
            " baseline build: ns per call |"
        } else {
            ""
        },
        if baseline { " --- |" } else { "" },
    );
    let last = kinds.len() - 1;
    for (w, workload) in WORKLOADS.iter().enumerate() {
        let runs = |k: usize| median(per_call[k][w].iter().map(|(r, _)| *r).collect());
        let ns = |k: usize| median(per_call[k][w].iter().map(|(_, n)| *n).collect());
        let ratios: Vec<f64> = per_call[0][w]
            .iter()
            .zip(&per_call[last][w])
            .map(|((_, a), (_, b))| a / b.max(1.0))
            .collect();
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        let baseline_cell = if baseline {
            format!(" {:.0} |", ns(1))
        } else {
            String::new()
        };
        let _ = writeln!(
            report,
            "| {} | {:.1} | {:.0} |{baseline_cell} {:.1} | {:.0} | {:.2} ({low:.2}-{high:.2}) |",
            workload.name,
            runs(0),
            ns(0),
            runs(last),
            ns(last),
            ns(0) / ns(last).max(1.0)
        );
    }
    let _ = writeln!(
        report,
        "\n### netspy's programs\n\nThe same runs, program by program: nanoseconds per run \
         (median of the rounds).\n\n| call | program | runs | ns per run |\n\
         | --- | --- | --- | --- |"
    );
    for (workload, programs) in WORKLOADS.iter().zip(netspy_programs) {
        for (name, (runs, ns)) in programs {
            // Programs another call touches once or twice (the sockets' own set-up) are noise.
            if runs * 10 < u64::from(workload.calls) {
                continue;
            }
            let _ = writeln!(
                report,
                "| {} | {name} | {runs} | {:.0} |",
                workload.name,
                median(ns)
            );
        }
    }
    report.push('\n');
}

/// Each `--ring-wakeup` policy: the connect program's cost in a burst, and how late events
/// reach the store when they come one at a time and in a burst.
fn wakeup_policies(report: &mut String) {
    let _ = writeln!(
        report,
        "### Ring wakeup policies\n\nProgram time of `connect_exit` per run over 200,000 \
         back-to-back UDP connects (bpf_stats), and the delay from an event's kernel timestamp \
         to its storing (the daemon's `netspy_ingest_lag_seconds`): mean, and the bucket that \
         holds the 99th percentile, for 200 connects 5 ms apart (sparse) and for the burst.\n\n\
         | policy | ns per run | sparse: mean lag | sparse: p99 within | burst: mean lag | \
         burst: p99 within |\n| --- | --- | --- | --- | --- | --- |"
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for policy in ["timer", "batch", "record"] {
        let tracer = Running::start(Kind::Netspy, &["--ring-wakeup", policy]);
        let before = tracer.lag();
        for _ in 0..200 {
            socket.connect(target).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        let sparse = tracer.lag().since(&before);
        let before = tracer.lag();
        let programs = stats::while_running(|| {
            for _ in 0..200_000 {
                socket.connect(target).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let burst = tracer.lag().since(&before);
        let (runs, ns) = programs.get("connect_exit").copied().unwrap_or((1, 0));
        let _ = writeln!(
            report,
            "| {policy} | {:.0} | {:.1} ms | {} | {:.1} ms | {} |",
            ns as f64 / runs.max(1) as f64,
            sparse.mean_ms(),
            sparse.p99_bound(),
            burst.mean_ms(),
            burst.p99_bound(),
        );
    }
    report.push('\n');
}

/// One thread connecting as fast as it can while the daemon runs on the other core.
fn back_to_back(report: &mut String) {
    let tracer = Running::start(Kind::Netspy, &[]);
    let (ready_anon, ready_file) = tracer.resident_mib();
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
        "### Back to back\n\n{BACK_TO_BACK} UDP connects from one thread in {:.2} s ({:.0}k/s) \
         with the daemon on the other core: {} received, {} lost in the kernel.\n",
        elapsed.as_secs_f64(),
        f64::from(BACK_TO_BACK) / elapsed.as_secs_f64() / 1000.0,
        delta("/events/received/connection"),
        delta("/events/lost_in_kernel/connection"),
    );
    // The history is full now (the default --max-events is a million); two more millions
    // evict as many: the daemon's resident memory once it holds a full history for a while.
    let (full_anon, _) = tracer.resident_mib();
    for _ in 0..2 * BACK_TO_BACK {
        socket.connect(target).unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    let (steady_anon, steady_file) = tracer.resident_mib();
    let _ = writeln!(
        report,
        "### Resident memory\n\nThe same daemon's resident memory (/proc/PID/status), in \
         MiB: private memory (heap, stacks) at ready {ready_anon:.0}, with the default \
         history of {BACK_TO_BACK} connect events full {full_anon:.0}, and after {} more \
         evicted as many {steady_anon:.0} (what the allocator keeps of the ingest's \
         high-water mark included); mapped files (the executable, and the kernel's ring \
         buffers, whose data pages are mapped twice) {ready_file:.0} at ready, \
         {steady_file:.0} at the end.\n",
        2 * BACK_TO_BACK,
    );
}

/// Datagrams to a closed port, each a NO_SOCKET drop, from one thread: what each drop costs
/// and whether the totals stay exact; with the default rate of full drop events, and with
/// almost every drop sampled out.
fn drop_storm(report: &mut String) {
    let _ = writeln!(
        report,
        "### Drop storm\n\n{DROP_STORM} datagrams to a closed port (NO_SOCKET drops, \
         unattributed) from two threads, one per CPU; program time per drop from bpf_stats, full events \
         included. Other drops on the host during the storm may add a few to the totals.\n\n\
         | `--drop-event-rate` | drops/s | full events | sampled out (counted) | lost | \
         accounted for | ns per drop |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for rate in ["20000", "10"] {
        let tracer = Running::start(Kind::Netspy, &["--drop-event-rate", rate]);
        let before = tracer.health();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut elapsed = Duration::ZERO;
        let programs = stats::while_running(|| {
            let start = Instant::now();
            // One sender per CPU: a single thread makes ~160k drops/s here.
            std::thread::scope(|scope| {
                for cpu in 0..SENDERS {
                    let socket = socket.try_clone().unwrap();
                    scope.spawn(move || {
                        let _ = workloads::pin([cpu]);
                        for _ in 0..DROP_STORM / SENDERS as u32 {
                            let _ = socket.send_to(b"x", closed);
                        }
                    });
                }
            });
            elapsed = start.elapsed();
        });
        std::thread::sleep(Duration::from_secs(3));
        let after = tracer.health();
        let delta = |path: &str| counter(&after, path) - counter(&before, path);
        let (received, sampled, lost) = (
            delta("/events/received/packet_drop"),
            delta("/events/sampled_out/packet_drop"),
            delta("/events/lost_in_kernel/packet_drop"),
        );
        let (runs, ns) = programs
            .iter()
            .find(|(name, _)| name.starts_with("kfree_skb"))
            .map_or((1, 0), |(_, v)| *v);
        let _ = writeln!(
            report,
            "| {rate} per CPU per second | {:.0}k | {received} | {sampled} | {lost} | {} of \
             {DROP_STORM} | {:.0} |",
            f64::from(DROP_STORM) / elapsed.as_secs_f64() / 1000.0,
            received + sampled + lost,
            ns as f64 / runs.max(1) as f64,
        );
    }
    report.push('\n');
}
