//! The kernel side, seen from userspace: checks privileges, reads what the programs need
//! about the running kernel, loads and attaches them (with fallbacks), and streams decoded
//! events out of the ring buffers while counting what was received and what was lost.
//!
//! aya types stay inside this module.

mod attach;
mod kernel_info;
mod libraries;
mod options;
mod own_clients;
mod privilege;
mod reader;
mod sampled;
mod specs;
mod streams;
mod thread;
mod tracefs;

use std::sync::Arc;

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
};
use netspy_common::counters;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use self::kernel_info::{Need, optional_offsets, tracepoint_fields};
pub use self::{
    attach::{ProbeStatus, Refusal, known_hooks},
    options::{DEFAULT_DROP_EVENT_RATE, ProbeOptions, RingWakeup},
    specs::{Attachment, Hook, PROBES, ProbeSpec, always},
    streams::EventStreams,
};
use self::{
    kernel_info::KernelInfo, reader::Received, sampled::SampledCounts, thread::ProbeThread,
};
pub use crate::events::KindCounts;
use crate::events::{BootClock, Kallsyms, KernelNames, SampledDrops};

/// The compiled kernel programs (built by build.rs).
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netspy"));

/// Why the probes could not start at all. Single hooks that fail are not errors: they are
/// reported in [`ProbeStatus`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Not privileged enough to load eBPF.
    #[error("{}", privilege::NEEDS)]
    NotPrivileged,
    /// tracefs is missing or unreadable.
    #[error("tracefs: {0}")]
    Tracefs(String),
    /// Kernel BTF is missing or lacks something netspy needs.
    #[error("kernel BTF: {0}")]
    Btf(String),
    /// The kernel refused the object (maps or BTF).
    #[error("loading the eBPF object: {0}")]
    Load(String),
    /// A hook named in the options does not exist.
    #[error("unknown hook {0:?}; known hooks: {1}")]
    UnknownHook(String, String),
    /// No probe could attach at all.
    #[error("no probe could attach: {0}")]
    NothingAttached(String),
}

/// Events received from and lost in the kernel, per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Records read from each ring buffer.
    pub received: KindCounts,
    /// Records the kernel could not queue because a ring buffer was full.
    pub lost: KindCounts,
    /// Records that could not be decoded (should stay 0).
    pub decode_errors: u64,
    /// Connects whose syscall entry could not be remembered (pending map full).
    pub pending_full: u64,
    /// Failed kernel reads inside probes.
    pub read_errors: u64,
    /// Drops whose full event was not sent (past `--drop-event-rate`); they are counted by
    /// reason and owner instead.
    pub sampled_out: KindCounts,
    /// Sampled-out drops that could not be counted by reason and owner (the kernel's count
    /// maps were full); they are in `sampled_out` only.
    pub sampled_uncounted: u64,
}

/// Fails on a hook name no probe has (`--disable-hook bogus`), naming the ones there are.
pub fn check_hook_names(hooks: &[String]) -> Result<(), ProbeError> {
    let known = known_hooks();
    match hooks.iter().find(|h| !known.contains(h)) {
        Some(unknown) => Err(ProbeError::UnknownHook(unknown.clone(), known.join(", "))),
        None => Ok(()),
    }
}

/// Loaded and attached probes. Dropping this detaches every program and stops the readers.
pub struct Probes {
    // Field order: readers stop before the programs go away.
    cancel: CancellationToken,
    counters: PerCpuArray<MapData, u64>,
    received: Arc<Received>,
    sampled: std::sync::Mutex<SampledCounts>,
    names: Arc<KernelNames>,
    status: Vec<ProbeStatus>,
    _ebpf: Ebpf,
}

