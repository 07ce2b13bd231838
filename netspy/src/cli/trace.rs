//! `netspy trace`: live events on stdout until Ctrl-C / SIGTERM.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt as _;
use tokio::signal::unix::{SignalKind, signal};

use super::output::{Format, Printer};
use crate::{
    cgroups::{CgroupFs, CgroupName},
    client::{Client, StreamItem},
    correlate::{HeldDrops, HostNames},
    events::Event,
    probes::{ProbeOptions, Probes, Stats},
    query::{NameFilter, StreamRequest},
};

/// Options of `netspy trace`.
#[derive(Clone, Debug, Default, Args)]
pub struct TraceArgs {
    /// Only events of this process id.
    #[arg(long, value_name = "N")]
    pub pid: Option<u32>,

    /// Only events of processes with this name (the process's, as `ps -o comm` shows it, or
    /// one of its threads'; at most 15 characters), or a glob of names (`'python*'`), as the
    /// daemon's filters take.
    #[arg(long, value_name = "NAME", value_parser = NameFilter::new)]
    pub process: Option<NameFilter>,

    /// Only events of processes in this systemd unit (`nginx.service`, or a glob).
    #[arg(long, value_name = "UNIT", value_parser = |p: &str| NameFilter::whole("unit", p))]
    pub unit: Option<NameFilter>,

    /// Only events of processes in this container (its id, or a glob such as `4f2c1e8b*`).
    #[arg(long, value_name = "ID", value_parser = |p: &str| NameFilter::whole("container", p))]
    pub container: Option<NameFilter>,

    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,

    /// What the probes use.
    #[command(flatten)]
    pub probes: ProbeOptions,

    /// Also show routine drops (sockets closing, queues purged), hidden by default as in the
    /// daemon's drop lists.
    #[arg(long)]
    pub include_routine: bool,

    /// Follow a running daemon's event stream (`/api/stream`, e.g. `http://localhost:8080`)
    /// instead of loading probes: no privileges needed. Events come about a second after
    /// they happen, each connect with its TCP result.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// Bearer token of the daemon (with --server), when it has one.
    #[arg(long, env = "NETSPY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl TraceArgs {
    /// True when the event passes the --pid, --process, --unit and --container filters
    /// (unattributed drops pass only when no filter is set; `cgroup` names the event's
    /// cgroup) and is not a routine drop (unless asked for).
    pub fn matches(&self, event: &Event, cgroup: Option<&CgroupName>) -> bool {
        if let Event::PacketDrop(drop) = event
            && !self.include_routine
            && crate::query::is_routine(&drop.drop_reason)
        {
            return false;
        }
        if !self.filters() {
            return true;
        }
        let Some(process) = event.process() else {
            return false;
        };
        let placed = |filter: &Option<NameFilter>, name: Option<&std::sync::Arc<str>>| {
            filter
                .as_ref()
                .is_none_or(|f| name.is_some_and(|n| f.matches(n)))
        };
        self.pid.is_none_or(|pid| process.pid == pid)
            && self.process.as_ref().is_none_or(|filter| {
                filter.matches(&process.process_name) || filter.matches(&process.command)
            })
            && placed(&self.unit, cgroup.and_then(|c| c.unit.as_ref()))
            && placed(&self.container, cgroup.and_then(|c| c.container.as_ref()))
    }

    /// True when any filter of processes is set.
    fn filters(&self) -> bool {
        self.pid.is_some()
            || self.process.is_some()
            || self.unit.is_some()
            || self.container.is_some()
    }

    /// True when a filter needs the events' cgroup names.
    fn needs_cgroups(&self) -> bool {
        self.unit.is_some() || self.container.is_some()
    }
}

