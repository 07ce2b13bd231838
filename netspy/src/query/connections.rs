//! Connection questions: summary and list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::Kind;

use super::{
    CgroupView, Count, DEFAULT_WINDOW_SECONDS, ListRequest, Query, QueryError, SummaryRequest,
    coverage::Coverage,
    kinds::{EventKind, Filters, Listed, Newest, newest},
};

use crate::{
    events::TcpResult,
    events::{errno_name, socket_type_name},
    store::{Endpoint, OutcomeCounts, Store, StoredConnection, Table},
};

/// How many connect attempts a process made over a window.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ConnectionSummary {
    /// Connect attempts in the window.
    pub count: u64,
    /// The pid filter (0 when none).
    pub pid: u32,
    /// The process name filter ("" when none).
    pub command: String,
    /// Window length in seconds.
    pub duration_seconds: u64,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// Results of the TCP (and MPTCP) attempts among them; UDP and UNIX connects have no
    /// handshake and are not counted here.
    #[serde(default)]
    pub outcomes: OutcomeCounts,
    /// Attempts whose `connect` failed outright (a negative return other than EINPROGRESS).
    #[serde(default)]
    pub failed_calls: u64,
    /// The failed calls by errno name, most first (they add up to `failed_calls`).
    #[serde(default)]
    pub call_errors: Vec<Count>,
    /// The window, and what the history is missing from it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
}

/// Recent connection events grouped by process id.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ConnectionList {
    /// Events returned.
    pub total_events: usize,
    /// Distinct pids among them.
    pub total_pids: usize,
    /// Events by pid (as a string key), oldest first within each pid.
    pub events_by_pid: BTreeMap<String, Vec<ConnectionView>>,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// Events that matched before the limit applied.
    #[serde(default)]
    pub matched_events: u64,
    /// The limit applied.
    #[serde(default)]
    pub limit: usize,
    /// True when the requested limit was above the daemon's maximum and was lowered.
    #[serde(default)]
    pub limit_capped: bool,
    /// Window length in seconds.
    #[serde(default)]
    pub duration_seconds: u64,
    /// The window, and what the history is missing from it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
}

/// One connect attempt, with the original API's field names plus richer ones.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ConnectionView {
    /// Stable id within this daemon's history.
    pub id: String,
    /// Always "connection".
    #[serde(rename = "type")]
    pub kind: String,
    /// Process id.
    pub pid: u32,
    /// Name of the calling thread (the kernel's `comm`, as the original API had it).
    pub command: String,
    /// Name of the process (its main thread's `comm`, what `ps` shows).
    #[serde(default)]
    pub process_name: String,
    /// Wall-clock time (RFC 3339, nanoseconds).
    pub time: DateTime<Utc>,
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// "ip:port" (IPv6 in brackets), a UNIX path, or "@name" for abstract sockets.
    pub destination: String,
    /// Destination address ("" for UNIX sockets).
    pub destination_ip: String,
    /// Destination port (0 for UNIX sockets).
    pub destination_port: u16,
    /// The host name the process had looked up and got this address for
    /// (`getaddrinfo`), None when it did not look it up in the C library (or before
    /// netspy watched).
    #[serde(default)]
    pub destination_name: Option<String>,
    /// Address family: 2 AF_INET, 10 AF_INET6, 1 AF_UNIX.
    pub address_family: u16,
    /// Protocol of the kernel socket: "TCP", "UDP", "UNIX", ...
    pub protocol: String,
    /// Socket type of the kernel socket: "SOCK_STREAM", "SOCK_DGRAM", ...
    pub socket_type: String,
    /// `connect` return value: 0, or a negative errno.
    pub return_code: i32,
    /// Errno name of a negative return code.
    pub error: Option<String>,
    /// IPv4 destination as a number (address bytes in network order read big-endian), 0 otherwise.
    pub raw_ipv4: u32,
    /// IPv6 destination bytes, zeros otherwise.
    pub raw_ipv6: [u8; 16],
    /// `sk_protocol` number.
    pub raw_protocol: u16,
    /// `sk_type` number.
    pub raw_socktype: u8,
    /// User id.
    #[serde(default)]
    pub uid: u32,
    /// cgroup v2 id.
    #[serde(default)]
    pub cgroup_id: u64,
    /// The cgroup, unit and container by name.
    #[serde(flatten)]
    pub placement: CgroupView,
    /// The process's executable (None when the process had exited before netspy could
    /// read it, or is a kernel thread).
    #[serde(default)]
    pub exe: Option<String>,
    /// TCP result: established, refused, timed_out, failed, aborted; None when not known.
    pub outcome: Option<TcpResult>,
    /// Errno name behind a failed TCP result.
    pub outcome_error: Option<String>,
    /// SYN to result, milliseconds.
    pub latency_ms: Option<f64>,
    /// Local "ip:port", once the TCP result told it.
    pub source: Option<String>,
}

