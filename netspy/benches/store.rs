//! Store benchmark: memory per stored connection event (heap and resident) and query latency
//! at 1M and 10M events, each query also as a ratio to a full-history pattern analysis
//! measured in the same run (absolute times on a shared 2-core machine drift; ratios less).
//!
//! `cargo bench -p netspy --bench store`; `cargo xtask bench` puts it in BENCHMARKS.md.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its report"
)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicIsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use netspy::{
    events::{ConnectionEvent, Destination, Event, Process},
    query::{ListRequest, Query, Status, SummaryRequest},
    store::{Limits, Store},
};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 2] = [1_000_000, 10_000_000];
const PIDS: u32 = 1000;
const COMMANDS: u32 = 200;
const DESTINATIONS: u32 = 10_000;
const SPAN_SECONDS: i64 = 3000;

fn events(now: i64, count: usize) -> impl Iterator<Item = Event> {
    let names: Vec<Arc<str>> = (0..COMMANDS)
        .map(|i| Arc::from(format!("proc-{i}")))
        .collect();
    (0..count).map(move |i| {
        let n = i as u32;
        let pid = 1000 + n % PIDS;
        let t = now - SPAN_SECONDS * 1_000_000_000
            + (i as i64) * (SPAN_SECONDS * 1_000_000_000 / count as i64);
        let d = n.wrapping_mul(2_654_435_761) % DESTINATIONS;
        Event::Connection(ConnectionEvent {
            time: DateTime::from_timestamp_nanos(t),
            timestamp_ns: 0,
            process: Process {
                pid,
                tid: pid,
                uid: 1000,
                cgroup_id: 42,
                command: names[(pid % COMMANDS) as usize].clone(),
                process_name: names[(pid % COMMANDS) as usize].clone(),
                started_ns: 0,
            },
            fd: 3,
            source: None,
            destination: Destination::Ip {
                ip: std::net::Ipv4Addr::from(0x0a00_0000 + d).into(),
                port: 443,
            },
            address_family: 2,
            protocol: "TCP".into(),
            socket_type: Some("SOCK_STREAM".into()),
            raw_protocol: 6,
            raw_socktype: 1,
            return_code: 0,
            error: None,
            syscall_ns: Some(1000),
            sock: 0,
            destination_name: None,
        })
    })
}

/// Median of `runs` timings of `f`.
fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[runs / 2]
}

/// Resident memory of this process, bytes.
fn rss() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse::<i64>()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

fn main() {
    let idle = rss();
    println!(
        "Synthetic connection events, {PIDS} processes of {COMMANDS} names, {DESTINATIONS} \
         destinations, over {SPAN_SECONDS} s, into a store sized for them; queries are the \
         median of 21 runs. Resident memory of the bench process before filling: {:.0} MB.\n",
        idle as f64 / 1e6
    );
    println!(
        "| events | record | heap per event | resident per event | pattern analysis, all | \
         summary by pid | summary by name | summary by glob (10 names) | summary, all, last \
         60 s | list 100 by name | list 100, all |\n|{}",
        " --- |".repeat(11)
    );
    for size in SIZES {
        run(size);
        // Give the freed store back to the system, so the next size's resident figure is its own.
        // SAFETY: no arguments that could be invalid; glibc returns free heap to the kernel.
        unsafe { libc::malloc_trim(0) };
    }
}

/// Fills a store with `size` events and prints one row.
fn run(size: usize) {
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let (heap_before, rss_before) = (LIVE.load(Ordering::Relaxed), rss());
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(3600),
        max_events: size,
        ..Limits::default()
    });
    for event in events(now, size) {
        store.ingest(event);
    }
    let heap = LIVE.load(Ordering::Relaxed) - heap_before;
    let resident = rss() - rss_before;
    let query = Query::new(store, Arc::new(Status::default()), 10_000);
    let runs = if size > 1_000_000 { 5 } else { 21 };
    let summary = |req: SummaryRequest| {
        time(runs, || {
            black_box(query.connection_summary(&req).unwrap());
        })
    };
    let hour = |req: SummaryRequest| SummaryRequest {
        duration_seconds: Some(3600),
        ..req
    };
    let cases = [
        time(runs, || {
            black_box(
                query
                    .analyze_patterns(&hour(SummaryRequest::default()))
                    .unwrap(),
            );
        }),
        summary(hour(SummaryRequest {
            pid: Some(1500),
            ..Default::default()
        })),
        summary(hour(SummaryRequest {
            command: Some("proc-7".into()),
            ..Default::default()
        })),
        summary(hour(SummaryRequest {
            command: Some("proc-1?".into()),
            ..Default::default()
        })),
        summary(SummaryRequest::default()),
        time(runs, || {
            black_box(
                query
                    .list_connections(&ListRequest {
                        command: Some("proc-7".into()),
                        ..Default::default()
                    })
                    .unwrap(),
            );
        }),
        time(runs, || {
            black_box(query.list_connections(&ListRequest::default()).unwrap());
        }),
    ];
    let cells: Vec<String> = cases.iter().map(|t| format!("{t:.1?}")).collect();
    println!(
        "| {size} | {} B | {:.1} B | {:.1} B | {} |",
        size_of::<netspy::store::StoredConnection>(),
        heap as f64 / size as f64,
        resident as f64 / size as f64,
        cells.join(" | ")
    );
}
