//! The event kinds, registered here once each. A kind kept whole in a directory of its own
//! (`retransmit/`: its event decoded from the kernel's wire struct, its record in the
//! history, its answers and their text) is one line below; the layers (`events`, `store`,
//! `query`, `mcp`) hold what every kind shares and take a kind's pieces from its directory.
//! The kinds built before that still sit in the layers' files.

pub mod retransmit;

use std::path::Path;

use btf_rs::Btf;
use netspy_common::config::Config;
use rmcp::handler::server::router::tool::ToolRouter;

use crate::{
    cli::ToolFlags,
    events::{
        ConnectionEvent, DnsLookup, PacketDrop, TcpOutcome, connect_record, event_kinds,
        wire_record,
    },
    mcp::NetspyMcp,
    probes::ProbeSpec,
    query::{
        ConnectionView, DnsView, DropView, EachQuestion, ListConnections, ListDrops, ListLookups,
        Telemetry, answered_kinds,
    },
    store::{StoredConnection, StoredDrop, StoredLookup, kind_tables},
};

/// The probes of the kinds kept whole.
pub const PROBES: &[ProbeSpec] = &[retransmit::PROBE];

/// How each kind kept whole learns what its probe needs to know of the running kernel (its
/// BTF and tracefs), written into the programs' configuration.
pub const KERNEL_FACTS: &[fn(&mut Config, &Btf, &Path)] = &[retransmit::learn];

/// Does `each` for the questions of the kinds kept whole, in the order the API lists them.
pub(crate) fn each_question(each: &mut impl EachQuestion) {
    retransmit::each_question(each);
}

/// The commands of the kinds kept whole at the `netspy-mcp>` prompt.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// TCP retransmissions.
    #[command(flatten)]
    Retransmit(retransmit::Command),
}

impl Command {
    /// The tool it calls, with its flags.
    pub fn tool(&self) -> (&'static str, ToolFlags) {
        match self {
            Self::Retransmit(command) => command.tool(),
        }
    }
}

/// The MCP tools of the kinds kept whole.
pub(crate) fn tool_router<T: Telemetry>() -> ToolRouter<NetspyMcp<T>> {
    NetspyMcp::retransmit_tools()
}

/// The names of those tools, each kind's in order (`--tool` lists them after the layers').
pub const TOOL_NAMES: &[&[&str]] = &[retransmit::TOOLS];

/// The text answer of one of those tools (for the AI analyst), None for another tool.
pub(crate) async fn execute<T: Telemetry>(
    mcp: &NetspyMcp<T>,
    name: &str,
    arguments: serde_json::Value,
) -> Option<Result<String, String>> {
    retransmit::execute(mcp, name, arguments).await
}

event_kinds! {
    /// `connect(2)` calls (`ConnectEvent`, `UnixConnectEvent`).
    Connection(connection): ConnectionEvent => connect_record,
    /// TCP connect results: established, refused, timed out (`TcpOutcomeEvent`).
    TcpOutcome(tcp_outcome): TcpOutcome => wire_record::<TcpOutcome>,
    /// Packet drops (`DropEvent`).
    PacketDrop(packet_drop): PacketDrop => wire_record::<PacketDrop>,
    /// Host-name lookups (`DnsEvent`, carried by the connects' ring).
    Dns(dns): DnsLookup => connect_record,
    /// TCP segments sent again (`RetransmitEvent`).
    Retransmit(retransmit): retransmit::TcpRetransmit => wire_record::<retransmit::TcpRetransmit>,
}

kind_tables! {
    /// TCP retransmissions.
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
    Dns = "dns": DnsView, StoredLookup, ListLookups,
        streamed: false, searched by default: false;
    /// TCP retransmissions.
    Retransmit = "retransmit": retransmit::RetransmitView, retransmit::StoredRetransmit,
        retransmit::ListRetransmits,
        streamed: true, searched by default: false;
}
