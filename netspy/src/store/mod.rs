//! The bounded, indexed history of events the daemon serves.
//!
//! Events are kept as compact records (`records.rs`) in two time-ordered tables
//! (`table.rs`), indexed by pid and by process name; strings and addresses are interned with
//! reference counts (`intern.rs`). History is bounded by age and by count; every eviction is
//! counted. TCP outcomes are joined into their connect record through the kernel socket
//! address, whichever of the two arrives first.

mod ingest;
mod intern;
mod join;
mod orphans;
mod records;
mod table;

use std::{sync::Arc, time::Duration};

use serde::Serialize;

#[cfg(test)]
mod tests;

pub(crate) use self::orphans::{Orphans, is_orphan};
use self::{intern::Interner, join::Joiner};
pub use self::{
    intern::Sym,
    records::{Endpoint, Outcome, StoredConnection, StoredDrop, StoredSampled, protocol_of_code},
    table::{Record, Selection, Table},
};
use crate::events::Event;

/// How much history to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events older than this are evicted.
    pub max_age: Duration,
    /// At most this many events of each kind (connections, drops).
    pub max_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(3600),
            max_events: 1_000_000,
        }
    }
}

/// Counters describing the store.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct StoreStats {
    /// Connection events held.
    pub connections: u64,
    /// Drop events held.
    pub drops: u64,
    /// Events evicted because they were older than the retention.
    pub evicted_by_age: u64,
    /// Events evicted because the count limit was reached.
    pub evicted_by_count: u64,
    /// TCP outcomes whose connect event was never seen (connects made before netspy
    /// started, or lost).
    pub unmatched_outcomes: u64,
    /// Drops that had lost their socket and stayed unattributed because sockets of two
    /// processes used their 4-tuple at the same moment.
    pub ambiguous_drop_owners: u64,
    /// Distinct interned values (names, addresses, kernel symbols, cgroups).
    pub interned_values: u64,
}

/// The history.
pub struct Store {
    limits: Limits,
    connections: Table<StoredConnection>,
    drops: Table<StoredDrop>,
    sampled: Table<StoredSampled>,
    commands: Interner<Arc<str>>,
    endpoints: Interner<Endpoint>,
    kernel_names: Interner<Arc<str>>,
    cgroups: Interner<u64>,
    outcomes: Joiner,
    orphans: Orphans<u64>,
    stats: StoreStats,
}

impl Store {
    /// An empty store with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            connections: Table::default(),
            drops: Table::default(),
            sampled: Table::default(),
            commands: Interner::default(),
            endpoints: Interner::default(),
            kernel_names: Interner::default(),
            cgroups: Interner::default(),
            outcomes: Joiner::default(),
            orphans: Orphans::default(),
            stats: StoreStats::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds one event.
    pub fn ingest(&mut self, event: Event) {
        match event {
            Event::Connection(c) => self.add_connection(c),
            Event::TcpOutcome(o) => self.add_outcome(o),
            Event::PacketDrop(d) => self.add_drop(d),
        }
    }

    fn enforce_count(&mut self) {
        while self.connections.len() > self.limits.max_events {
            self.pop_connection();
            self.stats.evicted_by_count += 1;
        }
        while self.drops.len() > self.limits.max_events {
            self.pop_drop();
            self.stats.evicted_by_count += 1;
        }
        // A handful of rows a second; the bound only matters for a storm of many owners.
        while self.sampled.len() > self.limits.max_events {
            self.pop_sampled();
        }
    }

