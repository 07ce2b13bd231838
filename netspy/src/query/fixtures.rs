//! Events the query layer's unit tests store.

use chrono::DateTime;

use crate::events::{ConnectionEvent, Destination, Event, Process};

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
    })
}
