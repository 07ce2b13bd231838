//! Connection questions: summary and list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ListRequest, Query, QueryError, SummaryRequest};

/// Protocols with a TCP handshake, whose attempts have an outcome.
const IPPROTO_TCP: u16 = 6;
const IPPROTO_MPTCP: u16 = 262;
use crate::{
    events::{errno_name, protocol_name, socket_type_name},
    store::{Endpoint, Outcome, Store, StoredConnection, protocol_of_code},
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
    pub outcomes: OutcomeCounts,
    /// Attempts whose `connect` failed outright (a negative return other than EINPROGRESS).
    pub failed_calls: u64,
}

/// TCP connect results.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Handshake completed.
    pub established: u64,
    /// Refused by the peer (RST).
    pub refused: u64,
    /// No answer (SYN retries ran out).
    pub timed_out: u64,
    /// Other errors (unreachable, ...).
    pub failed: u64,
    /// Closed before completing.
    pub aborted: u64,
    /// No result seen: still pending, or the call failed before a SYN went out (see
    /// `failed_calls`).
    pub unknown: u64,
}

impl OutcomeCounts {
    /// Counts the result of `r` when it is a TCP (or MPTCP) attempt; other connects have no
    /// handshake, so no outcome to count.
    pub(super) fn add(&mut self, r: &StoredConnection) {
        if !matches!(protocol_of_code(r.protocol), IPPROTO_TCP | IPPROTO_MPTCP) {
            return;
        }
        *match r.outcome {
            Outcome::Established => &mut self.established,
            Outcome::Refused => &mut self.refused,
            Outcome::TimedOut => &mut self.timed_out,
            Outcome::Failed => &mut self.failed,
            Outcome::Aborted => &mut self.aborted,
            Outcome::Unknown => &mut self.unknown,
        } += 1;
    }
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
    pub matched_events: u64,
    /// The limit applied.
    pub limit: usize,
    /// True when the requested limit was above the daemon's maximum and was lowered.
    pub limit_capped: bool,
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
    /// Process name.
    pub command: String,
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
    pub uid: u32,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// TCP result: established, refused, timed_out, failed, aborted; None when not known.
    pub outcome: Option<String>,
    /// Errno name behind a failed TCP result.
    pub outcome_error: Option<String>,
    /// SYN to result, milliseconds.
    pub latency_ms: Option<f64>,
    /// Local "ip:port", once the TCP result told it.
    pub source: Option<String>,
}

impl ConnectionView {
    fn new(r: &StoredConnection, store: &Store) -> Self {
        let endpoint = r.destination.and_then(|s| store.endpoint(s));
        let (destination, destination_ip, raw_ipv4, raw_ipv6) = match endpoint {
            Some(Endpoint::Ip(ip)) => {
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
        let raw_protocol = protocol_of_code(r.protocol);
        let protocol = match (r.family, protocol_name(raw_protocol)) {
            (1, _) => "UNIX".to_owned(),
            (_, Some(name)) => name.to_owned(),
            (_, None) => format!("IPPROTO_{raw_protocol}"),
        };
        let source = match r.source.and_then(|s| store.endpoint(s)) {
            Some(Endpoint::Ip(ip)) => Some(std::net::SocketAddr::new(*ip, r.sport).to_string()),
            _ => None,
        };
        Self {
            id: format!("c{:x}-{}", r.time_ns, r.pid),
            kind: "connection".to_owned(),
            pid: r.pid,
            command: store.command(r.command).to_string(),
            time: DateTime::from_timestamp_nanos(r.time_ns),
            timestamp: r.time_ns,
            destination,
            destination_ip,
            destination_port: r.dport,
            address_family: u16::from(r.family),
            protocol,
            socket_type: socket_type_name(u16::from(r.socktype))
                .unwrap_or("unknown")
                .to_owned(),
            return_code: i32::from(r.ret),
            error: (r.ret < 0).then(|| errno_name(-i32::from(r.ret))).flatten(),
            raw_ipv4,
            raw_ipv6,
            raw_protocol,
            raw_socktype: r.socktype,
            uid: r.uid,
            cgroup_id: store.cgroup(r.cgroup),
            outcome: outcome_name(r.outcome).map(str::to_owned),
            outcome_error: (r.outcome_errno != 0)
                .then(|| errno_name(i32::from(r.outcome_errno)))
                .flatten(),
            latency_ms: (r.latency_us != 0).then(|| f64::from(r.latency_us) / 1000.0),
            source,
        }
    }
}

/// The API name of a TCP result.
pub fn outcome_name(outcome: Outcome) -> Option<&'static str> {
    Some(match outcome {
        Outcome::Established => "established",
        Outcome::Refused => "refused",
        Outcome::TimedOut => "timed_out",
        Outcome::Failed => "failed",
        Outcome::Aborted => "aborted",
        Outcome::Unknown => return None,
    })
}

const EINPROGRESS: i16 = -115;

impl Query {
    /// How many connect attempts match, with their TCP results.
    pub fn connection_summary(
        &self,
        req: &SummaryRequest,
    ) -> Result<ConnectionSummary, QueryError> {
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(60))?;
        let mut outcomes = OutcomeCounts::default();
        let mut count = 0;
        let mut failed_calls = 0;
        for r in store.connections().select(&scope.selection) {
            count += 1;
            outcomes.add(r);
            if r.ret < 0 && r.ret != EINPROGRESS {
                failed_calls += 1;
            }
        }
        Ok(ConnectionSummary {
            count,
            pid: req.pid.unwrap_or(0),
            command: scope.command,
            duration_seconds: scope.duration_seconds,
            query_time: Utc::now(),
            outcomes,
            failed_calls,
        })
    }

    /// The most recent matching connect attempts, grouped by pid.
    pub fn list_connections(&self, req: &ListRequest) -> Result<ConnectionList, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let store = self.read();
        let scope = req.scope().resolve(&store, None)?;
        let (views, matched) = Self::connection_views(&store, &scope.selection, limit, None);
        let total_events = views.len();
        let mut events_by_pid: BTreeMap<String, Vec<ConnectionView>> = BTreeMap::new();
        for view in views {
            events_by_pid
                .entry(view.pid.to_string())
                .or_default()
                .push(view);
        }
        Ok(ConnectionList {
            total_events,
            total_pids: events_by_pid.len(),
            events_by_pid,
            query_time: Utc::now(),
            matched_events: matched,
            limit,
            limit_capped,
        })
    }

    /// Views of the most recent matching connections, oldest first (for search and MCP).
    pub(super) fn connection_views(
        store: &Store,
        selection: &crate::store::Selection,
        limit: usize,
        outcome: Option<Outcome>,
    ) -> (Vec<ConnectionView>, u64) {
        let table = store.connections();
        let (mut views, matched): (Vec<ConnectionView>, u64) = match outcome {
            // The count comes from the indexes: only the listed records are visited.
            None => (
                table
                    .select(selection)
                    .rev()
                    .take(limit)
                    .map(|r| ConnectionView::new(r, store))
                    .collect(),
                table.count(selection) as u64,
            ),
            Some(outcome) => {
                let mut matched = 0;
                let mut views = Vec::new();
                for r in table
                    .select(selection)
                    .rev()
                    .filter(|r| r.outcome == outcome)
                {
                    matched += 1;
                    if views.len() < limit {
                        views.push(ConnectionView::new(r, store));
                    }
                }
                (views, matched)
            }
        };
        views.reverse();
        (views, matched)
    }
}
