//! `GET /metrics`: the daemon's own counters for Prometheus (OpenMetrics text), read from
//! the same health snapshot as `/health`, and the per-process counts since the start
//! (`metrics_totals.rs`), whose process names are bounded to the most active ones.

use std::sync::Arc;

use axum::{
    Extension,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{
    HttpStats, Streams,
    metrics_totals::{ShownSeries, TotalsCollector},
};
use crate::{probes::KindCounts, query::Query};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabel {
    probe: String,
    /// The working hook, empty when none.
    hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

fn by_kind(counts: &KindCounts) -> Family<KindLabel, Counter> {
    let family = Family::<KindLabel, Counter>::default();
    for (kind, value) in counts.by_kind() {
        family
            .get_or_create(&KindLabel { kind: kind.name() })
            .inc_by(value);
    }
    family
}

pub async fn metrics(
    State(query): State<Query>,
    Extension(http): Extension<Arc<HttpStats>>,
    Extension(shown): Extension<Arc<ShownSeries>>,
    Extension(streams): Extension<Arc<Streams>>,
) -> Response {
    let health = query.health();
    let mut registry = Registry::with_prefix("netspy");
    registry.register(
        "events_received",
        "Events read from the kernel ring buffers",
        by_kind(&health.events.received),
    );
    registry.register(
        "events_lost_in_kernel",
        "Events the kernel could not queue because a ring buffer was full",
        by_kind(&health.events.lost_in_kernel),
    );
    registry.register(
        "events_sampled_out",
        "Events not sent in full because of a rate limit (drops past --drop-event-rate), \
         counted by reason and owner instead",
        by_kind(&health.events.sampled_out),
    );
    registry.register(
        "queries_running",
        "Data queries running now",
        query.gate().running.clone(),
    );
    registry.register(
        "queries_shed",
        "Data requests answered 503 because of load: queue_full (every running and waiting place taken) or deadline (not answered in time)",
        query.gate().shed.clone(),
    );
    registry.register(
        "ingest_lag_seconds",
        "Time from an event's kernel timestamp to its storing",
        query.status().ingest_lag().clone(),
    );
    let decode_errors = Counter::<u64>::default();
    decode_errors.inc_by(health.events.decode_errors);
    registry.register(
        "decode_errors",
        "Kernel records that could not be decoded",
        decode_errors,
    );
    let held = Family::<KindLabel, Gauge>::default();
    let evicted_kinds = Family::<KindLabel, Counter>::default();
    for (kind, kept) in health.store.by_kind() {
        let label = KindLabel { kind: kind.name() };
        held.get_or_create(&label)
            .set(i64::try_from(kept.held).unwrap_or(i64::MAX));
        evicted_kinds.get_or_create(&label).inc_by(kept.evicted);
    }
    registry.register("history_events", "Events held in the history", held);
    let evicted = Family::<CauseLabel, Counter>::default();
    evicted
        .get_or_create(&CauseLabel { cause: "age" })
        .inc_by(health.store.evicted_by_age);
    evicted
        .get_or_create(&CauseLabel { cause: "count" })
        .inc_by(health.store.evicted_by_count);
    registry.register(
        "history_evicted",
        "Events evicted from the history, by cause",
        evicted,
    );
    registry.register(
        "history_evicted_events",
        "Events evicted from the history, by kind",
        evicted_kinds,
    );
    registry.register_collector(Box::new(TotalsCollector(shown.zero_new(query.totals()))));
    let attached = Family::<ProbeLabel, Gauge>::default();
    for probe in &health.probes {
        attached
            .get_or_create(&ProbeLabel {
                probe: probe.name.clone(),
                hook: probe.hook.clone().unwrap_or_default(),
            })
            .set(i64::from(probe.attached()));
    }
    registry.register(
        "probe_attached",
        "1 when the probe has a working hook",
        attached,
    );
    let ready = Gauge::<i64>::default();
    ready.set(i64::from(health.ready));
    registry.register("ready", "1 once the probes are attached", ready);
    let uptime = Gauge::<i64>::default();
    uptime.set(i64::try_from(health.uptime_seconds).unwrap_or(i64::MAX));
    registry.register("uptime_seconds", "Seconds since the daemon started", uptime);
    http.register(&mut registry);
    streams.register(&mut registry);

    let mut text = String::new();
    if encode(&mut text, &registry).is_err() {
        tracing::error!("encoding metrics failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
