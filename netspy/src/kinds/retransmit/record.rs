//! TCP retransmissions in the history: one compact record each.

use super::TcpRetransmit;
use crate::{
    events::nanos,
    store::{Endpoint, FamilyCounter, FamilySpec, KindRecord, Names, Record, Sym},
};

/// One TCP segment sent again: 32 bytes.
#[derive(Clone, Debug)]
pub struct StoredRetransmit {
    /// Wall-clock ns since the epoch.
    pub time_ns: i64,
    /// The socket's owner, None when netspy did not see the socket made.
    pub owner: Option<Sym>,
    /// Local address.
    pub source: Option<Sym>,
    /// Remote address.
    pub destination: Option<Sym>,
    /// Local port.
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// The socket's TCP state (`SYN_SENT` for a SYN sent again).
    pub state: u8,
    /// Segments resent, 0 when unknown.
    pub segments: u16,
}

const _: () = assert!(size_of::<StoredRetransmit>() == 32);

impl Record for StoredRetransmit {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn owner(&self) -> Option<Sym> {
        self.owner
    }
}

impl KindRecord for StoredRetransmit {
    type Event = TcpRetransmit;

    const FAMILIES: &'static [FamilySpec] = &[
        FamilySpec {
            name: "tcp_retransmits",
            help: "TCP retransmissions (resends: a TSO/GSO buffer resent as one counts once), \
                   by owning process (`(no process known)` when netspy did not see the socket \
                   made) and the socket's state (SYN_SENT: a connect's SYN had no answer; \
                   NEW_SYN_RECV: a listener's SYN-ACK)",
            label: "state",
        },
        FamilySpec {
            name: "tcp_retransmitted_segments",
            help: "TCP segments sent again (what the kernel's TcpRetransSegs counts), by \
                   owning process and the socket's state",
            label: "state",
        },
    ];

    fn new(r: &TcpRetransmit, names: &mut Names) -> Option<Self> {
        Some(Self {
            time_ns: nanos(r.time),
            owner: r.process.as_ref().and_then(|p| names.owner(p)),
            source: names.endpoint(Endpoint::Ip(r.source.ip())),
            destination: names.endpoint(Endpoint::Ip(r.destination.ip())),
            sport: r.source.port(),
            dport: r.destination.port(),
            state: r.state,
            segments: r.segments,
        })
    }

    fn release(&self, names: &mut Names) {
        if let Some(owner) = self.owner {
            names.release_owner(owner);
        }
        for e in [self.source, self.destination].into_iter().flatten() {
            names.release_endpoint(e);
        }
    }

    fn count(r: &TcpRetransmit, counter: &mut FamilyCounter<'_>) {
        let state = r.state_name.unwrap_or("?");
        counter.add(0, state, 1);
        if r.segments > 0 {
            counter.add(1, state, u64::from(r.segments));
        }
    }
}
