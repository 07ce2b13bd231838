//! `netspy daemon`: the composition root. Loads the probes in-process, feeds the store, and
//! serves the REST API until SIGINT/SIGTERM, then detaches everything.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, AccessPolicy, ApiOptions, ServerLimits},
    events::Kind,
    mcp::{self, SessionLimits},
    probes::{EventStreams, ProbeOptions, Probes},
    query::{ProbeState, Query, QueryLimits, Status},
    service,
    store::{Limits, Store},
};

/// Options of `netspy daemon`.
#[derive(Clone, Debug, Args)]
pub struct DaemonArgs {
    /// Settings file (TOML; its keys are these flags' names, e.g. `max-events = 2000000`).
    /// Flags and environment variables override it [default: /etc/netspy/netspy.toml when
    /// it exists].
    #[arg(long, value_name = "FILE", env = "NETSPY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective settings (each with where it came from: default, file,
    /// environment or flag; secrets hidden) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Address to serve the API on. Anything but loopback requires a token.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "NETSPY_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Bearer token every request must carry (`Authorization: Bearer <token>`).
    #[arg(
        long,
        env = "NETSPY_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,

    /// Read the bearer token from this file (first line).
    #[arg(long, value_name = "PATH", env = "NETSPY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// How long events are kept (e.g. `30m`, `1h`, `2h30m`).
    #[arg(long, value_name = "DURATION", default_value = "1h", env = "NETSPY_RETENTION",
          value_parser = parse_retention)]
    pub retention: Duration,

    /// At most this many events of each kind are kept (oldest evicted first).
    #[arg(long, value_name = "N", default_value_t = 1_000_000, env = "NETSPY_MAX_EVENTS",
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_events: u64,

    /// At most this many process names get series of their own in `/metrics`, the most
    /// active ones (chosen again every minute); the others count as
    /// `process="(other processes)"`.
    #[arg(long, value_name = "N", default_value_t = 20, env = "NETSPY_METRICS_PROCESSES",
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub metrics_processes: u64,

    /// Lists return at most this many events, whatever a request asks.
    #[arg(long, value_name = "N", default_value_t = 10_000, env = "NETSPY_MAX_LIST",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_list: u64,

    /// What the probes use.
    #[command(flatten)]
    pub probes: ProbeOptions,

    /// Where the AI tools get their answers (OPENAI_API_KEY is read from the environment).
    #[command(flatten)]
    pub ai: crate::insights::AiArgs,

    /// A host name the API answers to besides localhost and IP addresses (DNS-rebinding
    /// protection refuses other `Host` headers with 403); `*` for any. Repeatable.
    #[arg(
        long,
        value_name = "NAME",
        env = "NETSPY_ALLOW_HOST",
        value_delimiter = ','
    )]
    pub allow_host: Vec<String>,

    /// A browser origin allowed to call the API and MCP besides netspy's own pages and
    /// localhost ones (`https://app.example.com`). Repeatable.
    #[arg(
        long,
        value_name = "ORIGIN",
        env = "NETSPY_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,

    /// HTTP connections open at once; at the cap the longest-idle one is closed to make
    /// room (lowered to fit the open-file limit).
    #[arg(long, value_name = "N", default_value_t = 1024, env = "NETSPY_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,

    /// Time a client has to send a request head, and the longest idle time between two
    /// requests of a kept-alive connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "NETSPY_HEADER_TIMEOUT",
          value_parser = parse_timeout)]
    pub header_timeout: Duration,

    /// Longest time a client may leave its answer unread before it is cut off.
    #[arg(long, value_name = "DURATION", default_value = "30s", env = "NETSPY_WRITE_TIMEOUT",
          value_parser = parse_timeout)]
    pub write_timeout: Duration,

    /// Time a client has to send a whole request body.
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "NETSPY_BODY_TIMEOUT",
          value_parser = parse_timeout)]
    pub body_timeout: Duration,

    /// At SIGINT/SIGTERM, time open connections get to finish before they are cut (a
    /// second signal exits at once).
    #[arg(long, value_name = "DURATION", default_value = "5s", env = "NETSPY_SHUTDOWN_TIMEOUT",
          value_parser = parse_timeout)]
    pub shutdown_timeout: Duration,

    /// MCP sessions open at once, per HTTP transport (Streamable HTTP, SSE); more get 503.
    #[arg(long, value_name = "N", default_value_t = 256, env = "NETSPY_MAX_SESSIONS",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_sessions: u64,

    /// Event streams (`/api/stream`, `netspy trace --server`) open at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = 64, env = "NETSPY_MAX_STREAMS",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_streams: u64,

    /// A Streamable HTTP MCP session with no request for this long is closed.
    #[arg(long, value_name = "DURATION", default_value = "2m", env = "NETSPY_SESSION_IDLE_TIMEOUT",
          value_parser = parse_session_idle)]
    pub session_idle_timeout: Duration,

    /// Data queries (REST and MCP) running at once: the daemon's query threads, apart from
    /// the threads that serve connections [default: the number of CPUs].
    #[arg(long, value_name = "N", env = "NETSPY_MAX_QUERIES",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_queries: Option<u64>,

    /// Data queries waiting for a place; more are answered 503 with Retry-After at once.
    #[arg(long, value_name = "N", default_value_t = 64, env = "NETSPY_MAX_QUEUED_QUERIES",
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub max_queued_queries: u64,

    /// The longest a data query may take, waiting included; past it the client gets a 503
    /// with Retry-After.
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "NETSPY_QUERY_TIMEOUT",
          value_parser = parse_query_timeout)]
    pub query_timeout: Duration,
}

