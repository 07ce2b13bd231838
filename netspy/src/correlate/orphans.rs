//! Owners for drops of packets that had lost their socket: loopback and veth orphan an skb
//! on transmit, so a SYN refused by a closed port, or a datagram to a closed port (a DNS
//! query to a resolver that is down), is dropped (NO_SOCKET) with no socket to attribute it
//! by. Its sender is known from the 4-tuple: a TCP connect's outcome tells its local address
//! and port, and so does a UDP socket's connect. An unattributed drop with that 4-tuple,
//! dropped while the connect was in flight (TCP) or within a TTL after it (UDP), belongs to
//! the connecting process, whichever of the two arrives first.

use std::net::IpAddr;

use super::join::{SLACK_NS, syn_time};
use crate::events::{ConnectionEvent, Destination, PacketDrop, Process, TcpOutcome, nanos};

/// How long either side waits for the other, ns.
const TTL_NS: i64 = 10_000_000_000;
/// At most this many of each are remembered.
const MAX: usize = 16_384;
/// Sockets remembered per 4-tuple: a source port is handed out again quickly, often to
/// the same process (a resolver's next query).
const SENDERS_PER_TUPLE: usize = 4;
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

/// Who sent a packet at `time_ns`, among the sockets that used its 4-tuple: the one whose
/// connect came last before it (a port is only reused after its previous socket let go),
/// or, when none came before, the first within the clock slack after it. Ambiguous when a
/// socket of another process took the tuple within the slack of that one.
fn sender_at(senders: &[Sender], time_ns: i64) -> Claim<'_> {
    let covering = || senders.iter().filter(|s| s.covers(time_ns));
    let chosen = covering()
        .filter(|s| s.from_ns <= time_ns)
        .max_by_key(|s| s.from_ns)
        .or_else(|| covering().min_by_key(|s| s.from_ns));
    let Some(chosen) = chosen else {
        return Claim::Nobody;
    };
    let rival = covering().any(|s| {
        s.process.pid != chosen.process.pid
            && s.from_ns.abs_diff(chosen.from_ns) <= SLACK_NS.unsigned_abs()
    });
    match rival {
        true => Claim::Ambiguous,
        false => Claim::Owner(&chosen.process),
    }
}

/// The answer of [`sender_at`].
enum Claim<'a> {
    Owner(&'a Process),
    Ambiguous,
    Nobody,
}

/// Drops waiting for a sender (each under a key `K` its caller finds it by) and senders
/// waiting for drops.
pub struct Orphans<K> {
    waiting: super::Map<Tuple, Vec<(K, i64)>>,
    senders: super::Map<Tuple, Vec<Sender>>,
    ambiguous: u64,
    swept_ns: i64,
}

