//! Drops past each CPU's share of full events: counted exactly by reason and owner, without
//! building, parsing or sending an event. A storm then costs little and its numbers stay
//! exact; userspace adds these counts to the events it stored (`netspy::probes::sampled`).

use netspy_common::{
    counters,
    drop::{OTHER_OWNERS, REASON_SLOTS, SampledKey},
    task::TaskInfo,
};

use crate::{
    kernel::{Failure, config, count},
    maps::{
        DROP_RATE, DROP_WINDOW, SAMPLED_DROPS_0, SAMPLED_DROPS_1, SAMPLED_DROPS_SLOT,
        UNOWNED_SAMPLED_0, UNOWNED_SAMPLED_1,
    },
};

/// True when this CPU may still send a full event in the current window (always when no
/// limit is set). Userspace numbers the windows in `DROP_WINDOW` every `RATE_WINDOW_NS`:
/// reading that costs a few ns, where the clock helpers tracing programs may call cost
/// ~85 ns here (the coarse clock is refused to them). A stalled userspace only makes the
/// window longer, so the limit holds.
#[inline(always)]
pub fn may_send_event() -> bool {
    let limit = config(|c| &c.drop_events_per_window);
    if limit == 0 {
        return true;
    }
    let (Some(window), Some(&current)) = (DROP_RATE.get_ptr_mut(0), DROP_WINDOW.get(0)) else {
        return true;
    };
    // SAFETY: this CPU's slot; programs do not nest on one CPU here.
    unsafe {
        if (*window).window != current {
            (*window).window = current;
            (*window).sent = 0;
        }
        if (*window).sent < limit {
            (*window).sent += 1;
            return true;
        }
    }
    false
}

/// Counts a drop whose full event is not sent, by reason and owner (`None`: unattributed).
#[inline(always)]
pub fn count_sampled_out(reason: u32, owner: Option<&TaskInfo>) {
    count(Failure(counters::SAMPLED_OUT_DROP));
    let generation = SAMPLED_DROPS_SLOT.get(0).copied().unwrap_or(0);
    if owner.is_none() {
        let by_reason = match generation {
            0 => UNOWNED_SAMPLED_0.get_ptr_mut(0),
            _ => UNOWNED_SAMPLED_1.get_ptr_mut(0),
        };
        if let Some(counts) = by_reason
            && (reason as usize) < REASON_SLOTS
        {
            // The verifier needs a bound it can see: LLVM would drop a mask that repeats the
            // check above, so the index is read back through a volatile load first.
            // SAFETY: a local, read once.
            let index = unsafe { core::ptr::read_volatile(&reason) } as usize & (REASON_SLOTS - 1);
            // SAFETY: this CPU's value; programs do not nest on one CPU here.
            unsafe { (*counts)[index] += 1 };
            return;
        }
    }
    let key = SampledKey {
        reason,
        tgid: owner.map_or(0, |o| o.tgid),
        comm: owner.map_or([0; 16], |o| o.comm),
        process: owner.map_or([0; 16], |o| o.process),
        cgroup_id: owner.map_or(0, |o| o.cgroup_id),
        started_ns: owner.map_or(0, |o| o.started_ns),
    };
    let counted = match generation {
        0 => add(&SAMPLED_DROPS_0, &key),
        _ => add(&SAMPLED_DROPS_1, &key),
    };
    if !counted {
        count(Failure(counters::SAMPLED_UNCOUNTED));
    }
}

/// Adds one to `key` in `counts`, or to its reason's `OTHER_OWNERS` count when the map is
/// full; false when neither could be counted.
#[inline(always)]
fn add(counts: &aya_ebpf::maps::PerCpuHashMap<SampledKey, u64>, key: &SampledKey) -> bool {
    let other = SampledKey {
        reason: key.reason,
        tgid: OTHER_OWNERS,
        comm: [0; 16],
        process: [0; 16],
        cgroup_id: 0,
        started_ns: 0,
    };
    for key in [key, &other] {
        if let Some(slot) = counts.get_ptr_mut(key) {
            // SAFETY: this CPU's value; programs do not nest on one CPU here.
            unsafe { *slot += 1 };
            return true;
        }
        if counts.insert(key, &1, 0).is_ok() {
            return true;
        }
    }
    false
}
