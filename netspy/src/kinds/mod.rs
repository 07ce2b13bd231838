//! The event kinds, registered here once each. A kind kept whole in a directory of its own
//! (`retransmit/`: its event decoded from the kernel's wire struct, its record in the
//! history, its answers and their text) is one line below; the layers (`events`, `store`,
//! `query`, `mcp`) hold what every kind shares and take a kind's pieces from its directory.
//! The kinds built before that still sit in the layers' files.

pub mod retransmit;

use crate::{
    events::{
        ConnectionEvent, DnsLookup, PacketDrop, TcpOutcome, connect_record, event_kinds,
        wire_record,
    },
    probes::ProbeSpec,
    store::kind_tables,
};

/// The probes of the kinds kept whole.
pub const PROBES: &[ProbeSpec] = &[retransmit::PROBE];

event_kinds! {
    /// `connect(2)` calls (`ConnectEvent`, `UnixConnectEvent`).
    Connection(connection): ConnectionEvent => connect_record,
    /// TCP connect results: established, refused, timed out (`TcpOutcomeEvent`).
    TcpOutcome(tcp_outcome): TcpOutcome => wire_record::<TcpOutcome>,
    /// Packet drops (`DropEvent`).
    PacketDrop(packet_drop): PacketDrop => wire_record::<PacketDrop>,
    /// Host-name lookups (`DnsEvent`, carried by the connects' ring).
    Dns(dns): DnsLookup => connect_record,
    /// TCP segments sent again (`RetransmitEvent`).
    Retransmit(retransmit): retransmit::TcpRetransmit => wire_record::<retransmit::TcpRetransmit>,
}

kind_tables! {
    /// TCP retransmissions.
    Retransmit: retransmit::StoredRetransmit => (retransmits, evicted_retransmits),
}
