//! Daemon and probe status: `/health` and `/api/programs`.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use prometheus_client::metrics::histogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Query;
use crate::{
    events::SampledDrops,
    probes::{KindCounts, ProbeSpec, ProbeStatus, Probes, Stats},
    store::StoreStats,
};

/// What the daemon reads from attached probes: their hooks, counters and sampled-out drops.
/// The kernel's [`Probes`] in the daemon; a stand-in lets the query layer and the REST API be
/// tested ready without root (the real-kernel suite is for what only a kernel shows).
pub trait ProbeSource: Send + Sync + 'static {
    /// Each probe's description beside how it is attached, in table order.
    fn described(&self) -> Vec<(&'static ProbeSpec, ProbeStatus)>;
    /// Current counters.
    fn stats(&self) -> Stats;
    /// Drops counted without a full event since the previous call.
    fn sampled_drops(&self) -> SampledDrops;
}

impl ProbeSource for Probes {
    fn described(&self) -> Vec<(&'static ProbeSpec, ProbeStatus)> {
        Probes::described(self)
            .map(|(spec, status)| (spec, status.clone()))
            .collect()
    }

    fn stats(&self) -> Stats {
        Probes::stats(self)
    }

    fn sampled_drops(&self) -> SampledDrops {
        Probes::sampled_drops(self)
    }
}

/// Where the probes are.
pub enum ProbeState {
    /// Loading and attaching.
    Starting,
    /// Attached (some probes may have no hook: see their status).
    Running(Arc<dyn ProbeSource>),
    /// Could not start; the text says why.
    Failed(String),
    /// Detached at shutdown.
    Stopped,
}

/// Shared, updatable status of the daemon.
pub struct Status {
    started: Instant,
    state: RwLock<ProbeState>,
    ingest_lag: Histogram,
}

/// Buckets of the ingest lag, in seconds: the ring readers drain every 50 ms by default.
const LAG_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 5.0,
];

impl Default for Status {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            state: RwLock::new(ProbeState::Starting),
            ingest_lag: Histogram::new(LAG_BUCKETS),
        }
    }
}

impl Status {
    /// Replaces the probe state; returns the previous one (so that `Stopped` can detach).
    pub fn set(&self, state: ProbeState) -> ProbeState {
        let mut guard = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *guard, state)
    }

    fn snapshot(&self) -> (&'static str, Vec<(&'static ProbeSpec, ProbeStatus)>, Stats) {
        let guard = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*guard {
            ProbeState::Starting => ("starting", Vec::new(), Stats::default()),
            ProbeState::Failed(_) => ("failed", Vec::new(), Stats::default()),
            ProbeState::Stopped => ("stopped", Vec::new(), Stats::default()),
            ProbeState::Running(probes) => {
                let status = probes.described();
                // A probe the configuration turned off is what was asked for.
                let state = if status.iter().all(|(_, p)| p.attached() || p.disabled()) {
                    "healthy"
                } else {
                    "degraded"
                };
                (state, status, probes.stats())
            }
        }
    }

    /// Time from the kernel's timestamp of each event to its storing, in seconds
    /// (`/metrics`: `netspy_ingest_lag_seconds`).
    pub fn ingest_lag(&self) -> &Histogram {
        &self.ingest_lag
    }

    /// The running probes, None before they start and after they stop.
    pub fn probes(&self) -> Option<Arc<dyn ProbeSource>> {
        match &*self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            ProbeState::Running(probes) => Some(probes.clone()),
            _ => None,
        }
    }

    /// True once the probes are attached (cheap: no counters are read).
    pub fn is_ready(&self) -> bool {
        matches!(
            &*self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            ProbeState::Running(_)
        )
    }

    fn failure(&self) -> Option<String> {
        match &*self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            ProbeState::Failed(why) => Some(why.clone()),
            _ => None,
        }
    }
}

