//! Interactive mode: the `netspy-mcp> ` prompt, with line editing, history and completion.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rustyline::{
    Context, Editor, Helper, completion::Completer, error::ReadlineError, highlight::Highlighter,
    hint::Hinter, history::DefaultHistory, validate::Validator,
};
use tokio::runtime::Runtime;

use super::{
    output,
    tool::{self, ServerArgs, ToolFlags, find},
};
use crate::{mcp::Session, query::Telemetry};

/// The prompt.
pub const PROMPT: &str = "netspy-mcp> ";

/// One line typed at the prompt.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
struct Line {
    #[command(subcommand)]
    command: Interactive,
}

#[derive(Debug, Args)]
struct Window {
    /// Only this process id.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pid: Option<u32>,
    /// Only processes with this name, or with a thread of this name (`*`, `?` and `[...]`
    /// make a pattern; `\*` matches a literal `*`).
    #[arg(long, value_name = "NAME", value_parser = tool::name_pattern())]
    process: Option<String>,
    /// Look back this many seconds (default 60).
    #[arg(long, value_name = "S", value_parser = tool::seconds(), allow_negative_numbers = true)]
    duration: Option<i64>,
    /// Only processes in this systemd unit (a name or pattern).
    #[arg(long, value_name = "UNIT", value_parser = tool::name_pattern())]
    unit: Option<String>,
    /// Only processes in this container (its id or a pattern).
    #[arg(long, value_name = "ID", value_parser = tool::name_pattern())]
    container: Option<String>,
}

#[derive(Debug, Args)]
struct ListWindow {
    #[command(flatten)]
    window: Window,
    /// At most this many events (default 100).
    #[arg(long, value_name = "N", value_parser = tool::count(), allow_negative_numbers = true)]
    max_events: Option<i64>,
}

/// The longest line the prompt takes: room for the longest input (`insights` text).
const MAX_LINE: usize = crate::mcp::MAX_SUMMARY_TEXT + 1024;

