//! `connect(2)` events.

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use netspy_common::{
    connect::{ConnectEvent, connect_flags},
    family,
};
use serde::Serialize;

use super::{KernelNames, Process, c_string, errno_name, ip_addr, protocol_name, socket_type_name};

/// One `connect(2)` call and its result.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionEvent {
    /// Wall-clock time the syscall returned.
    pub time: DateTime<Utc>,
    /// Kernel boot-time stamp (ns) of the return.
    pub timestamp_ns: u64,
    /// The calling process and thread.
    pub process: Process,
    /// File descriptor connected.
    pub fd: u32,
    /// Where to.
    pub destination: Destination,
    /// The socket's local address and port once connected (IP sockets whose call succeeded
    /// or is in progress).
    pub source: Option<SocketAddr>,
    /// Address family number (2 AF_INET, 10 AF_INET6, 1 AF_UNIX).
    pub address_family: u16,
    /// Protocol of the socket as the kernel knows it ("TCP", "UDP", "UNIX", ...), never
    /// guessed from the port.
    pub protocol: String,
    /// Socket type from the kernel socket ("SOCK_STREAM", ...), when the fd was a socket.
    pub socket_type: Option<String>,
    /// Raw `sk_protocol`.
    pub raw_protocol: u16,
    /// Raw `sk_type`.
    pub raw_socktype: u16,
    /// Syscall return value: 0 or a negative errno.
    pub return_code: i64,
    /// Errno name when `return_code` is negative (`ECONNREFUSED`, `EINPROGRESS`).
    pub error: Option<String>,
    /// Time spent in the syscall, nanoseconds, when the hook measured it (the enter + exit
    /// fallback does; the one-program hook sees only the return).
    pub syscall_ns: Option<u64>,
    /// Kernel socket address, joins with TCP outcomes (`sock`).
    pub sock: u64,
    /// The host name this process looked up and got the destination address for
    /// (`getaddrinfo`), when it did; set by [`crate::correlate::HostNames`].
    pub destination_name: Option<std::sync::Arc<str>>,
}

/// A connect destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// IPv4 or IPv6 address and port.
    Ip {
        /// Address.
        ip: IpAddr,
        /// Port.
        port: u16,
    },
    /// A UNIX socket path, or an abstract name (shown with a leading `@`).
    Unix {
        /// Path, or `@name` for the abstract namespace.
        path: String,
    },
    /// AF_UNSPEC (dissolves a UDP association) or a family netspy does not parse.
    Other {
        /// Address family number.
        family: u16,
    },
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip { ip, port } => write!(f, "{}", SocketAddr::new(*ip, *port)),
            Self::Unix { path } => f.write_str(path),
            Self::Other { family: 0 } => f.write_str("AF_UNSPEC"),
            Self::Other { family } => write!(f, "family {family}"),
        }
    }
}

impl super::Happened for ConnectionEvent {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn process(&self) -> Option<&Process> {
        Some(&self.process)
    }
}

impl ConnectionEvent {
    /// The event of a wire record; `path` is the `sun_path` of a UNIX connect's record.
    pub(super) fn decode(wire: &ConnectEvent, path: Option<&[u8]>, names: &KernelNames) -> Self {
        let destination = match wire.family {
            family::INET | family::INET6 => match ip_addr(wire.family, &wire.daddr) {
                Some(ip) => Destination::Ip {
                    ip,
                    port: wire.dport,
                },
                None => Destination::Other {
                    family: wire.family,
                },
            },
            family::UNIX => Destination::Unix {
                path: unix_path(wire.addrlen, path.unwrap_or_default()),
            },
            other => Destination::Other { family: other },
        };
        let protocol = match (wire.family, protocol_name(wire.protocol)) {
            (family::UNIX, _) => "UNIX".to_owned(),
            (_, Some(name)) => name.to_owned(),
            (_, None) if wire.sock == 0 => "unknown".to_owned(),
            (_, None) => format!("IPPROTO_{}", wire.protocol),
        };
        let return_code = wire.ret;
        let error = (return_code < 0)
            .then(|| i32::try_from(-return_code).ok().and_then(errno_name))
            .flatten();
        let source = match (wire.sport, ip_addr(wire.family, &wire.saddr)) {
            (0, _) | (_, None) => None,
            (port, Some(ip)) => Some(SocketAddr::new(ip, port)),
        };
        Self {
            time: names.clock.wall(wire.ts_ns),
            timestamp_ns: wire.ts_ns,
            process: Process::from_task(&wire.task),
            fd: wire.fd,
            destination,
            source,
            address_family: wire.family,
            protocol,
            socket_type: socket_type_name(wire.sock_type).map(str::to_owned),
            raw_protocol: wire.protocol,
            raw_socktype: wire.sock_type,
            return_code,
            error,
            syscall_ns: (wire.flags & connect_flags::SYSCALL_TIME_KNOWN != 0)
                .then_some(wire.syscall_ns),
            sock: wire.sock,
            destination_name: None,
        }
    }
}

/// The `sun_path` the caller passed: `addrlen` bounds it; abstract names (leading NUL) may
/// hold any bytes and are shown as `@name`.
fn unix_path(addrlen: u32, path: &[u8]) -> String {
    let len = (addrlen as usize).saturating_sub(2).min(path.len());
    let path = &path[..len];
    match path.split_first() {
        Some((0, name)) => format!("@{}", String::from_utf8_lossy(name)),
        _ => c_string(path),
    }
}

