use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::DateTime;

use super::*;
use crate::events::{
    ConnectionEvent, Destination, Event, PacketDrop, Process, TcpOutcome, TcpResult,
};

const T0: i64 = 1_700_000_000_000_000_000;

fn process(pid: u32, command: &str) -> Process {
    Process::named(pid, command)
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
        destination_name: None,
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

/// The owners whose name `matches` accepts.
fn named(store: &Store, matches: impl Fn(&str) -> bool) -> Vec<Sym> {
    store.owners_matching(&OwnerFilter {
        name: Some(&matches),
        ..Default::default()
    })
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
    assert_eq!(records[0].outcome, Outcome::Tcp(TcpResult::Refused));
    assert_eq!(records[0].outcome_errno, 111);
    assert_eq!(records[0].sport, 40000);
    assert_eq!(records[0].latency_us, 2500);
    assert_eq!(records[1].outcome, Outcome::Tcp(TcpResult::Established));
    assert!(
        matches!(store.endpoint(records[1].source.unwrap()), Some(Endpoint::Ip(ip)) if ip.to_string() == "10.0.0.5")
    );
}

#[test]
fn count_limit_evicts_oldest_and_releases_names() {
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(3600),
        max_events: 2,
        ..Limits::default()
    });
    store.ingest(connect(T0, 1, "first", 0, 1));
    store.ingest(connect(T0 + 1, 2, "second", 0, 2));
    store.ingest(connect(T0 + 2, 3, "third", 0, 3));
    let names: Vec<_> = store
        .connections()
        .select(&all())
        .map(|r| store.owner_name(Some(r.owner)))
        .collect();
    assert_eq!(names, vec![Arc::from("second"), Arc::from("third")]);
    assert!(
        named(&store, |n| n == "first").is_empty(),
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
        ..Limits::default()
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
    assert_eq!((r.sport, r.dport, r.protocol, r.owner), (1, 2, 6, None));
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
    assert_eq!(
        results,
        vec![
            Outcome::Tcp(TcpResult::Refused),
            Outcome::Tcp(TcpResult::Established)
        ]
    );
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
    assert_eq!(
        results,
        vec![Outcome::Unknown, Outcome::Tcp(TcpResult::Established)]
    );
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
    let sel = Selection {
        owners: Some(named(store, |n| n == "curl")),
        until_ns: i64::MAX,
        ..Default::default()
    };
    store
        .drops()
        .select(&sel)
        .map(|r| (store.pid(r.owner), store.owner_name(r.owner)))
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
        owners: Some(store.owners_matching(&OwnerFilter {
            pid: Some(42),
            ..Default::default()
        })),
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
        ..Limits::default()
    });
    store.ingest(drop_event(T0, "QUEUE_PURGE"));
    store.ingest(orphan_syn(T0 + 1_000_000));
    store.ingest(owned_outcome(T0 + 3_000_000));
    store.ingest(drop_event(T0 + 5_000_000, "QUEUE_PURGE"));
    store.evict_expired(T0 + 120_000_000_000);
    assert_eq!(store.stats().drops, 0);
    assert!(named(&store, |n| n == "curl").is_empty(), "names released");
}

#[test]
fn connection_tallies_equal_a_walk_through_evictions_and_late_outcomes() {
    let mut store = Store::with_bucket_records(
        Limits {
            max_age: Duration::from_secs(3600),
            max_events: 50,
            ..Limits::default()
        },
        12,
    );
    let names = ["curl", "dig", "nginx", "sshd"];
    let mut rng = 12345u64;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let results = [
        TcpResult::Established,
        TcpResult::Refused,
        TcpResult::TimedOut,
        TcpResult::Failed,
        TcpResult::Aborted,
    ];
    for i in 0..400i64 {
        let t = T0 + i * 1000;
        let pid = 1 + next(5) as u32;
        let mut event = connect(t, pid, names[next(4) as usize], 0x100 + i as u64, 443);
        if let Event::Connection(c) = &mut event {
            match next(4) {
                0 => {
                    c.raw_protocol = netspy_common::proto::IPPROTO_UDP;
                    c.return_code = 0;
                    c.sock = 0;
                }
                // Six errnos, more than a tally has slots for: some buckets are walked.
                1 | 2 => c.return_code = -[101, 111, 113, 13, 1, 99][next(6) as usize],
                _ => {}
            }
        }
        store.ingest(event);
        // Outcomes arrive for some connects a little later, some never.
        if i >= 3 && next(3) != 0 {
            let sock = 0x100 + (i - 3) as u64;
            let result = results[next(5) as usize];
            store.ingest(outcome(t + 1, sock, result, 0));
        }
        if i % 10 != 9 {
            continue;
        }
        for since in [0, t - 30_000, t - 45_500] {
            for until in [i64::MAX, t - 10_000, t - 10_500] {
                let curl = |n: &str| n == "curl";
                let not_dig = |n: &str| n != "dig";
                let names: [NameMatch<'_>; 3] = [None, Some(&curl), Some(&not_dig)];
                for pid in [None, Some(1), Some(3)] {
                    for name in names {
                        let owners = (pid.is_some() || name.is_some()).then(|| {
                            store.owners_matching(&OwnerFilter {
                                pid,
                                name,
                                ..Default::default()
                            })
                        });
                        let sel = Selection {
                            owners,
                            since_ns: since,
                            until_ns: until,
                        };
                        let mut walked = TallySum::default();
                        for r in store.connections().select(&sel) {
                            walked.count(r);
                        }
                        assert_eq!(store.connection_tally(&sel), walked, "event {i}: {sel:?}");
                    }
                }
            }
        }
    }
    assert_eq!(store.stats().connections, 50);
}

#[test]
fn totals_count_every_event_through_eviction_and_late_attribution() {
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(60),
        max_events: 2,
        ..Limits::default()
    });
    for i in 0..5 {
        store.ingest(connect(T0 + i, 42, "curl", 0, 443));
    }
    // An orphaned SYN claimed by its sender's outcome, and one nobody claims.
    store.ingest(orphan_syn(T0 + 1_000_000));
    store.ingest(owned_outcome(T0 + 3_000_000));
    store.ingest(drop_event(T0 + 4_000_000, "NO_SOCKET"));
    store.evict_expired(T0 + 120_000_000_000);
    assert_eq!(store.stats().connections, 0, "history evicted");
    let totals = store.totals();
    assert_eq!(
        totals.rows("connect_attempts"),
        [(Arc::from("curl"), "TCP".to_owned(), 5)],
        "EINPROGRESS is not a failed call"
    );
    assert!(totals.rows("connect_failed_calls").is_empty());
    assert_eq!(
        totals.rows("tcp_connect_results"),
        [(Arc::from("curl"), "refused".to_owned(), 1)]
    );
    assert_eq!(
        totals.rows("packet_drops"),
        [
            (Arc::from(UNOWNED), "NO_SOCKET".to_owned(), 1),
            (Arc::from("curl"), "NO_SOCKET".to_owned(), 1),
        ]
    );
    assert_eq!(totals.latency.len(), 1);
    assert_eq!(totals.latency[0].1.count, 1);
}

