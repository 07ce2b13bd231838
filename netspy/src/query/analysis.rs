//! Pattern analysis: where a process connects, how, and how it goes.

use std::{collections::HashMap, hash::Hash, sync::Arc};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_WINDOW_SECONDS, OutcomeCounts, Query, QueryError, SummaryRequest,
    coverage::{Coverage, History},
};
use crate::store::{Endpoint, Outcome, SocketKind, Store, StoredConnection, Sym};

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
    /// How long the established handshakes took; None when there were none.
    #[serde(default)]
    pub handshake_latency: Option<Latency>,
    /// Errors: failed `connect` calls and failed TCP results, by errno name.
    pub errors: Vec<Count>,
    /// Attempts by process name.
    pub processes: Vec<Count>,
    /// The window, and what the history is missing from it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
}

/// How long TCP handshakes took, SYN to result.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Latency {
    /// Handshakes measured.
    pub handshakes: u64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Longest, milliseconds.
    pub max_ms: f64,
    /// Handshakes of a second or more: a lost SYN is sent again after one second.
    pub slow: u64,
}

/// A handshake this long (microseconds) or longer is slow.
const SLOW_US: u32 = 1_000_000;

/// Latencies of established handshakes, in microseconds, to two significant digits
/// (percentiles within 1%, in about 26 KiB whatever the count).
struct Latencies {
    histogram: Option<hdrhistogram::Histogram<u64>>,
    slow: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: hdrhistogram::Histogram::new_with_bounds(1, u64::from(u32::MAX), 2).ok(),
            slow: 0,
        }
    }
}

impl Latencies {
    fn record(&mut self, us: u32) {
        if let Some(h) = &mut self.histogram {
            h.saturating_record(u64::from(us.max(1)));
        }
        self.slow += u64::from(us >= SLOW_US);
    }

    fn summary(&self) -> Option<Latency> {
        let h = self.histogram.as_ref().filter(|h| !h.is_empty())?;
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            handshakes: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            slow: self.slow,
        })
    }
}

/// Something and how often it happened.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct Count {
    /// What.
    pub name: String,
    /// How often.
    pub count: u64,
}

/// Counts by key. foldhash instead of std's SipHash: an analysis of 10M records makes
/// five map updates a record, and the keys (symbols, ports) need no protection from
/// collision attacks beyond the per-process seed.
struct Tally<K>(HashMap<K, u64, foldhash::fast::RandomState>);

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Self(HashMap::default())
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

fn destination_name(endpoint: Option<&Endpoint>, port: u16) -> String {
    match endpoint {
        Some(Endpoint::Ip(ip)) => std::net::SocketAddr::new(*ip, port).to_string(),
        Some(Endpoint::Unix(path)) => path.to_string(),
        None => "unknown".to_owned(),
    }
}

/// Records an analysis reads under one hold of the store's lock: the lock is let go
/// between chunks so that ingest never waits for a whole walk of millions of records.
const CHUNK_RECORDS: u64 = 65_536;

/// Counts by what the store's symbols stand for, since a symbol may name another value
/// once the lock was let go and its last record evicted.
#[derive(Default)]
struct Patterns {
    total: u64,
    outcomes: OutcomeCounts,
    destinations: Tally<(Option<Endpoint>, u16)>,
    protocols: Tally<(bool, u16)>,
    ports: Tally<u16>,
    errors: Tally<i32>,
    processes: Tally<Arc<str>>,
    latencies: Latencies,
}

impl Patterns {
    /// Counts the records of one chunk, keyed by symbol, then by value.
    fn count<'a>(&mut self, store: &Store, records: impl Iterator<Item = &'a StoredConnection>) {
        let mut destinations: Tally<(Option<Sym>, u16)> = Tally::default();
        let mut processes: Tally<Option<Sym>> = Tally::default();
        for r in records {
            self.total += 1;
            destinations.add((r.destination, r.dport));
            let kind = store.socket_kind(r.kind);
            // By protocol as named: IPv4 and IPv6 TCP are one "TCP" line.
            let unix = kind.family == 1;
            self.protocols
                .add((unix, if unix { 0 } else { kind.protocol }));
            if kind.family != 1 && r.destination.is_some() {
                self.ports.add(r.dport);
            }
            self.outcomes.count(r.outcome);
            if let Some(errno) = r.failed_call_errno() {
                self.errors.add(i32::from(errno));
            } else if r.outcome_errno != 0 && !matches!(r.outcome, Outcome::Established) {
                self.errors.add(i32::from(r.outcome_errno));
            }
            if matches!(r.outcome, Outcome::Established) && r.latency_us != 0 {
                self.latencies.record(r.latency_us);
            }
            processes.add(store.owner(Some(r.owner)).map(|o| o.process));
        }
        for ((sym, port), n) in destinations.0 {
            let endpoint = sym.and_then(|s| store.endpoint(s)).cloned();
            *self.destinations.0.entry((endpoint, port)).or_default() += n;
        }
        for (sym, n) in processes.0 {
            let name = sym.map_or_else(|| Arc::from(""), |s| store.name(s));
            *self.processes.0.entry(name).or_default() += n;
        }
    }
}

