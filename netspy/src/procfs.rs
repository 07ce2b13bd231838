//! A process's executable, read from `/proc` and checked to belong to the process an event
//! names: the pid's start time in `/proc/PID/stat` must be the event's, before and after
//! the link is read, so a pid reused meanwhile is never given another program's path.

use std::sync::Arc;

use crate::store::Resolve;

/// Executables by (pid, start time in ns since boot), from this system's `/proc`.
pub struct ProcFs {
    ns_per_tick: u64,
}

impl ProcFs {
    /// A resolver for this system's clock tick (`/proc/PID/stat` counts in ticks).
    pub fn new() -> Self {
        // SAFETY: sysconf reads a system value; no pointers.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100);
        Self {
            ns_per_tick: 1_000_000_000 / ticks,
        }
    }

    /// The start time, in ticks, of process `pid` now.
    fn start_ticks(pid: u32) -> Option<u64> {
        started_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new()
    }
}

impl Resolve<(u32, u64), Arc<str>> for ProcFs {
    fn resolve(&self, (pid, started_ns): (u32, u64)) -> Option<Arc<str>> {
        let expected = started_ns / self.ns_per_tick;
        let same = || Self::start_ticks(pid) == Some(expected);
        if !same() {
            return None;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        // The pid may have been reused between the two reads.
        same().then(|| Arc::from(exe.to_string_lossy().as_ref()))
    }
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line. The name (field 2) is in parentheses
/// and may hold spaces and parentheses itself, so fields are counted after the last `)`.
fn started_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // Fields 3.. follow; starttime is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_past_any_name() {
        let line = "4312 (a) b (c)) S 1 4312 4312 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    123456 1000 10 18446744073709551615";
        assert_eq!(started_ticks(line), Some(123_456));
        assert_eq!(started_ticks("garbage"), None);
    }

    #[test]
    fn this_process_s_executable_is_found_only_with_its_start_time() {
        let procfs = ProcFs::new();
        let pid = std::process::id();
        let ticks = ProcFs::start_ticks(pid).unwrap();
        let started_ns = ticks * procfs.ns_per_tick + 1;
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            procfs.resolve((pid, started_ns)).as_deref(),
            Some(exe.to_str().unwrap())
        );
        assert_eq!(
            procfs.resolve((pid, started_ns + 5 * procfs.ns_per_tick)),
            None,
            "another process of this pid"
        );
    }
}
