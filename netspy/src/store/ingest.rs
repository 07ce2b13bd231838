//! Ingesting events: compact records, interned values, TCP outcomes joined into their
//! connects, and drops that lost their socket given to their sender.

use super::{
    Endpoint, Outcome, SocketKind, Started, Store, StoredConnection, StoredDrop, StoredSampled,
    Sym, records::protocol_code,
};
use crate::correlate::{JoinKey, is_orphan};
/// `connect` on a non-blocking socket: the handshake goes on, the call did not fail.
use crate::events::{
    ConnectionEvent, Destination, PacketDrop, Process, SampledDrops, TcpOutcome, nanos,
};

impl Store {
    pub(super) fn add_connection(&mut self, c: ConnectionEvent) {
        let (Some(owner), destination) = (
            self.names.owners.intern(&c.process),
            self.destination(&c.destination, c.destination_name.as_ref()),
        ) else {
            return;
        };
        let outcome = Outcome::before_result(c.raw_protocol);
        let handshake = outcome == Outcome::Unknown;
        let source = c
            .source
            .and_then(|s| self.names.endpoints.intern(Endpoint::Ip(s.ip())));
        let record = StoredConnection {
            time_ns: nanos(c.time),
            owner,
            destination,
            source,
            latency_us: 0,
            dport: match c.destination {
                Destination::Ip { port, .. } => port,
                _ => 0,
            },
            sport: source.and(c.source).map_or(0, |s| s.port()),
            // connect returns 0 or minus an errno (below 4096; the named ones below 256).
            call_errno: u8::try_from(c.return_code.unsigned_abs()).unwrap_or(u8::MAX),
            kind: self.kinds.code(SocketKind {
                family: c.address_family,
                protocol: c.raw_protocol,
                socktype: c.raw_socktype,
            }),
            outcome,
            outcome_errno: 0,
        };
        let failed_call = record.failed_call_errno().unwrap_or(0);
        self.totals
            .connect(&c.process.process_name, record.kind, failed_call);
        let time_ns = record.time_ns;
        let seq = self.connections.push(record.clone());
        self.connection_tallies.push(seq, &record);
        if let (true, Destination::Ip { ip, port }, true) = (handshake, &c.destination, c.sock != 0)
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

    fn destination(
        &mut self,
        destination: &Destination,
        name: Option<&std::sync::Arc<str>>,
    ) -> Option<Sym> {
        match (destination, name) {
            (Destination::Ip { ip, .. }, Some(name)) => self
                .names
                .endpoints
                .intern(Endpoint::Host(*ip, name.clone())),
            (Destination::Ip { ip, .. }, None) => self.names.endpoints.intern(Endpoint::Ip(*ip)),
            (Destination::Unix { path }, _) => self
                .names
                .endpoints
                .intern(Endpoint::Unix(path.as_str().into())),
            (Destination::Other { .. }, _) => None,
        }
    }

    pub(super) fn add_outcome(&mut self, outcome: TcpOutcome) {
        self.totals.tcp_result(
            outcome.process.as_ref().map(|p| &p.process_name),
            outcome.result,
            outcome.latency_ns,
        );
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
            Some(record) if record.source.is_none() => self
                .names
                .endpoints
                .intern(Endpoint::Ip(outcome.source.ip())),
            Some(_) => None,
            None => return,
        };
        let Some(record) = self.connections.get_mut(seq) else {
            return;
        };
        let before = record.clone();
        if source.is_some() {
            record.source = source;
            record.sport = outcome.source.port();
        }
        record.latency_us = outcome
            .latency_ns
            .map_or(0, |ns| u32::try_from(ns / 1000).unwrap_or(u32::MAX));
        record.outcome = Outcome::Tcp(outcome.result);
        record.outcome_errno = u8::try_from(outcome.raw_error).unwrap_or(0);
        let after = record.clone();
        self.connection_tallies.update(seq, &before, &after);
    }

    pub(super) fn add_drop(&mut self, d: PacketDrop) {
        let (Some(reason), Some(location)) = (
            self.names.kernel_names.intern(d.drop_reason.clone()),
            self.names.kernel_names.intern(d.location.as_str().into()),
        ) else {
            return;
        };
        let record = StoredDrop {
            time_ns: nanos(d.time),
            owner: d.process.as_ref().and_then(|p| self.names.owners.intern(p)),
            reason,
            location,
            source: d
                .source_ip
                .and_then(|ip| self.names.endpoints.intern(Endpoint::Ip(ip))),
            destination: d
                .destination_ip
                .and_then(|ip| self.names.endpoints.intern(Endpoint::Ip(ip))),
            reason_code: u16::try_from(d.drop_reason_code).unwrap_or(u16::MAX),
            sport: d.source_port.unwrap_or(0),
            dport: d.destination_port.unwrap_or(0),
            ethertype: d.ethertype,
            protocol: protocol_code(d.raw_protocol),
            has_ports: d.source_port.is_some(),
        };
        let (time_ns, code) = (record.time_ns, d.drop_reason_code);
        let seq = self.drops.push(record);
        // A TCP packet that lost its socket (loopback, veth): its sender may still be known.
        let owner = match &d.process {
            Some(p) => Some(p.process_name.clone()),
            None => self.orphans.orphaned_drop(&d, seq).map(|owner| {
                self.attribute_drop(seq, &owner);
                owner.process_name
            }),
        };
        match owner {
            Some(name) => self.totals.drops(Some(&name), code, &d.drop_reason, 1),
            None if is_orphan(&d) => self.totals.orphan(seq, time_ns, code, &d.drop_reason),
            None => self.totals.drops(None, code, &d.drop_reason, 1),
        }
        self.enforce_count();
    }

    /// Adds the counts of drops the kernel sampled out in one interval.
    pub fn ingest_sampled(&mut self, sampled: &SampledDrops) {
        let time_ns = nanos(sampled.until);
        for c in &sampled.counts {
            let code = c.drop_reason_code;
            let name = (c.pid != 0).then(|| c.process_name.clone().unwrap_or_else(|| "".into()));
            self.totals
                .drops(name.as_ref(), code, &c.drop_reason, c.count);
            let Some(reason) = self.names.kernel_names.intern(c.drop_reason.clone()) else {
                continue;
            };
            // The kernel counts by pid, start, cgroup and names (no uid).
            let owner = (c.pid != 0)
                .then(|| {
                    let thread = c.command.clone().unwrap_or_else(|| "".into());
                    let process = c.process_name.clone().unwrap_or_else(|| "".into());
                    self.names.owners.intern_parts(
                        Started(c.pid, c.started_ns),
                        0,
                        c.cgroup_id,
                        thread,
                        process,
                    )
                })
                .flatten();
            self.sampled.push(StoredSampled {
                time_ns,
                owner,
                reason,
                count: c.count,
            });
        }
        self.enforce_count();
    }

    /// Gives an unattributed drop its owner.
    fn attribute_drop(&mut self, seq: u64, owner: &Process) {
        if self.drops.get_mut(seq).is_none_or(|r| r.owner.is_some()) {
            return;
        }
        self.totals.attributed(seq, &owner.process_name);
        let owner = self.names.owners.intern(owner);
        if let Some(record) = self.drops.get_mut(seq) {
            record.owner = owner;
        }
        self.drops.index_late(seq);
    }
}
