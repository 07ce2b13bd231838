//! Packet-drop questions: summary and list, with routine drops told apart from problems.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::Kind;

use super::{
    CgroupView, DEFAULT_WINDOW_SECONDS, ListRequest, Query, QueryError, SummaryRequest,
    coverage::Coverage,
    kinds::{EventKind, Filters, Listed, Newest, newest},
};
use crate::{
    events::protocol_name,
    store::{Endpoint, Selection, Store, StoredDrop, Sym, Table, protocol_of_code},
};

/// Reasons that are part of normal socket life (closing, purging, filtering what was not
/// ours): kept, but left out of lists and counts unless asked for.
const ROUTINE: &[&str] = &[
    "SOCKET_CLOSE",
    "QUEUE_PURGE",
    "UNIX_DISCONNECT",
    "UNIX_SKIP_OOB",
    "SOCKET_FILTER",
    "TAP_FILTER",
    "TAP_TXFILTER",
    "OTHERHOST",
    "UNICAST_IN_L2_MULTICAST",
    "IPV6_NDISC_NS_OTHERHOST",
    "TCP_OLD_DATA",
    "TCP_OFOMERGE",
    "TCP_CLOSE",
];

/// True when a drop reason is routine rather than a sign of trouble.
pub fn is_routine(reason: &str) -> bool {
    ROUTINE.contains(&reason)
}

/// What kind of problem a drop reason points at: `no_socket`, `policy` (netfilter, BPF,
/// XFRM, security), `checksum`, `queue_full`, `routing`, `tcp`, `routine`, or `other`.
pub fn category(reason: &str) -> &'static str {
    const QUEUE_FULL: &[&str] = &[
        "SOCKET_RCVBUFF",
        "SOCKET_BACKLOG",
        "PROTO_MEM",
        "TCP_LISTEN_OVERFLOW",
        "CPU_BACKLOG",
        "FULL_RING",
        "NOMEM",
        "NEIGH_QUEUEFULL",
        "CAKE_FLOOD",
        "TCP_ZEROWINDOW",
        "TCP_OFO_QUEUE_PRUNE",
    ];
    const POLICY: &[&str] = &[
        "NETFILTER_DROP",
        "BPF_CGROUP_EGRESS",
        "XFRM_POLICY",
        "SECURITY_HOOK",
        "XDP",
    ];
    match reason {
        "NO_SOCKET" => "no_socket",
        r if is_routine(r) => "routine",
        r if POLICY.contains(&r) || r.starts_with("TC_") => "policy",
        r if r.ends_with("_CSUM") => "checksum",
        r if QUEUE_FULL.contains(&r) || r.starts_with("QDISC_") || r.starts_with("FQ_") => {
            "queue_full"
        }
        r if r.starts_with("IP_")
            && (r.contains("ROUTES") || r.contains("INVALID") || r.contains("LOCAL"))
            || r.starts_with("NEIGH_")
            || r == "IP_RPFILTER"
            || r == "IP_INADDRERRORS"
            || r == "NO_TX_TARGET" =>
        {
            "routing"
        }
        r if r.starts_with("TCP_") => "tcp",
        _ => "other",
    }
}

/// How many packets of a process were dropped over a window.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DropSummary {
    /// Drops in the window, routine ones excluded.
    pub count: u64,
    /// The pid filter (0 when none).
    pub pid: u32,
    /// The process name filter ("" when none).
    pub command: String,
    /// Window length in seconds.
    pub duration_seconds: u64,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// A note for people (what was left out).
    pub message: Option<String>,
    /// Counts by reason, largest first.
    #[serde(default)]
    pub by_reason: Vec<ReasonCount>,
    /// Routine drops in the window that `count` leaves out.
    #[serde(default)]
    pub routine_excluded: u64,
    /// Drops without a known owning process among `count` (only without a process filter).
    #[serde(default)]
    pub unattributed: u64,
    /// Drops among `count` and `routine_excluded` that the kernel counted by reason and owner
    /// without a full event, past its per-CPU rate of full drop events
    /// (`--drop-event-rate`): in every total here, but not in drop lists. Counts reach the
    /// daemon within about 2 s.
    #[serde(default)]
    pub sampled_out: u64,
    /// The window, and what the history is missing from it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
}

