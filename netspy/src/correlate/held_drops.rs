//! Orphaned drops for a consumer that keeps no history (`netspy trace`): a SYN refused by a
//! closed loopback port (or a datagram to one) is dropped after losing its socket, and its
//! sender is only known once the connect's outcome (or the UDP connect) arrives, through
//! another ring, in either order. Such drops are held back briefly for that outcome, then
//! passed on attributed or not; every other event passes straight through.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use super::{Orphans, is_orphan};
use crate::events::{Event, PacketDrop, Process, nanos};

/// How long a drop waits for its connect's outcome. The reader drains every 50 ms, so the
/// outcome of a refused connect is normally there within one or two drains.
const HOLD: Duration = Duration::from_millis(300);
/// At most this many drops are held (a SYN flood from elsewhere); beyond, the oldest goes.
const HELD_MAX: usize = 4096;

struct Held {
    key: u64,
    until: Instant,
    drop: PacketDrop,
}

/// Gives orphaned TCP and UDP drops their sender in a live stream.
#[derive(Default)]
pub struct HeldDrops {
    orphans: Orphans<u64>,
    held: VecDeque<Held>,
    next_key: u64,
}

impl HeldDrops {
    /// One arriving event: the events to print now, in order.
    pub fn push(&mut self, event: Event, now: Instant) -> Vec<Event> {
        match event {
            Event::PacketDrop(mut drop) => {
                let key = self.next_key;
                self.next_key += 1;
                if let Some(owner) = self.orphans.orphaned_drop(&drop, key) {
                    drop.process = Some(owner);
                } else if is_orphan(&drop) {
                    self.held.push_back(Held {
                        key,
                        until: now + HOLD,
                        drop,
                    });
                    return self.overflow();
                }
                vec![Event::PacketDrop(drop)]
            }
            Event::TcpOutcome(outcome) => {
                let keys = self.orphans.outcome(&outcome);
                let mut ready = match &outcome.process {
                    Some(process) => self.release(&keys, process),
                    None => Vec::new(),
                };
                ready.push(Event::TcpOutcome(outcome));
                ready
            }
            Event::Connection(connection) => {
                let keys = self.orphans.connected(&connection);
                let mut ready = self.release(&keys, &connection.process);
                ready.push(Event::Connection(connection));
                ready
            }
            // Only connects and TCP outcomes name the owners of sockets drops have lost.
            event => vec![event],
        }
    }

    /// The held drops under `keys`, given to `process`.
    fn release(&mut self, keys: &[u64], process: &Process) -> Vec<Event> {
        let mut ready = Vec::new();
        for key in keys {
            if let Some(at) = self.held.iter().position(|h| h.key == *key)
                && let Some(mut held) = self.held.remove(at)
            {
                held.drop.process = Some(process.clone());
                ready.push(Event::PacketDrop(held.drop));
            }
        }
        ready
    }

    /// Held drops whose wait is over at `now`, unattributed.
    pub fn expired(&mut self, now: Instant) -> Vec<Event> {
        self.orphans.expire(nanos(chrono::Utc::now()));
        let mut ready = Vec::new();
        while self.held.front().is_some_and(|h| h.until <= now) {
            ready.extend(self.held.pop_front().map(|h| Event::PacketDrop(h.drop)));
        }
        ready
    }

    /// Every held drop (the trace is ending).
    pub fn flush(&mut self) -> Vec<Event> {
        self.held
            .drain(..)
            .map(|h| Event::PacketDrop(h.drop))
            .collect()
    }