impl Query {
    /// Top destinations, protocols, ports, results, errors and processes over a window.
    pub fn analyze_patterns(&self, req: &SummaryRequest) -> Result<Analysis, QueryError> {
        let (scope, span) = {
            let store = self.read();
            let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
            let span = store.connections().select_span(&scope.selection);
            (scope, span)
        };
        // Records evicted meanwhile are not counted; newer ones are past the span.
        let mut patterns = Patterns::default();
        for start in (span.start..span.end).step_by(CHUNK_RECORDS as usize) {
            let end = (start + CHUNK_RECORDS).min(span.end);
            let store = self.read();
            let records = store
                .connections()
                .select_seqs(&scope.selection, start..end);
            patterns.count(&store, records);
        }
        let Patterns {
            total,
            outcomes,
            destinations,
            protocols,
            ports,
            errors,
            processes,
            latencies,
        } = patterns;
        let now = Utc::now();
        let coverage = Coverage::of(&self.read(), History::Connections, &scope.selection, now);
        Ok(Analysis {
            pid: req.pid.unwrap_or(0),
            command: scope.command,
            duration_seconds: scope.duration_seconds,
            query_time: now,
            total_connections: total,
            rate_per_minute: total as f64 * 60.0 / scope.duration_seconds.max(1) as f64,
            unique_destinations: destinations.0.len(),
            top_destinations: destinations.top(Some(TOP), |(endpoint, port)| {
                destination_name(endpoint.as_ref(), port)
            }),
            protocols: protocols.top(None, |(unix, protocol)| {
                SocketKind {
                    family: if unix { 1 } else { 2 },
                    protocol,
                    socktype: 0,
                }
                .protocol_label()
            }),
            ports: ports.top(Some(TOP), |port: u16| port.to_string()),
            outcomes,
            handshake_latency: latencies.summary(),
            errors: errors.top(None, super::connections::errno_label),
            processes: processes.top(Some(TOP), |name: Arc<str>| name.to_string()),
            coverage: Some(coverage),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::{
        query::{Status, fixtures::udp_connect as connect},
        store::Limits,
    };

    #[test]
    fn an_analysis_read_in_chunks_counts_every_record_once() {
        let now = Utc::now().timestamp_nanos_opt().unwrap();
        let mut store = Store::new(Limits {
            max_age: Duration::from_secs(3600),
            max_events: 1_000_000,
            ..Limits::default()
        });
        // Three chunks and a bit, over the last 10 s: pid 1 "dig" to port 53, every
        // fourth from pid 2 "curl" to port 443.
        let n = 3 * CHUNK_RECORDS as i64 + 1000;
        for i in 0..n {
            let t = now - 10_000_000_000 + i * (10_000_000_000 / n);
            store.ingest(match i % 4 {
                0 => connect(t, 2, "curl", 443),
                _ => connect(t, 1, "dig", 53),
            });
        }
        let query = Query::new(store, Arc::new(Status::default()), 100);
        let all = query.analyze_patterns(&SummaryRequest::default()).unwrap();
        let curl = u64::try_from(n).unwrap().div_ceil(4);
        let dig = u64::try_from(n).unwrap() - curl;
        assert_eq!(all.total_connections, curl + dig);
        let counts = |c: &[Count]| -> Vec<(String, u64)> {
            c.iter().map(|c| (c.name.clone(), c.count)).collect()
        };
        assert_eq!(
            counts(&all.processes),
            vec![("dig".into(), dig), ("curl".into(), curl)]
        );
        assert_eq!(
            counts(&all.top_destinations),
            vec![("10.0.0.1:53".into(), dig), ("10.0.0.1:443".into(), curl)]
        );
        let by_pid = query
            .analyze_patterns(&SummaryRequest {
                pid: Some(2),
                ..SummaryRequest::default()
            })
            .unwrap();
        assert_eq!(by_pid.total_connections, curl);
        assert_eq!(counts(&by_pid.ports), vec![("443".into(), curl)]);
    }
}
