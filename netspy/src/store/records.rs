//! The compact forms in which events are kept: fixed-size records whose strings and
//! addresses are interned symbols (see `intern.rs`).

use std::net::IpAddr;

use super::{intern::Sym, table::Record};

/// A destination or source: an IP address or a UNIX socket path (interned as one value).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// IPv4 or IPv6 address (the port is kept in the record).
    Ip(IpAddr),
    /// UNIX path, or `@name` for an abstract name.
    Unix(Box<str>),
}

/// How a TCP connect ended, as stored (0 = not known yet / not TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// No outcome seen (not TCP, or still pending).
    Unknown = 0,
    /// Handshake completed.
    Established = 1,
    /// RST from the peer.
    Refused = 2,
    /// SYN retries ran out.
    TimedOut = 3,
    /// Another error (see `outcome_errno`).
    Failed = 4,
    /// Closed by its owner before completing.
    Aborted = 5,
}

/// One connect attempt: 48 bytes, whatever the address family.
#[derive(Clone, Debug)]
pub struct StoredConnection {
    /// Wall-clock ns since the epoch when `connect` returned.
    pub time_ns: i64,
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Process name.
    pub command: Sym,
    /// cgroup id (interned: few distinct values).
    pub cgroup: Option<Sym>,
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
    /// `connect` return value (0 or -errno).
    pub ret: i16,
    /// Address family (`AF_*`).
    pub family: u8,
    /// Socket protocol code (see [`protocol_code`]).
    pub protocol: u8,
    /// Socket type (`SOCK_*`).
    pub socktype: u8,
    /// TCP outcome.
    pub outcome: Outcome,
    /// errno behind a failed outcome.
    pub outcome_errno: u8,
}

const _: () = assert!(size_of::<StoredConnection>() == 48);

/// IP protocol numbers fit a byte except MPTCP (262), stored as 255 (IPPROTO_RAW is never a
/// connect-able socket protocol).
pub fn protocol_code(protocol: u16) -> u8 {
    match protocol {
        262 => 255,
        p => u8::try_from(p).unwrap_or(0),
    }
}

/// The protocol number of a stored code.
pub fn protocol_of_code(code: u8) -> u16 {
    match code {
        255 => 262,
        c => u16::from(c),
    }
}

impl Record for StoredConnection {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn pid(&self) -> u32 {
        self.pid
    }
    fn command(&self) -> Option<Sym> {
        Some(self.command)
    }
}

/// One packet drop.
#[derive(Clone, Debug)]
pub struct StoredDrop {
    /// Wall-clock ns since the epoch.
    pub time_ns: i64,
    /// Owning process id, 0 when unattributed.
    pub pid: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's process name.
    pub command: Option<Sym>,
    /// Owner's cgroup.
    pub cgroup: Option<Sym>,
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

const _: () = assert!(size_of::<StoredDrop>() <= 56);

impl Record for StoredDrop {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn pid(&self) -> u32 {
        self.pid
    }
    fn command(&self) -> Option<Sym> {
        self.command
    }
}

/// Drops of one reason and owner that the kernel counted without full events, in one
/// collection interval.
#[derive(Clone, Debug)]
pub struct StoredSampled {
    /// End of the interval, wall-clock ns since the epoch.
    pub time_ns: i64,
    /// Owning process id, 0 when unattributed.
    pub pid: u32,
    /// Owner's thread name.
    pub command: Option<Sym>,
    /// Drop reason name.
    pub reason: Sym,
    /// How many drops.
    pub count: u64,
}

impl Record for StoredSampled {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn pid(&self) -> u32 {
        self.pid
    }
    fn command(&self) -> Option<Sym> {
        self.command
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