/// `/health`: the original fields plus probe and event counters.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Health {
    /// `healthy`, `degraded` (a probe has no hook, other than one turned off with
    /// `--disable-hook`), `starting`, `failed` or `stopped`.
    pub status: String,
    /// Always "netspy".
    pub component: String,
    /// Time since start, as Go prints durations (`1h30m5s`).
    pub uptime: String,
    /// Time since start in seconds.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// netspy version.
    pub version: String,
    /// True once the probes are attached (the HTTP status is 503 before).
    #[serde(default)]
    pub ready: bool,
    /// Why the probes could not start, when they could not.
    pub error: Option<String>,
    /// Per-probe hook in use, or why none.
    #[serde(default)]
    pub probes: Vec<ProbeStatus>,
    /// Events received from and lost in the kernel.
    #[serde(default)]
    pub events: EventCounters,
    /// History held and evicted.
    #[serde(default)]
    pub store: StoreStats,
}

/// Kernel event counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct EventCounters {
    /// Read from the ring buffers, per kind.
    pub received: KindCounts,
    /// Lost in the kernel because a ring buffer was full, per kind.
    pub lost_in_kernel: KindCounts,
    /// Records that did not decode.
    pub decode_errors: u64,
    /// Failed kernel reads inside probes.
    pub read_errors: u64,
    /// Events not sent as full events because of a rate limit (drops past
    /// `--drop-event-rate`), per kind; counted by reason and owner instead, so drop totals
    /// stay exact.
    pub sampled_out: KindCounts,
    /// Sampled-out drops the kernel could not count by reason and owner (its count maps
    /// were full): only in `sampled_out`.
    pub sampled_uncounted: u64,
}

/// `/api/programs`: one entry per probe.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Programs {
    /// The probes.
    pub programs: Vec<ProgramInfo>,
    /// How many.
    pub total_count: usize,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
}

/// A probe as the original API described programs.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ProgramInfo {
    /// Probe name: `connect`, `tcp_outcome`, `packet_drop`, `dns`, `retransmit`, `socket_owners`.
    pub name: String,
    /// What it watches.
    pub description: String,
    /// Hook kind in use: `tracepoint`, `raw_tracepoint`, `tp_btf`, `uprobe`, or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `attached`, `failed`, or `disabled` (by `--disable-hook`).
    pub status: String,
    /// 1-based position.
    pub id: u32,
    /// True when loaded in the kernel.
    pub loaded: bool,
    /// True when attached to a hook.
    pub attached: bool,
    /// Events received.
    pub event_count: u64,
    /// Events lost in the kernel.
    pub dropped_count: u64,
    /// dropped / (received + dropped).
    pub drop_rate: f64,
    /// The hook in use (`tracepoint:skb/kfree_skb`).
    pub hook: Option<String>,
    /// Hooks refused, with the kernel's reasons.
    pub refused: Vec<crate::probes::Refusal>,
}

/// Go's `time.Duration.String()` for whole seconds: `45s`, `5m3s`, `1h30m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec}s"),
        (h, min, sec) => format!("{h}h{min}m{sec}s"),
    }
}

