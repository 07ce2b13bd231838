//! Interactive mode: the `netspy-mcp> ` prompt, with line editing, history and completion.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rustyline::{
    Context, Editor, Helper, completion::Completer, error::ReadlineError, highlight::Highlighter,
    hint::Hinter, history::DefaultHistory, validate::Validator,
};
use tokio::runtime::Runtime;

use super::{
    output,
    tool::{ListFlags, ScopeFlags, ServerArgs, ToolFlags, find},
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

/// The longest line the prompt takes: room for the longest input (`insights` text).
const MAX_LINE: usize = crate::mcp::MAX_SUMMARY_TEXT + 1024;

/// The commands; the first line of each doc is its line in `help`.
#[derive(Debug, Subcommand)]
enum Interactive {
    /// Connection summary: how many connections a process made.
    Summary(ScopeFlags),
    /// Recent connections.
    List(ListFlags),
    /// Connection patterns: destinations, protocols, results, errors.
    Analyze(ScopeFlags),
    /// Packet drop summary: how many packets of a process were dropped, by reason.
    Dropsummary(ScopeFlags),
    /// Recent packet drops.
    Droplist(ListFlags),
    /// The commands of the kinds kept whole.
    #[command(flatten)]
    Kind(crate::kinds::Command),
    /// AI insights on a text: insights "curl made 50 connections to 10.0.0.5".
    Insights {
        /// The text to analyse.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// AI analysis with live data: contextual "why does curl fail?".
    Contextual {
        /// The question.
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        #[command(flatten)]
        scope: ScopeFlags,
    },
    /// The MCP tools the server offers.
    Tools,
    /// This list.
    Help,
    /// Leave (also exit, Ctrl-D).
    #[command(alias = "exit")]
    Quit,
}

/// A command at the prompt: its name (or alias), its flags and what it does.
struct Command {
    name: String,
    flags: Vec<String>,
    about: String,
    alias: bool,
}

/// Every command and alias, read from their clap definitions (completion, help and the
/// "did you mean" all use it, so a new flag or command is written once).
fn commands() -> &'static [Command] {
    static COMMANDS: std::sync::LazyLock<Vec<Command>> = std::sync::LazyLock::new(|| {
        use clap::CommandFactory;
        let mut commands = Vec::new();
        for sub in Line::command().get_subcommands() {
            let flags: Vec<String> = sub
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|long| *long != "help")
                .map(|long| format!("--{long}"))
                .collect();
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let names = std::iter::once((sub.get_name(), false))
                .chain(sub.get_all_aliases().map(|a| (a, true)));
            for (name, alias) in names {
                commands.push(Command {
                    name: name.to_owned(),
                    flags: flags.clone(),
                    about: about.clone(),
                    alias,
                });
            }
        }
        commands
    });
    &COMMANDS
}

fn help_text() -> String {
    let mut text = String::from("Available commands:\n");
    for command in commands().iter().filter(|c| !c.alias) {
        let usage = if command.flags.is_empty() {
            command.name.clone()
        } else {
            format!("{} [{}]", command.name, command.flags.join(" "))
        };
        text.push_str(&format!("  {usage:<58} {}\n", command.about));
    }
    text.push_str(&format!("Flags: {}.", flag_usage().join(", ")));
    text
}

/// Each flag of the commands once, with its value's name (`--pid N`), in the order they
/// first appear.
fn flag_usage() -> Vec<String> {
    use clap::CommandFactory;
    let mut usage: Vec<String> = Vec::new();
    for sub in Line::command().get_subcommands() {
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long().filter(|l| *l != "help") else {
                continue;
            };
            let value = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or(String::new(), |name| format!(" {name}"));
            let flag = format!("--{long}{value}");
            if !usage.contains(&flag) {
                usage.push(flag);
            }
        }
    }
    usage
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
            commands()
                .iter()
                .filter(|c| c.name.starts_with(word))
                .map(|c| format!("{} ", c.name))
                .collect()
        } else {
            let command = before.split_whitespace().next().unwrap_or("");
            commands()
                .iter()
                .find(|c| c.name == command)
                .map(|c| {
                    c.flags
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
    commands()
        .iter()
        .map(|c| (strsim::jaro(word, &c.name), c.name.as_str()))
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
            let known = commands()
                .iter()
                .any(|c| Some(c.name.as_str()) == words.first().map(String::as_str));
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
    let window = |w: &ScopeFlags| ToolFlags::from(w.clone());
    let list = |l: &ListFlags| ToolFlags::from(l.clone());
    let (tool, flags) = match &parsed.command {
        Interactive::Summary(w) => ("get_network_summary", window(w)),
        Interactive::List(l) => ("list_connections", list(l)),
        Interactive::Analyze(w) => ("analyze_patterns", window(w)),
        Interactive::Dropsummary(w) => ("get_packet_drop_summary", window(w)),
        Interactive::Droplist(l) => ("list_packet_drops", list(l)),
        Interactive::Kind(command) => command.tool(),
        Interactive::Insights { text } => (
            "ai_insights",
            ToolFlags {
                summary_text: Some(text.join(" ")),
                ..Default::default()
            },
        ),
        Interactive::Contextual { query, scope: w } => (
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_completion_and_suggestions_come_from_the_commands_definitions() {
        let help = help_text();
        assert!(
            help.contains(
                "  list [--pid --process --duration --unit --container --max-events] Recent connections"
            ),
            "{help}"
        );
        assert!(
            help.contains("contextual [--pid --process --duration --unit --container]"),
            "{help}"
        );
        assert!(
            !help.contains("  exit"),
            "an alias is not a line of its own"
        );
        let summary = commands().iter().find(|c| c.name == "summary").unwrap();
        assert!(!summary.flags.contains(&"--max-events".to_owned()));
        assert_eq!(nearest("dropsumary"), Some("dropsummary"));
        assert!(commands().iter().any(|c| c.name == "exit" && c.alias));
        assert!(
            help.ends_with(
                "Flags: --pid N, --process NAME, --duration S, --unit UNIT, --container ID, \
                 --max-events N."
            ),
            "{help}"
        );
    }
}