    fn overflow(&mut self) -> Vec<Event> {
        let excess = self.held.len().saturating_sub(HELD_MAX);
        self.held
            .drain(..excess)
            .map(|h| Event::PacketDrop(h.drop))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use chrono::{DateTime, TimeDelta, Utc};

    use super::*;
    use crate::events::{TcpOutcome, TcpResult};

    const CLIENT: &str = "127.0.0.1:40000";
    const SERVER: &str = "127.0.0.1:9";

    /// Event times are fixed offsets from one instant, so a slow test run cannot move them
    /// out of each other's windows: the SYN goes out at `base`, is dropped at +1 ms, and
    /// the refusal arrives at +2 ms.
    fn at(base: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
        base + TimeDelta::milliseconds(ms)
    }

    fn syn_drop(from: &str, base: DateTime<Utc>) -> Event {
        let (src, dst): (SocketAddr, SocketAddr) = (from.parse().unwrap(), SERVER.parse().unwrap());
        Event::PacketDrop(PacketDrop::tcp_no_socket(at(base, 1), src, dst))
    }

    fn refused(base: DateTime<Utc>) -> Event {
        Event::TcpOutcome(TcpOutcome {
            time: at(base, 2),
            timestamp_ns: 0,
            process: Some(Process::curl()),
            source: CLIENT.parse().unwrap(),
            destination: SERVER.parse().unwrap(),
            result: TcpResult::Refused,
            error: Some("ECONNREFUSED".into()),
            raw_error: 111,
            latency_ns: Some(2_000_000),
            sock: 1,
        })
    }

    fn owner(event: &Event) -> Option<u32> {
        event.process().map(|p| p.pid)
    }

    #[test]
    fn a_drop_waits_for_its_outcome_and_is_printed_first() {
        let mut attributor = HeldDrops::default();
        let (now, base) = (Instant::now(), Utc::now());
        assert!(attributor.push(syn_drop(CLIENT, base), now).is_empty());
        let ready = attributor.push(refused(base), now);
        assert_eq!(ready.len(), 2);
        assert!(matches!(ready[0], Event::PacketDrop(_)));
        assert_eq!(owner(&ready[0]), Some(4312));
        assert!(matches!(ready[1], Event::TcpOutcome(_)));
        assert!(attributor.flush().is_empty());
    }

    #[test]
    fn a_drop_after_its_outcome_is_attributed_at_once() {
        let mut attributor = HeldDrops::default();
        let (now, base) = (Instant::now(), Utc::now());
        assert_eq!(attributor.push(refused(base), now).len(), 1);
        let ready = attributor.push(syn_drop(CLIENT, base), now);
        assert_eq!(ready.iter().map(owner).collect::<Vec<_>>(), [Some(4312)]);
    }

    #[test]
    fn a_datagram_drop_is_claimed_by_its_sockets_connect() {
        use crate::events::{ConnectionEvent, Destination};

        let mut attributor = HeldDrops::default();
        let (now, base) = (Instant::now(), Utc::now());
        let Event::PacketDrop(mut datagram) = syn_drop(CLIENT, base) else {
            unreachable!()
        };
        (datagram.raw_protocol, datagram.protocol) = (17, Some("UDP".into()));
        assert!(attributor.push(Event::PacketDrop(datagram), now).is_empty());
        let server: SocketAddr = SERVER.parse().unwrap();
        let connect = Event::Connection(ConnectionEvent {
            time: at(base, 0),
            timestamp_ns: 0,
            process: Process::curl(),
            fd: 3,
            destination: Destination::Ip {
                ip: server.ip(),
                port: server.port(),
            },
            source: Some(CLIENT.parse().unwrap()),
            address_family: 2,
            protocol: "UDP".into(),
            socket_type: Some("SOCK_DGRAM".into()),
            raw_protocol: 17,
            raw_socktype: 2,
            return_code: 0,
            error: None,
            syscall_ns: Some(1),
            sock: 1,
            destination_name: None,
        });
        let ready = attributor.push(connect, now);
        assert_eq!(
            ready.iter().map(owner).collect::<Vec<_>>(),
            [Some(4312), Some(4312)]
        );
        assert!(matches!(ready[0], Event::PacketDrop(_)));
    }

    #[test]
    fn an_unclaimed_drop_is_printed_unattributed_when_its_wait_is_over() {
        let mut attributor = HeldDrops::default();
        let (now, base) = (Instant::now(), Utc::now());
        assert!(
            attributor
                .push(syn_drop("127.0.0.1:40001", base), now)
                .is_empty()
        );
        assert_eq!(
            attributor.push(refused(base), now).len(),
            1,
            "another 4-tuple"
        );
        assert!(attributor.expired(now).is_empty());
        let ready = attributor.expired(now + HOLD);
        assert_eq!(ready.iter().map(owner).collect::<Vec<_>>(), [None]);
    }

    #[test]
    fn held_drops_are_bounded() {
        let mut attributor = HeldDrops::default();
        let (now, base) = (Instant::now(), Utc::now());
        let mut released = 0;
        for port in 0..HELD_MAX + 10 {
            let from = format!("127.0.0.1:{}", 1000 + port);
            released += attributor.push(syn_drop(&from, base), now).len();
        }
        assert_eq!(released, 10);
        assert_eq!(attributor.flush().len(), HELD_MAX);
    }
}
