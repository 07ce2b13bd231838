//! Which host a process meant: the names its `getaddrinfo` calls asked for, by the
//! addresses they answered, so that the process's later connections to one of those
//! addresses carry the name. A stage between decoding and the consumers (the daemon's
//! store and `netspy trace` alike): it sees every event in order, learns from lookups and
//! names connections.
//!
//! Bounded: the most recent [`HostNames::CAPACITY`] answers are kept, per process
//! (pid and start time, so a reused pid learns nothing from its predecessor). A lookup
//! the process made before the answer fell out, or before netspy started, names nothing:
//! the connection is reported by address only, never guessed from another process's
//! lookup.

use std::{collections::VecDeque, net::IpAddr, sync::Arc};

use crate::events::{Destination, Event};

/// One process's address.
type Key = (u32, u64, IpAddr);

/// The name each key was last learned with, and when (a sequence number).
type Names = std::collections::HashMap<Key, (Arc<str>, u64)>;

/// The join of lookups to connections.
#[derive(Default)]
pub struct HostNames {
    /// The name each process last got this address for, and when (a sequence number).
    names: Names,
    /// Keys in the order they were learned, for eviction.
    order: VecDeque<(Key, u64)>,
    next: u64,
}

impl HostNames {
    /// Answers kept: about 80 bytes each.
    pub const CAPACITY: usize = 65_536;

    /// Learns from a lookup, or names a connection's destination; other events pass. False
    /// for an event to leave out: a "lookup" of an address written out (`getaddrinfo("10.0.0.1")`,
    /// as bash's `/dev/tcp` and many clients make for every connect) resolves no name.
    pub fn observe(&mut self, event: &mut Event) -> bool {
        match event {
            Event::Dns(lookup) => {
                if lookup.name.parse::<IpAddr>().is_ok() {
                    return false;
                }
                let p = &lookup.process;
                for &ip in &lookup.answers {
                    self.learn((p.pid, p.started_ns, ip), lookup.name.clone());
                }
            }
            // Nothing learned (no lookups, or the probe is off): no hashing on the hot path.
            Event::Connection(_) if self.names.is_empty() => {}
            Event::Connection(c) => {
                if let Destination::Ip { ip, .. } = c.destination {
                    let key = (c.process.pid, c.process.started_ns, canonical(ip));
                    c.destination_name = self.names.get(&key).map(|(name, _)| name.clone());
                }
            }
            // Lookups teach names and connects take them; other kinds do neither.
            _ => {}
        }
        true
    }

    /// Learns one answer; the answer learned longest ago makes room. An answer learned again
    /// (a process that looks up one name over and over) moves to the back: its older place
    /// in `order` goes stale, and stale places are swept once they outnumber the live ones.
    fn learn(&mut self, (pid, started, ip): Key, name: Arc<str>) {
        let key = (pid, started, canonical(ip));
        let seq = self.next;
        self.next += 1;
        self.names.insert(key, (name, seq));
        self.order.push_back((key, seq));
        while self.names.len() > Self::CAPACITY {
            let Some((old, old_seq)) = self.order.pop_front() else {
                break;
            };
            if is_live(&self.names, &old, old_seq) {
                self.names.remove(&old);
            }
        }
        if self.order.len() > 2 * Self::CAPACITY {
            let names = &self.names;
            self.order.retain(|(key, seq)| is_live(names, key, *seq));
        }
    }
}

/// True when a place (`key`, `seq`) of `order` is the key's latest.
fn is_live(names: &Names, key: &Key, seq: u64) -> bool {
    names.get(key).is_some_and(|&(_, s)| s == seq)
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket connects
/// to) is the IPv4 address a lookup answered.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{events::Process, query::fixtures};

    fn lookup(pid: u32, name: &str, answers: &[&str]) -> Event {
        let mut event = fixtures::dns_lookup(name, answers);
        if let Event::Dns(l) = &mut event {
            l.process = Process::named(pid, "curl");
        }
        event
    }

    #[test]
    fn a_connection_to_an_answer_carries_the_name_the_process_asked_for() {
        let mut names = HostNames::default();
        names.observe(&mut lookup(
            7,
            "example.com",
            &["93.184.216.34", "2606:2800::1"],
        ));
        names.observe(&mut lookup(8, "other.test", &["10.1.1.1"]));
        let named = |names: &mut HostNames, pid, to: &str| {
            let mut event =
                fixtures::connection_to(Process::named(pid, "curl"), to.parse().unwrap());
            names.observe(&mut event);
            match event {
                Event::Connection(c) => c.destination_name.map(|n| n.to_string()),
                _ => None,
            }
        };
        assert_eq!(
            named(&mut names, 7, "93.184.216.34:443").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            named(&mut names, 7, "[2606:2800::1]:443").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            named(&mut names, 7, "[::ffff:93.184.216.34]:443").as_deref(),
            Some("example.com"),
            "a dual-stack socket's mapped address"
        );
        assert_eq!(
            named(&mut names, 8, "93.184.216.34:443"),
            None,
            "another process"
        );
        assert_eq!(
            named(&mut names, 7, "10.1.1.1:80"),
            None,
            "another process's answer"
        );

        let mut numeric = lookup(7, "10.2.2.2", &["10.2.2.2"]);
        assert!(
            !names.observe(&mut numeric),
            "an address written out is no name"
        );
        assert_eq!(named(&mut names, 7, "10.2.2.2:80"), None);
    }

    #[test]
    fn the_latest_lookup_wins_and_the_oldest_answers_make_room() {
        let mut names = HostNames::default();
        names.observe(&mut lookup(7, "a.test", &["10.0.0.1"]));
        names.observe(&mut lookup(7, "b.test", &["10.0.0.1"]));
        let mut event =
            fixtures::connection_to(Process::named(7, "curl"), "10.0.0.1:80".parse().unwrap());
        names.observe(&mut event);
        let Event::Connection(c) = &event else {
            panic!()
        };
        assert_eq!(c.destination_name.as_deref(), Some("b.test"));

        for i in 0..HostNames::CAPACITY as u32 {
            names.learn((9, 0, IpAddr::from(i.to_be_bytes())), "filler".into());
        }
        assert_eq!(names.names.len(), HostNames::CAPACITY);
        assert!(
            !names
                .names
                .contains_key(&(7, 0, "10.0.0.1".parse().unwrap()))
        );

        // One process looking up one name over and over keeps the others' names.
        names.learn((8, 0, "10.9.9.9".parse().unwrap()), "kept.test".into());
        for _ in 0..3 * HostNames::CAPACITY {
            names.learn((9, 0, "10.0.0.0".parse().unwrap()), "again.test".into());
        }
        assert!(
            names
                .names
                .contains_key(&(8, 0, "10.9.9.9".parse().unwrap()))
        );
        assert!(names.order.len() <= 2 * HostNames::CAPACITY);
    }
}
