use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::DateTime;

use super::*;
use crate::events::{
    ConnectionEvent, Destination, Event, PacketDrop, Process, TcpOutcome, TcpResult,
};

const T0: i64 = 1_700_000_000_000_000_000;

fn process(pid: u32, command: &str) -> Process {
    Process {
        pid,
        tid: pid,
        uid: 0,
        cgroup_id: 7,
        command: Arc::from(command),
    }
}

fn connect(t: i64, pid: u32, command: &str, sock: u64, port: u16) -> Event {
    Event::Connection(ConnectionEvent {
        time: DateTime::from_timestamp_nanos(t),
        timestamp_ns: 0,
        process: process(pid, command),
        fd: 3,
        source: None,
        destination: Destination::Ip {
            ip: "10.0.0.1".parse().unwrap(),
            port,
        },
        address_family: 2,
        protocol: "TCP".into(),
        socket_type: Some("SOCK_STREAM".into()),
        raw_protocol: 6,
        raw_socktype: 1,
        return_code: -115,
        error: Some("EINPROGRESS".into()),
        syscall_ns: Some(1000),
        sock,
    })
}

fn outcome(t: i64, sock: u64, result: TcpResult, errno: u32) -> Event {
    Event::TcpOutcome(TcpOutcome {
        time: DateTime::from_timestamp_nanos(t),
        timestamp_ns: 0,
        process: None,
        source: "10.0.0.5:40000".parse::<SocketAddr>().unwrap(),
        destination: "10.0.0.1:443".parse().unwrap(),
        result,
        error: None,
        raw_error: errno,
        latency_ns: Some(2_500_000),
        sock,
    })
}

fn drop_event(t: i64, reason: &str) -> Event {
    let mut drop = PacketDrop::tcp_no_socket(
        DateTime::from_timestamp_nanos(t),
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    drop.drop_reason = Arc::from(reason);
    Event::PacketDrop(drop)
}

fn all() -> Selection {
    Selection {
        until_ns: i64::MAX,
        ..Default::default()
    }
}

#[test]
fn outcome_joins_its_connect_in_either_order() {
    let mut store = Store::new(Limits::default());
    store.ingest(connect(T0, 1, "curl", 0xa, 443));
    store.ingest(outcome(T0 + 1, 0xa, TcpResult::Refused, 111));
    // The outcome of a blocking connect can arrive first.
    store.ingest(outcome(T0 + 2, 0xb, TcpResult::Established, 0));
    store.ingest(connect(T0 + 3, 1, "curl", 0xb, 443));
    let records: Vec<_> = store.connections().select(&all()).cloned().collect();
    assert_eq!(records[0].outcome, Outcome::Refused);
    assert_eq!(records[0].outcome_errno, 111);
    assert_eq!(records[0].sport, 40000);
    assert_eq!(records[0].latency_us, 2500);
    assert_eq!(records[1].outcome, Outcome::Established);
    assert!(
        matches!(store.endpoint(records[1].source.unwrap()), Some(Endpoint::Ip(ip)) if ip.to_string() == "10.0.0.5")
    );
}

#[test]
fn count_limit_evicts_oldest_and_releases_names() {
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(3600),
        max_events: 2,
    });
    store.ingest(connect(T0, 1, "first", 0, 1));
    store.ingest(connect(T0 + 1, 2, "second", 0, 2));
    store.ingest(connect(T0 + 2, 3, "third", 0, 3));
    let names: Vec<_> = store
        .connections()
        .select(&all())
        .map(|r| store.command(r.command))
        .collect();
    assert_eq!(names, vec![Arc::from("second"), Arc::from("third")]);
    assert!(
        store.commands_matching(|n| n == "first").is_empty(),
        "evicted name released"
    );
    assert_eq!(store.stats().evicted_by_count, 1);
    assert_eq!(store.stats().connections, 2);
}

#[test]
fn age_limit_evicts_expired_history_of_both_kinds() {
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(60),
        max_events: 100,
    });
    store.ingest(connect(T0, 1, "old", 0, 1));
    store.ingest(drop_event(T0, "NO_SOCKET"));
    store.ingest(connect(T0 + 50_000_000_000, 1, "new", 0, 1));
    store.evict_expired(T0 + 70_000_000_000);
    let stats = store.stats();
    assert_eq!(
        (stats.connections, stats.drops, stats.evicted_by_age),
        (1, 0, 2)
    );
    assert!(store.kernel_names_matching(|n| n == "NO_SOCKET").is_empty());
}

#[test]
fn outcome_without_connect_is_counted_unmatched_after_a_while() {
    let mut store = Store::new(Limits::default());
    store.ingest(outcome(T0, 0xc, TcpResult::Established, 0));
    store.evict_expired(T0 + 1_000_000_000);
    assert_eq!(store.stats().unmatched_outcomes, 0, "still waiting");
    store.evict_expired(T0 + 11_000_000_000);
    assert_eq!(store.stats().unmatched_outcomes, 1);
}

