//! TCP retransmission questions: a summary by process and 4-tuple, and the list of recent
//! retransmissions. A SYN sent again (`SYN_SENT`) is a connect without an answer yet; a
//! segment sent again on an established connection is loss or a slow peer on that path.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StoredRetransmit;
use crate::{
    events::{Kind, tcp_state_name},
    query::{
        CgroupView, Coverage, DEFAULT_WINDOW_SECONDS, EventKind, Filters, ListRequest, Listed,
        Newest, Query, QueryError, SummaryRequest, by_pid, newest, questions,
    },
    store::{Endpoint, Store, Sym, Table},
};

questions! {
    each: each_question;
    /// TCP retransmissions over a window, by process and connection.
    SummarizeRetransmits: "/api/retransmit-summary", SummaryRequest => RetransmitSummary, retransmit_summary;
        summary: "TCP retransmissions over a window, by process and connection (SYNs sent again counted apart)", in "retransmits";
    /// The most recent TCP retransmissions.
    ListRetransmits: "/api/list-retransmits", ListRequest => RetransmitList, list_retransmits;
        summary: "The most recent TCP retransmissions, grouped by owning pid", in "retransmits";
}

/// At most this many processes in a summary, the ones with most retransmissions.
const MAX_OWNERS: usize = 20;
/// At most this many connections per process in a summary, the ones with most.
const MAX_FLOWS: usize = 10;

/// TCP retransmissions over a window, by process and connection.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RetransmitSummary {
    /// Retransmissions in the window.
    pub count: u64,
    /// Segments resent (what the kernel's `TcpRetransSegs` counts: a TSO/GSO buffer resent
    /// as one retransmission holds several); retransmissions by a hook that cannot tell add
    /// none.
    pub segments: u64,
    /// SYNs sent again among them: connects that had no answer yet.
    pub syn: u64,
    /// A listener's SYN-ACKs sent again among them (state `NEW_SYN_RECV`): handshakes whose
    /// client did not answer.
    #[serde(default)]
    pub syn_ack: u64,
    /// Retransmissions of sockets whose owner netspy did not see (made before it started).
    pub unattributed: u64,
    /// The pid filter (0 when none).
    pub pid: u32,
    /// The process name filter ("" when none).
    pub command: String,
    /// Window length in seconds.
    pub duration_seconds: u64,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// By process, most retransmissions first (at most 20; unattributed ones as pid 0).
    pub processes: Vec<RetransmitOwner>,
    /// Processes with retransmissions beyond those listed.
    pub more_processes: usize,
    /// The window, and what the history is missing from it.
    pub coverage: Option<Coverage>,
}

/// One process's retransmissions.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RetransmitOwner {
    /// Process id, 0 for sockets whose owner netspy did not see.
    pub pid: u32,
    /// Name of the thread that made or took the socket ("" when unattributed).
    pub command: String,
    /// Name of the process ("" when unattributed).
    pub process_name: String,
    /// The process's executable, when known.
    pub exe: Option<String>,
    /// Retransmissions.
    pub count: u64,
    /// Segments resent (what the kernel's `TcpRetransSegs` counts: a TSO/GSO buffer resent
    /// as one retransmission holds several); retransmissions by a hook that cannot tell add
    /// none.
    pub segments: u64,
    /// SYNs sent again among them.
    pub syn: u64,
    /// A listener's SYN-ACKs sent again among them.
    #[serde(default)]
    pub syn_ack: u64,
    /// By connection, most retransmissions first (at most 10).
    pub connections: Vec<RetransmitFlow>,
    /// Connections with retransmissions beyond those listed.
    pub more_connections: usize,
}

