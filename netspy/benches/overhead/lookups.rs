//! What watching host-name lookups costs the process that looks up: `getaddrinfo` of a name
//! in `/etc/hosts` (`localhost`, no network) in a tight loop, with nothing, the netspy
//! daemon, and bpftrace's empty and counting uprobes on the same function attached.

use std::{ffi::CStr, fmt::Write as _, hint::black_box, time::Instant};

use crate::{
    median, ratio, stats,
    tracers::{Kind, Running},
};

const CALLS: u32 = 20_000;
const ROUNDS: usize = 5;

/// bpftrace's programs on the uprobes netspy sets: empty, or the map updates its users
/// write first.
fn bpftrace_script(counting: bool) -> String {
    let (entry, exit) = match counting {
        true => ("@c[comm] = count();", "@r[retval] = count();"),
        false => ("", ""),
    };
    format!("uprobe:libc:getaddrinfo {{ {entry} }}\nuretprobe:libc:getaddrinfo {{ {exit} }}\n")
}

/// `getaddrinfo("localhost")` for IPv4 datagrams `calls` times: nanoseconds per call.
fn measure(calls: u32) -> f64 {
    let name: &CStr = c"localhost";
    // SAFETY: a zeroed addrinfo is the documented way to start hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_DGRAM;
    let start = Instant::now();
    for _ in 0..calls {
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: valid C strings and hints; the result is freed below.
        let rc = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut res) };
        assert_eq!(rc, 0, "getaddrinfo(localhost)");
        // SAFETY: `res` came from getaddrinfo.
        unsafe { libc::freeaddrinfo(black_box(res)) };
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn best_of_three() -> f64 {
    (0..3).map(|_| measure(CALLS)).fold(f64::INFINITY, f64::min)
}

fn start(kind: Kind) -> Running {
    match kind {
        Kind::BpftraceEmpty => Running::bpftrace(&bpftrace_script(false)),
        Kind::BpftraceCounting => Running::bpftrace(&bpftrace_script(true)),
        other => Running::start(other, &[]),
    }
}

/// The lookups' wall-clock cost under each tracer, and netspy's two programs' time.
pub fn lookups(report: &mut String) {
    let kinds = Kind::compared();
    let mut samples = vec![Vec::new(); kinds.len()];
    for _ in 0..ROUNDS {
        for (t, &kind) in kinds.iter().enumerate() {
            let tracer = start(kind);
            measure(CALLS / 10);
            samples[t].push(best_of_three());
            drop(tracer);
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    let added = |kind: Kind| {
        let at = kinds.iter().position(|k| *k == kind).unwrap();
        medians[at] - medians[0]
    };
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        report,
        "### Host-name lookups\n\n`getaddrinfo(\"localhost\")` for IPv4 datagrams, answered from \
         `/etc/hosts` (no network), {CALLS} calls per run: nanoseconds per call, the median \
         over {ROUNDS} alternating rounds of each round's best of three runs, the workload \
         pinned to the last CPU and the tracers to the others. netspy sets a uprobe on the C \
         library's `getaddrinfo` and a uretprobe on its return (name, answers, error, latency \
         per lookup); bpftrace's columns are the same two probes, empty, and counting \
         (`@[comm] = count()`, `@[retval] = count()`). A real lookup that asks a DNS server \
         takes 100 us to tens of ms, so the share there is far smaller than here.\n\n\
         | call | {} | netspy / bpftrace counting |\n|{}",
        names.join(" | "),
        " --- |".repeat(names.len() + 2)
    );
    let cells: Vec<String> = kinds[1..]
        .iter()
        .map(|&k| format!("{:+.0}", added(k)))
        .collect();
    let (netspy, counting) = (added(Kind::Netspy), added(Kind::BpftraceCounting));
    let ratio = ratio(netspy, counting);
    let _ = writeln!(
        report,
        "| getaddrinfo(\"localhost\") | {:.0} | {} | {ratio} |",
        medians[0],
        cells.join(" | ")
    );
    let tracer = Running::start(Kind::Netspy, &[]);
    let programs = stats::while_running(|| {
        measure(CALLS);
    });
    drop(tracer);
    let _ = writeln!(
        report,
        "\nnetspy's programs over {CALLS} lookups (bpf_stats): {}; {:.1}% of the bare call.\n",
        ["getaddrinfo_in", "getaddrinfo_ret"]
            .iter()
            .map(|name| {
                let (runs, ns) = programs.get(*name).copied().unwrap_or((0, 0));
                format!(
                    "`{name}` {runs} runs, {:.0} ns per run",
                    ns as f64 / runs.max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        ["getaddrinfo_in", "getaddrinfo_ret"]
            .iter()
            .map(|n| programs
                .get(*n)
                .map_or(0.0, |(r, ns)| *ns as f64 / (*r).max(1) as f64))
            .sum::<f64>()
            * 100.0
            / medians[0]
    );
}
