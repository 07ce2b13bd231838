//! Store benchmark: memory per stored connection event and query latency at 1M events, each
//! query reported as a ratio to a full scan measured in the same run (absolute times on a
//! shared 2-core machine are noise; ratios are not).
//!
//! `cargo bench -p netspy --bench store`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its report"
)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::{
        Arc, RwLock,
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

const EVENTS: usize = 1_000_000;
const PIDS: u32 = 1000;
const COMMANDS: u32 = 200;
const DESTINATIONS: u32 = 10_000;
const SPAN_SECONDS: i64 = 3000;

fn events(now: i64) -> impl Iterator<Item = Event> {
    let names: Vec<Arc<str>> = (0..COMMANDS)
        .map(|i| Arc::from(format!("proc-{i}")))
        .collect();
    (0..EVENTS).map(move |i| {
        let n = i as u32;
        let pid = 1000 + n % PIDS;
        let t = now - SPAN_SECONDS * 1_000_000_000
            + (i as i64) * (SPAN_SECONDS * 1_000_000_000 / EVENTS as i64);
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

fn main() {
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(3600),
        max_events: EVENTS,
    });
    for event in events(now) {
        store.ingest(event);
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "stored connection record: {} bytes",
        size_of::<netspy::store::StoredConnection>()
    );
    println!(
        "heap per stored connection event at {EVENTS} events (record + pid and name indexes + interned names/addresses): {:.1} bytes",
        bytes as f64 / EVENTS as f64
    );

    let query = Query::new(
        Arc::new(RwLock::new(store)),
        Arc::new(Status::default()),
        10_000,
    );
    let runs = 21;
    let scan = time(runs, || {
        // Baseline: what an unindexed store does for any filtered question.
        let q = query
            .analyze_patterns(&SummaryRequest {
                duration_seconds: Some(3600),
                ..Default::default()
            })
            .unwrap();
        black_box(q);
    });
    let cases: Vec<(&str, Duration)> = vec![
        (
            "summary by pid, last hour (pid index)",
            time(runs, || {
                black_box(
                    query
                        .connection_summary(&SummaryRequest {
                            pid: Some(1500),
                            duration_seconds: Some(3600),
                            ..Default::default()
                        })
                        .unwrap(),
                );
            }),
        ),
        (
            "summary by name, last hour (name index)",
            time(runs, || {
                black_box(
                    query
                        .connection_summary(&SummaryRequest {
                            command: Some("proc-7".into()),
                            duration_seconds: Some(3600),
                            ..Default::default()
                        })
                        .unwrap(),
                );
            }),
        ),
        (
            "summary by name glob proc-1? (10 names)",
            time(runs, || {
                black_box(
                    query
                        .connection_summary(&SummaryRequest {
                            command: Some("proc-1?".into()),
                            duration_seconds: Some(3600),
                            ..Default::default()
                        })
                        .unwrap(),
                );
            }),
        ),
        (
            "summary, all processes, last 60 s (time search)",
            time(runs, || {
                black_box(
                    query
                        .connection_summary(&SummaryRequest::default())
                        .unwrap(),
                );
            }),
        ),
        (
            "list 100 most recent by name",
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
        ),
        (
            "list 100 most recent, all",
            time(runs, || {
                black_box(query.list_connections(&ListRequest::default()).unwrap());
            }),
        ),
    ];
    println!(
        "\nquery latency at {EVENTS} events, as a fraction of a full-history pattern analysis ({scan:?} here):"
    );
    for (name, t) in cases {
        println!(
            "  {name:<48} {:>8.4}x  ({t:?})",
            t.as_secs_f64() / scan.as_secs_f64()
        );
    }
}
