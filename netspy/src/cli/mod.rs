//! The `netspy` command line: argument parsing (clap), logging set-up, and dispatch.

mod mcp;
mod output;
mod repl;
mod tool;
mod trace;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub(crate) use self::tool::{ListFlags, ScopeFlags};
pub use self::{
    output::Line,
    repl::PROMPT,
    tool::{ServerArgs, ToolFlags},
    trace::TraceArgs,
};

/// Per-process network telemetry for Linux: connections, TCP outcomes, packet drops and TCP
/// retransmissions, straight from the kernel (eBPF).
///
/// Without a subcommand: interactive mode (a `netspy-mcp>` prompt), or with `--tool NAME`
/// one tool call. Both ask the daemon (`sudo netspy daemon`) through netspy's MCP server.
#[derive(Debug, Parser)]
#[command(
    name = "netspy",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Log more (debug level) to stderr; RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Run this MCP tool once and exit.
    #[arg(long, value_name = "NAME", value_parser = crate::mcp::TOOL_NAMES)]
    pub tool: Option<String>,

    /// With --tool: print the structured answer as JSON instead of text.
    #[arg(long, requires = "tool")]
    pub json: bool,

    /// Tool filters and inputs.
    #[command(flatten)]
    pub flags: ToolFlags,

    /// The daemon to ask.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Where the AI tools get their answers (OPENAI_API_KEY is read from the environment).
    #[command(flatten)]
    pub ai: crate::insights::AiArgs,

    /// A subcommand instead of the tool modes.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream live connect, TCP-outcome, packet-drop and TCP-retransmission events (needs root
    /// or CAP_BPF + CAP_PERFMON). Ends on Ctrl-C or SIGTERM and prints what was received and
    /// lost.
    Trace(Box<TraceArgs>),
    /// Run the telemetry daemon: probes in the kernel, history in memory, REST API on
    /// 127.0.0.1:8080 (needs root or CAP_BPF + CAP_PERFMON).
    Daemon(Box<crate::daemon::DaemonArgs>),
    /// Serve the MCP tools on stdio for desktop MCP clients (Claude Desktop, ...), answering
    /// from a running daemon. Needs no privileges.
    Mcp(mcp::McpArgs),
    /// Print a shell completion script: `netspy completions bash > /etc/bash_completion.d/netspy`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): `netspy man | man -l -` for netspy(1), `netspy man daemon`
    /// for netspy-daemon(1), one for each subcommand.
    Man {
        /// The subcommand whose page to print (trace, daemon, mcp, completions).
        #[arg(value_parser = ["trace", "daemon", "mcp", "completions"])]
        subcommand: Option<String>,
    },
}

/// Parses the command line, runs it, and turns errors into a message and exit status 1.
pub fn main() -> ExitCode {
    let (cli, printout) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => return fail(&e),
    };
    if let Some(printout) = printout {
        output::line(printout.trim_end());
        return ExitCode::SUCCESS;
    }
    crate::logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("starting the async runtime: {e}")),
    };
    let result = match (cli.command, cli.tool) {
        (None, None) => {
            let given = cli.flags.given();
            if !given.is_empty() {
                output::warn(&format!(
                    "{} {} to --tool; starting interactive mode, where each command takes its own flags",
                    given.join(", "),
                    if given.len() == 1 { "applies" } else { "apply" }
                ));
            }
            repl::run(&runtime, &cli.server, &cli.ai).map(|()| true)
        }
        (None, Some(tool)) => runtime.block_on(tool::run_once(
            &cli.server,
            &cli.ai,
            &tool,
            &cli.flags,
            cli.json,
        )),
        (Some(command), _) => runtime
            .block_on(async {
                match command {
                    Command::Trace(args) => trace::run(*args).await,
                    Command::Daemon(args) => crate::daemon::run(*args).await,
                    Command::Mcp(args) => mcp::run(args).await,
                    Command::Completions { shell } => {
                        clap_complete::generate(
                            shell,
                            &mut Cli::command(),
                            "netspy",
                            &mut std::io::stdout(),
                        );
                        Ok(())
                    }
                    Command::Man { subcommand } => man_page(subcommand.as_deref()),
                }
            })
            .map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(&e),
    }
}

/// The command line, with the daemon's config file read in (its settings become flags where
/// neither a flag nor the environment gave one); and the effective settings when
/// `netspy daemon --print-config` asked for them. clap's own errors exit as clap does.
fn parse() -> anyhow::Result<(Cli, Option<String>)> {
    let mut command = Cli::command();
    command.build();
    let matches = command.clone().get_matches();
    let Some(("daemon", daemon_matches)) = matches.subcommand() else {
        return Ok((
            Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()),
            None,
        ));
    };
    let daemon = command
        .find_subcommand("daemon")
        .ok_or_else(|| anyhow::anyhow!("no daemon command"))?;
    let file = crate::config_file::read(daemon, daemon_matches)?;
    let matches = if file.flags.is_empty() {
        matches
    } else {
        command
            .clone()
            .try_get_matches_from(std::env::args_os().chain(file.flags.iter().cloned()))
            .unwrap_or_else(|e| e.exit())
    };
    let printout = match matches.subcommand() {
        Some(("daemon", daemon_matches)) if daemon_matches.get_flag("print_config") => {
            Some(crate::config_file::effective(daemon, daemon_matches, &file))
        }
        _ => None,
    };
    Ok((
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()),
        printout,
    ))
}

/// netspy(1), or the page of one subcommand (`netspy-daemon(1)`: every option it takes).
fn man_page(subcommand: Option<&str>) -> anyhow::Result<()> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => command
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no subcommand {name:?}"))?,
    };
    Ok(clap_mangen::Man::new(page).render(&mut std::io::stdout())?)
}

fn fail(e: &anyhow::Error) -> ExitCode {
    output::error(&format!("netspy: error: {e:#}"));
    ExitCode::FAILURE
}
