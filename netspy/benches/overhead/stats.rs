//! Per-program run counts and times from `kernel.bpf_stats_enabled`, read with bpftool.

use std::{collections::BTreeMap, process::Command};

use serde_json::Value;

/// Tracing programs loaded now (any tracer's: tracepoints, and uprobes, which the kernel
/// types as kprobes), by `bpftool prog show`.
pub fn tracepoint_programs() -> Vec<Value> {
    let output = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .expect("bpftool (cargo xtask bench installs it)");
    let all: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
    all.into_iter()
        .filter(|p| {
            matches!(
                p["type"].as_str(),
                Some("tracepoint" | "raw_tracepoint" | "tracing" | "kprobe")
            )
        })
        .collect()
}

/// Runs and run time per loaded tracing program, by name.
fn program_stats() -> BTreeMap<String, (u64, u64)> {
    // Summed by name: the kernel keeps 15 characters of a name, so two programs (an
    // entry and a fallback) may show as one.
    let mut stats = BTreeMap::<String, (u64, u64)>::new();
    for p in tracepoint_programs() {
        let name = p["name"].as_str().unwrap_or("?").to_owned();
        let (runs, ns) = stats.entry(name).or_default();
        *runs += p["run_cnt"].as_u64().unwrap_or(0);
        *ns += p["run_time_ns"].as_u64().unwrap_or(0);
    }
    stats
}

fn set_bpf_stats(on: bool) {
    let value = if on { "1" } else { "0" };
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", value).unwrap();
}

/// Runs `work` with bpf_stats on: runs and nanoseconds of each program during it.
pub fn while_running(work: impl FnOnce()) -> BTreeMap<String, (u64, u64)> {
    set_bpf_stats(true);
    let before = program_stats();
    work();
    let after = program_stats();
    set_bpf_stats(false);
    after
        .into_iter()
        .map(|(name, (runs, ns))| {
            let (runs0, ns0) = before.get(&name).copied().unwrap_or((0, 0));
            (name, (runs - runs0, ns - ns0))
        })
        .collect()
}
