//! Pattern analysis: where a process connects, how, and how it goes.

use std::{collections::HashMap, hash::Hash};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{OutcomeCounts, Query, QueryError, SummaryRequest};
use crate::{
    events::{errno_name, protocol_name},
    store::{Endpoint, Outcome, Store, Sym},
};

/// How many entries each top list keeps.
const TOP: usize = 10;

/// Connection patterns over a window.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Analysis {
    /// The pid filter (0 when none).
    pub pid: u32,
    /// The process name filter ("" when none).
    pub command: String,
    /// Window length in seconds.
    pub duration_seconds: u64,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// Connect attempts in the window.
    pub total_connections: u64,
    /// Attempts per minute over the window.
    pub rate_per_minute: f64,
    /// Distinct destinations (address and port, or path).
    pub unique_destinations: usize,
    /// Most frequent destinations.
    pub top_destinations: Vec<Count>,
    /// Attempts by protocol.
    pub protocols: Vec<Count>,
    /// Most frequent destination ports (IP only).
    pub ports: Vec<Count>,
    /// TCP results.
    pub outcomes: OutcomeCounts,
    /// Errors: failed `connect` calls and failed TCP results, by errno name.
    pub errors: Vec<Count>,
    /// Attempts by process name.
    pub processes: Vec<Count>,
}

/// Something and how often it happened.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct Count {
    /// What.
    pub name: String,
    /// How often.
    pub count: u64,
}

struct Tally<K>(HashMap<K, u64>);

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<K: Hash + Eq> Tally<K> {
    fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    /// The largest counts first, ties by name, at most `top` entries (all when None).
    fn top(self, top: Option<usize>, name: impl Fn(K) -> String) -> Vec<Count> {
        let mut counts: Vec<Count> = self
            .0
            .into_iter()
            .map(|(k, count)| Count {
                name: name(k),
                count,
            })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        counts.truncate(top.unwrap_or(usize::MAX));
        counts
    }
}

fn destination_name(store: &Store, sym: Option<Sym>, port: u16) -> String {
    match sym.and_then(|s| store.endpoint(s)) {
        Some(Endpoint::Ip(ip)) => std::net::SocketAddr::new(*ip, port).to_string(),
        Some(Endpoint::Unix(path)) => path.to_string(),
        None => "unknown".to_owned(),
    }
}

impl Query {
    /// Top destinations, protocols, ports, results, errors and processes over a window.
    pub fn analyze_patterns(&self, req: &SummaryRequest) -> Result<Analysis, QueryError> {
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(60))?;
        let mut total = 0u64;
        let mut results = crate::store::Tally::default();
        let (mut destinations, mut protocols, mut ports) =
            (Tally::default(), Tally::default(), Tally::default());
        let (mut errors, mut processes) = (Tally::default(), Tally::default());
        for r in store.connections().select(&scope.selection) {
            total += 1;
            destinations.add((r.destination, r.dport));
            let kind = store.socket_kind(r.kind);
            protocols.add((kind.family, kind.protocol));
            if kind.family != 1 && r.destination.is_some() {
                ports.add(r.dport);
            }
            let failed_calls = results.failed_calls;
            results.count(r);
            if results.failed_calls != failed_calls {
                errors.add(i32::from(r.call_errno));
            } else if r.outcome_errno != 0 && !matches!(r.outcome, Outcome::Established) {
                errors.add(i32::from(r.outcome_errno));
            }
            processes.add(store.owner(Some(r.owner)).map(|o| o.command));
        }
        let unique_destinations = destinations.0.len();
        Ok(Analysis {
            pid: req.pid.unwrap_or(0),
            command: scope.command,
            duration_seconds: scope.duration_seconds,
            query_time: Utc::now(),
            total_connections: total,
            rate_per_minute: total as f64 * 60.0 / scope.duration_seconds.max(1) as f64,
            unique_destinations,
            top_destinations: destinations
                .top(Some(TOP), |(sym, port)| destination_name(&store, sym, port)),
            protocols: protocols.top(None, |(family, protocol)| {
                match (family, protocol_name(protocol)) {
                    (1, _) => "UNIX".to_owned(),
                    (_, Some(name)) => name.to_owned(),
                    (_, None) => format!("IPPROTO_{protocol}"),
                }
            }),
            ports: ports.top(Some(TOP), |port: u16| port.to_string()),
            outcomes: OutcomeCounts::from(&results),
            errors: errors.top(None, |errno| {
                errno_name(errno).unwrap_or_else(|| format!("errno {errno}"))
            }),
            processes: processes.top(Some(TOP), |sym: Option<Sym>| {
                sym.map(|s| store.name(s).to_string()).unwrap_or_default()
            }),
        })
    }
}
