//! The compact forms in which events are kept: fixed-size records whose strings and
//! addresses are interned symbols (see `intern.rs`).

use netspy_common::proto::{IPPROTO_MPTCP, IPPROTO_RAW, IPPROTO_TCP};
use std::{net::IpAddr, sync::Arc};

use super::{intern::Sym, table::Record};
use crate::events::TcpResult;

/// A destination or source: an IP address or a UNIX socket path (interned as one value).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// IPv4 or IPv6 address (the port is kept in the record).
    Ip(IpAddr),
    /// UNIX path, or `@name` for an abstract name.
    Unix(Box<str>),
    /// An IP address the connecting process had looked up by this host name.
    Host(IpAddr, Arc<str>),
}

impl Endpoint {
    /// The host name the address was looked up by, when it was.
    pub fn host_name(&self) -> Option<&Arc<str>> {
        match self {
            Self::Host(_, name) => Some(name),
            Self::Ip(_) | Self::Unix(_) => None,
        }
    }
}

/// How a connect ended, as stored (one byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A TCP (or MPTCP) connect with no result seen yet (still pending, lost, or the call
    /// failed before a SYN went out).
    Unknown,
    /// Not a protocol with a handshake (UDP, UNIX, ...): no result to wait for.
    NoHandshake,
    /// The TCP result (the errno behind a failure is in `outcome_errno`).
    Tcp(TcpResult),
}

const _: () = assert!(size_of::<Outcome>() == 1);

impl Outcome {
    /// What a connect of a socket of `protocol` (`sk_protocol`) has before any result:
    /// TCP and MPTCP wait for their handshake's; other protocols have none.
    pub fn before_result(protocol: u16) -> Self {
        match protocol {
            IPPROTO_TCP | IPPROTO_MPTCP => Self::Unknown,
            _ => Self::NoHandshake,
        }
    }

    /// The result as the API reports it: a connect without a handshake has none known.
    pub fn reported(self) -> Self {
        match self {
            Self::NoHandshake => Self::Unknown,
            other => other,
        }
    }

    /// The TCP result, when one is known.
    pub fn result(self) -> Option<TcpResult> {
        match self {
            Self::Tcp(result) => Some(result),
            Self::Unknown | Self::NoHandshake => None,
        }
    }

    /// True for a connect whose handshake completed.
    pub fn established(self) -> bool {
        self == Self::Tcp(TcpResult::Established)
    }
}

/// One connect attempt: 32 bytes, whatever the address family.
#[derive(Clone, Debug)]
pub struct StoredConnection {
    /// Wall-clock ns since the epoch when `connect` returned.
    pub time_ns: i64,
    /// Who connected (see `owners.rs`).
    pub owner: Sym,
    /// Destination address or path.
    pub destination: Option<Sym>,
    /// Local address, once the TCP outcome told it.
    pub source: Option<Sym>,
    /// SYN to outcome, microseconds (0 = unknown).
    pub latency_us: u32,
    /// Destination port.
    pub dport: u16,
    /// Local port, once known.
    pub sport: u16,
    /// errno of a failed `connect` (it returned minus this), 0 when it returned 0.
    pub call_errno: u8,
    /// Family, protocol and type of the socket (see [`SocketKinds`]).
    pub kind: u8,
    /// TCP outcome.
    pub outcome: Outcome,
    /// errno behind a failed outcome.
    pub outcome_errno: u8,
}

const _: () = assert!(size_of::<StoredConnection>() == 32);

/// `EINPROGRESS` as a stored errno.
const EINPROGRESS: u8 = netspy_common::errno::EINPROGRESS as u8;

impl StoredConnection {
    /// What `connect` returned: 0, or minus an errno.
    pub fn return_code(&self) -> i32 {
        -i32::from(self.call_errno)
    }

    /// The errno of a `connect` that failed outright (a negative return other than
    /// EINPROGRESS); None when it connected or is connecting.
    pub fn failed_call_errno(&self) -> Option<u8> {
        (self.call_errno != 0 && self.call_errno != EINPROGRESS).then_some(self.call_errno)
    }
}

