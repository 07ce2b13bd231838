//! What watching TCP retransmissions costs, beside bpftrace counting on the same tracepoint:
//! this process sends to a sink in a network namespace of the bench's own (a veth pair, 10.x
//! addresses) whose nft input drops 3% of the segments at random, so the sender resends.
//! Each tracer in alternating rounds: its retransmit programs' runs and time from bpf_stats;
//! for netspy, also the segments it counted beside the kernel's own `TcpRetransSegs` (of both
//! namespaces: the kernel counts per namespace and the sink, in this process, resends too).

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::TcpStream,
};

use crate::{
    PROGRAM_ROUNDS,
    common::netns::Netns,
    median, ratio, stats,
    tracers::{Kind, Running, get},
};

/// The sink's port, the one the namespace drops at random.
const PORT: u16 = 5001;
/// Bytes sent per round.
const SENT: usize = 64 << 20;
/// Of every hundred segments to the sink, how many the namespace drops.
const LOSS_PERCENT: u32 = 3;

/// The kernel's count of segments sent again in this process's namespace and the sink's
/// (`Tcp: RetransSegs` of each one's /proc/net/snmp: the count is per network namespace, and
/// the sink, this process too, resends into the lossy rule when its ACKs or FIN are lost).
fn retransmitted_segments(netns: &Netns) -> u64 {
    let here = std::fs::read_to_string("/proc/net/snmp").unwrap();
    let inside = netns.output_inside(&["cat", "/proc/net/snmp"]);
    snmp_retrans_segs(&here) + snmp_retrans_segs(&inside)
}

/// `RetransSegs` of the `Tcp:` lines of a /proc/net/snmp text.
fn snmp_retrans_segs(snmp: &str) -> u64 {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let column = names
        .split_whitespace()
        .position(|n| n == "RetransSegs")
        .unwrap();
    values
        .split_whitespace()
        .nth(column)
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends [`SENT`] bytes to the sink and waits until it has read them all.
fn transfer(netns: &Netns) {
    let listener = netns.listen_inside(PORT);
    let sink = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        let mut buffer = vec![0; 1 << 20];
        let mut read = 0;
        while read < SENT {
            match peer.read(&mut buffer).unwrap() {
                0 => break,
                n => read += n,
            }
        }
        read
    });
    let mut sender = TcpStream::connect((netns.peer_ip.as_str(), PORT)).unwrap();
    let chunk = vec![0x5a; 1 << 20];
    for _ in 0..SENT / chunk.len() {
        sender.write_all(&chunk).unwrap();
    }
    assert_eq!(sink.join().unwrap(), SENT);
}

/// Whether a program is one of the tracers' retransmit programs (bpftool shows bpftrace's
/// cut to 15 characters: `tcp_retransmit_`).
fn is_retransmit_program(name: &str) -> bool {
    name.starts_with("tcp_retransmit")
}

/// Program time per retransmission, netspy beside bpftrace counting, and netspy's count of
/// segments beside the kernel's.
pub fn retransmits(report: &mut String) {
    let netns = Netns::create();
    assert!(
        netns.exec(&format!(
            "nft 'add rule inet netspy_test input tcp dport {PORT} numgen random mod 100 < \
             {LOSS_PERCENT} drop'"
        )),
        "the random-loss rule"
    );
    let kinds = [Kind::Netspy, Kind::BpftraceCounting];
    // [kind] -> per round (runs, ns per run).
    let mut rounds = vec![Vec::new(); kinds.len()];
    // Per netspy round: (kernel's segments sent again, netspy's resends, netspy's segments).
    let mut counted = Vec::new();
    let pid = std::process::id();
    for _ in 0..PROGRAM_ROUNDS {
        for (k, &kind) in kinds.iter().enumerate() {
            let tracer = Running::start(kind, &[]);
            let before = retransmitted_segments(&netns);
            let programs = stats::while_running(|| transfer(&netns));
            let kernel = retransmitted_segments(&netns) - before;
            let (runs, ns) = programs
                .iter()
                .filter(|(name, _)| is_retransmit_program(name))
                .fold((0, 0), |(r, n), (_, (runs, ns))| (r + runs, n + ns));
            rounds[k].push((runs, ns as f64 / runs.max(1) as f64));
            if let Some(url) = &tracer.url {
                // The daemon stores what it reads every 50 ms; a second covers it.
                std::thread::sleep(std::time::Duration::from_secs(1));
                let summary = get(&format!(
                    "{url}/api/retransmit-summary?pid={pid}&duration_seconds=3600"
                ))
                .unwrap_or_default();
                let number = |field: &str| summary[field].as_u64().unwrap_or(0);
                counted.push((kernel, number("count"), number("segments")));
            }
            drop(tracer);
        }
    }
    let ns = |k: usize| median(rounds[k].iter().map(|(_, ns)| *ns).collect());
    let runs = |k: usize| median(rounds[k].iter().map(|(runs, _)| *runs as f64).collect());
    let ratios: Vec<f64> = rounds[0]
        .iter()
        .zip(&rounds[1])
        .map(|((_, a), (_, b))| a / b.max(1.0))
        .collect();
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
    let _ = writeln!(
        report,
        "### TCP retransmissions\n\n{} MiB per round from this process to a sink in a network \
         namespace of the bench's own whose nft input drops {LOSS_PERCENT}% of the segments at \
         random, {PROGRAM_ROUNDS} alternating rounds, bpf_stats: the retransmit programs' runs \
         (one per resend: a resent TSO/GSO buffer holds several segments) and nanoseconds per \
         run, median of the rounds. netspy's programs (`tp_btf` on `tcp_retransmit_skb` and \
         `tcp_retransmit_synack`) read the 4-tuple, state, owner and segment count and write \
         an event; bpftrace's counts by state on `tracepoint:tcp:tcp_retransmit_skb`.\n\n\
         | tracer | runs per round | ns per run |\n| --- | --- | --- |\n\
         | netspy daemon | {:.0} | {:.0} |\n| bpftrace, `count()` per event | {:.0} | {:.0} |\n\n\
         netspy / bpftrace counting, ns per run: {} (rounds {low:.2}-{high:.2}).\n",
        SENT >> 20,
        runs(0),
        ns(0),
        runs(1),
        ns(1),
        ratio(ns(0), ns(1)),
    );
    let _ = writeln!(
        report,
        "What netspy counted for this process beside the kernel's count of segments sent again \
         (`TcpRetransSegs` of the host's network namespace and the sink's), per round:\n\n\
         | round | kernel: segments sent again | netspy: resends | netspy: segments |\n\
         | --- | --- | --- | --- |"
    );
    for (round, (kernel, resends, segments)) in counted.iter().enumerate() {
        let _ = writeln!(
            report,
            "| {} | {kernel} | {resends} | {segments} |",
            round + 1
        );
    }
    report.push('\n');
}
