//! TCP retransmissions in the history: one compact record each.

use super::TcpRetransmit;
use crate::{
    events::nanos,
    store::{Endpoint, Names, Record, Sym},
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

impl StoredRetransmit {
    /// The record of `r`, its owner and addresses interned in `names`.
    pub fn new(r: &TcpRetransmit, names: &mut Names) -> Self {
        Self {
            time_ns: nanos(r.time),
            owner: r.process.as_ref().and_then(|p| names.owner(p)),
            source: names.endpoint(Endpoint::Ip(r.source.ip())),
            destination: names.endpoint(Endpoint::Ip(r.destination.ip())),
            sport: r.source.port(),
            dport: r.destination.port(),
            state: r.state,
            segments: r.segments,
        }
    }

    /// Gives back what the record interned (it is evicted).
    pub fn release(&self, names: &mut Names) {
        if let Some(owner) = self.owner {
            names.release_owner(owner);
        }
        for e in [self.source, self.destination].into_iter().flatten() {
            names.release_endpoint(e);
        }
    }
}
