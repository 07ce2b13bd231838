//! The per-process counts of `/metrics` (`store::TotalsSnapshot`: each family with its name,
//! help and label, so a new count needs nothing here): what fleet questions are asked of
//! ("which hosts and processes had refused connects", "p99 handshake latency by host"). The
//! `process` label is bounded by `--metrics-processes` (see `store/totals.rs`).
//!
//! A series that appears after the first scrape is shown at zero once: Prometheus takes the
//! first sample of a series as its starting point, so a series that appeared already
//! counting (a process's first refused connects) would add nothing to `increase()` or
//! `rate()`. The first scrape shows every count as it is: a daemon that ran for days before
//! Prometheus found it must not look like days of events in one interval. (The zero goes to
//! whoever scrapes first; a second Prometheus of a pair sees the series start counting.)

use std::{collections::HashSet, sync::Arc};

use parking_lot::Mutex;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter},
    registry::Unit,
};

#[cfg(test)]
use crate::store::Family;
use crate::store::{LATENCY_BOUNDS, Latency, TotalsSnapshot};

/// A series: its metric, process and other label value.
type SeriesKey = (&'static str, Arc<str>, String);

/// The series `/metrics` has shown at least once (at most the snapshot's: a few hundred),
/// and whether it has been scraped at all.
#[derive(Debug, Default)]
pub struct ShownSeries(Mutex<(bool, HashSet<SeriesKey>)>);

impl ShownSeries {
    /// `t` with the series never shown before at zero, except at the first scrape; those
    /// are shown from now on.
    pub fn zero_new(&self, mut t: TotalsSnapshot) -> TotalsSnapshot {
        let mut guard = self.0.lock();
        let (scraped, shown) = &mut *guard;
        let zero_new = std::mem::replace(scraped, true);
        let mut now = HashSet::with_capacity(shown.len());
        let mut first = |key: SeriesKey| {
            let new = !shown.contains(&key);
            now.insert(key);
            new && zero_new
        };
        for family in &mut t.families {
            for (p, value, n) in &mut family.rows {
                if first((family.name, p.clone(), value.clone())) {
                    *n = 0;
                }
            }
        }
        for (result, latency) in &mut t.latency {
            if first(("latency", Arc::from(""), (*result).to_owned())) {
                *latency = Latency::default();
            }
        }
        // Series gone (a process that lost its label) start at zero again if they return.
        *shown = now;
        t
    }
}

/// Encodes one counter family from `(labels, value)` rows.
fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `TotalsSnapshot` as a Prometheus collector.
#[derive(Debug)]
pub struct TotalsCollector(pub TotalsSnapshot);

impl Collector for TotalsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = &self.0;
        for family in &t.families {
            counters(
                &mut encoder,
                family.name,
                family.help,
                family
                    .rows
                    .iter()
                    .map(|(p, value, n)| ([("process", &**p), (family.label, value.as_str())], *n)),
            )?;
        }
        let mut metric = encoder.encode_descriptor(
            "tcp_connect_latency",
            "Time from SYN sent to the TCP connect's result, by result",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (result, latency) in &t.latency {
            let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(latency.buckets.iter().copied())
                .collect();
            metric
                .encode_family(&[("result", *result)])?
                .encode_histogram::<NoLabelSet>(latency.sum, latency.count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connects(rows: &[(&str, u64)]) -> TotalsSnapshot {
        TotalsSnapshot {
            families: vec![Family {
                name: "connect_attempts",
                help: "",
                label: "protocol",
                rows: rows
                    .iter()
                    .map(|(p, n)| (Arc::from(*p), "TCP".to_owned(), *n))
                    .collect(),
            }],
            ..TotalsSnapshot::default()
        }
    }

    fn values(t: &TotalsSnapshot) -> Vec<u64> {
        t.rows("connect_attempts")
            .iter()
            .map(|(_, _, n)| *n)
            .collect()
    }

    #[test]
    fn series_new_after_the_first_scrape_show_zero_once() {
        let shown = ShownSeries::default();
        // The first scrape: counts as they are, however long the daemon ran.
        assert_eq!(values(&shown.zero_new(connects(&[("a", 500)]))), [500]);
        // A new series: zero once, then its count.
        assert_eq!(
            values(&shown.zero_new(connects(&[("a", 501), ("b", 3)]))),
            [501, 0]
        );
        assert_eq!(
            values(&shown.zero_new(connects(&[("a", 501), ("b", 4)]))),
            [501, 4]
        );
        // Gone (its name lost its slot) and back: a new series again.
        shown.zero_new(connects(&[("a", 502)]));
        assert_eq!(
            values(&shown.zero_new(connects(&[("a", 502), ("b", 2)]))),
            [502, 0]
        );
    }
}
