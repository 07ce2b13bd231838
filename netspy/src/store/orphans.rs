//! Owners for drops of packets that had lost their socket: loopback and veth orphan an skb
//! on transmit, so a SYN refused by a closed port is dropped (NO_SOCKET) with no socket to
//! attribute it by. Its sender is known once the connect's TCP outcome tells the local address
//! and port: an unattributed TCP drop with that 4-tuple, dropped while the connect was in
//! flight, belongs to the connecting process, whichever of the two arrives first.

use std::{collections::HashMap, net::IpAddr};

use super::join::SLACK_NS;
use crate::events::Process;

/// How long either side waits for the other, ns.
const TTL_NS: i64 = 10_000_000_000;
/// At most this many of each are remembered.
const MAX: usize = 16_384;

/// A packet's addresses and ports, sender first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Sender address.
    pub src: IpAddr,
    /// Sender port.
    pub sport: u16,
    /// Receiver address.
    pub dst: IpAddr,
    /// Receiver port.
    pub dport: u16,
}

/// A connect in flight from a known process: SYN time to outcome time.
#[derive(Clone, Debug)]
struct Sender {
    process: Process,
    from_ns: i64,
    until_ns: i64,
}

impl Sender {
    fn covers(&self, time_ns: i64) -> bool {
        time_ns >= self.from_ns.saturating_sub(SLACK_NS)
            && time_ns <= self.until_ns.saturating_add(SLACK_NS)
    }
}

/// Drops waiting for a sender and senders waiting for drops.
#[derive(Default)]
pub struct Orphans {
    waiting: HashMap<Tuple, Vec<(u64, i64)>>,
    senders: HashMap<Tuple, Sender>,
}

impl Orphans {
    /// An unattributed TCP drop `seq` at `time_ns`: its sender if already known.
    pub fn drop(&mut self, tuple: Tuple, seq: u64, time_ns: i64) -> Option<Process> {
        if let Some(sender) = self.senders.get(&tuple).filter(|s| s.covers(time_ns)) {
            return Some(sender.process.clone());
        }
        if self.waiting.len() < MAX {
            self.waiting.entry(tuple).or_default().push((seq, time_ns));
        }
        None
    }

    /// A connect's outcome from `process` between `from_ns` (SYN) and `until_ns`: the drops
    /// already waiting for it.
    pub fn sender(
        &mut self,
        tuple: Tuple,
        process: Process,
        from_ns: i64,
        until_ns: i64,
    ) -> Vec<u64> {
        let sender = Sender {
            process,
            from_ns,
            until_ns,
        };
        let mut found = Vec::new();
        if let Some(drops) = self.waiting.get_mut(&tuple) {
            drops.retain(|&(seq, time_ns)| {
                let mine = sender.covers(time_ns);
                if mine {
                    found.push(seq);
                }
                !mine
            });
            if drops.is_empty() {
                self.waiting.remove(&tuple);
            }
        }
        if self.senders.len() < MAX {
            self.senders.insert(tuple, sender);
        }
        found
    }

    /// Forgets what is older than the TTL at `now_ns`.
    pub fn expire(&mut self, now_ns: i64) {
        let cutoff = now_ns.saturating_sub(TTL_NS);
        self.waiting.retain(|_, drops| {
            drops.retain(|&(_, time_ns)| time_ns >= cutoff);
            !drops.is_empty()
        });
        self.senders.retain(|_, s| s.until_ns >= cutoff);
    }
}
