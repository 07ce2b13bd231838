//! TCP retransmissions in the history: one compact record each, and their counts since the
//! start by process and TCP state (`/metrics`).

use super::{Endpoint, Store, intern::Sym, table::Record};
use crate::events::{TcpRetransmit, nanos};

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

impl Store {
    pub(super) fn add_retransmit(&mut self, r: TcpRetransmit) {
        self.totals.retransmit(
            r.process.as_ref().map(|p| &p.process_name),
            r.state_name.unwrap_or("?"),
            r.segments,
        );
        let record = StoredRetransmit {
            time_ns: nanos(r.time),
            owner: r.process.as_ref().and_then(|p| self.owners.intern(p)),
            source: self.endpoints.intern(Endpoint::Ip(r.source.ip())),
            destination: self.endpoints.intern(Endpoint::Ip(r.destination.ip())),
            sport: r.source.port(),
            dport: r.destination.port(),
            state: r.state,
            segments: r.segments,
        };
        self.retransmits.push(record);
        self.enforce_count();
    }

    pub(super) fn pop_retransmit(&mut self) {
        if let Some(r) = self.retransmits.pop_front() {
            self.evicted(crate::events::Kind::Retransmit, r.time_ns);
            if let Some(owner) = r.owner {
                self.owners.release(owner);
            }
            for e in [r.source, r.destination].into_iter().flatten() {
                self.endpoints.release(e);
            }
        }
    }
}
