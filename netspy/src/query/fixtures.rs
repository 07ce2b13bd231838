//! Events the query layer's unit tests store.

use chrono::DateTime;

use crate::events::{ConnectionEvent, Destination, DnsLookup, Event, Process, TcpRetransmit};

/// A UDP connect at `t` (ns) from `pid` named `command` to 10.0.0.1:`port`.
pub fn udp_connect(t: i64, pid: u32, command: &str, port: u16) -> Event {
    Event::Connection(ConnectionEvent {
        time: DateTime::from_timestamp_nanos(t),
        timestamp_ns: 0,
        process: Process::named(pid, command),
        fd: 3,
        source: None,
        destination: Destination::Ip {
            ip: std::net::Ipv4Addr::new(10, 0, 0, 1).into(),
            port,
        },
        address_family: 2,
        protocol: "UDP".into(),
        socket_type: Some("SOCK_DGRAM".into()),
        raw_protocol: 17,
        raw_socktype: 2,
        return_code: 0,
        error: None,
        syscall_ns: None,
        sock: 0,
        destination_name: None,
    })
}

/// A UDP connect now from `process` to `to`.
pub fn connection_to(process: Process, to: std::net::SocketAddr) -> Event {
    let mut event = udp_connect(
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        0,
        "x",
        0,
    );
    if let Event::Connection(c) = &mut event {
        c.process = process;
        c.destination = Destination::Ip {
            ip: to.ip(),
            port: to.port(),
        };
    }
    event
}

/// A retransmission now on `source` -> `destination` (`ip:port`), of a SYN or of data on an
/// established connection, owned by curl (pid 4312) when `owner` names it so, or unowned.
pub fn retransmit(owner: Option<&str>, source: &str, destination: &str, syn: bool) -> Event {
    let state: u8 = if syn { 2 } else { 1 };
    Event::Retransmit(TcpRetransmit {
        time: chrono::Utc::now(),
        timestamp_ns: 0,
        process: owner.map(|name| Process::named(4312, name)),
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
        state,
        state_name: crate::events::tcp_state_name(state),
        sock: 1,
    })
}

/// A lookup now by curl (pid 4312) of `name`, answered with `answers` (an error when none).
pub fn dns_lookup(name: &str, answers: &[&str]) -> Event {
    let answers: Vec<std::net::IpAddr> = answers.iter().filter_map(|a| a.parse().ok()).collect();
    let failed = answers.is_empty();
    Event::Dns(DnsLookup {
        time: chrono::Utc::now(),
        timestamp_ns: 0,
        process: Process::curl(),
        name: name.into(),
        name_cut: false,
        answers,
        more_answers: 0,
        return_code: if failed { -2 } else { 0 },
        error: failed.then_some("EAI_NONAME"),
        latency_ns: 1_500_000,
    })
}