#[derive(Debug, Subcommand)]
enum Interactive {
    /// How many connections a process made.
    Summary(Window),
    /// Recent connections.
    List(ListWindow),
    /// Connection patterns: destinations, protocols, results, errors.
    Analyze(Window),
    /// How many packets of a process were dropped, by reason.
    Dropsummary(Window),
    /// Recent packet drops.
    Droplist(ListWindow),
    /// Recent host-name lookups (DNS), with their answers or errors.
    Dnslist(ListWindow),
    /// TCP retransmissions by process and connection.
    Retransmits(Window),
    /// AI analysis of a text: insights "curl made 50 connections to 10.0.0.5".
    Insights {
        /// The text to analyse.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// AI analysis of a question, with live data: contextual "why does curl fail?".
    Contextual {
        /// The question.
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        #[command(flatten)]
        window: Window,
    },
    /// The MCP tools the server offers.
    Tools,
    /// The commands.
    Help,
    /// Leave (also `exit` or Ctrl-D).
    #[command(alias = "exit")]
    Quit,
}

/// The flags of the summary commands.
const FILTERS: &[&str] = &["--pid", "--process", "--duration", "--unit", "--container"];
/// The flags of the list commands.
const LIST_FILTERS: &[&str] = &[
    "--pid",
    "--process",
    "--duration",
    "--unit",
    "--container",
    "--max-events",
];

/// Commands and their flags, for completion and the help text.
const COMMANDS: &[(&str, &[&str], &str)] = &[
    ("summary", FILTERS, "connection summary"),
    ("list", LIST_FILTERS, "recent connections"),
    ("analyze", FILTERS, "connection patterns"),
    ("dropsummary", FILTERS, "packet drop summary"),
    ("droplist", LIST_FILTERS, "recent packet drops"),
    ("dnslist", LIST_FILTERS, "recent DNS lookups"),
    (
        "retransmits",
        FILTERS,
        "TCP retransmissions by process and connection",
    ),
    (
        "insights",
        &[],
        "AI insights on a text: insights \"<text>\"",
    ),
    (
        "contextual",
        &["--pid", "--process", "--duration"],
        "AI analysis with live data: contextual \"<query>\"",
    ),
    ("tools", &[], "list the MCP tools"),
    ("help", &[], "this list"),
    ("quit", &[], "leave (also exit, Ctrl-D)"),
    ("exit", &[], "leave"),
];

fn help_text() -> String {
    let mut text = String::from("Available commands:\n");
    for (name, flags, what) in COMMANDS.iter().filter(|(n, ..)| *n != "exit") {
        let usage = if flags.is_empty() {
            (*name).to_owned()
        } else {
            format!("{name} [{}]", flags.join(" "))
        };
        text.push_str(&format!("  {usage:<58} {what}\n"));
    }
    text.push_str(
        "Flags: --pid N, --process NAME, --duration SECONDS, --unit UNIT, --container ID, \
         --max-events N.",
    );
    text
}

/// Completes command names, then the flags of the command typed.
struct Completion;

impl Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let candidates: Vec<String> = if start == 0 {
            COMMANDS
                .iter()
                .map(|(n, ..)| *n)
                .filter(|n| n.starts_with(word))
                .map(|n| format!("{n} "))
                .collect()
        } else {
            let command = before.split_whitespace().next().unwrap_or("");
            COMMANDS
                .iter()
                .find(|(n, ..)| *n == command)
                .map(|(_, flags, _)| {
                    flags
                        .iter()
                        .filter(|f| f.starts_with(word))
                        .map(|f| format!("{f} "))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok((start, candidates))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// `$XDG_DATA_HOME/netspy/history` (or `~/.local/share/netspy/history`).
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    let dir = base.join("netspy");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

/// Runs interactive mode until quit, exit or Ctrl-D.
pub fn run(
    runtime: &Runtime,
    server: &ServerArgs,
    ai: &crate::insights::AiArgs,
) -> anyhow::Result<()> {
    output::banner("Network Telemetry MCP Server");
    output::line("Starting interactive mode...");
    let session = runtime.block_on(server.session(ai))?;
    let client = crate::client::Client::new(&server.server, server.token.clone())?;
    match runtime.block_on(client.health()) {
        Ok(h) if h.component != "netspy" => output::warn(&format!(
            "{} is not a netspy daemon (it calls itself {:?}): answers come without TCP results, \
             errors and coverage, and the analysis tool is missing",
            server.server, h.component
        )),
        Ok(h) => output::line(&format!(
            "Connected to the netspy daemon at {} ({}).",
            server.server,
            crate::mcp::format::health(&h)
        )),
        Err(e) => output::warn(&e.to_string()),
    }
    output::line("");
    output::line(&help_text());
    output::line("");

    let mut editor: Editor<Completion, DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(Completion));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    loop {
        match editor.readline(PROMPT) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                if !execute(runtime, &session, &line) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C drops the line
            Err(ReadlineError::Eof) => break,            // Ctrl-D leaves
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    output::line("Goodbye!");
    Ok(())
}

/// The command closest to a mistyped one, when one is close (clap's own measure).
fn nearest(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .map(|(name, ..)| (strsim::jaro(word, name), *name))
        .filter(|(similarity, _)| *similarity > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// Runs one line; false when it asks to leave.
fn execute(runtime: &Runtime, session: &Session, line: &str) -> bool {
    let length = line.chars().count();
    if length > MAX_LINE {
        output::error(&format!(
            "the line is {length} characters long; the most is {MAX_LINE}"
        ));
        return true;
    }
    let words = match shell_words::split(line) {
        Ok(words) => words,
        Err(e) => {
            output::error(&format!("{e}: close the quote"));
            return true;
        }
    };
    let parsed = match Line::try_parse_from(&words) {
        Ok(parsed) => parsed,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp) => {
            output::line(e.render().to_string().trim_end());
            return true;
        }
        Err(e) => {
            let known = COMMANDS
                .iter()
                .any(|(n, ..)| Some(*n) == words.first().map(String::as_str));
            if known {
                output::error(e.render().to_string().trim_end());
            } else {
                let unknown = words.first().map(String::as_str).unwrap_or("");
                output::error(&match nearest(unknown) {
                    Some(near) => format!(
                        "unknown command {unknown:?}; did you mean {near}? (help lists them)"
                    ),
                    None => format!("unknown command {unknown:?}; type help for the list"),
                });
            }
            return true;
        }
    };
    let window = |w: &Window| ToolFlags {
        pid: w.pid,
        process: w.process.clone(),
        duration: w.duration,
        unit: w.unit.clone(),
        container: w.container.clone(),
        ..Default::default()
    };
    let list = |l: &ListWindow| ToolFlags {
        max_events: l.max_events,
        ..window(&l.window)
    };
    let (tool, flags) = match &parsed.command {
        Interactive::Summary(w) => ("get_network_summary", window(w)),
        Interactive::List(l) => ("list_connections", list(l)),
        Interactive::Analyze(w) => ("analyze_patterns", window(w)),
        Interactive::Dropsummary(w) => ("get_packet_drop_summary", window(w)),
        Interactive::Droplist(l) => ("list_packet_drops", list(l)),
        Interactive::Dnslist(l) => ("list_dns_lookups", list(l)),
        Interactive::Retransmits(w) => ("get_retransmit_summary", window(w)),
        Interactive::Insights { text } => (
            "ai_insights",
            ToolFlags {
                summary_text: Some(text.join(" ")),
                ..Default::default()
            },
        ),
        Interactive::Contextual { query, window: w } => (
            "contextual_analysis",
            ToolFlags {
                query: Some(query.join(" ")),
                ..window(w)
            },
        ),
        Interactive::Tools => {
            match runtime.block_on(session.tools()) {
                Ok(tools) => {
                    output::line("Available tools:");
                    for t in tools {
                        output::line(&format!("  {:<24} {}", t.name, t.description));
                    }
                }
                Err(e) => output::error(&e.to_string()),
            }
            return true;
        }
        Interactive::Help => {
            output::line(&help_text());
            return true;
        }
        Interactive::Quit => return false,
    };
    let result = runtime.block_on(async {
        let tools = session.tools().await?;
        let info = find(&tools, tool)?;
        let (arguments, _) = flags.arguments(info)?;
        anyhow::Ok(session.call(tool, arguments).await?)
    });
    match result {
        Ok(answer) if answer.is_error => output::error(&answer.text),
        Ok(answer) => output::line(&answer.text),
        Err(e) => output::error(&format!("{e:#}")),
    }
    true
}
