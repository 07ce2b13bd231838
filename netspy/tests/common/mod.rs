//! Shared test harness: real probes loaded in this process (CI runs as root), events
//! collected until a predicate matches.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod cgroup;
pub mod daemon;
pub mod netns;

use std::time::{Duration, Instant};

use netspy::{
    events::Event,
    probes::{EventStreams, ProbeOptions, Probes},
};
use tokio::runtime::Runtime;

/// How long an expected event may take to arrive.
const WAIT: Duration = Duration::from_secs(15);

/// Loaded probes plus everything they delivered so far.
pub struct Kernel {
    probes: Option<Probes>,
    events: EventStreams,
    seen: Vec<Event>,
    rt: Runtime,
}

impl Kernel {
    /// Loads and attaches every probe, watching every process (the test's own included).
    pub fn start() -> Self {
        Self::start_with(ProbeOptions::default())
    }

    /// Loads the probes with options.
    pub fn start_with(options: ProbeOptions) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (probes, events) = {
            let _guard = rt.enter();
            Probes::start(&options)
                .expect("probes must load: the suite runs as root on a BTF kernel")
        };
        Self {
            probes: Some(probes),
            events,
            seen: Vec::new(),
            rt,
        }
    }

    /// The probes (status, stats).
    pub fn probes(&self) -> &Probes {
        self.probes.as_ref().unwrap()
    }

    /// Waits until `pick` returns Some for an event, and returns that. Panics after a while
    /// with every event of this process seen so far.
    pub fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&Event) -> Option<T>) -> T {
        if let Some(found) = self.seen.iter().find_map(&pick) {
            return found;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let events = &mut self.events;
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(left, events.next()).await });
            match next {
                Ok(Some(batch)) => {
                    let found = batch.iter().find_map(&pick);
                    self.seen.extend(batch);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Ok(None) | Err(_) => {
                    let mine: Vec<String> = self
                        .seen
                        .iter()
                        .filter(|e| e.process().is_some_and(|p| p.pid == std::process::id()))
                        .map(|e| format!("{}", netspy::cli::Line(e)))
                        .collect();
                    panic!(
                        "no {what} within {WAIT:?}; this process's events:\n{}",
                        mine.join("\n")
                    );
                }
            }
        }
    }

    /// Collects events for `period` and returns those `pick` keeps.
    pub fn collect_for<T>(
        &mut self,
        period: Duration,
        pick: impl Fn(&Event) -> Option<T>,
    ) -> Vec<T> {
        let deadline = Instant::now() + period;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let events = &mut self.events;
            match self
                .rt
                .block_on(async { tokio::time::timeout(left, events.next()).await })
            {
                Ok(Some(batch)) => self.seen.extend(batch),
                Ok(None) | Err(_) => break,
            }
        }
        self.seen.iter().filter_map(pick).collect()
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // Detach inside the runtime that owns the reader tasks.
        let _guard = self.rt.enter();
        self.probes.take();
    }
}

/// The calling thread's id: connect events carry it, so parallel tests never mix.
pub fn my_tid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// This process's cgroup v2 id: the inode number of its directory in the cgroup2 mount
/// (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts such as these).
pub fn my_cgroup_id() -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let root = mounts
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(2) == Some(&"cgroup2")).then(|| fields[1].to_owned())
        })
        .expect("a cgroup2 mount");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line in /proc/self/cgroup");
    std::fs::metadata(format!("{root}{path}")).unwrap().ino()
}

/// A loopback TCP port nothing listens on.
pub fn closed_tcp_port() -> u16 {
    unassigned_port(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// A UDP port on `ip` nothing is bound to.
pub fn closed_udp_port(ip: &str) -> u16 {
    unassigned_port(|port| std::net::UdpSocket::bind((ip, port)).is_ok())
}

/// A port free now that the kernel never hands out by itself: outside the ephemeral range
/// (below it, from 10000, or above it), so no socket bound to port 0 (another test's, the
/// daemon's) can take it between the choice and the send. A port bound and released inside
/// that range came back to a parallel test's socket once, and the "closed" port's datagram
/// was queued there instead of dropped.
fn unassigned_port(free: impl Fn(u16) -> bool) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    const FLOOR: u32 = 10_000;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let ephemeral: Vec<u32> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let (low, high) = (ephemeral[0], ephemeral[1]);
    let outside: Vec<u32> = (FLOOR..low.max(FLOOR)).chain(high + 1..=65_535).collect();
    assert!(
        outside.len() > 1_000,
        "ephemeral range {low}-{high} leaves too few ports outside it"
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let start = std::process::id() ^ nanos ^ (CALLS.fetch_add(1, Ordering::Relaxed) * 7_919);
    (0..outside.len())
        .map(|step| outside[(start as usize).wrapping_add(step) % outside.len()])
        .find_map(|port| {
            let port = u16::try_from(port).unwrap();
            free(port).then_some(port)
        })
        .expect("a free port outside the ephemeral range")
}

/// Runs a shell command, returning whether it succeeded.
pub fn sh(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `bash -c script` to completion and returns its pid. HOME and SHELL are set
/// because bash otherwise asks NSS for them, and glibc's nscd probe is a connect()
/// (AF_UNIX) that would show up among the child's connections.
pub fn bash(script: &str) -> u32 {
    let child = std::process::Command::new("bash")
        .args(["-c", script])
        .env("HOME", "/")
        .env("SHELL", "/bin/bash")
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "bash -c {script}: {output:?}");
    pid
}

/// A child process killed (and reaped) when dropped, so a failing test leaves none running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
