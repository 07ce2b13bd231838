//! The task an event belongs to.

/// Length of a kernel task command name (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// Who did something: captured from the current task in process context, or remembered per
/// socket so that events raised later in softirq context are attributed to the socket's owner.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// Process id (the kernel's tgid).
    pub tgid: u32,
    /// Thread id (the kernel's pid).
    pub pid: u32,
    /// Real user id.
    pub uid: u32,
    /// [`task_flags`] bits.
    pub flags: u32,
    /// cgroup v2 id of the task (the inode number of its cgroup directory).
    pub cgroup_id: u64,
    /// The thread's name (its `comm`), NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// The process's name: the `comm` of its thread-group leader (what `ps` shows),
    /// NUL-padded.
    pub process: [u8; COMM_LEN],
    /// When the process started: its thread-group leader's `start_boottime`, nanoseconds
    /// since boot (0 where not known). With the pid it names one process even across pid
    /// reuse, and it is what `/proc/PID/stat` reports (in clock ticks).
    pub started_ns: u64,
}

const _: () = assert!(size_of::<TaskInfo>() == 64);

/// [`TaskInfo::flags`] bits.
pub mod task_flags {
    /// The task is netspy's: the daemon (or `netspy trace`) itself, or a process running
    /// the same executable (its CLI and MCP clients). Its events are not reported.
    pub const NETSPY: u32 = 1;
}

impl TaskInfo {
    /// A task with every field zero ("unknown").
    pub const EMPTY: Self = Self {
        tgid: 0,
        pid: 0,
        uid: 0,
        flags: 0,
        cgroup_id: 0,
        comm: [0; COMM_LEN],
        process: [0; COMM_LEN],
        started_ns: 0,
    };
}

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, no padding bytes left implicit.
unsafe impl aya::Pod for TaskInfo {}