impl ConnectionView {
    pub(super) fn new(r: &StoredConnection, store: &Store) -> Self {
        let endpoint = r.destination.and_then(|s| store.endpoint(s));
        let (destination, destination_ip, raw_ipv4, raw_ipv6) = match endpoint {
            Some(Endpoint::Ip(ip) | Endpoint::Host(ip, _)) => {
                let (v4, v6) = match ip {
                    std::net::IpAddr::V4(a) => (u32::from(*a), [0; 16]),
                    std::net::IpAddr::V6(a) => (0, a.octets()),
                };
                (
                    std::net::SocketAddr::new(*ip, r.dport).to_string(),
                    ip.to_string(),
                    v4,
                    v6,
                )
            }
            Some(Endpoint::Unix(path)) => (path.to_string(), String::new(), 0, [0; 16]),
            None => (String::new(), String::new(), 0, [0; 16]),
        };
        let kind = store.socket_kind(r.kind);
        let raw_protocol = kind.protocol;
        let protocol = kind.protocol_label();
        let source = match r.source.and_then(|s| store.endpoint(s)) {
            Some(Endpoint::Ip(ip)) => Some(std::net::SocketAddr::new(*ip, r.sport).to_string()),
            _ => None,
        };
        let owner = store.owner(Some(r.owner));
        let pid = owner.map_or(0, |o| o.pid);
        Self {
            id: format!("c{:x}-{pid}", r.time_ns),
            kind: EventKind::Connection.name().to_owned(),
            pid,
            command: store.owner_name(Some(r.owner)).to_string(),
            process_name: store.owner_process_name(Some(r.owner)).to_string(),
            time: DateTime::from_timestamp_nanos(r.time_ns),
            timestamp: r.time_ns,
            destination,
            destination_ip,
            destination_port: r.dport,
            destination_name: endpoint
                .and_then(Endpoint::host_name)
                .map(|n| n.to_string()),
            address_family: kind.family,
            protocol,
            socket_type: socket_type_name(kind.socktype)
                .unwrap_or("unknown")
                .to_owned(),
            return_code: r.return_code(),
            error: (r.call_errno != 0)
                .then(|| errno_name(i32::from(r.call_errno)))
                .flatten(),
            raw_ipv4,
            raw_ipv6,
            raw_protocol,
            raw_socktype: u8::try_from(kind.socktype).unwrap_or(u8::MAX),
            uid: owner.map_or(0, |o| o.uid),
            cgroup_id: owner.map_or(0, |o| o.cgroup_id),
            placement: CgroupView::of(store, Some(r.owner)),
            exe: store.executable(Some(r.owner)).map(|e| e.to_string()),
            outcome: r.outcome.result(),
            outcome_error: (r.outcome_errno != 0)
                .then(|| errno_name(i32::from(r.outcome_errno)))
                .flatten(),
            latency_ms: (r.latency_us != 0).then(|| f64::from(r.latency_us) / 1000.0),
            source,
        }
    }
}

/// Counts by errno, most first, named (`ECONNREFUSED`).
pub(super) fn errno_counts(by_errno: impl IntoIterator<Item = (u8, u64)>) -> Vec<Count> {
    let mut counts: Vec<Count> = by_errno
        .into_iter()
        .map(|(errno, count)| Count {
            name: errno_label(i32::from(errno)),
            count,
        })
        .collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    counts
}

/// An errno's name, or its number when it has none.
pub(super) fn errno_label(errno: i32) -> String {
    errno_name(errno).unwrap_or_else(|| format!("errno {errno}"))
}

impl Query {
    /// How many connect attempts match, with their TCP results.
    pub fn connection_summary(
        &self,
        req: &SummaryRequest,
    ) -> Result<ConnectionSummary, QueryError> {
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let tally = store.connection_tally(&scope.selection);
        let now = Utc::now();
        Ok(ConnectionSummary {
            count: tally.count,
            pid: req.pid.unwrap_or(0),
            command: scope.command,
            duration_seconds: scope.duration_seconds,
            query_time: now,
            outcomes: tally.outcomes,
            failed_calls: tally.failed_calls,
            call_errors: errno_counts(tally.call_errors),
            coverage: Some(Coverage::of(
                &store,
                Kind::Connection,
                &scope.selection,
                now,
            )),
        })
    }

    /// The most recent matching connect attempts, grouped by pid.
    pub fn list_connections(&self, req: &ListRequest) -> Result<ConnectionList, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let Newest { views, matched, .. } =
            newest::<StoredConnection>(&store, &scope.selection, limit, &Filters::default());
        let now = Utc::now();
        let total_events = views.len();
        let events_by_pid = super::by_pid(views, |v| v.pid);
        Ok(ConnectionList {
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
                Kind::Connection,
                &scope.selection,
                now,
            )),
        })
    }
}

impl Listed for StoredConnection {
    type View = ConnectionView;
    const HAS_TCP_RESULT: bool = true;

    fn table(store: &Store) -> &Table<Self> {
        store.connections()
    }

    fn view(&self, store: &Store) -> ConnectionView {
        ConnectionView::new(self, store)
    }

    fn filtered(filters: &Filters) -> bool {
        filters.outcome.is_some()
    }

    fn keep(&self, filters: &Filters) -> bool {
        filters
            .outcome
            .is_none_or(|outcome| self.outcome.reported() == outcome)
    }
}
