//! Small safe wrappers around kernel helpers shared by every program.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_ktime_get_boot_ns, bpf_probe_read_kernel},
    maps::ring_buf::RingBufEntry,
    programs::TracePointContext,
};
use netspy_common::{
    config::{ABSENT, Config},
    ring::{BATCH_RECORDS, wakeup},
    syscall_record,
    task::{TaskInfo, task_flags},
};

use crate::{
    btf::Typed,
    maps::{CONFIG, COUNTERS, WAKEUP_COUNTS},
};

/// Why a program gave up on an event; each maps to a counter.
#[derive(Clone, Copy)]
pub struct Failure(pub u32);

/// The load-time configuration. Volatile: the compiler must not fold the zero initializer.
#[inline(always)]
pub fn config<F: Copy + 'static>(field: impl FnOnce(&'static Config) -> &'static F) -> F {
    // SAFETY: CONFIG is a valid static; the read is of a plain integer field.
    unsafe { core::ptr::read_volatile(field(&CONFIG)) }
}

/// True when events of this process must be ignored (the netspy process that loaded the
/// programs), for hooks that know only the pid.
#[inline(always)]
pub fn ignored_tgid(tgid: u32) -> bool {
    let ignore = config(|c| &c.ignore_tgid);
    ignore != 0 && ignore == tgid
}

/// True when events of this task must be ignored: it is netspy's ([`task_flags::NETSPY`]).
#[inline(always)]
pub fn ignored(task: &TaskInfo) -> bool {
    task.flags & task_flags::NETSPY != 0
}

/// The current task, for events raised in process context.
#[inline(always)]
pub fn current_task() -> TaskInfo {
    task_info(Typed::current_task())
}

/// Who `task` is, read through its typed `task_struct`: plain loads, where the four helpers
/// that say the same (pid_tgid, uid_gid, cgroup id, comm) cost ~150 ns together here.
#[inline(always)]
pub fn task_info(task: Typed) -> TaskInfo {
    let comm_at = config(|c| &c.task_comm);
    let comm: [u32; 4] = task.field(comm_at);
    let leader = task.pointer(config(|c| &c.task_group_leader));
    let process: [u32; 4] = leader.field(comm_at);
    let start_at = config(|c| &c.task_start_boottime);
    let tgid: u32 = task.field(config(|c| &c.task_tgid));
    let netspy = ignored_tgid(tgid) || is_netspy_client(task, &process);
    TaskInfo {
        tgid,
        pid: task.field(config(|c| &c.task_pid)),
        uid: task
            .pointer(config(|c| &c.task_cred))
            .field(config(|c| &c.cred_uid)),
        flags: if netspy { task_flags::NETSPY } else { 0 },
        cgroup_id: cgroup_id(task),
        // SAFETY: four words and sixteen bytes are the same memory, any bit pattern valid.
        comm: unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>(comm) },
        // SAFETY: likewise.
        process: unsafe { core::mem::transmute::<[u32; 4], [u8; 16]>(process) },
        started_ns: if start_at == ABSENT {
            0
        } else {
            leader.field(start_at)
        },
    }
}

/// True when `task`, a process named `process`, runs netspy's executable (its CLI or MCP
/// client): the name is compared first, so other processes cost one comparison, and the
/// inode number of task->mm->exe_file only for those named like netspy. (Not the device:
/// what `stat` says of it is not `s_dev` on btrfs.)
#[inline(always)]
fn is_netspy_client(task: Typed, process: &[u32; 4]) -> bool {
    let own = config(|c| &c.self_comm);
    if own[0] == 0 || *process != own || config(|c| &c.task_mm) == ABSENT {
        return false;
    }
    let ino: u64 = task
        .pointer(config(|c| &c.task_mm))
        .pointer(config(|c| &c.mm_exe_file))
        .pointer(config(|c| &c.file_inode))
        .field(config(|c| &c.inode_ino));
    let own_ino =
        (config(|c| &c.self_exe_ino_high) as u64) << 32 | config(|c| &c.self_exe_ino_low) as u64;
    ino == own_ino
}

