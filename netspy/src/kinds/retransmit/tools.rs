//! The kind's MCP tools: the summary and the list, each answering with the original-style
//! text and the typed answer; the same text serves the AI analyst.

use rmcp::{
    ErrorData,
    handler::server::{
        common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters,
    },
    model::CallToolResult,
    tool, tool_router,
};
use serde_json::Value;

use super::{
    ListRetransmits, RetransmitList, RetransmitSummary, SummarizeRetransmits, retransmit_list,
    retransmit_summary,
};
use crate::{
    mcp::{Answer, ListArgs, NetspyMcp, WindowArgs, parse, respond},
    query::Telemetry,
};

/// The kind's tools, in the order `--tool` lists them.
pub const TOOLS: &[&str] = &["get_retransmit_summary", "list_retransmits"];

impl<T: Telemetry> NetspyMcp<T> {
    async fn retransmits(&self, args: &WindowArgs) -> Answer<RetransmitSummary> {
        let s = self
            .telemetry()
            .ask::<SummarizeRetransmits>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            retransmit_summary(&s, args.pid, args.process_name.as_deref()),
            s,
        ))
    }

    async fn retransmit_list(&self, args: &ListArgs) -> Answer<RetransmitList> {
        let list = self
            .telemetry()
            .ask::<ListRetransmits>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((retransmit_list(&list), list))
    }
}

#[tool_router(router = retransmit_tools, vis = "pub(crate)")]
impl<T: Telemetry> NetspyMcp<T> {
    /// Count TCP retransmissions.
    #[tool(
        description = "Count the TCP retransmissions (each a resend by the kernel, and the segments it held) of a process or of all processes over the last `duration` seconds (default 60), by process and connection (local and remote address and port), with SYNs and a listener's SYN-ACKs sent again counted apart: a SYN sent again is a connect that had no answer yet (a peer or firewall that drops it), a SYN-ACK sent again a handshake its client left unanswered; data sent again on an established connection is packet loss or a slow peer on that path.",
        annotations(title = "Retransmit summary", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<RetransmitSummary>()
    )]
    async fn get_retransmit_summary(
        &self,
        Parameters(args): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.retransmits(&args).await)
    }

    /// List recent TCP retransmissions.
    #[tool(
        description = "List the most recent TCP retransmissions (up to `max_events`, default 100) of a process or of all processes over the last `duration` seconds (default 60): time, owning process, local and remote address and port, the socket's TCP state (SYN_SENT: a connect's SYN sent again; NEW_SYN_RECV: a listener's SYN-ACK sent again; ESTABLISHED: data) and the segments each resend held. The text gives each process, connection and state once, with how many times it was resent.",
        annotations(title = "List retransmits", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<RetransmitList>()
    )]
    async fn list_retransmits(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.retransmit_list(&args).await)
    }
}

/// The kind's tools, for the server's router.
pub(crate) fn tool_router<T: Telemetry>() -> ToolRouter<NetspyMcp<T>> {
    NetspyMcp::retransmit_tools()
}

/// The text answer of one of the kind's tools (for the AI analyst), None for another tool.
pub(crate) async fn execute<T: Telemetry>(
    mcp: &NetspyMcp<T>,
    name: &str,
    arguments: Value,
) -> Option<Result<String, String>> {
    Some(match name {
        "get_retransmit_summary" => {
            async { Ok(mcp.retransmits(&parse(arguments)?).await?.0) }.await
        }
        "list_retransmits" => async { Ok(mcp.retransmit_list(&parse(arguments)?).await?.0) }.await,
        _ => return None,
    })
}
