//! The bounded, indexed history of events the daemon serves.
//!
//! Events are kept as compact records (`records.rs`) in time-ordered tables (`table.rs`),
//! indexed by owner: pid, user, cgroup, thread and process name interned as one value
//! (`owners.rs`); strings and addresses are interned with reference counts (`intern.rs`).
//! Connection counts are kept per bucket of records (`rollup.rs`), so summaries add
//! tallies. History is bounded by age and by count; every eviction is counted. TCP outcomes
//! are joined into their connect record through the kernel socket address, whichever of the
//! two arrives first.

mod gaps;
mod ingest;
mod intern;
mod kind_tables;
mod names;
mod owners;
mod records;
mod resolved;
mod rollup;
mod table;
mod totals;

/// The store's hash maps: foldhash (quality, seeded per map) instead of std's SipHash, which
/// was ~7% of the store writer's time under load. Keys come from other processes (names,
/// addresses), hence the quality variant's seeded mixing rather than the fast one.
use crate::correlate::Map;

use std::{sync::Arc, time::Duration};

use serde::Serialize;

#[cfg(test)]
mod tests;

pub(crate) use self::kind_tables::kind_tables;
pub use self::{
    gaps::{Gaps, KindGaps},
    intern::Sym,
    kind_tables::{FamilySpec, KindRecord},
    names::Names,
    owners::{NameMatch, Owner, OwnerFilter, ProcessKey, Started},
    records::{
        Endpoint, Outcome, SocketKind, StoredConnection, StoredDrop, StoredSampled,
        protocol_of_code,
    },
    resolved::Resolve,
    rollup::{OutcomeCounts, TallySum},
    table::{Record, Selection, Table},
    totals::{
        Family, FamilyCounter, LATENCY_BOUNDS, Latency, OTHER, Totals, TotalsSnapshot, UNOWNED,
    },
};
use self::{records::SocketKinds, rollup::Rollup};
use crate::{
    correlate::{Joiner, Orphans},
    events::{Event, Kind, KindCounts},
    kinds::{InKindTables, KindTableStats, KindTables},
};

/// How much history to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events older than this are evicted.
    pub max_age: Duration,
    /// At most this many events of each kind (connections, drops).
    pub max_events: usize,
    /// At most this many process names have series of their own in the metrics (the rest
    /// count as `other`).
    pub metric_processes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(3600),
            max_events: 1_000_000,
            metric_processes: 20,
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
    /// Connection events evicted, for either cause.
    #[serde(default)]
    pub evicted_connections: u64,
    /// Drop events evicted, for either cause.
    #[serde(default)]
    pub evicted_drops: u64,
    /// Records of the kinds kept whole, held and evicted.
    #[serde(flatten)]
    pub kinds: KindTableStats,
    /// TCP outcomes whose connect event was never seen (connects made before netspy
    /// started, or lost).
    pub unmatched_outcomes: u64,
    /// Drops that had lost their socket and stayed unattributed because sockets of two
    /// processes used their 4-tuple at the same moment.
    pub ambiguous_drop_owners: u64,
    /// Distinct interned values (owners, names, addresses, kernel symbols).
    pub interned_values: u64,
}

/// What the history keeps of one kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Events held.
    pub held: u64,
    /// Events evicted, for either cause.
    pub evicted: u64,
}

impl StoreStats {
    /// Held and evicted, per kind of event the history keeps (TCP outcomes are kept in
    /// their connections).
    pub fn by_kind(&self) -> impl Iterator<Item = (Kind, Kept)> {
        let kept = |held, evicted| Kept { held, evicted };
        [
            (
                Kind::Connection,
                kept(self.connections, self.evicted_connections),
            ),
            (Kind::PacketDrop, kept(self.drops, self.evicted_drops)),
        ]
        .into_iter()
        .chain(self.kinds.by_kind())
    }
}

/// The kinds [`Store::ingest`] keeps in the store's own tables, joined to one another.
const LAYER_KINDS: [Kind; 3] = [Kind::Connection, Kind::TcpOutcome, Kind::PacketDrop];

// Every kind has one place in the history: a kind in `event_kinds!` that is neither here nor
// in `kind_tables!` (or is in both) stops the build.
const _: () = assert!(
    Kind::each_once(&[&LAYER_KINDS, KindTables::KINDS]),
    "a kind is missing from kind_tables! in kinds/mod.rs, or is in it twice"
);

/// The history.
pub struct Store {
    limits: Limits,
    connections: Table<StoredConnection>,
    connection_tallies: Rollup,
    drops: Table<StoredDrop>,
    sampled: Table<StoredSampled>,
    kind_tables: KindTables,
    names: Names,
    kinds: SocketKinds,
    outcomes: Joiner,
    orphans: Orphans<u64>,
    totals: Totals,
    gaps: Gaps,
    stats: StoreStats,
    /// Records evicted, per kind.
    evicted: KindCounts,
}