/// Runs the trace until a signal or until the probes stop.
pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    if let Some(server) = &args.server {
        return follow(server, &args).await;
    }
    // Checked before the probes load: a --unit that can never match is an error.
    let mut cgroups = match args.needs_cgroups() {
        true => Some(Cgroups::open()?),
        false => None,
    };
    let options = ProbeOptions {
        ignore_tgid: Some(std::process::id()),
        ..args.probes.clone()
    };
    let (probes, mut events) = Probes::start(&options)?;
    for status in probes.status() {
        match &status.hook {
            Some(hook) => tracing::info!("probe {}: {hook}", status.name),
            None => tracing::warn!(
                "probe {}: no hook attached, its events are missing",
                status.name
            ),
        }
    }
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let format = if args.json {
        Format::Json
    } else {
        Format::Text
    };
    let mut printer = Printer::stdout(format);
    let mut attributor = HeldDrops::default();
    let mut host_names = HostNames::default();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tracing::info!("tracing; Ctrl-C to stop");
    let mut open = true;
    while open {
        let ready = tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = tick.tick() => attributor.expired(Instant::now()),
            batch = events.next() => match batch {
                Some(batch) => {
                    let now = Instant::now();
                    let mut ready = Vec::new();
                    for mut event in batch {
                        if host_names.observe(&mut event) {
                            ready.extend(attributor.push(event, now));
                        }
                    }
                    ready
                }
                None => break,
            },
        };
        open = print(&mut printer, &args, &ready, cgroups.as_mut())?;
    }
    if open {
        print(&mut printer, &args, &attributor.flush(), cgroups.as_mut())?;
    }
    print_summary(&probes.stats());
    Ok(())
}

/// How long to wait before following again after the daemon's stream broke.
const RECONNECT: Duration = Duration::from_secs(1);

