//! Pattern analysis: where a process connects, how, and how it goes.

use std::{collections::HashMap, hash::Hash, sync::Arc};

use chrono::{DateTime, Utc};
use netspy_common::errno::EINPROGRESS;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::Kind;

use super::{
    ConnectionList, ConnectionView, DEFAULT_WINDOW_SECONDS, NameFilter, OutcomeCounts, Query,
    QueryError, SummaryRequest, coverage::Coverage,
};
use crate::{
    events::errno_name,
    store::{Endpoint, Outcome, SocketKind, Store, StoredConnection, Sym},
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
    /// How long the established handshakes took; None when there were none.
    #[serde(default)]
    pub handshake_latency: Option<Latency>,
    /// Errors: failed `connect` calls and failed TCP results, by errno name.
    pub errors: Vec<Count>,
    /// Attempts by process name.
    pub processes: Vec<Count>,
    /// Attempts by systemd unit (`(none)`: no unit known for the process's cgroup).
    #[serde(default)]
    pub units: Vec<Count>,
    /// Attempts by executable path, which tells apart programs of one name (`(none)`: not
    /// known).
    #[serde(default)]
    pub executables: Vec<Count>,
    /// The window, and what the history is missing from it.
    #[serde(default)]
    pub coverage: Option<Coverage>,
    /// Set only by netspy's client, when it computed this analysis itself from the events a
    /// server listed, because the server has none (the original ebpf-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_listed_events: Option<ListedEvents>,
}

/// What a client-side analysis was computed from.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct ListedEvents {
    /// Connect events the server listed (the original lists at most 100, of every process,
    /// whatever it is asked).
    pub listed: u64,
    /// Those of the asked process and window: the ones counted.
    pub matched: u64,
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
        Some(Endpoint::Host(ip, name)) => {
            format!("{} ({name})", std::net::SocketAddr::new(*ip, port))
        }
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
    units: Tally<Arc<str>>,
    executables: Tally<Arc<str>>,
    latencies: Latencies,
}

impl Patterns {
    /// Counts the records of one chunk, keyed by symbol, then by value.
    fn count<'a>(&mut self, store: &Store, records: impl Iterator<Item = &'a StoredConnection>) {
        let mut destinations: Tally<(Option<Sym>, u16)> = Tally::default();
        let mut processes: Tally<Option<Sym>> = Tally::default();
        let mut owners: Tally<Sym> = Tally::default();
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
            } else if r.outcome_errno != 0 && !r.outcome.established() {
                self.errors.add(i32::from(r.outcome_errno));
            }
            if r.outcome.established() && r.latency_us != 0 {
                self.latencies.record(r.latency_us);
            }
            processes.add(store.owner(Some(r.owner)).map(|o| o.process));
            owners.add(r.owner);
        }
        for ((sym, port), n) in destinations.0 {
            let endpoint = sym.and_then(|s| store.endpoint(s)).cloned();
            *self.destinations.0.entry((endpoint, port)).or_default() += n;
        }
        for (sym, n) in processes.0 {
            let name = sym.map_or_else(|| Arc::from(""), |s| store.name(s));
            *self.processes.0.entry(name).or_default() += n;
        }
        for (owner, n) in owners.0 {
            let unit = store.cgroup(Some(owner)).and_then(|c| c.unit.clone());
            *self.units.0.entry(unknown_as_none(unit)).or_default() += n;
            let exe = store.executable(Some(owner)).cloned();
            *self.executables.0.entry(unknown_as_none(exe)).or_default() += n;
        }
    }
}