/// A retransmission at `t` by `pid` from 10.0.0.1:`port`.
fn retransmit(t: i64, pid: u32, port: u16) -> Event {
    let Event::Retransmit(mut r) = crate::query::fixtures::retransmit(
        Some("curl"),
        &format!("10.0.0.1:{port}"),
        "10.0.0.2:443",
        false,
    ) else {
        unreachable!("the fixture is a retransmission")
    };
    r.time = DateTime::from_timestamp_nanos(t);
    r.process = Some(process(pid, "curl"));
    Event::Retransmit(r)
}

#[test]
fn a_kind_kept_whole_is_evicted_by_count_and_age_and_gives_its_names_back() {
    use crate::kinds::retransmit::StoredRetransmit;
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(60),
        max_events: 2,
        ..Limits::default()
    });
    let interned = store.stats().interned_values;
    store.ingest(retransmit(T0, 1, 40001));
    store.ingest(retransmit(T0 + 1, 2, 40002));
    store.ingest(retransmit(T0 + 50_000_000_000, 3, 40003));
    let ports: Vec<u16> = store
        .kind_table::<StoredRetransmit>()
        .select(&all())
        .map(|r| r.sport)
        .collect();
    assert_eq!(ports, [40002, 40003], "the oldest goes first");
    let stats = store.stats();
    assert_eq!(
        (stats.kinds.retransmits, stats.kinds.evicted_retransmits),
        (2, 1)
    );
    assert_eq!((stats.evicted_by_count, stats.evicted_by_age), (1, 0));
    assert!(named(&store, |n| n == "curl").len() == 2, "pid 1 released");
    store.evict_expired(T0 + 70_000_000_000);
    let stats = store.stats();
    assert_eq!(
        (stats.kinds.retransmits, stats.kinds.evicted_retransmits),
        (1, 2)
    );
    assert_eq!(stats.evicted_by_age, 1);
    let gaps = store.gaps().of(Kind::Retransmit);
    assert_eq!(gaps.newest_evicted_ns, Some(T0 + 1));
    store.evict_expired(T0 + 200_000_000_000);
    assert_eq!(
        store.stats().interned_values,
        interned,
        "every owner and address given back"
    );
    let held: Vec<_> = store.stats().by_kind().collect();
    assert!(held.contains(&(
        Kind::Retransmit,
        Kept {
            held: 0,
            evicted: 3
        }
    )));
}

#[test]
fn lookups_are_kept_whole_and_give_their_names_and_answers_back() {
    use crate::{kinds::dns::StoredLookup, query::fixtures::dns_lookup};
    let mut store = Store::new(Limits {
        max_age: Duration::from_secs(60),
        max_events: 1,
        ..Limits::default()
    });
    let interned = store.stats().interned_values;
    store.ingest(dns_lookup("a.example", &["10.0.0.1", "10.0.0.2"]));
    store.ingest(dns_lookup("b.example", &[]));
    let held: Vec<_> = store
        .kind_table::<StoredLookup>()
        .select(&all())
        .map(|r| (store.host_name(r.name), r.return_code))
        .collect();
    assert_eq!(held, [("b.example".into(), -2)], "the oldest goes first");
    let stats = store.stats();
    assert_eq!(
        (stats.kinds.dns_lookups, stats.kinds.evicted_dns_lookups),
        (1, 1)
    );
    assert_eq!(stats.evicted_by_count, 1);
    store.evict_expired(crate::events::nanos(chrono::Utc::now()) + 120_000_000_000);
    assert_eq!(
        store.stats().interned_values,
        interned,
        "every owner, name and answer list given back"
    );
}
