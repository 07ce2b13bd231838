//! The event kinds, registered here. A kind kept whole has a directory of its own
//! (`dns/`, `retransmit/`: its probe and kernel facts, its event decoded from the kernel's wire
//! struct, its record in the history, its questions and answers, their text, its MCP tools
//! and prompt commands) and a line in each table below: `kept_whole!`, [`event_kinds!`]
//! (its event), [`kind_tables!`] (its history) and [`answered_kinds!`] (its place in
//! `/api/events` and `/api/stream`). The layers (`events`, `store`, `query`, `mcp`, `cli`)
//! hold what every kind shares and take a kind's pieces from here. The kinds joined to one
//! another (connects, their TCP outcomes, drops) still sit in the layers' files.

use std::path::Path;

use btf_rs::Btf;
use netspy_common::config::Config;
use rmcp::handler::server::router::tool::ToolRouter;

use crate::{
    cli::ToolFlags,
    events::{ConnectionEvent, PacketDrop, TcpOutcome, connect_record, event_kinds, wire_record},
    mcp::NetspyMcp,
    probes::ProbeSpec,
    query::{
        ConnectionView, DropView, EachQuestion, ListConnections, ListDrops, Telemetry,
        answered_kinds,
    },
    store::{StoredConnection, StoredDrop, kind_tables},
};

/// Declares the kinds kept whole, each by its module (`retransmit`) and its variant in
/// [`Kind`] (`Retransmit`): the module, and the lists the layers read of every such kind:
/// its probe, how it learns its kernel facts, its questions, its prompt commands and its MCP
/// tools. Each module gives `PROBE`, `learn`, `each_question`, `Command`, `tool_router`,
/// `TOOLS` and `execute`.
macro_rules! kept_whole {
    ($($kind:ident: $variant:ident,)+) => {
        $(pub mod $kind;)+

        /// The probes of the kinds kept whole.
        pub const PROBES: &[ProbeSpec] = &[$($kind::PROBE),+];

        /// How each kind kept whole learns what its probe needs to know of the running
        /// kernel (its BTF and tracefs), written into the programs' configuration.
        pub const KERNEL_FACTS: &[fn(&mut Config, &Btf, &Path)] = &[$($kind::learn),+];

        /// Does `each` for the questions of the kinds kept whole, in the order the API
        /// lists them.
        pub(crate) fn each_question(each: &mut impl EachQuestion) {
            $($kind::each_question(each);)+
        }

        /// The commands of the kinds kept whole at the `netspy-mcp>` prompt.
        #[derive(Debug, clap::Subcommand)]
        pub enum Command {
            $(
                #[doc = concat!("The commands of `", stringify!($kind), "`.")]
                #[command(flatten)]
                $variant($kind::Command),
            )+
        }

        impl Command {
            /// The tool it calls, with its flags.
            pub fn tool(&self) -> (&'static str, ToolFlags) {
                match self {
                    $(Self::$variant(command) => command.tool(),)+
                }
            }
        }

        /// The MCP tools of the kinds kept whole.
        pub(crate) fn tool_router<T: Telemetry>() -> ToolRouter<NetspyMcp<T>> {
            let mut router = ToolRouter::new();
            $(router += $kind::tool_router();)+
            router
        }

        /// The names of those tools, each kind's in order (`--tool` lists them after the
        /// layers').
        pub const TOOL_NAMES: &[&[&str]] = &[$($kind::TOOLS),+];

        /// The text answer of one of those tools (for the AI analyst), None for another
        /// tool.
        pub(crate) async fn execute<T: Telemetry>(
            mcp: &NetspyMcp<T>,
            name: &str,
            arguments: serde_json::Value,
        ) -> Option<Result<String, String>> {
            $(
                if $kind::TOOLS.contains(&name) {
                    return $kind::execute(mcp, name, arguments).await;
                }
            )+
            None
        }
    };
}

kept_whole! {
    dns: Dns,
    retransmit: Retransmit,
}

event_kinds! {
    /// `connect(2)` calls.
    Connection(connection): ConnectionEvent => connect_record,
    /// TCP connect results: established, refused, timed out.
    TcpOutcome(tcp_outcome): TcpOutcome => wire_record::<TcpOutcome>,
    /// Packet drops.
    PacketDrop(packet_drop): PacketDrop => wire_record::<PacketDrop>,
    /// Host-name lookups.
    Dns(dns): dns::DnsLookup => connect_record,
    /// TCP retransmissions.
    Retransmit(retransmit): retransmit::TcpRetransmit => wire_record::<retransmit::TcpRetransmit>,
}

kind_tables! {
    /// Host-name lookups
    Dns: dns::StoredLookup => (dns_lookups, evicted_dns_lookups),
    /// TCP retransmissions
    Retransmit: retransmit::StoredRetransmit => (retransmits, evicted_retransmits),
}

answered_kinds! {
    /// Connect attempts.
    Connection = "connection": ConnectionView, StoredConnection, ListConnections,
        streamed: true, searched by default: true;
    /// Packet drops.
    PacketDrop = "packet_drop": DropView, StoredDrop, ListDrops,
        streamed: true, searched by default: true;
    /// Host-name lookups (`getaddrinfo`), whose answers name the connections that follow.
    Dns = "dns": dns::DnsView, dns::StoredLookup, dns::ListLookups,
        streamed: false, searched by default: false;
    /// TCP retransmissions.
    Retransmit = "retransmit": retransmit::RetransmitView, retransmit::StoredRetransmit,
        retransmit::ListRetransmits,
        streamed: true, searched by default: false;
}