/// Drops of one reason.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct ReasonCount {
    /// Kernel drop reason (`NO_SOCKET`, `NETFILTER_DROP`, ...).
    pub reason: String,
    /// Its category (see `category`).
    pub category: String,
    /// How many.
    pub count: u64,
}

/// Recent drops grouped by owning pid ("0" = unattributed).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DropList {
    /// Drops returned.
    pub total_events: usize,
    /// Distinct pids among them (unattributed counts as one, "0").
    pub total_pids: usize,
    /// Drops by pid, oldest first within each pid.
    pub events_by_pid: BTreeMap<String, Vec<DropView>>,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// A note for people (what was left out).
    pub message: Option<String>,
    /// Drops that matched before the limit applied.
    #[serde(default)]
    pub matched_events: u64,
    /// Routine drops left out (see `include_routine`).
    #[serde(default)]
    pub routine_excluded: u64,
    /// The limit applied.
    #[serde(default)]
    pub limit: usize,
    /// True when the requested limit was above the daemon's maximum and was lowered.
    #[serde(default)]
    pub limit_capped: bool,
    /// Further matching drops that the kernel counted without a full event (past its
    /// per-CPU rate of full drop events), so they cannot be listed; the drop summary counts
    /// them.
    #[serde(default)]
    pub sampled_out: u64,
    /// Window length in seconds.
    #[serde(default)]
    pub duration_seconds: u64,
    /// The window, and what the history is missing from it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
}

/// One dropped packet.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DropView {
    /// Stable id within this daemon's history.
    pub id: String,
    /// Always "packet_drop".
    #[serde(rename = "type")]
    pub kind: String,
    /// Owning process id, 0 when unattributed.
    pub pid: u32,
    /// Name of the owning thread (the one that made or took the socket), "" when
    /// unattributed.
    pub command: String,
    /// Name of the owning process (its main thread's), "" when unattributed.
    #[serde(default)]
    pub process_name: String,
    /// Kernel drop reason (`NO_SOCKET`, `NETFILTER_DROP`, ...), named by the running kernel.
    pub drop_reason: String,
    /// Reason number on this kernel.
    #[serde(default)]
    pub drop_reason_code: u16,
    /// `no_socket`, `policy`, `checksum`, `queue_full`, `routing`, `tcp`, `routine`, `other`.
    #[serde(default)]
    pub category: String,
    /// True for routine drops.
    #[serde(default)]
    pub routine: bool,
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// Wall-clock time (RFC 3339, nanoseconds).
    pub time: DateTime<Utc>,
    /// Kernel function that dropped it (`tcp_v4_rcv+0x91`).
    #[serde(default)]
    pub location: String,
    /// "TCP", "UDP", "ICMP", ... ("" when not IP).
    #[serde(default)]
    pub protocol: String,
    /// Source address ("" when not IP).
    #[serde(default)]
    pub source_ip: String,
    /// Source port (TCP/UDP).
    pub source_port: Option<u16>,
    /// Destination address.
    #[serde(default)]
    pub destination_ip: String,
    /// Destination port (TCP/UDP).
    pub destination_port: Option<u16>,
    /// Ethertype (2048 IPv4, 34525 IPv6).
    #[serde(default)]
    pub ethertype: u16,
    /// True when the owning process is known.
    #[serde(default)]
    pub attributed: bool,
    /// Owner's user id.
    #[serde(default)]
    pub uid: u32,
    /// Owner's cgroup v2 id.
    #[serde(default)]
    pub cgroup_id: u64,
    /// The owner's cgroup, unit and container by name.
    #[serde(flatten)]
    pub placement: CgroupView,
    /// The owner's executable, when known.
    #[serde(default)]
    pub exe: Option<String>,
}

