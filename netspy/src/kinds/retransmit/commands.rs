//! The kind's commands at the `netspy-mcp>` prompt, each one of its tools.

use crate::cli::{ListFlags, ScopeFlags, ToolFlags};

/// The commands; the first line of each doc is its line in `help`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// TCP retransmissions by process and connection.
    Retransmits(ScopeFlags),
    /// Recent TCP retransmissions, each connection and state once with its count.
    Retransmitlist(ListFlags),
}

impl Command {
    /// The tool it calls, with its flags.
    pub fn tool(&self) -> (&'static str, ToolFlags) {
        match self {
            Self::Retransmits(w) => ("get_retransmit_summary", w.clone().into()),
            Self::Retransmitlist(l) => ("list_retransmits", l.clone().into()),
        }
    }
}