/// Follows the daemon at `server` until a signal, or until stdout is closed; after a broken
/// stream, follows again from where it was (a restarted daemon: from its oldest record).
async fn follow(server: &str, args: &TraceArgs) -> anyhow::Result<()> {
    let client = Client::new(server, args.token.clone())?;
    let req = StreamRequest {
        pid: args.pid,
        command: args.process.as_ref().map(|p| p.pattern().to_owned()),
        unit: args.unit.as_ref().map(|p| p.pattern().to_owned()),
        container: args.container.as_ref().map(|p| p.pattern().to_owned()),
        include_routine: Some(args.include_routine),
        ..StreamRequest::default()
    };
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut printer = Printer::stdout(if args.json {
        Format::Json
    } else {
        Format::Text
    });
    let mut last_id: Option<String> = None;
    let (mut printed, mut missed) = (0u64, 0u64);
    // The first connection must work: a wrong URL or token is an error, not a retry loop.
    let mut events = Box::pin(client.follow(&req, None).await?);
    tracing::info!("following {}; Ctrl-C to stop", client.base());
    loop {
        let item = tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            item = events.next() => item,
        };
        match item {
            Some(Ok(StreamItem::Event { id, view })) => {
                if !printer.print_view(&view)? {
                    break;
                }
                printed += 1;
                last_id = Some(id);
            }
            Some(Ok(StreamItem::Position { id })) => last_id = Some(id),
            Some(Ok(StreamItem::Missed { kind, count })) => {
                missed += count;
                tracing::warn!(
                    "{count} {kind} events left the daemon's history before they could be sent"
                );
            }
            ended => {
                match ended {
                    Some(Err(e)) => tracing::warn!("{e}; following again"),
                    _ => tracing::warn!("the stream from {} ended; following again", client.base()),
                }
                tokio::time::sleep(RECONNECT).await;
                match client.follow(&req, last_id.as_deref()).await {
                    Ok(stream) => events = Box::pin(stream),
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        }
    }
    eprintln!("netspy trace: printed {printed} events from {server}; missed {missed}");
    Ok(())
}

/// Prints the events that pass the filters; false once stdout is closed (e.g. piped into
/// head).
fn print(
    printer: &mut Printer,
    args: &TraceArgs,
    events: &[Event],
    mut cgroups: Option<&mut Cgroups>,
) -> anyhow::Result<bool> {
    for event in events {
        let cgroup = match (&mut cgroups, event.process()) {
            (Some(cgroups), Some(process)) => cgroups.name(process.cgroup_id),
            _ => None,
        };
        if args.matches(event, cgroup.as_deref()) && !printer.print(event)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The cgroup names `--unit` and `--container` compare, resolved once per cgroup id (at
/// most [`Cgroups::HELD`] kept: a trace may run for days).
struct Cgroups {
    fs: CgroupFs,
    names: HashMap<u64, Option<Arc<CgroupName>>>,
}

impl Cgroups {
    const HELD: usize = 4096;

    fn open() -> anyhow::Result<Self> {
        let fs = CgroupFs::open()
            .map_err(|why| anyhow::anyhow!("--unit and --container need cgroup names: {why}"))?;
        Ok(Self {
            fs,
            names: HashMap::new(),
        })
    }

    fn name(&mut self, id: u64) -> Option<Arc<CgroupName>> {
        if self.names.len() >= Self::HELD && !self.names.contains_key(&id) {
            self.names.clear();
        }
        self.names
            .entry(id)
            .or_insert_with(|| self.fs.name(id).map(Arc::new))
            .clone()
    }
}

/// The summary goes to stderr, so that stdout stays pure events (JSON lines stay parseable).
fn print_summary(stats: &Stats) {
    let by_kind = |counts: &crate::events::KindCounts| {
        counts
            .by_kind()
            .map(|(kind, n)| format!("{} {n}", kind.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "netspy trace: received {} events ({}); lost in the kernel {} ({}); drops sampled out {}",
        stats.received.total(),
        by_kind(&stats.received),
        stats.lost.total(),
        by_kind(&stats.lost),
        stats.sampled_out.packet_drop,
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::events::{PacketDrop, Process};

    fn drop_event(reason: &str, owner: Option<u32>) -> Event {
        Event::PacketDrop(PacketDrop {
            time: Utc::now(),
            timestamp_ns: 0,
            process: owner.map(|pid| Process {
                pid,
                tid: pid,
                uid: 0,
                cgroup_id: 0,
                command: Arc::from("curl"),
                process_name: Arc::from("curl"),
                started_ns: 0,
            }),
            drop_reason: Arc::from(reason),
            drop_reason_code: 0,
            location: String::new(),
            ethertype: 0x800,
            protocol: None,
            raw_protocol: 0,
            source_ip: None,
            source_port: None,
            destination_ip: None,
            destination_port: None,
            sock: 0,
        })
    }

    #[test]
    fn routine_drops_are_hidden_unless_asked_for() {
        let default = TraceArgs::default();
        assert!(default.matches(&drop_event("NO_SOCKET", None), None));
        assert!(!default.matches(&drop_event("QUEUE_PURGE", None), None));
        let all = TraceArgs {
            include_routine: true,
            ..Default::default()
        };
        assert!(all.matches(&drop_event("QUEUE_PURGE", None), None));
    }

    #[test]
    fn filters_keep_only_the_named_process() {
        let by_pid = TraceArgs {
            pid: Some(7),
            ..Default::default()
        };
        assert!(by_pid.matches(&drop_event("NO_SOCKET", Some(7)), None));
        assert!(!by_pid.matches(&drop_event("NO_SOCKET", Some(8)), None));
        assert!(
            !by_pid.matches(&drop_event("NO_SOCKET", None), None),
            "unattributed drops need no filter"
        );
        let by_name = TraceArgs {
            process: Some(NameFilter::new("curl").unwrap()),
            ..Default::default()
        };
        assert!(by_name.matches(&drop_event("NO_SOCKET", Some(8)), None));
        let by_glob = TraceArgs {
            process: Some(NameFilter::new("cu*").unwrap()),
            ..Default::default()
        };
        assert!(by_glob.matches(&drop_event("NO_SOCKET", Some(8)), None));
        let other = TraceArgs {
            process: Some(NameFilter::new("wget").unwrap()),
            ..Default::default()
        };
        assert!(!other.matches(&drop_event("NO_SOCKET", Some(8)), None));
    }

    #[test]
    fn unit_and_container_filters_need_a_named_cgroup() {
        let by_unit = TraceArgs {
            unit: Some(NameFilter::whole("unit", "nginx*").unwrap()),
            ..Default::default()
        };
        let nginx = CgroupName::of_path("/system.slice/nginx.service");
        let other = CgroupName::of_path("/system.slice/cron.service");
        let event = drop_event("NO_SOCKET", Some(8));
        assert!(by_unit.matches(&event, Some(&nginx)));
        assert!(!by_unit.matches(&event, Some(&other)));
        assert!(!by_unit.matches(&event, None), "a cgroup not named");
        assert!(!by_unit.matches(&drop_event("NO_SOCKET", None), Some(&nginx)));
    }
}
