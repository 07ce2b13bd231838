//! Domain events: the kernel's wire structs decoded once into typed values that the rest of
//! netspy (trace output, store, API) works with: here for the layers' kinds, in its
//! `event.rs` for a kind kept whole, each through its entry in [`event_kinds!`].
//!
//! Decoding is pure: bytes plus the kernel's names ([`KernelNames`]) in, an [`Event`] out.

mod clock;
mod connect;
mod drop;
mod names;
mod sampled;
mod symbols;
mod tcp;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use netspy_common::{connect::UnixConnectEvent, dns::DnsEvent};
use serde::Serialize;

use crate::kinds::dns::DnsLookup;

pub use crate::kinds::{Event, Kind, KindCounts};

pub use self::{
    clock::BootClock,
    connect::{ConnectionEvent, Destination},
    drop::PacketDrop,
    names::{errno_name, protocol_name, socket_type_name, tcp_state_name},
    sampled::{SampledCount, SampledDrops},
    symbols::Kallsyms,
    tcp::{TcpOutcome, TcpResult},
};

/// What every event has: when it happened and whose it is.
pub trait Happened {
    /// Wall-clock time of the event.
    fn time(&self) -> DateTime<Utc>;
    /// The process the event belongs to, if known (drops may be unattributed).
    fn process(&self) -> Option<&Process>;
}

/// Declares the event kinds (see `crate::kinds`, which invokes it once): [`Event`] with one
/// variant per kind, [`Kind`] and [`KindCounts`], and how each kind's ring records decode.
/// Each entry: the kind's doc, `Variant(field): EventType => decoder`, where `field` is its
/// name in the API and the metrics and `decoder` turns one ring record into an [`Event`].
macro_rules! event_kinds {
    ($($(#[doc = $doc:literal])+ $variant:ident($field:ident): $event:ty => $decode:path,)+) => {
        /// One thing netspy saw.
        #[derive(Clone, Debug, serde::Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum Event {
            $($(#[doc = $doc])+ $variant($event),)+
        }

        $(impl From<$event> for Event {
            fn from(event: $event) -> Self {
                Self::$variant(event)
            }
        })+

        /// The event's one line of text (`netspy trace`), after its time.
        impl std::fmt::Display for Event {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Self::$variant(e) => std::fmt::Display::fmt(e, f),)+
                }
            }
        }

        impl Event {
            /// The process the event belongs to, if known (drops may be unattributed).
            pub fn process(&self) -> Option<&$crate::events::Process> {
                match self {
                    $(Self::$variant(e) => $crate::events::Happened::process(e),)+
                }
            }

            /// The event's kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Self::$variant(_) => Kind::$variant,)+
                }
            }

            /// Wall-clock time of the event.
            pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
                match self {
                    $(Self::$variant(e) => $crate::events::Happened::time(e),)+
                }
            }
        }

        /// The kinds of events, as counted and named everywhere (`/health`, `/metrics`,
        /// `/api/programs`). A ring buffer is named by the kind it carries (the connects'
        /// ring also carries lookups, told apart by size).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Kind {
            /// Every kind, in the order they are listed.
            pub const ALL: [Self; [$(Self::$variant),+].len()] = [$(Self::$variant),+];

            /// Whether `parts` name every kind exactly once (for compile-time checks that
            /// every kind has one place).
            pub const fn each_once(parts: &[&[Self]]) -> bool {
                let mut seen = [0u8; Self::ALL.len()];
                let mut p = 0;
                while p < parts.len() {
                    let mut k = 0;
                    while k < parts[p].len() {
                        seen[parts[p][k] as usize] += 1;
                        k += 1;
                    }
                    p += 1;
                }
                let mut i = 0;
                while i < seen.len() {
                    if seen[i] != 1 {
                        return false;
                    }
                    i += 1;
                }
                true
            }

            /// The kind's name in the API and the metrics' `kind` label.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($field),)+
                }
            }

            /// Decodes one record of this kind's ring buffer.
            pub(crate) fn decode(
                self,
                names: &$crate::events::KernelNames,
                bytes: &[u8],
            ) -> Result<Event, $crate::events::DecodeError> {
                match self {
                    $(Self::$variant => $decode(names, self, bytes),)+
                }
            }
        }

        /// One number per event kind.
        #[derive(
            Clone,
            Copy,
            Debug,
            Default,
            PartialEq,
            Eq,
            serde::Serialize,
            serde::Deserialize,
            schemars::JsonSchema,
        )]
        pub struct KindCounts {
            $($(#[doc = $doc])+ #[serde(default)] pub $field: u64,)+
        }

        impl KindCounts {
            /// The number of one kind.
            pub fn get(&self, kind: Kind) -> u64 {
                match kind {
                    $(Kind::$variant => self.$field,)+
                }
            }

            /// Adds `n` to one kind.
            pub fn add(&mut self, kind: Kind, n: u64) {
                let slot = match kind {
                    $(Kind::$variant => &mut self.$field,)+
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
    };
}
pub(crate) use event_kinds;

/// An event decoded from one ring record of its own wire struct.
pub trait FromWire: Sized {
    /// The wire struct the kernel writes.
    type Wire: aya::Pod;
    /// Decodes one record.
    fn from_wire(wire: &Self::Wire, names: &KernelNames) -> Self;
}

/// Decodes a record of a ring that carries only `E`'s wire struct.
pub(crate) fn wire_record<E: FromWire + Into<Event>>(
    names: &KernelNames,
    kind: Kind,
    bytes: &[u8],
) -> Result<Event, DecodeError> {
    Ok(E::from_wire(&read_wire(kind, bytes)?, names).into())
}

/// Decodes a record of the connects' ring, which carries three wire structs told apart by
/// size: a lookup, a UNIX connect (the longer, with its path) and any other connect.
pub(crate) fn connect_record(
    names: &KernelNames,
    kind: Kind,
    bytes: &[u8],
) -> Result<Event, DecodeError> {
    Ok(match kind {
        _ if bytes.len() == size_of::<DnsEvent>() => {
            Event::Dns(DnsLookup::from_wire(&read_wire(kind, bytes)?, names))
        }
        Kind::Dns => {
            return Err(DecodeError {
                kind,
                got: bytes.len(),
                want: size_of::<DnsEvent>(),
            });
        }
        _ if bytes.len() >= size_of::<UnixConnectEvent>() => {
            let wire: UnixConnectEvent = read_wire(kind, bytes)?;
            Event::Connection(ConnectionEvent::decode(
                &wire.connect,
                Some(&wire.path),
                names,
            ))
        }
        _ => Event::Connection(ConnectionEvent::decode(
            &read_wire(kind, bytes)?,
            None,
            names,
        )),
    })
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
    pub(crate) fn from_task(task: &netspy_common::task::TaskInfo) -> Self {
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
        kind.decode(self, bytes)
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
pub(crate) fn c_string(bytes: &[u8]) -> String {
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