impl Store {
    /// An empty store with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            connections: Table::new(limits.max_events),
            connection_tallies: Rollup::default(),
            drops: Table::new(limits.max_events),
            sampled: Table::new(limits.max_events),
            kind_tables: KindTables::new(limits.max_events),
            names: Names::default(),
            kinds: SocketKinds::default(),
            outcomes: Joiner::default(),
            orphans: Orphans::default(),
            totals: Totals::new(limits.metric_processes),
            gaps: Gaps::default(),
            stats: StoreStats::default(),
            evicted: KindCounts::default(),
        }
    }

    /// A store whose connection tallies use buckets of `n` records keeping at most four
    /// owner tallies each, so tests cross many buckets, caps and kept heavy owners.
    #[cfg(test)]
    pub fn with_bucket_records(limits: Limits, n: u64) -> Self {
        Self {
            connection_tallies: Rollup::new(n, 4),
            ..Self::new(limits)
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds one event: the kinds in [`LAYER_KINDS`] to the store's own tables, every other
    /// kind to its table in [`KindTables`].
    pub fn ingest(&mut self, event: Event) {
        match event {
            Event::Connection(c) => self.add_connection(c),
            Event::TcpOutcome(o) => self.add_outcome(o),
            Event::PacketDrop(d) => self.add_drop(d),
            kept_whole => {
                self.kind_tables
                    .keep(kept_whole, &mut self.names, &mut self.totals);
                self.enforce_count();
            }
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
        let max = self.limits.max_events;
        self.stats.evicted_by_count += self.evict_kind_tables(|len, _| len > max);
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
        self.stats.evicted_by_age += self.evict_kind_tables(|_, time_ns| time_ns < cutoff);
        let connections = &self.connections;
        self.outcomes
            .expire(now_ns, |seq| connections.contains(seq));
        self.orphans.expire(now_ns);
        self.totals.tick(now_ns);
        self.gaps.expire(cutoff);
    }

    /// The probes began delivering events at `now_ns`: a window reaching back before it
    /// was not watched.
    pub fn begin_collecting(&mut self, now_ns: i64) {
        self.gaps.collecting_since_ns = Some(now_ns);
    }

    /// The kernel's loss counters per kind, read at `now_ns` (once a second).
    pub fn note_losses(&mut self, now_ns: i64, losses: &KindCounts) {
        self.gaps.note_losses(now_ns, losses);
    }

    /// What the history is missing.
    pub fn gaps(&self) -> &Gaps {
        &self.gaps
    }

    /// A record of `kind` and time `time_ns` was evicted.
    fn evicted(&mut self, kind: Kind, time_ns: i64) {
        note_eviction(&mut self.evicted, &mut self.gaps, kind, time_ns);
    }

    /// Evicts the oldest records of the kinds kept whole while `over(table length, oldest
    /// time)` says so; how many.
    fn evict_kind_tables(&mut self, over: impl Fn(usize, i64) -> bool) -> u64 {
        let (evicted, gaps) = (&mut self.evicted, &mut self.gaps);
        self.kind_tables
            .evict(&mut self.names, over, |kind, time_ns| {
                note_eviction(evicted, gaps, kind, time_ns)
            })
    }

    fn pop_connection(&mut self) {
        let seq = self.connections.first_seq();
        if let Some(r) = self.connections.pop_front() {
            self.evicted(Kind::Connection, r.time_ns);
            self.connection_tallies.pop(seq, &r);
            self.names.owners.release(r.owner);
            for endpoint in [r.destination, r.source].into_iter().flatten() {
                self.names.endpoints.release(endpoint);
            }
        }
    }

    fn pop_drop(&mut self) {
        if let Some(r) = self.drops.pop_front() {
            self.evicted(Kind::PacketDrop, r.time_ns);
            if let Some(owner) = r.owner {
                self.names.owners.release(owner);
            }
            self.names.kernel_names.release(r.reason);
            self.names.kernel_names.release(r.location);
            for e in [r.source, r.destination].into_iter().flatten() {
                self.names.endpoints.release(e);
            }
        }
    }

    fn pop_sampled(&mut self) {
        if let Some(r) = self.sampled.pop_front() {
            if let Some(owner) = r.owner {
                self.names.owners.release(owner);
            }
            self.names.kernel_names.release(r.reason);
        }
    }

    /// Counts since the start by process, which eviction does not touch (for `/metrics`).
    pub fn totals(&self) -> TotalsSnapshot {
        self.totals.snapshot(&self.kinds)
    }

    /// Connection records.
    pub fn connections(&self) -> &Table<StoredConnection> {
        &self.connections
    }

    /// The tally of the connection records `sel` selects: from the rollup's buckets, walking
    /// only those at the window's edges.
    pub fn connection_tally(&self, sel: &Selection) -> TallySum {
        self.connection_tallies.sum(&self.connections, sel)
    }

    /// Drop records.
    pub fn drops(&self) -> &Table<StoredDrop> {
        &self.drops
    }

    /// The records of a kind kept whole.
    pub fn kind_table<R: InKindTables>(&self) -> &Table<R> {
        R::table(&self.kind_tables)
    }

    /// A looked-up host name.
    pub fn host_name(&self, sym: Sym) -> Arc<str> {
        self.names
            .host_names
            .get(sym)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// A lookup's answers.
    pub fn answers(&self, sym: Option<Sym>) -> &[std::net::IpAddr] {
        sym.and_then(|s| self.names.answer_lists.get(s))
            .map_or(&[], |a| a)
    }

    /// Counts of drops that had no full event (sampled out), by reason and owner.
    pub fn sampled(&self) -> &Table<StoredSampled> {
        &self.sampled
    }

    /// An owner.
    pub fn owner(&self, sym: Option<Sym>) -> Option<&Owner> {
        self.names.owners.get(sym?)
    }

    /// An owner's pid, 0 for none.
    pub fn pid(&self, sym: Option<Sym>) -> u32 {
        self.owner(sym).map_or(0, |o| o.pid)
    }

    /// An owner's thread name ("" for none).
    pub fn owner_name(&self, sym: Option<Sym>) -> Arc<str> {
        self.owner(sym)
            .and_then(|o| self.names.owners.name(o.command))
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// An owner's process name ("" for none).
    pub fn owner_process_name(&self, sym: Option<Sym>) -> Arc<str> {
        self.owner(sym)
            .and_then(|o| self.names.owners.name(o.process))
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// A thread or process name by its own symbol ([`Owner::command`], [`Owner::process`]).
    pub fn name(&self, command: Sym) -> Arc<str> {
        self.names
            .owners
            .name(command)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The owners `filter` lets through.
    pub fn owners_matching(&self, filter: &OwnerFilter<'_>) -> Vec<Sym> {
        self.names.owners.matching(filter)
    }

    /// Names the cgroups of events from now on with `resolver` (without one, events carry
    /// only their cgroup id).
    pub fn set_cgroup_resolver(
        &mut self,
        resolver: Arc<dyn Resolve<u64, crate::cgroups::CgroupName>>,
    ) {
        self.names.owners.set_cgroup_resolver(resolver);
    }

    /// Names the executables of events' processes from now on with `resolver` (without one,
    /// events name none).
    pub fn set_executable_resolver(&mut self, resolver: Arc<dyn Resolve<ProcessKey, Arc<str>>>) {
        self.names.owners.set_executable_resolver(resolver);
    }

    /// The path of an owner's executable, when it is known.
    pub fn executable(&self, sym: Option<Sym>) -> Option<&Arc<str>> {
        self.names.owners.executable(self.owner(sym)?)
    }

    /// The names of an owner's cgroup, when they are known.
    pub fn cgroup(&self, sym: Option<Sym>) -> Option<&Arc<crate::cgroups::CgroupName>> {
        self.names.owners.cgroup(self.owner(sym)?)
    }

    /// The family, protocol and type of a connection's socket.
    pub fn socket_kind(&self, code: u8) -> SocketKind {
        self.kinds.get(code)
    }

    /// An address or path.
    pub fn endpoint(&self, sym: Sym) -> Option<&Endpoint> {
        self.names.endpoints.get(sym)
    }

    /// A drop reason or kernel location.
    pub fn kernel_name(&self, sym: Sym) -> Arc<str> {
        self.names
            .kernel_names
            .get(sym)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The symbols of every drop reason or kernel location `matches` accepts.
    pub fn kernel_names_matching(&self, matches: impl Fn(&str) -> bool) -> Vec<Sym> {
        self.names
            .kernel_names
            .iter()
            .filter(|(_, name)| matches(name))
            .map(|(sym, _)| sym)
            .collect()
    }

    /// Current counters.
    pub fn stats(&self) -> StoreStats {
        let interned = self.names.len();
        StoreStats {
            connections: self.connections.len() as u64,
            drops: self.drops.len() as u64,
            evicted_connections: self.evicted.connection,
            evicted_drops: self.evicted.packet_drop,
            kinds: self.kind_tables.stats(&self.evicted),
            interned_values: interned as u64,
            unmatched_outcomes: self.outcomes.unmatched,
            ambiguous_drop_owners: self.orphans.ambiguous(),
            ..self.stats
        }
    }
}

/// Counts an evicted record of `kind` and time `time_ns`, and tells the gaps.
fn note_eviction(evicted: &mut KindCounts, gaps: &mut Gaps, kind: Kind, time_ns: i64) {
    evicted.add(kind, 1);
    gaps.evicted(kind, time_ns);
}