impl<K> Default for Orphans<K> {
    fn default() -> Self {
        Self {
            waiting: super::Map::default(),
            senders: super::Map::default(),
            ambiguous: 0,
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

    /// Drops left unattributed because two processes' sockets used their 4-tuple at the same
    /// moment.
    pub fn ambiguous(&self) -> u64 {
        self.ambiguous
    }

    /// An unattributed drop `key` at `time_ns`: its sender if already known.
    fn drop(&mut self, tuple: Tuple, key: K, time_ns: i64) -> Option<Process> {
        let senders = self.senders.get(&tuple).map_or(&[][..], Vec::as_slice);
        match sender_at(senders, time_ns) {
            Claim::Owner(process) => return Some(process.clone()),
            Claim::Ambiguous => {
                self.ambiguous += 1;
                return None;
            }
            Claim::Nobody => {}
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
        // With the table full, a new tuple's sender still claims the drops waiting for it;
        // it is only not remembered for later ones.
        let mut unremembered = Vec::new();
        let senders = if !self.senders.contains_key(&tuple) && self.senders.len() >= MAX {
            &mut unremembered
        } else {
            self.senders.entry(tuple).or_default()
        };
        if senders.len() == SENDERS_PER_TUPLE {
            senders.remove(0);
        }
        senders.push(sender);
        let newest = senders.len() - 1;
        let mut found = Vec::new();
        let mut ambiguous = 0;
        if let Some(drops) = self.waiting.get_mut(&tuple) {
            drops.retain(|&(key, time_ns)| match sender_at(senders, time_ns) {
                // Only the drops this connect's socket sent; others wait on.
                Claim::Owner(owner) if std::ptr::eq(owner, &senders[newest].process) => {
                    found.push(key);
                    false
                }
                Claim::Owner(_) => true,
                Claim::Ambiguous => {
                    ambiguous += 1;
                    false
                }
                Claim::Nobody => true,
            });
            if drops.is_empty() {
                self.waiting.remove(&tuple);
            }
        }
        self.ambiguous += ambiguous;
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
        self.senders.retain(|_, senders| {
            senders.retain(|s| s.until_ns >= cutoff);
            !senders.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn tuple() -> Tuple {
        let ip = "127.0.0.1".parse().unwrap();
        Tuple::new(ip, 40_000, ip, 9)
    }

    fn thread(pid: u32, tid: u32) -> Process {
        Process {
            pid,
            tid,
            ..Process::curl()
        }
    }

    #[test]
    fn a_reused_source_port_keeps_each_drop_with_the_socket_that_sent_it() {
        let mut orphans = Orphans::<u32>::default();
        let (a, b, c) = (thread(4312, 1), thread(4312, 2), thread(99, 99));
        // Three sockets took the same source port in turn: a at 1 ms, b (same process) at
        // 5 ms, c (another process) at 10 ms.
        assert!(
            orphans
                .sender(tuple(), a.clone(), MS, MS + TTL_NS)
                .is_empty()
        );
        assert!(
            orphans
                .sender(tuple(), b.clone(), 5 * MS, 5 * MS + TTL_NS)
                .is_empty()
        );
        assert!(
            orphans
                .sender(tuple(), c.clone(), 10 * MS, 10 * MS + TTL_NS)
                .is_empty()
        );
        // Drops arriving after all three connects still go to the socket of their time.
        assert_eq!(orphans.drop(tuple(), 1, 2 * MS), Some(a));
        assert_eq!(orphans.drop(tuple(), 2, 6 * MS), Some(b.clone()));
        assert_eq!(orphans.drop(tuple(), 3, 9 * MS + MS / 2), Some(b));
        assert_eq!(orphans.drop(tuple(), 4, 11 * MS), Some(c));
        assert_eq!(orphans.ambiguous(), 0);
    }

    #[test]
    fn with_the_sender_table_full_a_new_sender_still_claims_its_waiting_drops() {
        let mut orphans = Orphans::<u32>::default();
        let other = |i: u16| {
            let ip = "127.0.0.2".parse().unwrap();
            Tuple::new(ip, i, ip, 9)
        };
        for i in 0..u16::try_from(MAX).unwrap() {
            orphans.sender(other(i), thread(1, 1), MS, MS + TTL_NS);
        }
        assert_eq!(orphans.drop(tuple(), 5, 2 * MS), None);
        assert_eq!(
            orphans.sender(tuple(), thread(2, 2), MS, MS + TTL_NS),
            vec![5]
        );
    }

    #[test]
    fn two_processes_on_one_tuple_at_once_are_counted_not_guessed() {
        let mut orphans = Orphans::<u32>::default();
        orphans.sender(tuple(), thread(1, 1), 5 * MS, 5 * MS + TTL_NS);
        orphans.sender(tuple(), thread(2, 2), 5 * MS + MS / 2, 5 * MS + TTL_NS);
        assert_eq!(orphans.drop(tuple(), 1, 6 * MS), None);
        assert_eq!(orphans.ambiguous(), 1);
        // A drop waiting before either connect arrived is judged the same way.
        let mut orphans = Orphans::<u32>::default();
        assert_eq!(orphans.drop(tuple(), 7, 6 * MS), None);
        assert_eq!(
            orphans.sender(tuple(), thread(1, 1), 5 * MS, 5 * MS + TTL_NS),
            vec![7]
        );
        assert_eq!(orphans.drop(tuple(), 8, 6 * MS), Some(thread(1, 1)));
    }
}