/// The retransmissions of one connection (4-tuple).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RetransmitFlow {
    /// Local address and port.
    pub source: String,
    /// Remote address and port.
    pub destination: String,
    /// Retransmissions.
    pub count: u64,
    /// Segments resent (what the kernel's `TcpRetransSegs` counts: a TSO/GSO buffer resent
    /// as one retransmission holds several); retransmissions by a hook that cannot tell add
    /// none.
    pub segments: u64,
    /// SYNs sent again among them.
    pub syn: u64,
    /// A listener's SYN-ACKs sent again among them.
    #[serde(default)]
    pub syn_ack: u64,
    /// The most recent one.
    pub last: DateTime<Utc>,
}

/// Recent TCP retransmissions grouped by owning pid ("0" = unattributed).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RetransmitList {
    /// Retransmissions returned.
    pub total_events: usize,
    /// Distinct pids among them (unattributed counts as one, "0").
    pub total_pids: usize,
    /// Retransmissions by pid, oldest first within each pid.
    pub events_by_pid: BTreeMap<String, Vec<RetransmitView>>,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// Retransmissions that matched before the limit applied.
    pub matched_events: u64,
    /// The limit applied.
    pub limit: usize,
    /// True when the requested limit was above the daemon's maximum and was lowered.
    pub limit_capped: bool,
    /// Window length in seconds.
    pub duration_seconds: u64,
    /// The window, and what the history is missing from it.
    pub coverage: Option<Coverage>,
}

/// One TCP segment sent again.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RetransmitView {
    /// Stable id within this daemon's history.
    pub id: String,
    /// Always "retransmit".
    #[serde(rename = "type")]
    pub kind: String,
    /// Owning process id, 0 when unattributed.
    pub pid: u32,
    /// Name of the owning thread, "" when unattributed.
    pub command: String,
    /// Name of the owning process, "" when unattributed.
    pub process_name: String,
    /// Wall-clock time (RFC 3339, nanoseconds).
    pub time: DateTime<Utc>,
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// Local address.
    pub source_ip: String,
    /// Local port.
    pub source_port: u16,
    /// Remote address.
    pub destination_ip: String,
    /// Remote port.
    pub destination_port: u16,
    /// The socket's TCP state (`ESTABLISHED`, `SYN_SENT`, ...).
    pub state: String,
    /// True for a SYN sent again (state `SYN_SENT`).
    pub syn: bool,
    /// Segments resent (several for a TSO/GSO buffer resent as one), 0 when the hook cannot
    /// tell.
    pub segments: u16,
    /// Real user id of the owner.
    pub uid: u32,
    /// cgroup v2 id of the owner.
    pub cgroup_id: u64,
    /// The cgroup, unit and container by name.
    #[serde(flatten)]
    pub placement: CgroupView,
    /// The owner's executable, when known.
    pub exe: Option<String>,
}

/// True for a retransmitted SYN.
fn is_syn(r: &StoredRetransmit) -> bool {
    u32::from(r.state) == netspy_common::tcp::state::SYN_SENT
}

/// True for a listener's retransmitted SYN-ACK.
fn is_syn_ack(r: &StoredRetransmit) -> bool {
    u32::from(r.state) == netspy_common::tcp::state::NEW_SYN_RECV
}

fn ip(store: &Store, sym: Option<Sym>) -> Option<std::net::IpAddr> {
    match sym.and_then(|s| store.endpoint(s)) {
        Some(Endpoint::Ip(ip) | Endpoint::Host(ip, _)) => Some(*ip),
        _ => None,
    }
}

fn text(ip: Option<std::net::IpAddr>) -> String {
    ip.map(|ip| ip.to_string()).unwrap_or_default()
}