#[cfg(test)]
mod tests {
    use netspy_common::{connect::UNIX_PATH_LEN, task::TaskInfo};

    use super::*;
    use crate::events::BootClock;

    fn wire(family: u16) -> ConnectEvent {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        ConnectEvent {
            task: TaskInfo {
                tgid: 4312,
                pid: 4313,
                uid: 1000,
                flags: 0,
                cgroup_id: 77,
                comm,
                process: *b"curlmain\0\0\0\0\0\0\0\0",
                started_ns: 5_000_000_000,
            },
            ts_ns: 2_000_000_000,
            syscall_ns: 1500,
            sock: 0xffff_8880_0000_1000,
            ret: 0,
            fd: 3,
            addrlen: 16,
            family,
            dport: 443,
            sock_type: 1,
            protocol: 6,
            daddr: [0; 16],
            saddr: [0; 16],
            sport: 0,
            flags: connect_flags::SYSCALL_TIME_KNOWN,
            _pad: [0; 4],
        }
    }

    fn names() -> KernelNames {
        KernelNames {
            clock: BootClock::from_boot_epoch_ns(1_000_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_ipv4_tcp_connect() {
        let mut w = wire(family::INET);
        w.daddr[..4].copy_from_slice(&[93, 184, 216, 34]);
        let ev = ConnectionEvent::decode(&w, None, &names());
        assert_eq!(ev.destination.to_string(), "93.184.216.34:443");
        assert_eq!(ev.protocol, "TCP");
        assert_eq!(ev.socket_type.as_deref(), Some("SOCK_STREAM"));
        assert_eq!(
            (ev.process.pid, ev.process.tid, ev.process.uid),
            (4312, 4313, 1000)
        );
        assert_eq!(&*ev.process.command, "curl");
        assert_eq!(&*ev.process.process_name, "curlmain");
        assert_eq!(ev.process.cgroup_id, 77);
        assert_eq!(ev.process.started_ns, 5_000_000_000);
        assert_eq!(ev.error, None);
        assert_eq!(ev.time.timestamp(), 3);
        assert_eq!(ev.source, None, "no local port, no source");
        w.saddr[..4].copy_from_slice(&[10, 0, 0, 5]);
        w.sport = 51234;
        let ev = ConnectionEvent::decode(&w, None, &names());
        assert_eq!(ev.source, Some("10.0.0.5:51234".parse().unwrap()));
    }

    #[test]
    fn decodes_ipv6_udp_connect_with_error() {
        let mut w = wire(family::INET6);
        w.daddr = std::net::Ipv6Addr::LOCALHOST.octets();
        w.dport = 53;
        w.sock_type = 2;
        w.protocol = netspy_common::proto::IPPROTO_UDP;
        w.ret = -111;
        let ev = ConnectionEvent::decode(&w, None, &names());
        assert_eq!(ev.destination.to_string(), "[::1]:53");
        assert_eq!(ev.protocol, "UDP");
        assert_eq!(ev.socket_type.as_deref(), Some("SOCK_DGRAM"));
        assert_eq!(ev.error.as_deref(), Some("ECONNREFUSED"));
    }

    #[test]
    fn decodes_unix_path_and_abstract_name() {
        let mut w = wire(family::UNIX);
        w.protocol = 0;
        let mut path = [0u8; UNIX_PATH_LEN];
        path[..13].copy_from_slice(b"/run/x.sock\0\0");
        w.addrlen = 2 + 12;
        assert_eq!(
            ConnectionEvent::decode(&w, Some(&path), &names())
                .destination
                .to_string(),
            "/run/x.sock"
        );

        let mut w = wire(family::UNIX);
        let mut path = [0u8; UNIX_PATH_LEN];
        path[..6].copy_from_slice(b"\0a\0b c");
        w.addrlen = 2 + 6;
        let ev = ConnectionEvent::decode(&w, Some(&path), &names());
        assert_eq!(
            ev.destination,
            Destination::Unix {
                path: "@a\0b c".into()
            }
        );
        assert_eq!(ev.protocol, "UNIX");
    }

    #[test]
    fn non_socket_fd_has_unknown_protocol() {
        let mut w = wire(family::INET);
        w.sock = 0;
        w.sock_type = 0;
        w.protocol = 0;
        w.ret = -88;
        let ev = ConnectionEvent::decode(&w, None, &names());
        assert_eq!(ev.protocol, "unknown");
        assert_eq!(ev.socket_type, None);
        assert_eq!(ev.error.as_deref(), Some("ENOTSOCK"));
    }

    #[test]
    fn syscall_time_is_only_reported_when_measured() {
        let mut w = wire(family::INET);
        assert_eq!(
            ConnectionEvent::decode(&w, None, &names()).syscall_ns,
            Some(1500)
        );
        w.flags = 0;
        assert_eq!(ConnectionEvent::decode(&w, None, &names()).syscall_ns, None);
    }

    #[test]
    fn unspec_family_is_named() {
        let ev = ConnectionEvent::decode(&wire(0), None, &names());
        assert_eq!(ev.destination.to_string(), "AF_UNSPEC");
    }
}