/// A socket's address family, protocol and type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketKind {
    /// `AF_*`.
    pub family: u16,
    /// `IPPROTO_*` (`sk_protocol`).
    pub protocol: u16,
    /// `SOCK_*`.
    pub socktype: u16,
}

impl SocketKind {
    /// The protocol as people name it: "TCP", "UDP", "UNIX" (any UNIX socket), or
    /// `IPPROTO_<n>` for a number without a name.
    pub fn protocol_label(&self) -> String {
        match (self.family, crate::events::protocol_name(self.protocol)) {
            (1, _) => "UNIX".to_owned(),
            (_, Some(name)) => name.to_owned(),
            (_, None) => format!("IPPROTO_{}", self.protocol),
        }
    }
}

/// The few socket kinds a host connects with, numbered in a byte. Code 0 is the all-zero
/// kind; should 255 distinct kinds ever be seen, later ones are stored as it.
pub struct SocketKinds(Vec<SocketKind>);

impl Default for SocketKinds {
    fn default() -> Self {
        Self(vec![SocketKind::default()])
    }
}

impl SocketKinds {
    /// The code of a kind, numbering it when new.
    pub fn code(&mut self, kind: SocketKind) -> u8 {
        if let Some(i) = self.0.iter().position(|k| *k == kind) {
            return u8::try_from(i).unwrap_or(0);
        }
        match u8::try_from(self.0.len()) {
            Ok(code) => {
                self.0.push(kind);
                code
            }
            Err(_) => 0,
        }
    }

    /// The kind of a code.
    pub fn get(&self, code: u8) -> SocketKind {
        self.0.get(usize::from(code)).copied().unwrap_or_default()
    }
}

impl Record for StoredConnection {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn owner(&self) -> Option<Sym> {
        Some(self.owner)
    }
}

/// IP protocol numbers fit a byte except MPTCP (262), stored as `IPPROTO_RAW`'s 255 (never
/// the protocol of a socket that connects).
pub fn protocol_code(protocol: u16) -> u8 {
    match protocol {
        IPPROTO_MPTCP => MPTCP_CODE,
        p => u8::try_from(p).unwrap_or(0),
    }
}

/// The stored code of MPTCP.
const MPTCP_CODE: u8 = IPPROTO_RAW as u8;

/// The protocol number of a stored code.
pub fn protocol_of_code(code: u8) -> u16 {
    match code {
        MPTCP_CODE => IPPROTO_MPTCP,
        c => u16::from(c),
    }
}

/// One packet drop.
#[derive(Clone, Debug)]
pub struct StoredDrop {
    /// Wall-clock ns since the epoch.
    pub time_ns: i64,
    /// Who the packet belonged to, None when unattributed.
    pub owner: Option<Sym>,
    /// Drop reason name.
    pub reason: Sym,
    /// Kernel location (`tcp_v4_rcv+0x91`).
    pub location: Sym,
    /// Source address.
    pub source: Option<Sym>,
    /// Destination address.
    pub destination: Option<Sym>,
    /// Reason number on this kernel.
    pub reason_code: u16,
    /// Source port (0 when none).
    pub sport: u16,
    /// Destination port (0 when none).
    pub dport: u16,
    /// Ethertype.
    pub ethertype: u16,
    /// L4 protocol number (0 when not IP).
    pub protocol: u8,
    /// True when the packet had TCP/UDP ports.
    pub has_ports: bool,
}

const _: () = assert!(size_of::<StoredDrop>() <= 40);

impl Record for StoredDrop {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn owner(&self) -> Option<Sym> {
        self.owner
    }
}

/// Drops of one reason and owner that the kernel counted without full events, in one
/// collection interval.
#[derive(Clone, Debug)]
pub struct StoredSampled {
    /// End of the interval, wall-clock ns since the epoch.
    pub time_ns: i64,
    /// Who the packets belonged to (pid, thread and process name only), None when unattributed.
    pub owner: Option<Sym>,
    /// Drop reason name.
    pub reason: Sym,
    /// How many drops.
    pub count: u64,
}

impl Record for StoredSampled {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn owner(&self) -> Option<Sym> {
        self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_codes_round_trip() {
        for p in [0u16, 6, 17, 132, 262] {
            assert_eq!(protocol_of_code(protocol_code(p)), p);
        }
    }
}
