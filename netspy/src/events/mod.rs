//! Domain events: the kernel's wire structs decoded once, here, into typed values that the
//! rest of netspy (trace output, store, API) works with.
//!
//! Decoding is pure: bytes plus the kernel's names ([`KernelNames`]) in, an [`Event`] out.

mod clock;
mod connect;
mod dns;
mod drop;
mod names;
mod sampled;
mod symbols;
mod tcp;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use netspy_common::{connect::UnixConnectEvent, dns::DnsEvent, retransmit::RetransmitEvent};
use serde::Serialize;

use crate::kinds::retransmit::TcpRetransmit;

pub use self::{
    clock::BootClock,
    connect::{ConnectionEvent, Destination},
    dns::{DnsLookup, eai_name},
    drop::PacketDrop,
    names::{errno_name, protocol_name, socket_type_name, tcp_state_name},
    sampled::{SampledCount, SampledDrops},
    symbols::Kallsyms,
    tcp::{TcpOutcome, TcpResult},
};

/// One thing netspy saw.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A `connect(2)` call returned.
    Connection(ConnectionEvent),
    /// A TCP connect got its result (established, refused, timed out).
    TcpOutcome(TcpOutcome),
    /// The kernel dropped a packet.
    PacketDrop(PacketDrop),
    /// A process looked up a host name.
    Dns(DnsLookup),
    /// A TCP segment was sent again.
    Retransmit(TcpRetransmit),
}

impl Event {
    /// The process the event belongs to, if known (drops may be unattributed).
    pub fn process(&self) -> Option<&Process> {
        match self {
            Self::Connection(e) => Some(&e.process),
            Self::TcpOutcome(e) => e.process.as_ref(),
            Self::PacketDrop(e) => e.process.as_ref(),
            Self::Dns(e) => Some(&e.process),
            Self::Retransmit(e) => e.process.as_ref(),
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Connection(_) => Kind::Connection,
            Self::TcpOutcome(_) => Kind::TcpOutcome,
            Self::PacketDrop(_) => Kind::PacketDrop,
            Self::Dns(_) => Kind::Dns,
            Self::Retransmit(_) => Kind::Retransmit,
        }
    }

    /// Wall-clock time of the event.
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Self::Connection(e) => e.time,
            Self::TcpOutcome(e) => e.time,
            Self::PacketDrop(e) => e.time,
            Self::Dns(e) => e.time,
            Self::Retransmit(e) => e.time,
        }
    }
}

/// The kinds of events, as counted and named everywhere (`/health`, `/metrics`,
/// `/api/programs`). A ring buffer is named by the kind it carries (the connects' ring also
/// carries lookups, told apart by size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `connect(2)` calls (`ConnectEvent`, `UnixConnectEvent`).
    Connection,
    /// TCP connect results (`TcpOutcomeEvent`).
    TcpOutcome,
    /// Packet drops (`DropEvent`).
    PacketDrop,
    /// Host-name lookups (`DnsEvent`).
    Dns,
    /// TCP retransmissions (`RetransmitEvent`).
    Retransmit,
}

impl Kind {
    /// Every kind, in the order they are listed.
    pub const ALL: [Self; 5] = [
        Self::Connection,
        Self::TcpOutcome,
        Self::PacketDrop,
        Self::Dns,
        Self::Retransmit,
    ];

    /// The kind's name in the API and the metrics' `kind` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::TcpOutcome => "tcp_outcome",
            Self::PacketDrop => "packet_drop",
            Self::Dns => "dns",
            Self::Retransmit => "retransmit",
        }
    }
}

/// One number per event kind.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct KindCounts {
    /// Connect events.
    pub connection: u64,
    /// TCP outcome events.
    pub tcp_outcome: u64,
    /// Packet drop events.
    pub packet_drop: u64,
    /// Host-name lookups.
    #[serde(default)]
    pub dns: u64,
    /// TCP retransmissions.
    #[serde(default)]
    pub retransmit: u64,
}

impl KindCounts {
    /// The number of one kind.
    pub fn get(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Connection => self.connection,
            Kind::TcpOutcome => self.tcp_outcome,
            Kind::PacketDrop => self.packet_drop,
            Kind::Dns => self.dns,
            Kind::Retransmit => self.retransmit,
        }
    }

    /// Adds `n` to one kind.
    pub fn add(&mut self, kind: Kind, n: u64) {
        let slot = match kind {
            Kind::Connection => &mut self.connection,
            Kind::TcpOutcome => &mut self.tcp_outcome,
            Kind::PacketDrop => &mut self.packet_drop,
            Kind::Dns => &mut self.dns,
            Kind::Retransmit => &mut self.retransmit,
        };
        *slot += n;
    }

    /// Each kind with its number, in [`Kind::ALL`] order.
    pub fn by_kind(&self) -> impl Iterator<Item = (Kind, u64)> + '_ {
        Kind::ALL.into_iter().map(|kind| (kind, self.get(kind)))
    }

    /// Sum over kinds.
    pub fn total(&self) -> u64 {
        self.by_kind().map(|(_, n)| n).sum()
    }
}

/// The process (and thread) an event belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Process {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Real user id.
    pub uid: u32,
    /// cgroup v2 id (matches the inode of the cgroup's directory).
    pub cgroup_id: u64,
    /// The thread's name (its `comm`: at most 15 bytes, as the kernel keeps it).
    pub command: Arc<str>,
    /// The process's name: its main thread's `comm` (what `ps` shows).
    pub process_name: Arc<str>,
    /// When the process started, nanoseconds since boot (0 where not known): with `pid`,
    /// one process even when its pid is reused.
    pub started_ns: u64,
}

