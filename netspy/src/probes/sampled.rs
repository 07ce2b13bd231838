//! The userspace half of drop sampling: numbering the rate windows the kernel programs
//! count full drop events in, and collecting the counts of the drops they sampled out.

use std::time::Duration;

use aya::maps::{Array, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues};
use netspy_common::drop::{RATE_WINDOW_NS, REASON_SLOTS, SampledKey};
use tokio_util::sync::CancellationToken;

use super::{ProbeError, take_map};

/// Unattributed sampled-out drops by reason, as the kernel counts them.
type ByReason = [u64; REASON_SLOTS];

/// The two generations of sampled-out counts and the switch between them.
pub(super) struct SampledCounts {
    generations: [PerCpuHashMap<MapData, SampledKey, u64>; 2],
    unowned: [PerCpuArray<MapData, ByReason>; 2],
    slot: Array<MapData, u32>,
    /// The generation the programs count into.
    active: u32,
}

impl SampledCounts {
    pub(super) fn take(ebpf: &mut aya::Ebpf) -> Result<Self, ProbeError> {
        Ok(Self {
            generations: [
                take_map(ebpf, "SAMPLED_DROPS_0")?,
                take_map(ebpf, "SAMPLED_DROPS_1")?,
            ],
            unowned: [
                take_map(ebpf, "UNOWNED_SAMPLED_0")?,
                take_map(ebpf, "UNOWNED_SAMPLED_1")?,
            ],
            slot: take_map(ebpf, "SAMPLED_DROPS_SLOT")?,
            active: 0,
        })
    }

    /// The counts of the idle generation, summed over CPUs, which is then emptied and made
    /// the active one. The idle generation was retired at the previous call, so programs
    /// that read the old switch then have long finished: no count is lost between the read
    /// and the delete, and counts arrive one to two calls after their drops.
    pub(super) fn collect(&mut self) -> Result<Vec<(SampledKey, u64)>, String> {
        let idle = 1 - self.active;
        let map = &mut self.generations[idle as usize];
        let mut counts = Vec::new();
        for entry in map.iter() {
            let (key, per_cpu) = entry.map_err(|e| format!("reading sampled drop counts: {e}"))?;
            counts.push((key, per_cpu.iter().sum()));
        }
        for (key, _) in &counts {
            map.remove(key)
                .map_err(|e| format!("emptying sampled drop counts: {e}"))?;
        }
        let unowned = &mut self.unowned[idle as usize];
        let per_cpu = unowned
            .get(&0, 0)
            .map_err(|e| format!("reading sampled drop counts: {e}"))?;
        let cpus = per_cpu.len();
        for (reason, count) in (0u32..).zip(0..REASON_SLOTS).map(|(reason, slot)| {
            (
                reason,
                per_cpu.iter().map(|counts| counts[slot]).sum::<u64>(),
            )
        }) {
            if count > 0 {
                let key = SampledKey {
                    reason,
                    tgid: 0,
                    comm: [0; 16],
                    process: [0; 16],
                    cgroup_id: 0,
                    started_ns: 0,
                };
                counts.push((key, count));
            }
        }
        let zeros = PerCpuValues::try_from(vec![[0u64; REASON_SLOTS]; cpus])
            .map_err(|e| format!("emptying sampled drop counts: {e}"))?;
        unowned
            .set(0, zeros, 0)
            .map_err(|e| format!("emptying sampled drop counts: {e}"))?;
        self.slot
            .set(0, idle, 0)
            .map_err(|e| format!("switching sampled drop counts: {e}"))?;
        self.active = idle;
        Ok(counts)
    }
}

/// Counts the rate windows up in `DROP_WINDOW` every `RATE_WINDOW_NS` until `cancel`.
pub(super) fn spawn_window_clock(
    ebpf: &mut aya::Ebpf,
    cancel: CancellationToken,
) -> Result<(), ProbeError> {
    let mut window: Array<MapData, u64> = take_map(ebpf, "DROP_WINDOW")?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_nanos(RATE_WINDOW_NS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut number = 0u64;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {
                    number += 1;
                    if let Err(e) = window.set(0, number, 0) {
                        tracing::warn!("advancing the drop rate window: {e}");
                    }
                }
            }
        }
    });
    Ok(())
}
