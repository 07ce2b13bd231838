//! `netspy daemon`: the composition root. Loads the probes in-process, feeds the store, and
//! serves the REST API until SIGINT/SIGTERM, then detaches everything.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Args;
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::sync::CancellationToken;

use crate::{
    api,
    events::Event,
    mcp,
    probes::{ProbeOptions, Probes},
    query::{ProbeState, Query, Status},
    store::{Limits, Store},
};

/// Options of `netspy daemon`.
#[derive(Clone, Debug, Args)]
pub struct DaemonArgs {
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
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// How long events are kept (e.g. `30m`, `1h`, `2h30m`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_retention)]
    pub retention: Duration,

    /// At most this many events of each kind are kept (oldest evicted first).
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_events: u64,

    /// Lists return at most this many events, whatever a request asks.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_list: u64,

    /// Do not use this hook (e.g. `tracepoint:skb/kfree_skb`). Repeatable.
    #[arg(long, value_name = "HOOK")]
    pub disable_hook: Vec<String>,

    /// Where the AI tools get their answers (OPENAI_API_KEY is read from the environment).
    #[command(flatten)]
    pub ai: crate::insights::AiArgs,

    /// A browser origin allowed to use MCP over HTTP besides localhost ones
    /// (`https://app.example.com`). Repeatable.
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
}

fn parse_retention(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30m, 1h, 2h30m)"))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(30 * 24 * 3600) {
        return Err("retention must be between 1s and 30 days".into());
    }
    Ok(d)
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
    /// Extra browser origins allowed on the MCP routes.
    pub allowed_origins: Vec<String>,
    /// The AI analyst of the MCP AI tools, if configured.
    pub insights: Option<crate::insights::Insights>,
}

impl DaemonArgs {
    /// Checks the options and reads the token file.
    pub fn config(&self) -> anyhow::Result<DaemonConfig> {
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
            },
            max_list: usize::try_from(self.max_list).unwrap_or(usize::MAX),
            probes: ProbeOptions {
                ignore_tgid: Some(std::process::id()),
                disabled_hooks: self.disable_hook.clone(),
            },
            allowed_origins: self.allow_origin.clone(),
            insights: crate::insights::Insights::from_env(&self.ai)?,
        })
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    // Before serving anything: an unprivileged daemon would only ever answer 503.
    crate::probes::check_privileges()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping");
        signals.cancel();
    });
    serve(listener, config, shutdown).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop netspy with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

/// Serves on `listener` until `shutdown` is cancelled: the API answers at once (503 until the
/// probes are attached), the probes load in the background.
pub async fn serve(
    listener: TcpListener,
    config: DaemonConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let status = Arc::new(Status::default());
    let query = Query::new(
        Arc::new(RwLock::new(Store::new(config.limits))),
        status.clone(),
        config.max_list,
    );
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    let policy = mcp::OriginPolicy::for_listen(address, config.allowed_origins.clone());
    let mcp_routes = mcp::router(
        query.clone(),
        config.insights.clone(),
        policy,
        shutdown.clone(),
    );
    let app = api::router(query.clone(), config.token.clone(), mcp_routes);
    let server_stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(server_stop.cancelled_owned())
            .await
    });
    tracing::info!(
        "serving the API on http://{address} (docs: http://{address}/docs, MCP: http://{address}/mcp)"
    );

    let options = config.probes.clone();
    let started = tokio::task::spawn_blocking(move || Probes::start(&options)).await;
    let events = match started {
        Ok(Ok((probes, events))) => {
            status.set(ProbeState::Running(Arc::new(probes)));
            events
        }
        Ok(Err(e)) => {
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

    tokio::spawn(ingest(events, query.clone(), shutdown.clone()));
    tokio::spawn(evict(query.clone(), shutdown.clone()));
    shutdown.cancelled().await;
    // Detach the programs before the last requests finish: nothing new is collected.
    drop(status.set(ProbeState::Stopped));
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("serving the API")),
        Err(e) => bail!("the API server crashed: {e}"),
    }
}

/// Moves events from the probes into the store, in batches so that readers see the lock
/// rarely.
async fn ingest(mut events: mpsc::Receiver<Event>, query: Query, shutdown: CancellationToken) {
    let mut batch = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            n = events.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    return;
                }
                let mut store = query.write();
                for event in batch.drain(..) {
                    store.ingest(event);
                }
            }
        }
    }
}

/// Evicts expired history once a second.
async fn evict(query: Query, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
                query.write().evict_expired(now);
            }
        }
    }
}
