//! TCP connect outcomes.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use netspy_common::{flags, tcp::TcpOutcomeEvent, tcp::state};
use serde::Serialize;

use super::{FromWire, Happened, KernelNames, Process, errno_name, ip_addr};

/// How a TCP connect ended: the one vocabulary of TCP results (events, the store, API
/// views and filters, metrics labels).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TcpResult {
    /// The handshake completed.
    Established,
    /// The peer answered with a RST (`ECONNREFUSED`).
    Refused,
    /// No answer before the SYN retries ran out (`ETIMEDOUT`).
    TimedOut,
    /// Another error ended it (`EHOSTUNREACH`, ...): see `error`.
    Failed,
    /// Closed by its owner before the handshake completed.
    Aborted,
}

impl TcpResult {
    /// Every result, in the order of their labels in the metrics.
    pub const ALL: [Self; 5] = [
        Self::Established,
        Self::Refused,
        Self::TimedOut,
        Self::Failed,
        Self::Aborted,
    ];

    /// The result as the API writes it (`established`, `timed_out`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Self::Established => "established",
            Self::Refused => "refused",
            Self::TimedOut => "timed_out",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }

    /// The result an API name stands for ([`Self::label`]'s inverse).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.label() == label)
    }

    /// Words for people: "established", "refused", "timed out", ...
    pub fn describe(self) -> &'static str {
        match self {
            Self::Established => "established",
            Self::Refused => "refused",
            Self::TimedOut => "timed out",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

/// The result of a TCP connect, seen when the socket left `SYN_SENT`.
#[derive(Clone, Debug, Serialize)]
pub struct TcpOutcome {
    /// Wall-clock time of the result.
    pub time: DateTime<Utc>,
    /// Kernel boot-time stamp (ns).
    pub timestamp_ns: u64,
    /// The process that opened the connection (None if netspy did not see it connect).
    pub process: Option<Process>,
    /// Local address and port.
    pub source: SocketAddr,
    /// Remote address and port.
    pub destination: SocketAddr,
    /// The result.
    pub result: TcpResult,
    /// Errno name behind a failure (`ECONNREFUSED`, `ETIMEDOUT`).
    pub error: Option<String>,
    /// The errno number (`sk->sk_err`), 0 when none.
    pub raw_error: u32,
    /// `SYN_SENT` to the result, nanoseconds (None when `SYN_SENT` was not seen).
    pub latency_ns: Option<u64>,
    /// Kernel socket address (joins with the connect event's `sock`).
    pub sock: u64,
}

impl Happened for TcpOutcome {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }
}

impl FromWire for TcpOutcome {
    type Wire = TcpOutcomeEvent;

    fn from_wire(wire: &TcpOutcomeEvent, names: &KernelNames) -> Self {
        let unspecified = std::net::Ipv4Addr::UNSPECIFIED.into();
        let addr =
            |bytes, port| SocketAddr::new(ip_addr(wire.family, bytes).unwrap_or(unspecified), port);
        let error = i32::try_from(wire.error).ok().filter(|&e| e != 0);
        let result = match (wire.newstate, error) {
            (state::ESTABLISHED, _) => TcpResult::Established,
            (_, Some(e)) if e == nix::libc::ECONNREFUSED => TcpResult::Refused,
            (_, Some(e)) if e == nix::libc::ETIMEDOUT => TcpResult::TimedOut,
            (_, Some(_)) => TcpResult::Failed,
            (_, None) => TcpResult::Aborted,
        };
        Self {
            time: names.clock.wall(wire.ts_ns),
            timestamp_ns: wire.ts_ns,
            process: (wire.flags & flags::OWNER_KNOWN != 0)
                .then(|| Process::from_task(&wire.owner)),
            source: addr(&wire.saddr, wire.sport),
            destination: addr(&wire.daddr, wire.dport),
            result,
            error: error.and_then(errno_name),
            raw_error: wire.error,
            latency_ns: (wire.latency_ns != 0).then_some(wire.latency_ns),
            sock: wire.sock,
        }
    }
}

#[cfg(test)]
mod tests {
    use netspy_common::{family, task::TaskInfo};

    use super::*;

    #[test]
    fn labels_are_the_serialized_names_and_parse_back() {
        for result in TcpResult::ALL {
            let json = serde_json::to_value(result).unwrap();
            assert_eq!(json, result.label());
            assert_eq!(TcpResult::from_label(result.label()), Some(result));
            assert_eq!(serde_json::from_value::<TcpResult>(json).unwrap(), result);
        }
        assert_eq!(TcpResult::from_label("unknown"), None);
    }

    fn wire(newstate: u32, error: u32) -> TcpOutcomeEvent {
        let mut saddr = [0; 16];
        saddr[..4].copy_from_slice(&[10, 0, 0, 5]);
        let mut daddr = [0; 16];
        daddr[..4].copy_from_slice(&[93, 184, 216, 34]);
        TcpOutcomeEvent {
            owner: TaskInfo {
                tgid: 9,
                pid: 10,
                uid: 0,
                flags: 0,
                cgroup_id: 1,
                comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
                process: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
                started_ns: 0,
            },
            ts_ns: 1,
            latency_ns: 400_000,
            sock: 0xabc,
            oldstate: state::SYN_SENT,
            newstate,
            error,
            flags: flags::OWNER_KNOWN,
            family: family::INET,
            sport: 51234,
            dport: 443,
            _pad: 0,
            saddr,
            daddr,
        }
    }

    #[test]
    fn decodes_established_with_latency_and_owner() {
        let ev = TcpOutcome::from_wire(&wire(state::ESTABLISHED, 0), &KernelNames::default());
        assert_eq!(ev.result, TcpResult::Established);
        assert_eq!(ev.source.to_string(), "10.0.0.5:51234");
        assert_eq!(ev.destination.to_string(), "93.184.216.34:443");
        assert_eq!(ev.latency_ns, Some(400_000));
        assert_eq!(
            ev.process.as_ref().map(|p| (p.pid, &*p.command)),
            Some((9, "curl"))
        );
        assert_eq!(ev.error, None);
    }

    #[test]
    fn classifies_failures_by_socket_error() {
        let result = |err| TcpOutcome::from_wire(&wire(state::CLOSE, err), &KernelNames::default());
        assert_eq!(result(111).result, TcpResult::Refused);
        assert_eq!(result(111).error.as_deref(), Some("ECONNREFUSED"));
        assert_eq!(result(110).result, TcpResult::TimedOut);
        assert_eq!(result(113).result, TcpResult::Failed);
        assert_eq!(result(113).error.as_deref(), Some("EHOSTUNREACH"));
        assert_eq!(result(0).result, TcpResult::Aborted);
    }

    #[test]
    fn unknown_owner_and_ipv6() {
        let mut w = wire(state::ESTABLISHED, 0);
        w.flags = 0;
        w.latency_ns = 0;
        w.family = family::INET6;
        w.daddr = std::net::Ipv6Addr::LOCALHOST.octets();
        let ev = TcpOutcome::from_wire(&w, &KernelNames::default());
        assert!(ev.process.is_none());
        assert_eq!(ev.latency_ns, None);
        assert_eq!(ev.destination.to_string(), "[::1]:443");
    }
}