impl DropView {
    pub(super) fn new(r: &StoredDrop, store: &Store) -> Self {
        let reason = store.kernel_name(r.reason).to_string();
        let ip = |sym: Option<Sym>| match sym.and_then(|s| store.endpoint(s)) {
            Some(Endpoint::Ip(ip)) => ip.to_string(),
            _ => String::new(),
        };
        let raw_protocol = protocol_of_code(r.protocol);
        let owner = store.owner(r.owner);
        Self {
            id: format!("d{:x}-{}", r.time_ns, r.reason_code),
            kind: EventKind::PacketDrop.name().to_owned(),
            pid: owner.map_or(0, |o| o.pid),
            command: store.owner_name(r.owner).to_string(),
            process_name: store.owner_process_name(r.owner).to_string(),
            category: category(&reason).to_owned(),
            routine: is_routine(&reason),
            drop_reason: reason,
            drop_reason_code: r.reason_code,
            timestamp: r.time_ns,
            time: DateTime::from_timestamp_nanos(r.time_ns),
            location: store.kernel_name(r.location).to_string(),
            protocol: match (r.source.is_some(), protocol_name(raw_protocol)) {
                (false, _) => String::new(),
                (true, Some(name)) => name.to_owned(),
                (true, None) => raw_protocol.to_string(),
            },
            source_ip: ip(r.source),
            source_port: r.has_ports.then_some(r.sport),
            destination_ip: ip(r.destination),
            destination_port: r.has_ports.then_some(r.dport),
            ethertype: r.ethertype,
            attributed: owner.is_some(),
            uid: owner.map_or(0, |o| o.uid),
            cgroup_id: owner.map_or(0, |o| o.cgroup_id),
            placement: CgroupView::of(store, r.owner),
            exe: store.executable(r.owner).map(|e| e.to_string()),
        }
    }
}

/// The symbols of the routine reasons present in the store (a handful at most).
pub(super) fn routine_reasons(store: &Store) -> Vec<Sym> {
    store.kernel_names_matching(is_routine)
}

fn routine_note(excluded: u64) -> Option<String> {
    (excluded > 0).then(|| {
        format!("{excluded} routine drops (sockets closing, queues purged) left out; include_routine=true lists them")
    })
}