impl RetransmitView {
    pub(super) fn new(r: &StoredRetransmit, store: &Store) -> Self {
        let owner = store.owner(r.owner);
        let pid = owner.map_or(0, |o| o.pid);
        Self {
            id: format!("r{:x}-{pid}", r.time_ns),
            kind: EventKind::Retransmit.name().to_owned(),
            pid,
            command: r
                .owner
                .map_or_else(String::new, |o| store.owner_name(Some(o)).to_string()),
            process_name: r.owner.map_or_else(String::new, |o| {
                store.owner_process_name(Some(o)).to_string()
            }),
            time: DateTime::from_timestamp_nanos(r.time_ns),
            timestamp: r.time_ns,
            source_ip: text(ip(store, r.source)),
            source_port: r.sport,
            destination_ip: text(ip(store, r.destination)),
            destination_port: r.dport,
            state: tcp_state_name(r.state).map_or_else(|| r.state.to_string(), str::to_owned),
            syn: is_syn(r),
            segments: r.segments,
            uid: owner.map_or(0, |o| o.uid),
            cgroup_id: owner.map_or(0, |o| o.cgroup_id),
            placement: CgroupView::of(store, r.owner),
            exe: store.executable(r.owner).map(|e| e.to_string()),
        }
    }
}

/// Counts of one process or connection while summing.
#[derive(Default)]
struct Tally {
    count: u64,
    segments: u64,
    syn: u64,
    syn_ack: u64,
    last_ns: i64,
}

impl Tally {
    fn add(&mut self, r: &StoredRetransmit) {
        self.count += 1;
        self.segments += u64::from(r.segments);
        self.syn += u64::from(is_syn(r));
        self.syn_ack += u64::from(is_syn_ack(r));
        self.last_ns = self.last_ns.max(r.time_ns);
    }
}

/// A connection's key: local and remote address symbols and ports.
type FlowKey = (Option<Sym>, u16, Option<Sym>, u16);

/// The `n` largest of `tallies`, most first (ties by key, so answers are stable), and how
/// many were left out.
fn largest<K: Ord + Copy>(tallies: HashMap<K, Tally>, n: usize) -> (Vec<(K, Tally)>, usize) {
    let mut all: Vec<_> = tallies.into_iter().collect();
    all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
    let more = all.len().saturating_sub(n);
    all.truncate(n);
    (all, more)
}

impl Query {
    /// Retransmissions over a window, by process and connection.
    pub fn retransmit_summary(
        &self,
        req: &SummaryRequest,
    ) -> Result<RetransmitSummary, QueryError> {
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let mut owners: HashMap<Option<Sym>, (Tally, HashMap<FlowKey, Tally>)> = HashMap::new();
        let mut total = Tally::default();
        for r in store
            .kind_table::<StoredRetransmit>()
            .select(&scope.selection)
        {
            total.add(r);
            let (tally, flows) = owners.entry(r.owner).or_default();
            tally.add(r);
            flows
                .entry((r.source, r.sport, r.destination, r.dport))
                .or_default()
                .add(r);
        }
        let unattributed = owners.get(&None).map_or(0, |(t, _)| t.count);
        let tallies: HashMap<Option<Sym>, Tally> = owners
            .iter_mut()
            .map(|(&owner, (tally, _))| (owner, std::mem::take(tally)))
            .collect();
        let (top, more_processes) = largest(tallies, MAX_OWNERS);
        let processes = top
            .into_iter()
            .map(|(owner, tally)| {
                let flows = owners.remove(&owner).map(|(_, f)| f).unwrap_or_default();
                let (flows, more_connections) = largest(flows, MAX_FLOWS);
                let endpoint = |sym, port| {
                    ip(&store, sym)
                        .map_or_else(String::new, |ip| SocketAddr::new(ip, port).to_string())
                };
                RetransmitOwner {
                    pid: store.pid(owner),
                    command: owner
                        .map_or_else(String::new, |o| store.owner_name(Some(o)).to_string()),
                    process_name: owner.map_or_else(String::new, |o| {
                        store.owner_process_name(Some(o)).to_string()
                    }),
                    exe: store.executable(owner).map(|e| e.to_string()),
                    count: tally.count,
                    segments: tally.segments,
                    syn: tally.syn,
                    syn_ack: tally.syn_ack,
                    connections: flows
                        .into_iter()
                        .map(|((src, sport, dst, dport), t)| RetransmitFlow {
                            source: endpoint(src, sport),
                            destination: endpoint(dst, dport),
                            count: t.count,
                            segments: t.segments,
                            syn: t.syn,
                            syn_ack: t.syn_ack,
                            last: DateTime::from_timestamp_nanos(t.last_ns),
                        })
                        .collect(),
                    more_connections,
                }
            })
            .collect();
        let now = Utc::now();
        Ok(RetransmitSummary {
            count: total.count,
            segments: total.segments,
            syn: total.syn,
            syn_ack: total.syn_ack,
            unattributed,
            pid: req.pid.unwrap_or(0),
            command: scope.command,
            duration_seconds: scope.duration_seconds,
            query_time: now,
            processes,
            more_processes,
            coverage: Some(Coverage::of(
                &store,
                Kind::Retransmit,
                &scope.selection,
                now,
            )),
        })
    }