impl Patterns {
    /// Counts one event of a list (the client's analysis of a server without one).
    fn count_view(&mut self, v: &ConnectionView) {
        self.total += 1;
        let unix = v.address_family == 1;
        let endpoint = if unix {
            (!v.destination.is_empty()).then(|| Endpoint::Unix(v.destination.as_str().into()))
        } else {
            let name = v.destination_name.as_deref();
            v.destination_ip.parse().ok().map(|ip| match name {
                Some(name) => Endpoint::Host(ip, name.into()),
                None => Endpoint::Ip(ip),
            })
        };
        if !unix && endpoint.is_some() {
            self.ports.add(v.destination_port);
        }
        let port = if unix { 0 } else { v.destination_port };
        self.destinations.add((endpoint, port));
        self.protocols
            .add((unix, if unix { 0 } else { v.raw_protocol }));
        let outcome = v
            .outcome
            .map_or_else(|| Outcome::before_result(v.raw_protocol), Outcome::Tcp);
        self.outcomes.count(outcome);
        if v.return_code < 0 && v.return_code != -EINPROGRESS {
            self.errors.add(-v.return_code);
        } else if let Some(errno) = v
            .outcome_error
            .as_deref()
            .filter(|_| !outcome.established())
            .and_then(errno_number)
        {
            self.errors.add(errno);
        }
        if let (true, Some(ms)) = (outcome.established(), v.latency_ms) {
            self.latencies
                .record((ms * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32);
        }
        let name = if v.process_name.is_empty() {
            &v.command
        } else {
            &v.process_name
        };
        self.processes.add(Arc::from(name.as_str()));
        self.units
            .add(unknown_as_none(v.placement.unit.as_deref().map(Arc::from)));
        self.executables
            .add(unknown_as_none(v.exe.as_deref().map(Arc::from)));
    }

    /// The analysis these counts make.
    fn finish(
        self,
        pid: u32,
        command: String,
        duration_seconds: u64,
        query_time: DateTime<Utc>,
    ) -> Analysis {
        let Patterns {
            total,
            outcomes,
            destinations,
            protocols,
            ports,
            errors,
            processes,
            units,
            executables,
            latencies,
        } = self;
        Analysis {
            pid,
            command,
            duration_seconds,
            query_time,
            total_connections: total,
            rate_per_minute: total as f64 * 60.0 / duration_seconds.max(1) as f64,
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
            units: units.top(Some(TOP), |name: Arc<str>| name.to_string()),
            executables: executables.top(Some(TOP), |path: Arc<str>| path.to_string()),
            coverage: None,
            from_listed_events: None,
        }
    }
}

/// How the unit and executable tallies name what is not known.
fn unknown_as_none(name: Option<Arc<str>>) -> Arc<str> {
    name.unwrap_or_else(|| Arc::from(NONE))
}

/// The unit and executable tallies' name for "not known".
pub const NONE: &str = "(none)";

/// The number of an errno name (`ECONNREFUSED` -> 111), as [`errno_name`] names them.
fn errno_number(name: &str) -> Option<i32> {
    (1..256).find(|&errno| errno_name(errno).as_deref() == Some(name))
}

impl Analysis {
    /// The analysis of the connect events a server listed, for a server that has no
    /// analysis of its own: only the events of the asked process (pid, name) and window (by
    /// default the 60 s before the list's `query_time`) count, since such a server may list
    /// others whatever it is asked.
    pub fn of_listed(req: &SummaryRequest, list: &ConnectionList) -> Self {
        let until = req.until.unwrap_or(list.query_time);
        let since = req.since.unwrap_or_else(|| {
            let seconds = req
                .duration_seconds
                .unwrap_or(DEFAULT_WINDOW_SECONDS)
                .max(1);
            until - chrono::Duration::seconds(seconds)
        });
        let duration = (until - since).num_seconds().max(1);
        let name = req
            .command
            .as_deref()
            .or(req.process_name.as_deref())
            .and_then(|pattern| NameFilter::new(pattern).ok());
        let whole =
            |what: &str, pattern: Option<&String>| pattern.map(|p| NameFilter::whole(what, p).ok());
        let (unit, container) = (
            whole("unit", req.unit.as_ref()),
            whole("container", req.container.as_ref()),
        );
        // A unit or container asked for passes only events that name one that matches.
        let placed = |filter: &Option<Option<NameFilter>>, value: Option<&String>| match filter {
            None => true,
            Some(filter) => filter
                .as_ref()
                .zip(value)
                .is_some_and(|(f, v)| f.matches(v)),
        };
        let asked = |e: &ConnectionView| {
            e.time >= since
                && e.time < until
                && req.pid.is_none_or(|pid| e.pid == pid)
                && name
                    .as_ref()
                    .is_none_or(|f| f.matches(&e.process_name) || f.matches(&e.command))
                && placed(&unit, e.placement.unit.as_ref())
                && placed(&container, e.placement.container.as_ref())
        };
        let mut patterns = Patterns::default();
        let (mut listed, mut matched) = (0, 0);
        for event in list.events_by_pid.values().flatten() {
            listed += 1;
            if asked(event) {
                matched += 1;
                patterns.count_view(event);
            }
        }
        let command = req
            .command
            .clone()
            .or_else(|| req.process_name.clone())
            .unwrap_or_default();
        let mut analysis = patterns.finish(
            req.pid.unwrap_or(0),
            command,
            duration.unsigned_abs(),
            until,
        );
        analysis.from_listed_events = Some(ListedEvents { listed, matched });
        analysis
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
        let now = Utc::now();
        let coverage = Coverage::of(&self.read(), Kind::Connection, &scope.selection, now);
        let mut analysis = patterns.finish(
            req.pid.unwrap_or(0),
            scope.command,
            scope.duration_seconds,
            now,
        );
        analysis.coverage = Some(coverage);
        Ok(analysis)
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

    /// What the client computes for a server without an analysis: only the window's events,
    /// results and errors read back from their names, latency from milliseconds.
    #[test]
    fn a_listed_analysis_counts_its_window_and_reads_results_by_name() {
        let now = Utc::now();
        let event = |ago_s: i64, port: u16, rc: i32, outcome: Option<&str>, error: Option<&str>| {
            serde_json::json!({
                "id": "c", "type": "connection", "pid": 7, "command": "worker",
                "process_name": "app", "time": now - chrono::Duration::seconds(ago_s),
                "timestamp": 0, "destination": format!("10.0.0.1:{port}"),
                "destination_ip": "10.0.0.1", "destination_port": port, "address_family": 2,
                "protocol": "TCP", "socket_type": "SOCK_STREAM", "return_code": rc,
                "error": null, "raw_ipv4": 0, "raw_ipv6": vec![0u8; 16], "raw_protocol": 6,
                "raw_socktype": 1, "outcome": outcome, "outcome_error": error,
                "latency_ms": outcome.map(|_| 2.5), "source": null,
            })
        };
        let list: ConnectionList = serde_json::from_value(serde_json::json!({
            "total_events": 5, "total_pids": 1, "query_time": now,
            "events_by_pid": {"7": [
                event(300, 1, 0, Some("established"), None),
                event(30, 443, -115, Some("established"), None),
                event(20, 443, -115, Some("timed_out"), Some("ETIMEDOUT")),
                event(10, 80, -111, None, None),
                event(5, 443, -115, None, None),
            ]},
        }))
        .unwrap();
        let a = Analysis::of_listed(&SummaryRequest::default(), &list);
        for (pid, name, matched) in [
            (Some(8), None, 0),
            (None, Some("ap*"), 4),
            (None, Some("worker"), 4),
            (None, Some("curl"), 0),
        ] {
            let req = SummaryRequest {
                pid,
                command: name.map(Into::into),
                ..SummaryRequest::default()
            };
            let only = Analysis::of_listed(&req, &list);
            assert_eq!(only.total_connections, matched, "{pid:?} {name:?}");
        }
        assert_eq!(
            a.from_listed_events,
            Some(ListedEvents {
                listed: 5,
                matched: 4
            }),
            "the event of 300 s ago is out"
        );
        assert_eq!(a.total_connections, 4);
        assert_eq!(
            (a.outcomes.established, a.outcomes.timed_out),
            (1, 1),
            "{a:?}"
        );
        let counts = |c: &[Count]| -> Vec<(String, u64)> {
            c.iter().map(|c| (c.name.clone(), c.count)).collect()
        };
        assert_eq!(
            counts(&a.errors),
            vec![("ECONNREFUSED".into(), 1), ("ETIMEDOUT".into(), 1)]
        );
        assert_eq!(counts(&a.processes), vec![("app".into(), 4)]);
        let p50 = a.handshake_latency.map_or(0.0, |l| l.p50_ms);
        assert!(
            (p50 - 2.5).abs() < 0.03,
            "2.5 ms within the histogram's 1%: {p50}"
        );
        assert_eq!(a.duration_seconds, 60);
    }

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
