//! The kind's command at the `netspy-mcp>` prompt, its tool.

use crate::cli::{ListFlags, ToolFlags};

/// The commands; the first line of each doc is its line in `help`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Recent host-name lookups (DNS), with their answers or errors.
    Dnslist(ListFlags),
}

impl Command {
    /// The tool it calls, with its flags.
    pub fn tool(&self) -> (&'static str, ToolFlags) {
        match self {
            Self::Dnslist(l) => ("list_dns_lookups", l.clone().into()),
        }
    }
}
