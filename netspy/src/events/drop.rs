//! Packet drops.

use std::{net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};
use netspy_common::{drop::DropEvent, flags};
use serde::Serialize;

use super::{FromWire, Happened, KernelNames, Process, ip_addr, protocol_name};

/// A packet the kernel dropped, with its reason named by the running kernel.
#[derive(Clone, Debug, Serialize)]
pub struct PacketDrop {
    /// Wall-clock time of the drop.
    pub time: DateTime<Utc>,
    /// Kernel boot-time stamp (ns).
    pub timestamp_ns: u64,
    /// Owner of the packet's socket; None when the packet had no socket netspy knows
    /// (e.g. a SYN to a closed port, or forwarded traffic): "unattributed".
    pub process: Option<Process>,
    /// `enum skb_drop_reason` name without its prefix (`NO_SOCKET`, `NETFILTER_DROP`).
    pub drop_reason: Arc<str>,
    /// Raw reason number on this kernel.
    pub drop_reason_code: u32,
    /// Kernel function that dropped it (`tcp_v4_rcv+0x91`).
    pub location: String,
    /// Ethertype (`0x0800` IPv4, `0x86dd` IPv6).
    pub ethertype: u16,
    /// L4 protocol name ("TCP", "UDP", "ICMP", or the number).
    pub protocol: Option<String>,
    /// L4 protocol number from the IP header (0 when not IP).
    pub raw_protocol: u16,
    /// Source address (None when not IP).
    pub source_ip: Option<IpAddr>,
    /// Source port (TCP/UDP).
    pub source_port: Option<u16>,
    /// Destination address.
    pub destination_ip: Option<IpAddr>,
    /// Destination port (TCP/UDP).
    pub destination_port: Option<u16>,
    /// Kernel socket address, 0 without one.
    pub sock: u64,
}

#[cfg(test)]
impl PacketDrop {
    /// An unattributed NO_SOCKET drop of a TCP packet from `src` to `dst` at `time`, as
    /// loopback shows a SYN refused by a closed port.
    pub(crate) fn tcp_no_socket(
        time: DateTime<Utc>,
        src: std::net::SocketAddr,
        dst: std::net::SocketAddr,
    ) -> Self {
        Self {
            time,
            timestamp_ns: 0,
            process: None,
            drop_reason: Arc::from("NO_SOCKET"),
            drop_reason_code: 3,
            location: "tcp_v4_rcv+0x91".into(),
            ethertype: 0x800,
            protocol: Some("TCP".into()),
            raw_protocol: 6,
            source_ip: Some(src.ip()),
            source_port: Some(src.port()),
            destination_ip: Some(dst.ip()),
            destination_port: Some(dst.port()),
            sock: 0,
        }
    }
}

impl Happened for PacketDrop {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }
}

impl FromWire for PacketDrop {
    type Wire = DropEvent;

    fn from_wire(wire: &DropEvent, names: &KernelNames) -> Self {
        let is_ip = ip_addr(wire.family, &wire.saddr).is_some();
        let has_ports = is_ip && wire.flags & flags::PORTS_KNOWN != 0;
        Self {
            time: names.clock.wall(wire.ts_ns),
            timestamp_ns: wire.ts_ns,
            process: (wire.flags & flags::OWNER_KNOWN != 0)
                .then(|| Process::from_task(&wire.owner)),
            drop_reason: names.drop_reason(wire.reason),
            drop_reason_code: wire.reason,
            location: names.symbols.resolve(wire.location),
            ethertype: wire.ethertype,
            protocol: is_ip.then(|| {
                protocol_name(wire.protocol)
                    .map_or_else(|| wire.protocol.to_string(), str::to_owned)
            }),
            raw_protocol: if is_ip { wire.protocol } else { 0 },
            source_ip: ip_addr(wire.family, &wire.saddr),
            source_port: has_ports.then_some(wire.sport),
            destination_ip: ip_addr(wire.family, &wire.daddr),
            destination_port: has_ports.then_some(wire.dport),
            sock: wire.sock,
        }
    }
}

#[cfg(test)]
mod tests {
    use netspy_common::{family, task::TaskInfo};

    use super::*;
    use crate::events::Kallsyms;

    fn wire() -> DropEvent {
        let mut saddr = [0; 16];
        saddr[..4].copy_from_slice(&[10, 201, 1, 1]);
        let mut daddr = [0; 16];
        daddr[..4].copy_from_slice(&[10, 201, 1, 2]);
        DropEvent {
            owner: TaskInfo::EMPTY,
            ts_ns: 5,
            location: 0xffffffff819003e8,
            sock: 0,
            reason: 12,
            flags: flags::PORTS_KNOWN,
            ethertype: 0x0800,
            family: family::INET,
            protocol: 17,
            sport: 40000,
            dport: 9999,
            _pad: [0; 6],
            saddr,
            daddr,
        }
    }

    fn names() -> KernelNames {
        KernelNames {
            drop_reasons: [(12, Arc::from("NETFILTER_DROP"))].into_iter().collect(),
            symbols: Kallsyms::parse("ffffffff81900000 t nft_do_chain\n"),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_unattributed_netfilter_drop() {
        let ev = PacketDrop::from_wire(&wire(), &names());
        assert_eq!(&*ev.drop_reason, "NETFILTER_DROP");
        assert_eq!(ev.location, "nft_do_chain+0x3e8");
        assert_eq!(ev.protocol.as_deref(), Some("UDP"));
        assert_eq!(ev.source_ip, Some("10.201.1.1".parse().unwrap()));
        assert_eq!(
            (ev.source_port, ev.destination_port),
            (Some(40000), Some(9999))
        );
        assert_eq!(ev.destination_ip, Some("10.201.1.2".parse().unwrap()));
        assert!(ev.process.is_none());
    }

    #[test]
    fn a_later_fragment_has_a_protocol_but_no_ports() {
        let mut w = wire();
        w.flags = 0; // the kernel read no transport header
        let ev = PacketDrop::from_wire(&w, &names());
        assert_eq!(ev.protocol.as_deref(), Some("UDP"));
        assert_eq!((ev.source_port, ev.destination_port), (None, None));
    }

    #[test]
    fn decodes_attributed_non_ip_drop() {
        let mut w = wire();
        w.flags = flags::OWNER_KNOWN;
        w.owner.tgid = 42;
        w.family = 0;
        w.ethertype = 0x0806;
        w.reason = 200;
        let ev = PacketDrop::from_wire(&w, &names());
        assert_eq!(ev.process.map(|p| p.pid), Some(42));
        assert_eq!(&*ev.drop_reason, "UNKNOWN_200");
        assert_eq!(
            (ev.protocol, ev.source_ip, ev.source_port),
            (None, None, None)
        );
    }
}