/// The id of `task`'s cgroup v2 (what `bpf_get_current_cgroup_id` returns):
/// task->cgroups->dfl_cgrp->kn->id; 0 without cgroups.
#[inline(always)]
fn cgroup_id(task: Typed) -> u64 {
    let cgroups = config(|c| &c.task_cgroups);
    if cgroups == ABSENT {
        return 0;
    }
    task.pointer(cgroups)
        .pointer(config(|c| &c.css_set_dfl_cgrp))
        .pointer(config(|c| &c.cgroup_kn))
        .field(config(|c| &c.kernfs_node_id))
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

/// Reads a `T` at byte `offset` of a tracepoint's record, for tracepoints whose layout
/// differs between kernels (the offset comes from the format file, through `CONFIG`). The
/// verifier refuses a plain load at an offset it only knows from a map, so this is a
/// `bpf_probe_read_kernel`.
#[inline(always)]
pub fn read_field<T>(ctx: &TracePointContext, offset: u32) -> Result<T, Failure> {
    // SAFETY: the offset comes from the tracepoint's format file (see netspy::probes).
    unsafe { ctx.read_at::<T>(offset as usize) }.map_err(|_| read_failed())
}

/// Argument `N` of a syscall, in a `sys_enter_*` record: a plain load at a fixed offset.
#[inline(always)]
pub fn syscall_arg<const N: usize>(ctx: &TracePointContext) -> u64 {
    // SAFETY: every sys_enter record holds six 8-byte arguments from `syscall_record::ARGS`
    // (userspace checks the format files); N < 6 at every call site.
    unsafe { record_word(ctx, syscall_record::ARGS as usize + 8 * N) }
}

/// The return value of a syscall, in a `sys_exit_*` record: a plain load at a fixed offset.
#[inline(always)]
pub fn syscall_ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: every sys_exit record holds `ret` at `syscall_record::RET` (checked likewise).
    unsafe { record_word(ctx, syscall_record::RET as usize) as i64 }
}

/// # Safety
/// `offset` must be a constant inside the record, 8-byte aligned.
#[inline(always)]
unsafe fn record_word(ctx: &TracePointContext, offset: usize) -> u64 {
    // SAFETY: per the caller; the record itself is 8-byte aligned.
    unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(offset).cast::<u64>()) }
}

fn read_failed() -> Failure {
    Failure(netspy_common::counters::READ_ERROR)
}

/// A reserved ring record, zeroed, to be filled in place (no stack copy) and then
/// submitted or discarded on every path. Only for the wire records: integers and arrays,
/// for which all zeroes is a valid value.
#[inline(always)]
pub fn zeroed<T: 'static>(entry: &mut RingBufEntry<T>) -> &mut T {
    // SAFETY: the entry's memory is reserved and writable; zeroing it makes every field of
    // such a record valid before the reference is made.
    unsafe {
        let record = entry.as_mut_ptr();
        core::ptr::write_bytes(record, 0, 1);
        &mut *record
    }
}

/// Discarding a reserved record wakes nobody: there is nothing new to read.
pub const BPF_RB_NO_WAKEUP: u64 = 1;

/// Ring-buffer output flags for a record on ring `ring` (a `ring::index`), by the load-time
/// wakeup policy. None of them asks the ring how much is unread (`bpf_ringbuf_query` costs
/// ~85 ns a record here): the batch policy counts records per CPU instead.
#[inline(always)]
pub fn wakeup_flags(ring: u32) -> u64 {
    const BPF_RB_FORCE_WAKEUP: u64 = 2;
    match config(|c| &c.ring_wakeup) {
        wakeup::RECORD => 0,
        wakeup::BATCH => match WAKEUP_COUNTS.get_ptr_mut(ring) {
            // SAFETY: a per-CPU slot, only touched by this CPU; programs do not nest here.
            Some(count) => unsafe {
                *count += 1;
                if *count >= BATCH_RECORDS {
                    *count = 0;
                    BPF_RB_FORCE_WAKEUP
                } else {
                    BPF_RB_NO_WAKEUP
                }
            },
            None => BPF_RB_NO_WAKEUP,
        },
        _ => BPF_RB_NO_WAKEUP,
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