impl Query {
    /// Daemon health; `ready` says whether the probes are attached.
    pub fn health(&self) -> Health {
        let (state, probes, stats) = self.status().snapshot();
        let uptime = self.status().started.elapsed();
        Health {
            status: state.to_owned(),
            component: "netspy".to_owned(),
            uptime: go_duration(uptime),
            uptime_seconds: uptime.as_secs(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ready: matches!(state, "healthy" | "degraded"),
            error: self.status().failure(),
            probes: probes.into_iter().map(|(_, status)| status).collect(),
            events: EventCounters {
                received: stats.received,
                lost_in_kernel: stats.lost,
                decode_errors: stats.decode_errors,
                read_errors: stats.read_errors,
                sampled_out: stats.sampled_out,
                sampled_uncounted: stats.sampled_uncounted,
            },
            store: self.read().stats(),
        }
    }

    /// The probes as programs, with their counters.
    pub fn programs(&self) -> Programs {
        let (_, probes, stats) = self.status().snapshot();
        let programs: Vec<ProgramInfo> = probes
            .into_iter()
            .zip(1..)
            .map(|((spec, p), id)| {
                let (received, lost) = spec.delivers.map_or((0, 0), |kind| {
                    (stats.received.get(kind), stats.lost.get(kind))
                });
                let kind = p
                    .hook
                    .as_deref()
                    .and_then(|h| h.split(':').next())
                    .unwrap_or("none")
                    .to_owned();
                ProgramInfo {
                    name: p.name.clone(),
                    description: spec.description.to_owned(),
                    kind,
                    status: match (p.attached(), p.disabled()) {
                        (true, _) => "attached",
                        (false, true) => "disabled",
                        (false, false) => "failed",
                    }
                    .to_owned(),
                    id,
                    loaded: p.attached(),
                    attached: p.attached(),
                    event_count: received,
                    dropped_count: lost,
                    drop_rate: if received + lost == 0 {
                        0.0
                    } else {
                        lost as f64 / (received + lost) as f64
                    },
                    hook: p.hook,
                    refused: p.refused,
                }
            })
            .collect();
        Programs {
            total_count: programs.len(),
            programs,
            query_time: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{
        events::Kind,
        probes::PROBES,
        query::{
            ListConnections, QueryError, Telemetry, TelemetryError,
            fixtures::{AttachedProbes, query_over, ready_query},
        },
    };

    #[test]
    fn every_probe_is_in_health_and_programs_with_its_own_counts() {
        let mut stats = Stats::default();
        stats.received.add(Kind::Retransmit, 7);
        stats.lost.add(Kind::Retransmit, 1);
        stats.received.add(Kind::Connection, 3);
        let query = query_over(AttachedProbes {
            stats,
            refused: vec!["dns"],
        });
        let health = query.health();
        assert_eq!((health.status.as_str(), health.ready), ("degraded", true));
        let names: Vec<&str> = health.probes.iter().map(|p| p.name.as_str()).collect();
        let table: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
        assert_eq!(names, table);
        assert_eq!(health.events.received.get(Kind::Retransmit), 7);
        let programs = query.programs();
        assert_eq!(programs.total_count, PROBES.len());
        for program in &programs.programs {
            let spec = PROBES.iter().find(|p| p.name == program.name).unwrap();
            let (received, lost) = match spec.delivers {
                Some(Kind::Retransmit) => (7, 1),
                Some(Kind::Connection) => (3, 0),
                _ => (0, 0),
            };
            assert_eq!(
                (program.event_count, program.dropped_count),
                (received, lost),
                "{}",
                program.name
            );
            let status = if program.name == "dns" {
                "failed"
            } else {
                "attached"
            };
            assert_eq!(program.status, status, "{}", program.name);
            assert_eq!(program.description, spec.description);
        }
        let ready = ready_query().health();
        assert_eq!((ready.status.as_str(), ready.ready), ("healthy", true));
    }

    #[tokio::test]
    async fn questions_wait_for_the_probes_then_pass_the_gate() {
        let starting = Query::new(
            crate::store::Store::new(crate::store::Limits::default()),
            Arc::new(Status::default()),
            100,
        );
        let answer = starting.ask::<ListConnections>(Default::default()).await;
        assert!(
            matches!(answer, Err(TelemetryError::Unavailable(ref m)) if m.contains("starting")),
            "{answer:?}"
        );
        assert_eq!(starting.health().status, "starting");
        let ready = ready_query();
        let summary = ready
            .ask::<crate::kinds::retransmit::SummarizeRetransmits>(Default::default())
            .await
            .unwrap();
        assert_eq!(summary.count, 0);
        let refused = ready.connection_summary(&crate::query::SummaryRequest {
            duration_seconds: Some(0),
            ..Default::default()
        });
        assert!(matches!(refused, Err(QueryError::BadRequest(_))));
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_secs(303)), "5m3s");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m0s");
    }
}
