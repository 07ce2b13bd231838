//! Owners for drops of packets that had lost their socket: loopback and veth orphan an skb
//! on transmit, so a SYN refused by a closed port, or a datagram to a closed port (a DNS
//! query to a resolver that is down), is dropped (NO_SOCKET) with no socket to attribute it
//! by. Its sender is known from the 4-tuple: a TCP connect's outcome tells its local address
//! and port, and so does a UDP socket's connect. An unattributed drop with that 4-tuple,
//! dropped while the connect was in flight (TCP) or within a TTL after it (UDP), belongs to
//! the connecting process, whichever of the two arrives first.

use std::{collections::HashMap, net::IpAddr};

use super::{
    join::{SLACK_NS, syn_time},
    nanos,
};
use crate::events::{ConnectionEvent, Destination, PacketDrop, Process, TcpOutcome};

/// How long either side waits for the other, ns.
const TTL_NS: i64 = 10_000_000_000;
/// At most this many of each are remembered.
const MAX: usize = 16_384;
/// Entries live for seconds: sweeping more often than this finds nothing new to forget.
const SWEEP_NS: i64 = 1_000_000_000;

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

impl Tuple {
    /// A tuple with IPv4-mapped IPv6 addresses as plain IPv4, as the packets carry them.
    fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        Self {
            src: src.to_canonical(),
            sport,
            dst: dst.to_canonical(),
            dport,
        }
    }

    /// The 4-tuple of a TCP or UDP drop with no owner, which a sender may still claim.
    fn of_orphan(d: &PacketDrop) -> Option<Self> {
        let (None, 6 | 17, Some(src), Some(sport), Some(dst), Some(dport)) = (
            &d.process,
            d.raw_protocol,
            d.source_ip,
            d.source_port,
            d.destination_ip,
            d.destination_port,
        ) else {
            return None;
        };
        Some(Self::new(src, sport, dst, dport))
    }
}

/// True for a drop a sender may still claim (a TCP or UDP packet with no owner).
pub fn is_orphan(d: &PacketDrop) -> bool {
    Tuple::of_orphan(d).is_some()
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

/// Drops waiting for a sender (each under a key `K` its caller finds it by) and senders
/// waiting for drops.
pub struct Orphans<K> {
    waiting: HashMap<Tuple, Vec<(K, i64)>>,
    senders: HashMap<Tuple, Sender>,
    swept_ns: i64,
}

impl<K> Default for Orphans<K> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
            senders: HashMap::new(),
            swept_ns: i64::MIN,
        }
    }
}

impl<K: Copy> Orphans<K> {
    /// A drop: when it is a TCP packet with no owner, its sender if already known; else it
    /// waits under `key` for [`Orphans::outcome`]. None for every other drop.
    pub fn orphaned_drop(&mut self, d: &PacketDrop, key: K) -> Option<Process> {
        self.drop(Tuple::of_orphan(d)?, key, nanos(d.time))
    }

    /// A TCP outcome: when its process is known, the keys of the waiting drops that process
    /// sent while its connect was in flight.
    pub fn outcome(&mut self, o: &TcpOutcome) -> Vec<K> {
        let Some(process) = &o.process else {
            return Vec::new();
        };
        let tuple = Tuple::new(
            o.source.ip(),
            o.source.port(),
            o.destination.ip(),
            o.destination.port(),
        );
        self.sender(tuple, process.clone(), syn_time(o), nanos(o.time))
    }

    /// A connect: for a UDP socket that got its local address, the keys of the waiting drops
    /// of datagrams it sent. (A TCP sender is known from its outcome instead.)
    pub fn connected(&mut self, c: &ConnectionEvent) -> Vec<K> {
        let (17, Some(source), Destination::Ip { ip, port }) =
            (c.raw_protocol, c.source, &c.destination)
        else {
            return Vec::new();
        };
        let tuple = Tuple::new(source.ip(), source.port(), *ip, *port);
        let at = nanos(c.time);
        self.sender(tuple, c.process.clone(), at, at.saturating_add(TTL_NS))
    }

    /// An unattributed TCP drop `key` at `time_ns`: its sender if already known.
    fn drop(&mut self, tuple: Tuple, key: K, time_ns: i64) -> Option<Process> {
        if let Some(sender) = self.senders.get(&tuple).filter(|s| s.covers(time_ns)) {
            return Some(sender.process.clone());
        }
        if self.waiting.len() < MAX {
            self.waiting.entry(tuple).or_default().push((key, time_ns));
        }
        None
    }

    /// A connect's outcome from `process` between `from_ns` (SYN) and `until_ns`: the drops
    /// already waiting for it.
    fn sender(&mut self, tuple: Tuple, process: Process, from_ns: i64, until_ns: i64) -> Vec<K> {
        let sender = Sender {
            process,
            from_ns,
            until_ns,
        };
        let mut found = Vec::new();
        if let Some(drops) = self.waiting.get_mut(&tuple) {
            drops.retain(|&(key, time_ns)| {
                let mine = sender.covers(time_ns);
                if mine {
                    found.push(key);
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

    /// Forgets what is older than the TTL at `now_ns`; at most one sweep a second, however
    /// often it is called (trace calls it on every 50 ms tick).
    pub fn expire(&mut self, now_ns: i64) {
        if now_ns.saturating_sub(self.swept_ns) < SWEEP_NS {
            return;
        }
        self.swept_ns = now_ns;
        let cutoff = now_ns.saturating_sub(TTL_NS);
        self.waiting.retain(|_, drops| {
            drops.retain(|&(_, time_ns)| time_ns >= cutoff);
            !drops.is_empty()
        });
        self.senders.retain(|_, s| s.until_ns >= cutoff);
    }
}
