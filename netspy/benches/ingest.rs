//! Ingest benchmark: what the daemon does with each record its readers take out of a ring
//! buffer (decode, correlation, store insert with eviction), on one core, in events per
//! second. The target is 1.5M/s: one core making connects as fast as it can (about a million
//! a second) must not outrun the daemon on the other.
//!
//! The records are real wire structs, a mix of what a busy host sends: UDP connects (which
//! register their 4-tuple for orphaned drops), TCP connects and their outcomes (joined), with
//! 1000 processes of 200 names and 10,000 destinations, into a store already full at its
//! default 1M events (every insert also evicts).
//!
//! `cargo bench -p netspy --bench ingest`; `cargo xtask bench` puts it in BENCHMARKS.md.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its report"
)]

use std::{
    fmt::Write as _,
    hint::black_box,
    time::{Duration, Instant},
};

use netspy::{
    events::{BootClock, KernelNames, Kind},
    store::{Limits, Store},
};
use netspy_common::{
    connect::ConnectEvent,
    family,
    proto::{IPPROTO_TCP, IPPROTO_UDP},
    task::TaskInfo,
    tcp::{TcpOutcomeEvent, state},
};

const STORED: usize = 1_000_000;
const MEASURED: usize = 1_000_000;
const PIDS: u32 = 1000;
const COMMANDS: u32 = 200;
const DESTINATIONS: u32 = 10_000;

/// The bytes of a wire struct, as a ring buffer hands them out.
fn bytes<T: Copy>(value: &T) -> Vec<u8> {
    // SAFETY: T is a repr(C) wire struct of integers and arrays with explicit padding.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn task(n: u32) -> TaskInfo {
    let pid = 1000 + n % PIDS;
    let mut comm = [0u8; 16];
    let name = format!("proc-{}", pid % COMMANDS);
    comm[..name.len()].copy_from_slice(name.as_bytes());
    TaskInfo {
        tgid: pid,
        pid,
        uid: 1000,
        flags: 0,
        cgroup_id: 42,
        comm,
        process: comm,
        started_ns: 0,
    }
}

/// Record `i` of the mix, stamped `ts_ns` (boot time).
fn record(i: u32, ts_ns: u64) -> (Kind, Vec<u8>) {
    let d = i.wrapping_mul(2_654_435_761) % DESTINATIONS;
    let daddr = (0x0a00_0000 + d).to_be_bytes();
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&daddr);
    let mut local = [0u8; 16];
    local[..4].copy_from_slice(&[127, 0, 0, 1]);
    let sock = 0xffff_0000_0000_0000 | u64::from(i / 4);
    let connect = |protocol: u16, sock_type: u16, ret: i64| ConnectEvent {
        task: task(i / 4),
        ts_ns,
        syscall_ns: 0,
        sock,
        ret,
        fd: 3,
        addrlen: 16,
        family: family::INET,
        dport: 443,
        sock_type,
        protocol,
        daddr: addr,
        saddr: local,
        sport: 30_000 + (i % 30_000) as u16,
        flags: 0,
        _pad: [0; 4],
    };
    match i % 4 {
        0 | 1 => (Kind::Connection, bytes(&connect(IPPROTO_UDP, 2, 0))),
        2 => (Kind::Connection, bytes(&connect(IPPROTO_TCP, 1, -115))),
        _ => {
            let outcome = TcpOutcomeEvent {
                owner: task(i / 4),
                ts_ns,
                latency_ns: 50_000,
                sock,
                oldstate: state::SYN_SENT,
                newstate: state::ESTABLISHED,
                error: 0,
                flags: netspy_common::flags::OWNER_KNOWN,
                family: family::INET,
                sport: 30_000 + (i % 30_000) as u16,
                dport: 443,
                _pad: 0,
                saddr: local,
                daddr: addr,
            };
            (Kind::TcpOutcome, bytes(&outcome))
        }
    }
}

fn main() {
    let names = KernelNames {
        clock: BootClock::now(),
        ..KernelNames::default()
    };
    let boot_now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
    let start_ns = boot_now.tv_sec() as u64 * 1_000_000_000 + boot_now.tv_nsec() as u64;
    let total = (STORED + MEASURED) as u32;
    // Events a microsecond apart, ending now: none is old enough to be evicted by age.
    let records: Vec<(Kind, Vec<u8>)> = (0..total)
        .map(|i| record(i, start_ns - u64::from(total - i) * 1000))
        .collect();
    let (fill, measured) = records.split_at(STORED);

    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(3600),
        max_events: STORED,
        ..Limits::default()
    });
    for (kind, raw) in fill {
        store.ingest(names.decode(*kind, raw).unwrap());
    }

    let started = Instant::now();
    for (kind, raw) in measured {
        black_box(names.decode(*kind, raw).unwrap());
    }
    let decode = started.elapsed();

    let started = Instant::now();
    for (kind, raw) in measured {
        store.ingest(names.decode(*kind, raw).unwrap());
    }
    let all = started.elapsed();
    black_box(&store);

    let rate = |d: Duration| MEASURED as f64 / d.as_secs_f64() / 1e6;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "### Ingest\n\nOne core, {MEASURED} records (half UDP connects, a quarter TCP connects, \
         a quarter their outcomes) into a store full at {STORED} events:\n\n\
         | step | M events/s | ns per event |\n| --- | --- | --- |\n\
         | decode only | {:.2} | {:.0} |\n\
         | decode + correlation + store insert (with eviction) | {:.2} | {:.0} |\n",
        rate(decode),
        decode.as_nanos() as f64 / MEASURED as f64,
        rate(all),
        all.as_nanos() as f64 / MEASURED as f64,
    );
    println!("{report}");
}
