//! The `netspy` command line: argument parsing (clap), logging set-up, and dispatch.

mod mcp;
mod output;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use self::{output::Line, trace::TraceArgs};

/// Per-process network telemetry for Linux: connections, TCP outcomes and packet drops,
/// straight from the kernel (eBPF).
#[derive(Debug, Parser)]
#[command(name = "netspy", version, about, long_about = None)]
pub struct Cli {
    /// Log more (debug level) to stderr; RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream live connect, TCP-outcome and packet-drop events (needs root or CAP_BPF +
    /// CAP_PERFMON). Ends on Ctrl-C or SIGTERM and prints what was received and lost.
    Trace(TraceArgs),
    /// Run the telemetry daemon: probes in the kernel, history in memory, REST API on
    /// 127.0.0.1:8080 (needs root or CAP_BPF + CAP_PERFMON).
    Daemon(crate::daemon::DaemonArgs),
    /// Serve the MCP tools on stdio for desktop MCP clients (Claude Desktop, ...), answering
    /// from a running daemon. Needs no privileges.
    Mcp(mcp::McpArgs),
}

/// Parses the command line, runs it, and turns errors into a message and exit status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("starting the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Trace(args) => trace::run(args).await,
            Command::Daemon(args) => crate::daemon::run(args).await,
            Command::Mcp(args) => mcp::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("netspy: error: {e:#}");
    ExitCode::FAILURE
}

/// Logs go to stderr (stdout carries events, and later the MCP channel).
fn init_tracing(verbose: bool) {
    let default = if verbose {
        "netspy=debug,info"
    } else {
        "netspy=info,warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
