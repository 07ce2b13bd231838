//! How the probes are started: the probe flags `netspy daemon` and `netspy trace` share.

use netspy_common::ring;
use serde::Serialize;

/// How to start the probes (also the probe flags of `netspy daemon` and `netspy trace`).
#[derive(Clone, Debug, clap::Args)]
pub struct ProbeOptions {
    /// Process whose events are ignored (netspy's own, so its traffic is not reported). With
    /// it, the processes running the same executable (netspy's CLI and MCP clients) are
    /// ignored too, unless `report_netspy_clients`.
    #[arg(skip)]
    pub ignore_tgid: Option<u32>,

    /// Also report the traffic of netspy's own CLI and MCP client processes (left out by
    /// default: their calls to the daemon would fill the history).
    #[arg(long, env = "NETSPY_REPORT_NETSPY_CLIENTS")]
    pub report_netspy_clients: bool,

    /// Do not use this hook (e.g. `tp_btf:kfree_skb` to use the classic tracepoint after
    /// it). Repeatable.
    #[arg(
        long = "disable-hook",
        value_name = "HOOK",
        env = "NETSPY_DISABLE_HOOK",
        value_delimiter = ','
    )]
    pub disabled_hooks: Vec<String>,

    /// When the kernel programs wake netspy to read their events.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "timer",
        env = "NETSPY_RING_WAKEUP"
    )]
    pub ring_wakeup: RingWakeup,

    /// Full drop events each CPU sends per second (0: no limit). Drops past it are counted
    /// by reason and owner ("sampled out"), so drop totals stay exact under a storm.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DROP_EVENT_RATE,
          env = "NETSPY_DROP_EVENT_RATE", value_parser = parse_drop_event_rate)]
    pub drop_event_rate: u32,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            ignore_tgid: None,
            report_netspy_clients: false,
            disabled_hooks: Vec::new(),
            ring_wakeup: RingWakeup::default(),
            drop_event_rate: DEFAULT_DROP_EVENT_RATE,
        }
    }
}

/// Full drop events each CPU sends per second unless configured: far above what a healthy
/// host drops, well below what a storm costs to report in full.
pub const DEFAULT_DROP_EVENT_RATE: u32 = 20_000;

/// Windows of full drop events per second (`drop::RATE_WINDOW_NS`).
const RATE_WINDOWS_PER_SECOND: u32 = (1_000_000_000 / netspy_common::drop::RATE_WINDOW_NS) as u32;

fn parse_drop_event_rate(text: &str) -> Result<u32, String> {
    let rate: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of events per second"))?;
    if rate != 0 && rate < RATE_WINDOWS_PER_SECOND {
        return Err(format!(
            "at least {RATE_WINDOWS_PER_SECOND} (the limit is kept per {} ms), or 0 for none",
            1000 / RATE_WINDOWS_PER_SECOND
        ));
    }
    Ok(rate)
}

/// When the kernel programs wake the ring-buffer readers (BENCHMARKS.md measures each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RingWakeup {
    /// Never: the readers drain every 50 ms. The cheapest for the traced calls; events
    /// arrive up to 50 ms late.
    #[default]
    Timer,
    /// Every 64 events per CPU, and by the timer in between.
    Batch,
    /// Whenever the reader had read everything: the lowest latency, but a wakeup (1-8 us of
    /// the traced call's time) per event when events are sparse.
    Record,
}

impl ProbeOptions {
    /// The per-CPU limit of full drop events in each of the kernel's rate windows.
    pub(super) fn drop_events_per_window(&self) -> u32 {
        self.drop_event_rate / RATE_WINDOWS_PER_SECOND
    }
}

impl RingWakeup {
    pub(super) fn policy(self) -> u32 {
        match self {
            Self::Timer => ring::wakeup::TIMER,
            Self::Batch => ring::wakeup::BATCH,
            Self::Record => ring::wakeup::RECORD,
        }
    }
}