fn parse_query_timeout(text: &str) -> Result<Duration, String> {
    duration_between(
        text,
        "the query timeout",
        Duration::from_millis(10),
        Duration::from_secs(600),
    )
}

fn duration_between(
    text: &str,
    what: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))?;
    if d < min || d > max {
        return Err(format!(
            "{what} must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

fn parse_retention(text: &str) -> Result<Duration, String> {
    duration_between(
        text,
        "retention",
        Duration::from_secs(1),
        Duration::from_secs(30 * 24 * 3600),
    )
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    duration_between(
        text,
        "the timeout",
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )
}

fn parse_session_idle(text: &str) -> Result<Duration, String> {
    duration_between(
        text,
        "the session idle timeout",
        Duration::from_secs(1),
        Duration::from_secs(24 * 3600),
    )
}

/// What `serve` needs, already validated.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Bearer token, when required.
    pub token: Option<Arc<str>>,
    /// History bounds.
    pub limits: Limits,
    /// List cap.
    pub max_list: usize,
    /// Probe options (ignore netspy's own pid in production).
    pub probes: ProbeOptions,
    /// Which Host and Origin headers requests may carry.
    pub access: AccessPolicy,
    /// Connection cap and timeouts of the HTTP server.
    pub server: ServerLimits,
    /// Time allowed to receive a request body.
    pub body_timeout: Duration,
    /// Event streams open at once.
    pub max_streams: usize,
    /// MCP session caps and expiry.
    pub sessions: SessionLimits,
    /// The AI analyst of the MCP AI tools, if configured.
    pub insights: Option<crate::insights::Insights>,
    /// How much query work runs and waits at once, and for how long.
    pub queries: QueryLimits,
}

impl Default for DaemonConfig {
    /// The defaults of `netspy daemon`, watching every process (tests watch themselves).
    fn default() -> Self {
        Self {
            token: None,
            limits: Limits::default(),
            max_list: 10_000,
            probes: ProbeOptions::default(),
            access: AccessPolicy::default(),
            server: ServerLimits::default(),
            body_timeout: ApiOptions::default().body_timeout,
            max_streams: crate::api::DEFAULT_MAX_STREAMS,
            sessions: SessionLimits::default(),
            insights: None,
            queries: QueryLimits::default(),
        }
    }
}

impl DaemonArgs {
    /// Checks every option and reads the token file: nothing starts on a bad one.
    pub fn config(&self) -> anyhow::Result<DaemonConfig> {
        crate::probes::check_hook_names(&self.probes.disabled_hooks)?;
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.trim().to_owned()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading token file {}", path.display()))?;
                Some(text.lines().next().unwrap_or("").trim().to_owned())
            }
            (None, None) => None,
        };
        if token.as_deref() == Some("") {
            bail!("the token is empty");
        }
        if let Some(token) = &token {
            crate::logging::register_secret(token);
        }
        if token.is_none() && !self.listen.ip().is_loopback() {
            bail!(
                "refusing to serve on {} without a token: anyone who can reach it could read this host's \
                 network activity. Set --token, NETSPY_TOKEN or --token-file, or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(DaemonConfig {
            token: token.map(Arc::from),
            limits: Limits {
                max_age: self.retention,
                max_events: usize::try_from(self.max_events).unwrap_or(usize::MAX),
                metric_processes: usize::try_from(self.metrics_processes).unwrap_or(usize::MAX),
            },
            max_list: usize::try_from(self.max_list).unwrap_or(usize::MAX),
            probes: ProbeOptions {
                ignore_tgid: Some(std::process::id()),
                ..self.probes.clone()
            },
            access: AccessPolicy::new(&self.allow_host, &self.allow_origin),
            server: ServerLimits {
                max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
                header_timeout: self.header_timeout,
                write_timeout: self.write_timeout,
                shutdown_timeout: self.shutdown_timeout,
            },
            body_timeout: self.body_timeout,
            max_streams: usize::try_from(self.max_streams).unwrap_or(usize::MAX),
            sessions: SessionLimits {
                max_sessions: usize::try_from(self.max_sessions).unwrap_or(usize::MAX),
                idle_timeout: self.session_idle_timeout,
            },
            insights: crate::insights::Insights::from_env(&self.ai)?,
            queries: QueryLimits {
                concurrent: self
                    .max_queries
                    .map_or(QueryLimits::default().concurrent, |n| {
                        usize::try_from(n).unwrap_or(usize::MAX)
                    }),
                queued: usize::try_from(self.max_queued_queries).unwrap_or(usize::MAX),
                deadline: self.query_timeout,
            },
        })
    }
}

