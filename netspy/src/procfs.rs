//! A process's executable, read from `/proc` and checked to belong to the process an event
//! names: the pid's start time and name in `/proc/PID/stat` must be the event's, before and
//! after the link is read, so a pid reused meanwhile (or a process that has exec'd another
//! program since) is never given another program's path.

use std::sync::Arc;

use crate::store::{ProcessKey, Resolve};

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

    /// The name and start time (in ticks) of process `pid` now.
    fn identity(pid: u32) -> Option<(String, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some((stat_name(&stat)?.to_owned(), started_ticks(&stat)?))
    }
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new()
    }
}

impl Resolve<ProcessKey, Arc<str>> for ProcFs {
    fn resolve(&self, key: ProcessKey) -> Option<Arc<str>> {
        let expected = (key.name.to_string(), key.started_ns / self.ns_per_tick);
        let same = || Self::identity(key.pid).as_ref() == Some(&expected);
        if !same() {
            return None;
        }
        let exe = std::fs::read_link(format!("/proc/{}/exe", key.pid)).ok()?;
        let exe = exe.to_string_lossy();
        // A program replaced on disk since it started is still that program.
        let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
        // The pid may have been reused (or the process exec'd) between the reads.
        same().then(|| Arc::from(exe))
    }
}

/// Field 2 (`comm`) of a `/proc/PID/stat` line: between the first `(` and the last `)`.
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
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
        assert_eq!(stat_name(line), Some("a) b (c)"));
    }

    #[test]
    fn this_process_s_executable_is_found_only_with_its_start_time() {
        let procfs = ProcFs::new();
        let pid = std::process::id();
        let (name, ticks) = ProcFs::identity(pid).unwrap();
        let key = |started_ns, name: &str| ProcessKey {
            pid,
            started_ns,
            name: Arc::from(name),
        };
        let started_ns = ticks * procfs.ns_per_tick + 1;
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            procfs.resolve(key(started_ns, &name)).as_deref(),
            Some(exe.to_str().unwrap())
        );
        assert_eq!(
            procfs.resolve(key(started_ns + 5 * procfs.ns_per_tick, &name)),
            None,
            "another process of this pid"
        );
        assert_eq!(
            procfs.resolve(key(started_ns, "bash")),
            None,
            "this process before an exec"
        );
    }
}
