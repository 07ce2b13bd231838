//! TCP retransmissions.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use netspy_common::{flags, retransmit::RetransmitEvent, tcp::state};
use serde::Serialize;

use crate::events::{FromWire, Happened, KernelNames, Process, ip_addr, tcp_state_name};

/// A TCP segment sent again.
#[derive(Clone, Debug, Serialize)]
pub struct TcpRetransmit {
    /// Wall-clock time of the retransmission.
    pub time: DateTime<Utc>,
    /// Kernel boot-time stamp (ns).
    pub timestamp_ns: u64,
    /// The socket's owner; None when netspy did not see the socket made, connected or
    /// accepted (it predates netspy).
    pub process: Option<Process>,
    /// Local address and port.
    pub source: SocketAddr,
    /// Remote address and port.
    pub destination: SocketAddr,
    /// The socket's TCP state number (`tcp_states.h`).
    pub state: u8,
    /// The state's name (`ESTABLISHED`, `SYN_SENT`, ...).
    pub state_name: Option<&'static str>,
    /// Kernel socket address.
    pub sock: u64,
    /// Segments resent (more than one for a TSO/GSO buffer resent as one); 0 when the hook
    /// cannot tell.
    pub segments: u16,
}

impl TcpRetransmit {
    /// True for a SYN sent again: the connect has had no answer yet.
    pub fn syn(&self) -> bool {
        u32::from(self.state) == state::SYN_SENT
    }
}

impl Happened for TcpRetransmit {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }
}

impl FromWire for TcpRetransmit {
    type Wire = RetransmitEvent;

    fn from_wire(wire: &RetransmitEvent, names: &KernelNames) -> Self {
        let unspecified = std::net::Ipv4Addr::UNSPECIFIED.into();
        let addr =
            |bytes, port| SocketAddr::new(ip_addr(wire.family, bytes).unwrap_or(unspecified), port);
        let state = u8::try_from(wire.state).unwrap_or(0);
        Self {
            time: names.clock.wall(wire.ts_ns),
            timestamp_ns: wire.ts_ns,
            process: (wire.flags & flags::OWNER_KNOWN != 0)
                .then(|| Process::from_task(&wire.owner)),
            source: addr(&wire.saddr, wire.sport),
            destination: addr(&wire.daddr, wire.dport),
            state,
            state_name: tcp_state_name(state),
            sock: wire.sock,
            segments: wire.segments,
        }
    }
}

#[cfg(test)]
mod tests {
    use netspy_common::{family, task::TaskInfo};

    use super::*;

    #[test]
    fn decodes_a_syn_sent_again_with_its_owner() {
        let mut wire = RetransmitEvent {
            owner: TaskInfo::EMPTY,
            ts_ns: 5,
            sock: 0xffff_8880_0000_1000,
            flags: flags::OWNER_KNOWN,
            state: state::SYN_SENT as u16,
            family: family::INET,
            sport: 40000,
            dport: 8888,
            segments: 1,
            _pad: 0,
            saddr: [0; 16],
            daddr: [0; 16],
        };
        wire.owner.tgid = 42;
        wire.saddr[..4].copy_from_slice(&[10, 1, 2, 1]);
        wire.daddr[..4].copy_from_slice(&[10, 1, 2, 2]);
        let r = TcpRetransmit::from_wire(&wire, &KernelNames::default());
        assert!(r.syn());
        assert_eq!(r.state_name, Some("SYN_SENT"));
        assert_eq!(r.source.to_string(), "10.1.2.1:40000");
        assert_eq!(r.destination.to_string(), "10.1.2.2:8888");
        assert_eq!(r.process.map(|p| p.pid), Some(42));
        wire.flags = 0;
        wire.state = state::ESTABLISHED as u16;
        let r = TcpRetransmit::from_wire(&wire, &KernelNames::default());
        assert!(!r.syn() && r.process.is_none());
        assert_eq!(r.state_name, Some("ESTABLISHED"));
    }
}