/// The notes of an answer, joined.
fn notes(notes: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let notes: Vec<String> = notes.into_iter().flatten().collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn sampled_note(sampled_out: u64, listed: bool) -> Option<String> {
    (sampled_out > 0).then(|| {
        if listed {
            format!("{sampled_out} more drops were counted without full events (past the per-CPU rate of drop events), so they are not listed; the drop summary counts them")
        } else {
            format!("{sampled_out} of these drops were counted without full events (past the per-CPU rate of drop events): they are in the counts, not in drop lists")
        }
    })
}

/// Sampled-out drop counts matching `selection`: (by reason, routine ones apart) as
/// (sampled-out not routine, routine, unattributed not routine).
fn sampled_counts(
    store: &Store,
    selection: &Selection,
    routine: &[Sym],
    by_reason: &mut HashMap<Sym, u64>,
) -> (u64, u64, u64) {
    let (mut counted, mut routine_count, mut unattributed) = (0, 0, 0);
    for r in store.sampled().select(selection) {
        if routine.contains(&r.reason) {
            routine_count += r.count;
            continue;
        }
        *by_reason.entry(r.reason).or_default() += r.count;
        counted += r.count;
        if r.owner.is_none() {
            unattributed += r.count;
        }
    }
    (counted, routine_count, unattributed)
}

impl Query {
    /// Drops over a window, by reason; routine drops counted apart.
    pub fn drop_summary(&self, req: &SummaryRequest) -> Result<DropSummary, QueryError> {
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let routine = routine_reasons(&store);
        let mut by_reason: HashMap<Sym, u64> = HashMap::new();
        let mut routine_excluded = 0;
        let mut unattributed = 0;
        for r in store.drops().select(&scope.selection) {
            if routine.contains(&r.reason) {
                routine_excluded += 1;
                continue;
            }
            *by_reason.entry(r.reason).or_default() += 1;
            if r.owner.is_none() {
                unattributed += 1;
            }
        }
        let (sampled, sampled_routine, sampled_unattributed) =
            sampled_counts(&store, &scope.selection, &routine, &mut by_reason);
        routine_excluded += sampled_routine;
        unattributed += sampled_unattributed;
        let sampled_out = sampled + sampled_routine;
        let mut by_reason: Vec<ReasonCount> = by_reason
            .into_iter()
            .map(|(sym, count)| {
                let reason = store.kernel_name(sym).to_string();
                ReasonCount {
                    category: category(&reason).to_owned(),
                    reason,
                    count,
                }
            })
            .collect();
        by_reason.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        let now = Utc::now();
        Ok(DropSummary {
            count: by_reason.iter().map(|r| r.count).sum(),
            pid: req.pid.unwrap_or(0),
            command: scope.command,
            duration_seconds: scope.duration_seconds,
            query_time: now,
            message: notes([
                routine_note(routine_excluded),
                sampled_note(sampled_out, false),
            ]),
            by_reason,
            routine_excluded,
            unattributed,
            sampled_out,
            coverage: Some(Coverage::of(
                &store,
                Kind::PacketDrop,
                &scope.selection,
                now,
            )),
        })
    }

    /// The most recent matching drops, grouped by owning pid.
    pub fn list_drops(&self, req: &ListRequest) -> Result<DropList, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let filters = Filters::new(&store, None, req.include_routine);
        let Newest {
            views,
            matched,
            left_out: routine_excluded,
        } = newest::<StoredDrop>(&store, &scope.selection, limit, &filters);
        let (sampled_out, ..) = sampled_counts(
            &store,
            &scope.selection,
            &filters.routine,
            &mut HashMap::new(),
        );
        let total_events = views.len();
        let events_by_pid = super::by_pid(views, |v| v.pid);
        let now = Utc::now();
        Ok(DropList {
            total_events,
            total_pids: events_by_pid.len(),
            events_by_pid,
            query_time: now,
            message: notes([
                routine_note(routine_excluded),
                sampled_note(sampled_out, true),
            ]),
            matched_events: matched,
            routine_excluded,
            limit,
            limit_capped,
            sampled_out,
            duration_seconds: scope.duration_seconds,
            coverage: Some(Coverage::of(
                &store,
                Kind::PacketDrop,
                &scope.selection,
                now,
            )),
        })
    }
}

/// Lists, searches and the stream leave routine drops out unless asked for.
impl Listed for StoredDrop {
    type View = DropView;

    fn table(store: &Store) -> &Table<Self> {
        store.drops()
    }

    fn view(&self, store: &Store) -> DropView {
        DropView::new(self, store)
    }

    fn filtered(filters: &Filters) -> bool {
        !filters.routine.is_empty()
    }

    fn keep(&self, filters: &Filters) -> bool {
        !filters.routine.contains(&self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_point_at_the_problem() {
        assert_eq!(category("NO_SOCKET"), "no_socket");
        assert_eq!(category("NETFILTER_DROP"), "policy");
        assert_eq!(category("TC_INGRESS"), "policy");
        assert_eq!(category("TCP_CSUM"), "checksum");
        assert_eq!(category("SOCKET_RCVBUFF"), "queue_full");
        assert_eq!(category("QDISC_DROP"), "queue_full");
        assert_eq!(category("IP_OUTNOROUTES"), "routing");
        assert_eq!(category("NEIGH_FAILED"), "routing");
        assert_eq!(category("TCP_INVALID_SEQUENCE"), "tcp");
        assert_eq!(category("QUEUE_PURGE"), "routine");
        assert_eq!(category("NOT_SPECIFIED"), "other");
        assert!(is_routine("SOCKET_CLOSE"));
        assert!(!is_routine("NO_SOCKET"));
    }
}