/// Runs the daemon until SIGINT or SIGTERM (a second one exits at once).
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let mut config = args.config()?;
    // Before serving anything: an unprivileged daemon would only ever answer 503.
    crate::probes::check_privileges()?;
    config.server.max_connections = fit_fd_limit(config.server.max_connections);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    let mut signal = Signals::install()?;
    tokio::spawn(async move {
        signal.next().await;
        tracing::info!("stopping (a second signal stops at once)");
        signals.cancel();
        signal.next().await;
        tracing::warn!("second signal: exiting now");
        // The kernel detaches the probes as the process's descriptors close.
        std::process::exit(1);
    });
    serve(listener, config, shutdown).await
}

/// SIGINT and SIGTERM.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Descriptors kept for everything but HTTP connections (probes, maps, rings, files, the AI
/// endpoint's connections).
const FD_RESERVE: u64 = 256;

/// The connection cap that fits the open-file limit, raised to its hard maximum first:
/// past the limit, accept() fails and nothing answers any more.
fn fit_fd_limit(requested: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return requested;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let room = usize::try_from(soft.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX);
    if requested > room {
        tracing::warn!(
            "--max-connections {requested} does not fit the open-file limit {soft}: using {room}"
        );
    }
    requested.min(room)
}

/// Serves on `listener` until `shutdown` is cancelled: the API answers at once (503 until the
/// probes are attached), the probes load in the background.
pub async fn serve(
    listener: TcpListener,
    config: DaemonConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let status = Arc::new(Status::default());
    let mut store = Store::new(config.limits);
    match crate::cgroups::CgroupFs::open() {
        Ok(cgroups) => store.set_cgroup_resolver(Arc::new(cgroups)),
        Err(why) => tracing::warn!("events name no unit or container (only a cgroup id): {why}"),
    }
    store.set_executable_resolver(Arc::new(crate::procfs::ProcFs::new()));
    let query = Query::new(store, status.clone(), config.max_list).with_limits(config.queries);
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    let options = ApiOptions {
        token: config.token.clone(),
        access: config.access.clone(),
        body_timeout: config.body_timeout,
        streams: Arc::new(crate::api::Streams::new(config.max_streams)),
        ..ApiOptions::default()
    };
    let mcp_routes = mcp::router(
        query.clone(),
        config.insights.clone(),
        config.sessions.clone(),
        options.stats.clone(),
        shutdown.clone(),
    );
    let app = api::router(query.clone(), &options, mcp_routes);
    let server = tokio::spawn(api::serve(
        listener,
        app,
        config.server.clone(),
        options.stats.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        "serving the API on http://{address} (docs: http://{address}/docs, MCP: http://{address}/mcp)"
    );
    service::starting(address);

    let options = config.probes.clone();
    let started = tokio::task::spawn_blocking(move || Probes::start(&options)).await;
    let events = match started {
        Ok(Ok((probes, events))) => {
            service::ready(address, probes.status());
            // Before the first ready answer: a window reaching back before now was not seen.
            query
                .write()
                .begin_collecting(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
            status.set(ProbeState::Running(Arc::new(probes)));
            events
        }
        Ok(Err(e)) => {
            service::failed(&e.to_string());
            status.set(ProbeState::Failed(e.to_string()));
            shutdown.cancel();
            let _ = server.await;
            return Err(e.into());
        }
        Err(e) => {
            shutdown.cancel();
            bail!("loading the probes crashed: {e}");
        }
    };
    tracing::info!("probes attached; collecting");

    spawn_store_writer(events, query.clone(), shutdown.clone())?;
    shutdown.cancelled().await;
    service::stopping();
    // Detach the programs before the last requests finish: nothing new is collected.
    drop(status.set(ProbeState::Stopped));
    match server.await {
        Ok(()) => Ok(()),
        Err(e) => bail!("the API server crashed: {e}"),
    }
}

/// Every write to the store, on a thread of its own: events from the probes a reader's batch
/// at a time, and once a second the sampled-out drop counts and eviction. Waiting for the
/// store's lock (a query holds it while it reads) then never blocks an async worker, which
/// keeps serving connections and `/health`.
fn spawn_store_writer(
    events: EventStreams,
    query: Query,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("netspy-store".into())
        .spawn(move || runtime.block_on(write_store(events, query, shutdown)))
        .context("starting the store writer thread")?;
    Ok(())
}

async fn write_store(mut events: EventStreams, query: Query, shutdown: CancellationToken) {
    let now_ns = || chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut host_names = crate::correlate::HostNames::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            batch = events.next() => {
                let Some(mut batch) = batch else {
                    return;
                };
                let lag = query.status().ingest_lag();
                let now = chrono::Utc::now();
                batch.retain_mut(|event| host_names.observe(event));
                for event in &batch {
                    let late = (now - event.time()).num_microseconds().unwrap_or(i64::MAX);
                    lag.observe(late.max(0) as f64 / 1e6);
                }
                query.ingest(batch);
            }
            _ = tick.tick() => {
                let probes = query.status().probes();
                let sampled = probes.as_ref().map(|probes| probes.sampled_drops());
                let losses = probes.map(|probes| {
                    let stats = probes.stats();
                    // A connect not remembered between enter and exit is lost too.
                    let mut lost = stats.lost;
                    lost.add(Kind::Connection, stats.pending_full);
                    lost
                });
                let now = now_ns();
                let mut store = query.write();
                if let Some(sampled) = sampled.filter(|s| !s.counts.is_empty()) {
                    store.ingest_sampled(&sampled);
                }
                if let Some(losses) = losses {
                    store.note_losses(now, &losses);
                }
                store.evict_expired(now);
            }
        }
    }
}