impl Probes {
    /// Loads and attaches the probes and starts one reader per ring buffer on a thread of
    /// their own ([`ProbeThread`]). Decoded events arrive in batches on the returned streams.
    pub fn start(options: &ProbeOptions) -> Result<(Self, EventStreams), ProbeError> {
        check_hook_names(&options.disabled_hooks)?;
        check_privileges()?;
        raise_memlock_limit();
        let tracefs = tracefs::ensure_mounted()?;
        let info = KernelInfo::read(&tracefs)?;
        let mut config = info.config;
        config.ignore_tgid = options.ignore_tgid.unwrap_or(0);
        if options.ignore_tgid.is_some() && !options.report_netspy_clients {
            own_clients::recognise(&mut config);
        }
        config.ring_wakeup = options.ring_wakeup.policy();
        config.drop_events_per_window = options.drop_events_per_window();

        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &config, true)
            .load(EBPF_OBJECT)
            .map_err(load_error)?;
        let status = attach::attach_all(&mut ebpf, &config, &options.disabled_hooks);
        if status.iter().all(|s| !s.attached()) {
            let why = status
                .iter()
                .flat_map(|s| &s.refused)
                .map(|r| format!("{} ({})", r.hook, r.reason))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ProbeError::NothingAttached(why));
        }

        let names = Arc::new(KernelNames {
            drop_reasons: info.drop_reasons,
            symbols: Kallsyms::load(),
            clock: BootClock::now(),
        });
        let counters = take_map(&mut ebpf, "COUNTERS")?;
        let mut receivers = Vec::new();
        let received = Arc::new(Received::default());
        let cancel = CancellationToken::new();
        let tasks = ProbeThread::new()?;
        {
            let _inside = tasks.enter();
            for (kind, map) in PROBES.iter().filter_map(|p| Some((p.delivers?, p.ring?))) {
                let ring: RingBuf<MapData> = take_map(&mut ebpf, map)?;
                let (tx, rx) = mpsc::channel(streams::CHANNEL_BATCHES);
                receivers.push(rx);
                reader::spawn(
                    ring,
                    kind,
                    names.clone(),
                    tx,
                    received.clone(),
                    cancel.clone(),
                )
                .map_err(|e| ProbeError::Load(format!("{map}: {e}")))?;
            }
            sampled::spawn_window_clock(&mut ebpf, cancel.clone())?;
        }
        let sampled = SampledCounts::take(&mut ebpf)?;
        tasks.run_until(cancel.clone())?;
        let probes = Self {
            cancel,
            counters,
            received,
            sampled: std::sync::Mutex::new(sampled),
            names,
            status,
            _ebpf: ebpf,
        };
        Ok((probes, EventStreams::new(receivers)))
    }

    /// Drops the kernel counted without a full event (past `--drop-event-rate`), by reason
    /// and owner, collected since the previous call. Call about once a second: counts arrive
    /// one to two calls after their drops.
    pub fn sampled_drops(&self) -> SampledDrops {
        let collected = match self.sampled.lock() {
            Ok(mut sampled) => sampled.collect(),
            Err(_) => Err("a collection panicked".to_owned()),
        };
        match collected {
            Ok(counts) => SampledDrops::decode(chrono::Utc::now(), counts, &self.names),
            Err(e) => {
                tracing::warn!("{e}");
                SampledDrops::default()
            }
        }
    }

    /// How each probe is attached.
    pub fn status(&self) -> &[ProbeStatus] {
        &self.status
    }

    /// Each probe's description beside how it is attached.
    pub fn described(&self) -> impl Iterator<Item = (&'static ProbeSpec, &ProbeStatus)> {
        // `attach_all` makes one status per probe, in table order.
        PROBES.iter().copied().zip(&self.status)
    }

    /// Current counters: received (userspace) and lost (kernel, summed over CPUs).
    pub fn stats(&self) -> Stats {
        let kernel = |index: u32| -> u64 {
            self.counters
                .get(&index, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or_else(|e| {
                    tracing::warn!("reading kernel counter {index}: {e}");
                    0
                })
        };
        Stats {
            received: self.received.counts(),
            lost: PROBES
                .iter()
                .fold(KindCounts::default(), |mut lost, probe| {
                    if let Some(kind) = probe.delivers {
                        lost.add(kind, probe.lost.iter().map(|&i| kernel(i)).sum());
                    }
                    lost
                }),
            decode_errors: self.received.decode_errors(),
            pending_full: kernel(counters::PENDING_FULL),
            read_errors: kernel(counters::READ_ERROR),
            sampled_out: KindCounts {
                packet_drop: kernel(counters::SAMPLED_OUT_DROP),
                ..KindCounts::default()
            },
            sampled_uncounted: kernel(counters::SAMPLED_UNCOUNTED),
        }
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Fails with a sentence when this process may not load eBPF programs (checked before
/// trying, so that the user does not get a raw EPERM).
pub fn check_privileges() -> Result<(), ProbeError> {
    match privilege::can_load_bpf() {
        true => Ok(()),
        false => Err(ProbeError::NotPrivileged),
    }
}

/// The map `name` of the object, as the typed map `T` (`RingBuf`, `PerCpuArray`, ...).
fn take_map<T>(ebpf: &mut Ebpf, name: &str) -> Result<T, ProbeError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| ProbeError::Load(format!("map {name} is not in the object")))?;
    T::try_from(map).map_err(|e| ProbeError::Load(format!("{name}: {e}")))
}

fn load_error(e: aya::EbpfError) -> ProbeError {
    let text = crate::error_chain::error_chain(&e);
    if text.contains("Operation not permitted") || text.contains("EPERM") {
        ProbeError::NotPrivileged
    } else {
        ProbeError::Load(text)
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. Newer ones use memcg, and
/// without CAP_SYS_RESOURCE the call fails harmlessly.
fn raise_memlock_limit() {
    use nix::sys::resource::{Resource, setrlimit};
    let unlimited = nix::sys::resource::RLIM_INFINITY;
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, unlimited, unlimited) {
        tracing::debug!("raising RLIMIT_MEMLOCK failed ({e}); fine on Linux >= 5.11");
    }
}
