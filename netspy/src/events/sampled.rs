//! Drops counted without a full event: past each CPU's rate of full drop events, the kernel
//! counts drops by reason and owner instead (`netspy_common::drop::SampledKey`), and the
//! probes hand those counts over about once a second.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use netspy_common::drop::{OTHER_OWNERS, SampledKey};
use serde::Serialize;

use super::{KernelNames, c_string};

/// The sampled-out drops of one collection interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SampledDrops {
    /// When the interval ended (the counts are stamped with it).
    pub until: DateTime<Utc>,
    /// Counts by reason and owner.
    pub counts: Vec<SampledCount>,
}

/// Drops of one reason and owner that had no full event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SampledCount {
    /// Kernel drop reason (`NO_SOCKET`, ...).
    pub drop_reason: Arc<str>,
    /// Its number on this kernel.
    pub drop_reason_code: u32,
    /// Owning process id; 0 when unattributed, or when more (reason, owner) pairs dropped in
    /// one interval than the kernel's count map holds (`SAMPLED_KEYS`).
    pub pid: u32,
    /// Owning thread's name, when attributed.
    pub command: Option<Arc<str>>,
    /// Owning process's name, when attributed.
    pub process_name: Option<Arc<str>>,
    /// Owner's cgroup v2 id (0 when unattributed).
    pub cgroup_id: u64,
    /// Owning process's start, ns since boot (0 when unattributed or not known).
    pub started_ns: u64,
    /// How many.
    pub count: u64,
}

impl SampledDrops {
    /// The counts of one interval, from the kernel's keys and their counts summed over CPUs.
    pub fn decode(
        until: DateTime<Utc>,
        counts: impl IntoIterator<Item = (SampledKey, u64)>,
        names: &KernelNames,
    ) -> Self {
        let counts = counts
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(key, count)| {
                let attributed = key.tgid != 0 && key.tgid != OTHER_OWNERS;
                SampledCount {
                    drop_reason: names.drop_reason(key.reason),
                    drop_reason_code: key.reason,
                    pid: if attributed { key.tgid } else { 0 },
                    command: attributed.then(|| Arc::from(c_string(&key.comm))),
                    process_name: attributed.then(|| Arc::from(c_string(&key.process))),
                    cgroup_id: if attributed { key.cgroup_id } else { 0 },
                    started_ns: if attributed { key.started_ns } else { 0 },
                    count,
                }
            })
            .collect();
        Self { until, counts }
    }

    /// All drops counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reason: u32, tgid: u32, comm: &[u8]) -> SampledKey {
        let mut name = [0; 16];
        name[..comm.len()].copy_from_slice(comm);
        let mut process = name;
        if comm == b"curl-thr" {
            process = [0; 16];
            process[..4].copy_from_slice(b"curl");
        }
        SampledKey {
            reason,
            tgid,
            comm: name,
            process,
            cgroup_id: 0,
            started_ns: 0,
        }
    }

    #[test]
    fn owners_and_reasons_are_named_and_overflow_is_unattributed() {
        let names = KernelNames {
            drop_reasons: [(3, Arc::from("NO_SOCKET"))].into_iter().collect(),
            ..KernelNames::default()
        };
        let until = DateTime::from_timestamp_nanos(1_700_000_000_000_000_000);
        let sampled = SampledDrops::decode(
            until,
            [
                (key(3, 0, b""), 7),
                (key(3, 4312, b"curl-thr"), 5),
                (key(9, OTHER_OWNERS, b""), 2),
                (key(3, 99, b"idle"), 0),
            ],
            &names,
        );
        assert_eq!(sampled.total(), 14);
        assert_eq!(sampled.counts.len(), 3, "zero counts are left out");
        let curl = &sampled.counts[1];
        assert_eq!(
            (
                &*curl.drop_reason,
                curl.pid,
                curl.command.as_deref(),
                curl.process_name.as_deref()
            ),
            ("NO_SOCKET", 4312, Some("curl-thr"), Some("curl"))
        );
        let other = &sampled.counts[2];
        assert_eq!(
            (&*other.drop_reason, other.pid, other.command.clone()),
            ("UNKNOWN_9", 0, None)
        );
    }
}