    /// The most recent matching retransmissions, grouped by owning pid.
    pub fn list_retransmits(&self, req: &ListRequest) -> Result<RetransmitList, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let Newest { views, matched, .. } =
            newest::<StoredRetransmit>(&store, &scope.selection, limit, &Filters::default());
        let total_events = views.len();
        let events_by_pid = by_pid(views, |v| v.pid);
        let now = Utc::now();
        Ok(RetransmitList {
            total_events,
            total_pids: events_by_pid.len(),
            events_by_pid,
            query_time: now,
            matched_events: matched,
            limit,
            limit_capped,
            duration_seconds: scope.duration_seconds,
            coverage: Some(Coverage::of(
                &store,
                Kind::Retransmit,
                &scope.selection,
                now,
            )),
        })
    }
}

impl Listed for StoredRetransmit {
    type View = RetransmitView;

    fn table(store: &Store) -> &Table<Self> {
        store.kind_table::<StoredRetransmit>()
    }

    fn view(&self, store: &Store) -> RetransmitView {
        RetransmitView::new(self, store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        query::{Status, fixtures},
        store::{Limits, Store},
    };

    #[test]
    fn retransmissions_are_summed_by_process_and_connection() {
        let query = Query::new(
            Store::new(Limits::default()),
            std::sync::Arc::new(Status::default()),
            100,
        );
        query.ingest(vec![
            fixtures::retransmit(Some("curl"), "10.0.0.1:40000", "10.0.0.2:443", true),
            fixtures::retransmit(Some("curl"), "10.0.0.1:40000", "10.0.0.2:443", true),
            fixtures::retransmit(Some("curl"), "10.0.0.1:40002", "10.0.0.3:80", false),
            fixtures::retransmit(None, "10.0.0.1:22", "10.0.0.9:50000", false),
        ]);
        let s = query
            .retransmit_summary(&SummaryRequest::default())
            .unwrap();
        assert_eq!((s.count, s.syn, s.unattributed), (4, 2, 1));
        assert_eq!(s.segments, 8, "each fixture resends 2 segments");
        assert_eq!(s.processes.len(), 2);
        let curl = &s.processes[0];
        assert_eq!(
            (curl.process_name.as_str(), curl.count, curl.syn),
            ("curl", 3, 2)
        );
        assert_eq!(curl.connections[0].destination, "10.0.0.2:443");
        assert_eq!((curl.connections[0].count, curl.connections[0].syn), (2, 2));
        assert_eq!(curl.connections[0].segments, 4);
        assert_eq!(curl.connections[1].source, "10.0.0.1:40002");
        let unowned = &s.processes[1];
        assert_eq!(
            (unowned.pid, unowned.command.as_str(), unowned.count),
            (0, "", 1)
        );

        let list = query.list_retransmits(&ListRequest::default()).unwrap();
        assert_eq!((list.total_events, list.total_pids), (4, 2));
        let first = &list.events_by_pid["4312"][0];
        assert_eq!(
            (first.state.as_str(), first.syn, first.destination_port),
            ("SYN_SENT", true, 443)
        );
        assert_eq!(list.events_by_pid["0"][0].state, "ESTABLISHED");
        assert_eq!(list.events_by_pid["0"][0].segments, 2);
    }
}