    /// Evicts what is older than the retention at `now_ns`, and forgets joins that can no
    /// longer happen. Run periodically.
    pub fn evict_expired(&mut self, now_ns: i64) {
        let cutoff = now_ns
            .saturating_sub(i64::try_from(self.limits.max_age.as_nanos()).unwrap_or(i64::MAX));
        while self.connections.front().is_some_and(|r| r.time_ns < cutoff) {
            self.pop_connection();
            self.stats.evicted_by_age += 1;
        }
        while self.drops.front().is_some_and(|r| r.time_ns < cutoff) {
            self.pop_drop();
            self.stats.evicted_by_age += 1;
        }
        while self.sampled.front().is_some_and(|r| r.time_ns < cutoff) {
            self.pop_sampled();
        }
        let connections = &self.connections;
        self.outcomes
            .expire(now_ns, |seq| connections.contains(seq));
        self.orphans.expire(now_ns);
    }

    fn pop_connection(&mut self) {
        if let Some(r) = self.connections.pop_front() {
            self.commands.release(r.command);
            for sym in [r.cgroup.map(Ok), r.destination.map(Err), r.source.map(Err)]
                .into_iter()
                .flatten()
            {
                match sym {
                    Ok(cgroup) => self.cgroups.release(cgroup),
                    Err(endpoint) => self.endpoints.release(endpoint),
                }
            }
        }
    }

    fn pop_drop(&mut self) {
        if let Some(r) = self.drops.pop_front() {
            if let Some(c) = r.command {
                self.commands.release(c);
            }
            if let Some(c) = r.cgroup {
                self.cgroups.release(c);
            }
            self.kernel_names.release(r.reason);
            self.kernel_names.release(r.location);
            for e in [r.source, r.destination].into_iter().flatten() {
                self.endpoints.release(e);
            }
        }
    }

    fn pop_sampled(&mut self) {
        if let Some(r) = self.sampled.pop_front() {
            if let Some(c) = r.command {
                self.commands.release(c);
            }
            self.kernel_names.release(r.reason);
        }
    }

    /// Connection records.
    pub fn connections(&self) -> &Table<StoredConnection> {
        &self.connections
    }

    /// Drop records.
    pub fn drops(&self) -> &Table<StoredDrop> {
        &self.drops
    }

    /// Counts of drops that had no full event (sampled out), by reason and owner.
    pub fn sampled(&self) -> &Table<StoredSampled> {
        &self.sampled
    }

    /// A process name.
    pub fn command(&self, sym: Sym) -> Arc<str> {
        self.commands
            .get(sym)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The symbols of every process name `matches` accepts.
    pub fn commands_matching(&self, matches: impl Fn(&str) -> bool) -> Vec<Sym> {
        self.commands
            .iter()
            .filter(|(_, name)| matches(name))
            .map(|(sym, _)| sym)
            .collect()
    }

    /// An address or path.
    pub fn endpoint(&self, sym: Sym) -> Option<&Endpoint> {
        self.endpoints.get(sym)
    }

    /// A drop reason or kernel location.
    pub fn kernel_name(&self, sym: Sym) -> Arc<str> {
        self.kernel_names
            .get(sym)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The symbols of every drop reason or kernel location `matches` accepts.
    pub fn kernel_names_matching(&self, matches: impl Fn(&str) -> bool) -> Vec<Sym> {
        self.kernel_names
            .iter()
            .filter(|(_, name)| matches(name))
            .map(|(sym, _)| sym)
            .collect()
    }

    /// A cgroup id.
    pub fn cgroup(&self, sym: Option<Sym>) -> u64 {
        sym.and_then(|s| self.cgroups.get(s)).copied().unwrap_or(0)
    }

    /// Current counters.
    pub fn stats(&self) -> StoreStats {
        let interned = self.commands.len()
            + self.endpoints.len()
            + self.kernel_names.len()
            + self.cgroups.len();
        StoreStats {
            connections: self.connections.len() as u64,
            drops: self.drops.len() as u64,
            interned_values: interned as u64,
            unmatched_outcomes: self.outcomes.unmatched,
            ambiguous_drop_owners: self.orphans.ambiguous(),
            ..self.stats
        }
    }
}

fn nanos(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp_nanos_opt().unwrap_or(i64::MAX)
}