#[test]
fn drops_keep_reason_location_and_tuple() {
    let mut store = Store::new(Limits::default());
    store.ingest(drop_event(T0, "NETFILTER_DROP"));
    let r = store.drops().select(&all()).next().unwrap().clone();
    assert_eq!(&*store.kernel_name(r.reason), "NETFILTER_DROP");
    assert_eq!(&*store.kernel_name(r.location), "tcp_v4_rcv+0x91");
    assert_eq!((r.sport, r.dport, r.protocol, r.pid), (1, 2, 6, 0));
}

#[test]
fn reused_socket_addresses_pair_in_order() {
    let mut store = Store::new(Limits::default());
    // Two connects on the same kernel socket address (freed and reused) before either outcome.
    store.ingest(connect(T0, 1, "curl", 0xa, 443));
    store.ingest(connect(T0 + 10_000_000, 1, "curl", 0xa, 443));
    store.ingest(outcome(T0 + 3_000_000, 0xa, TcpResult::Refused, 111));
    store.ingest(outcome(T0 + 13_000_000, 0xa, TcpResult::Established, 0));
    let results: Vec<_> = store
        .connections()
        .select(&all())
        .map(|r| r.outcome)
        .collect();
    assert_eq!(results, vec![Outcome::Refused, Outcome::Established]);
    assert_eq!(store.stats().unmatched_outcomes, 0);
}

#[test]
fn a_connect_that_failed_before_its_syn_is_not_paired_with_a_later_outcome() {
    let mut store = Store::new(Limits::default());
    // A connect that failed before sending a SYN (no outcome will ever come) ...
    store.ingest(connect(T0, 1, "curl", 0xa, 443));
    // ... then the address is reused; this connect's SYN leaves 1 s later.
    store.ingest(connect(T0 + 1_000_000_000, 1, "curl", 0xa, 443));
    store.ingest(outcome(T0 + 1_002_500_000, 0xa, TcpResult::Established, 0));
    let results: Vec<_> = store
        .connections()
        .select(&all())
        .map(|r| r.outcome)
        .collect();
    assert_eq!(results, vec![Outcome::Unknown, Outcome::Established]);
}

/// The SYN of the `outcome()` helper's connect, dropped for want of a socket.
fn orphan_syn(t: i64) -> Event {
    let Event::PacketDrop(mut d) = drop_event(t, "NO_SOCKET") else {
        unreachable!()
    };
    d.source_ip = Some("10.0.0.5".parse().unwrap());
    d.source_port = Some(40000);
    d.destination_ip = Some("10.0.0.1".parse().unwrap());
    d.destination_port = Some(443);
    Event::PacketDrop(d)
}

fn owned_outcome(t: i64) -> Event {
    let Event::TcpOutcome(mut o) = outcome(t, 0xa, TcpResult::Refused, 111) else {
        unreachable!()
    };
    o.process = Some(process(42, "curl"));
    Event::TcpOutcome(o)
}

fn curl_drops(store: &Store) -> Vec<(u32, Arc<str>)> {
    let curl = store.commands_matching(|n| n == "curl");
    let sel = Selection {
        commands: Some(curl),
        until_ns: i64::MAX,
        ..Default::default()
    };
    store
        .drops()
        .select(&sel)
        .map(|r| (r.pid, store.command(r.command.unwrap())))
        .collect()
}

#[test]
fn an_orphaned_syn_drop_is_given_to_the_connecting_process_in_either_order() {
    // The drop first (within the connect's flight: SYN at T0 + 0.5 ms, outcome at T0 + 3 ms).
    let mut store = Store::new(Limits::default());
    store.ingest(orphan_syn(T0 + 1_000_000));
    store.ingest(owned_outcome(T0 + 3_000_000));
    assert_eq!(curl_drops(&store), vec![(42, Arc::from("curl"))]);
    let by_pid = Selection {
        pid: Some(42),
        until_ns: i64::MAX,
        ..Default::default()
    };
    assert_eq!(
        store.drops().select(&by_pid).count(),
        1,
        "indexed by pid too"
    );

    // The outcome first.
    let mut store = Store::new(Limits::default());
    store.ingest(owned_outcome(T0 + 3_000_000));
    store.ingest(orphan_syn(T0 + 1_000_000));
    assert_eq!(curl_drops(&store), vec![(42, Arc::from("curl"))]);

    // A drop of the same 4-tuple long after the connect is not its.
    let mut store = Store::new(Limits::default());
    store.ingest(owned_outcome(T0 + 3_000_000));
    store.ingest(orphan_syn(T0 + 60_000_000_000));
    assert!(curl_drops(&store).is_empty());
}

#[test]
fn late_indexed_drops_still_evict_cleanly() {
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(60),
        max_events: 100,
    });
    store.ingest(drop_event(T0, "QUEUE_PURGE"));
    store.ingest(orphan_syn(T0 + 1_000_000));
    store.ingest(owned_outcome(T0 + 3_000_000));
    store.ingest(drop_event(T0 + 5_000_000, "QUEUE_PURGE"));
    store.evict_expired(T0 + 120_000_000_000);
    assert_eq!(store.stats().drops, 0);
    assert!(
        store.commands_matching(|n| n == "curl").is_empty(),
        "names released"
    );
}
