//! Ingesting events: compact records, interned values, TCP outcomes joined into their
//! connects, and drops that lost their socket given to their sender.

use super::{
    Endpoint, Outcome, Store, StoredConnection, StoredDrop, StoredSampled, Sym, join::JoinKey,
    nanos, records::protocol_code,
};
use crate::events::{
    ConnectionEvent, Destination, PacketDrop, Process, SampledDrops, TcpOutcome, TcpResult,
};

impl Store {
    pub(super) fn add_connection(&mut self, c: ConnectionEvent) {
        let (Some(command), destination) = (
            self.commands.intern(c.process.command.clone()),
            self.destination(&c.destination),
        ) else {
            return;
        };
        let source = c
            .source
            .and_then(|s| self.endpoints.intern(Endpoint::Ip(s.ip())));
        let record = StoredConnection {
            time_ns: nanos(c.time),
            pid: c.process.pid,
            uid: c.process.uid,
            command,
            cgroup: self.cgroups.intern(c.process.cgroup_id),
            destination,
            source,
            latency_us: 0,
            dport: match c.destination {
                Destination::Ip { port, .. } => port,
                _ => 0,
            },
            sport: source.and(c.source).map_or(0, |s| s.port()),
            ret: i16::try_from(c.return_code).unwrap_or(i16::MIN),
            family: u8::try_from(c.address_family).unwrap_or(0),
            protocol: protocol_code(c.raw_protocol),
            socktype: u8::try_from(c.raw_socktype).unwrap_or(0),
            outcome: Outcome::Unknown,
            outcome_errno: 0,
        };
        let time_ns = record.time_ns;
        let seq = self.connections.push(record);
        if let (6 | 262, Destination::Ip { ip, port }, true) =
            (c.raw_protocol, &c.destination, c.sock != 0)
        {
            let key = JoinKey {
                sock: c.sock,
                ip: *ip,
                port: *port,
            };
            if let Some(outcome) = self.outcomes.connect(key, seq, time_ns) {
                self.apply_outcome(seq, &outcome);
            }
        }
        // A datagram this socket sent and the kernel dropped after orphaning it.
        for drop in self.orphans.connected(&c) {
            self.attribute_drop(drop, &c.process);
        }
        self.enforce_count();
    }

    fn destination(&mut self, destination: &Destination) -> Option<Sym> {
        match destination {
            Destination::Ip { ip, .. } => self.endpoints.intern(Endpoint::Ip(*ip)),
            Destination::Unix { path } => {
                self.endpoints.intern(Endpoint::Unix(path.as_str().into()))
            }
            Destination::Other { .. } => None,
        }
    }

    pub(super) fn add_outcome(&mut self, outcome: TcpOutcome) {
        if let Some(process) = &outcome.process {
            for seq in self.orphans.outcome(&outcome) {
                self.attribute_drop(seq, process);
            }
        }
        if let Some((seq, outcome)) = self.outcomes.outcome(outcome) {
            self.apply_outcome(seq, &outcome);
        }
    }

    fn apply_outcome(&mut self, seq: u64, outcome: &TcpOutcome) {
        // The connect may have told the source already; an outcome is applied once.
        let source = match self.connections.get_mut(seq) {
            Some(record) if record.outcome != Outcome::Unknown => return,
            Some(record) if record.source.is_none() => {
                self.endpoints.intern(Endpoint::Ip(outcome.source.ip()))
            }
            Some(_) => None,
            None => return,
        };
        let Some(record) = self.connections.get_mut(seq) else {
            return;
        };
        if source.is_some() {
            record.source = source;
            record.sport = outcome.source.port();
        }
        record.latency_us = outcome
            .latency_ns
            .map_or(0, |ns| u32::try_from(ns / 1000).unwrap_or(u32::MAX));
        record.outcome = match outcome.result {
            TcpResult::Established => Outcome::Established,
            TcpResult::Refused => Outcome::Refused,
            TcpResult::TimedOut => Outcome::TimedOut,
            TcpResult::Failed => Outcome::Failed,
            TcpResult::Aborted => Outcome::Aborted,
        };
        record.outcome_errno = u8::try_from(outcome.raw_error).unwrap_or(0);
    }

    pub(super) fn add_drop(&mut self, d: PacketDrop) {
        let (Some(reason), Some(location)) = (
            self.kernel_names.intern(d.drop_reason.clone()),
            self.kernel_names.intern(d.location.as_str().into()),
        ) else {
            return;
        };
        let (pid, uid, command, cgroup) = match &d.process {
            Some(p) => (
                p.pid,
                p.uid,
                self.commands.intern(p.command.clone()),
                self.cgroups.intern(p.cgroup_id),
            ),
            None => (0, 0, None, None),
        };
        let record = StoredDrop {
            time_ns: nanos(d.time),
            pid,
            uid,
            command,
            cgroup,
            reason,
            location,
            source: d
                .source_ip
                .and_then(|ip| self.endpoints.intern(Endpoint::Ip(ip))),
            destination: d
                .destination_ip
                .and_then(|ip| self.endpoints.intern(Endpoint::Ip(ip))),
            reason_code: u16::try_from(d.drop_reason_code).unwrap_or(u16::MAX),
            sport: d.source_port.unwrap_or(0),
            dport: d.destination_port.unwrap_or(0),
            ethertype: d.ethertype,
            protocol: protocol_code(d.raw_protocol),
            has_ports: d.source_port.is_some(),
        };
        let seq = self.drops.push(record);
        // A TCP packet that lost its socket (loopback, veth): its sender may still be known.
        if let Some(owner) = self.orphans.orphaned_drop(&d, seq) {
            self.attribute_drop(seq, &owner);
        }
        self.enforce_count();
    }

    /// Adds the counts of drops the kernel sampled out in one interval.
    pub fn ingest_sampled(&mut self, sampled: &SampledDrops) {
        let time_ns = nanos(sampled.until);
        for c in &sampled.counts {
            let Some(reason) = self.kernel_names.intern(c.drop_reason.clone()) else {
                continue;
            };
            let command = c
                .command
                .as_ref()
                .and_then(|name| self.commands.intern(name.clone()));
            self.sampled.push(StoredSampled {
                time_ns,
                pid: c.pid,
                command,
                reason,
                count: c.count,
            });
        }
        self.enforce_count();
    }

    /// Gives an unattributed drop its owner.
    fn attribute_drop(&mut self, seq: u64, owner: &Process) {
        if self.drops.get_mut(seq).is_none_or(|r| r.pid != 0) {
            return;
        }
        let (command, cgroup) = (
            self.commands.intern(owner.command.clone()),
            self.cgroups.intern(owner.cgroup_id),
        );
        if let Some(record) = self.drops.get_mut(seq) {
            record.pid = owner.pid;
            record.uid = owner.uid;
            record.command = command;
            record.cgroup = cgroup;
        }
        self.drops.index_late(seq);
    }
}
