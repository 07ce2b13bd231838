//! The kind's MCP tool: the list, answering with the original-style text and the typed
//! answer; the same text serves the AI analyst.

use rmcp::{
    ErrorData,
    handler::server::{
        common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters,
    },
    model::CallToolResult,
    tool, tool_router,
};
use serde_json::Value;

use super::{DnsList, ListLookups, dns_list};
use crate::{
    mcp::{Answer, ListArgs, NetspyMcp, parse, respond},
    query::Telemetry,
};

/// The kind's tools, in the order `--tool` lists them.
pub const TOOLS: &[&str] = &["list_dns_lookups"];

impl<T: Telemetry> NetspyMcp<T> {
    async fn lookups(&self, args: &ListArgs) -> Answer<DnsList> {
        let list = self
            .telemetry()
            .ask::<ListLookups>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((dns_list(&list), list))
    }
}

#[tool_router(router = dns_tools, vis = "pub(crate)")]
impl<T: Telemetry> NetspyMcp<T> {
    /// List recent host-name lookups.
    #[tool(
        description = "List the most recent host-name lookups (getaddrinfo in the C library; up to `max_events`, default 100) of a process or of all processes over the last `duration` seconds (default 60): the name asked for, the addresses answered or the error (EAI_NONAME: no such host, EAI_AGAIN: the resolver did not answer in time), and how long the lookup took. Connections to an answer carry the name (destination_name). Programs with their own resolver (Go, static binaries) are not seen.",
        annotations(title = "List DNS lookups", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DnsList>()
    )]
    async fn list_dns_lookups(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.lookups(&args).await)
    }

}

/// The kind's tools, for the server's router.
pub(crate) fn tool_router<T: Telemetry>() -> ToolRouter<NetspyMcp<T>> {
    NetspyMcp::dns_tools()
}

/// The text answer of one of the kind's tools (for the AI analyst), None for another tool.
pub(crate) async fn execute<T: Telemetry>(
    mcp: &NetspyMcp<T>,
    name: &str,
    arguments: Value,
) -> Option<Result<String, String>> {
    Some(match name {
        "list_dns_lookups" => async { Ok(mcp.lookups(&parse(arguments)?).await?.0) }.await,
        _ => return None,
    })
}
