//! Small safe wrappers around kernel helpers shared by every program.

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
    },
    maps::RingBuf,
    programs::TracePointContext,
};
use netspy_common::{config::Config, task::TaskInfo};

use crate::maps::{CONFIG, COUNTERS};

/// Why a program gave up on an event; each maps to a counter.
#[derive(Clone, Copy)]
pub struct Failure(pub u32);

/// The load-time configuration. Volatile: the compiler must not fold the zero initializer.
#[inline(always)]
pub fn config<F: Copy + 'static>(field: impl FnOnce(&'static Config) -> &'static F) -> F {
    // SAFETY: CONFIG is a valid static; the read is of a plain integer field.
    unsafe { core::ptr::read_volatile(field(&CONFIG)) }
}

/// True when events of this process must be ignored (netspy's own).
#[inline(always)]
pub fn ignored(tgid: u32) -> bool {
    let ignore = config(|c| &c.ignore_tgid);
    ignore != 0 && ignore == tgid
}

/// The current task, for events raised in process context.
#[inline(always)]
pub fn current_task() -> TaskInfo {
    let id = bpf_get_current_pid_tgid();
    TaskInfo {
        tgid: (id >> 32) as u32,
        pid: id as u32,
        uid: bpf_get_current_uid_gid() as u32,
        _pad: 0,
        // SAFETY: no arguments; available to tracepoint programs since Linux 4.18.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    }
}

/// `CLOCK_BOOTTIME` in nanoseconds (keeps counting across suspend, unlike monotonic).
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: no arguments.
    unsafe { bpf_ktime_get_boot_ns() }
}

/// Reads a `T` from kernel memory at `addr`.
#[inline(always)]
pub fn read_kernel<T>(addr: u64) -> Result<T, Failure> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one returns an error.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.map_err(|_| read_failed())
}

/// Reads a `T` at byte `offset` of a tracepoint's record.
#[inline(always)]
pub fn read_field<T>(ctx: &TracePointContext, offset: u32) -> Result<T, Failure> {
    // SAFETY: the offset comes from the tracepoint's format file (see netspy::probes).
    unsafe { ctx.read_at::<T>(offset as usize) }.map_err(|_| read_failed())
}

fn read_failed() -> Failure {
    Failure(netspy_common::counters::READ_ERROR)
}

/// Ring-buffer output flags for a record of `size` bytes: wake the reader once, when the
/// unread data crosses a batch. A wakeup per record costs 1-8 us (measured with bpf_stats);
/// the reader also drains on a short timer, so a quiet ring is never left unread for long.
#[inline(always)]
pub fn output_flags(ring: &RingBuf, size: usize) -> u64 {
    const BPF_RB_AVAIL_DATA: u64 = 0;
    const BPF_RB_NO_WAKEUP: u64 = 1;
    const BPF_RB_FORCE_WAKEUP: u64 = 2;
    let batch = netspy_common::counters::WAKEUP_BATCH_BYTES;
    let waiting = ring.query(BPF_RB_AVAIL_DATA);
    if waiting < batch && waiting + size as u64 >= batch {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Counts a failure in its per-CPU slot.
#[inline(always)]
pub fn count(Failure(index): Failure) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot is only touched by this CPU, and programs do not nest here.
        unsafe { *slot += 1 };
    }
}

/// Runs a program body, counting its failure; tracepoint programs always return 0.
#[inline(always)]
pub fn run(body: impl FnOnce() -> Result<(), Failure>) -> u32 {
    if let Err(failure) = body() {
        count(failure);
    }
    0
}