#[cfg(test)]
impl Process {
    /// A single-threaded process `command` (thread and process of one name), cgroup 7.
    pub(crate) fn named(pid: u32, command: &str) -> Self {
        Self {
            pid,
            tid: pid,
            uid: 0,
            cgroup_id: 7,
            command: Arc::from(command),
            process_name: Arc::from(command),
            started_ns: 0,
        }
    }

    /// `curl`, pid 4312, as the README's examples show it.
    pub(crate) fn curl() -> Self {
        Self {
            pid: 4312,
            tid: 4312,
            uid: 0,
            cgroup_id: 1,
            command: Arc::from("curl"),
            process_name: Arc::from("curl"),
            started_ns: 0,
        }
    }
}

impl Process {
    pub(crate) fn from_wire(task: &netspy_common::task::TaskInfo) -> Self {
        Self {
            pid: task.tgid,
            tid: task.pid,
            uid: task.uid,
            cgroup_id: task.cgroup_id,
            command: c_string(&task.comm).into(),
            process_name: c_string(&task.process).into(),
            started_ns: task.started_ns,
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{kind:?} record of {got} bytes, expected {want}")]
pub struct DecodeError {
    /// Ring the record came from.
    pub kind: Kind,
    /// Bytes received.
    pub got: usize,
    /// Bytes expected.
    pub want: usize,
}

/// What decoding needs from the running kernel: drop-reason names (from BTF), kernel
/// symbols (for drop locations) and the boot-time clock.
#[derive(Debug, Default)]
pub struct KernelNames {
    /// `enum skb_drop_reason` value -> name without the `SKB_DROP_REASON_` prefix.
    pub drop_reasons: std::collections::HashMap<u32, Arc<str>>,
    /// Kernel text symbols.
    pub symbols: Kallsyms,
    /// Converts kernel boot-time stamps into wall-clock time.
    pub clock: BootClock,
}

impl KernelNames {
    /// Decodes one record of the ring buffer of `kind`.
    pub fn decode(&self, kind: Kind, bytes: &[u8]) -> Result<Event, DecodeError> {
        Ok(match kind {
            // The connects' ring also carries lookups; each type has its own size.
            Kind::Dns | Kind::Connection if bytes.len() == size_of::<DnsEvent>() => {
                Event::Dns(DnsLookup::decode(&read_wire(kind, bytes)?, self))
            }
            Kind::Dns => {
                return Err(DecodeError {
                    kind,
                    got: bytes.len(),
                    want: size_of::<DnsEvent>(),
                });
            }
            // A UNIX connect's record is the longer one, with the path.
            Kind::Connection if bytes.len() >= size_of::<UnixConnectEvent>() => {
                let wire: UnixConnectEvent = read_wire(kind, bytes)?;
                Event::Connection(ConnectionEvent::decode(
                    &wire.connect,
                    Some(&wire.path),
                    self,
                ))
            }
            Kind::Connection => Event::Connection(ConnectionEvent::decode(
                &read_wire(kind, bytes)?,
                None,
                self,
            )),
            Kind::TcpOutcome => {
                Event::TcpOutcome(TcpOutcome::decode(&read_wire(kind, bytes)?, self))
            }
            Kind::PacketDrop => {
                Event::PacketDrop(PacketDrop::decode(&read_wire(kind, bytes)?, self))
            }
            Kind::Retransmit => Event::Retransmit(TcpRetransmit::decode(
                &read_wire::<RetransmitEvent>(kind, bytes)?,
                self,
            )),
        })
    }

    /// The name of a drop reason, or its number when this kernel's BTF does not name it.
    pub fn drop_reason(&self, reason: u32) -> Arc<str> {
        self.drop_reasons
            .get(&reason)
            .cloned()
            .unwrap_or_else(|| format!("UNKNOWN_{reason}").into())
    }
}

/// Copies a wire struct out of a ring-buffer record (records are not aligned for `T`).
fn read_wire<T: aya::Pod>(kind: Kind, bytes: &[u8]) -> Result<T, DecodeError> {
    let want = size_of::<T>();
    if bytes.len() < want {
        return Err(DecodeError {
            kind,
            got: bytes.len(),
            want,
        });
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes, and T: Pod is valid for any bits.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A NUL-terminated (or full) byte string as UTF-8, lossy.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// An address out of a 16-byte wire field for `family` (IPv4 in the first 4 bytes).
pub(crate) fn ip_addr(family: u16, bytes: &[u8; 16]) -> Option<std::net::IpAddr> {
    use netspy_common::family;
    match family {
        family::INET => {
            Some(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into())
        }
        family::INET6 => Some(std::net::Ipv6Addr::from(*bytes).into()),
        _ => None,
    }
}

/// An event time as nanoseconds since the epoch (instants past 2262 as the largest).
pub fn nanos(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_wire_rejects_truncated_record() {
        let err =
            read_wire::<netspy_common::task::TaskInfo>(Kind::Connection, &[0; 39]).unwrap_err();
        assert_eq!(
            err,
            DecodeError {
                kind: Kind::Connection,
                got: 39,
                want: 64
            }
        );
    }

    #[test]
    fn kinds_are_listed_in_their_declaration_order() {
        // Counters are indexed by `kind as usize`.
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind:?}");
        }
    }

    #[test]
    fn c_string_stops_at_nul_and_keeps_full_buffers() {
        assert_eq!(c_string(b"curl\0\0junk"), "curl");
        assert_eq!(c_string(b"0123456789abcdef"), "0123456789abcdef");
    }

    #[test]
    fn unnamed_drop_reason_says_its_number() {
        let names = KernelNames::default();
        assert_eq!(&*names.drop_reason(77), "UNKNOWN_77");
    }
}
