//! The "network-telemetry" MCP server: every tool, each a call into [`Telemetry`] whose answer
//! goes back as the original text AND as structured content with an output schema.

use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{common::schema_for_output, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_handler, tool_router,
};
use serde::Serialize;

use super::{
    args::{ContextualArgs, InsightsArgs, ListArgs, WindowArgs},
    format,
};
use crate::query::{
    Analysis, ConnectionList, ConnectionSummary, DropList, DropSummary, Telemetry, TelemetryError,
};

/// The MCP server over any [`Telemetry`] (in-process in the daemon, REST elsewhere).
#[derive(Clone)]
pub struct NetspyMcp<T: Telemetry> {
    telemetry: T,
}

impl<T: Telemetry> NetspyMcp<T> {
    /// A server answering from `telemetry`.
    pub fn new(telemetry: T) -> Self {
        Self { telemetry }
    }
}

/// A successful answer: the text for people and the typed answer for programs.
fn answer(text: String, structured: &impl Serialize) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(structured)
        .map_err(|e| ErrorData::internal_error(format!("serializing the answer: {e}"), None))?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}

/// A tool-level failure the caller (often a model) can read and act on.
fn failure(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn telemetry_failure(e: TelemetryError) -> CallToolResult {
    failure(e.to_string())
}

#[tool_router]
impl<T: Telemetry> NetspyMcp<T> {
    /// Count connection attempts.
    #[tool(
        description = "Count the outbound connection attempts of a process (by pid or name) or of all processes over the last `duration` seconds (default 60), with their TCP results (established, refused, timed out).",
        annotations(title = "Network summary", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ConnectionSummary>()
    )]
    async fn get_network_summary(
        &self,
        Parameters(args): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = match args.request() {
            Ok(r) => r,
            Err(e) => return Ok(failure(e)),
        };
        match self.telemetry.connection_summary(request).await {
            Ok(s) => answer(
                format::network_summary(&s, args.pid, args.process_name.as_deref()),
                &s,
            ),
            Err(e) => Ok(telemetry_failure(e)),
        }
    }

    /// List recent connection attempts.
    #[tool(
        description = "List the most recent connection attempts (up to `max_events`, default 100) of a process or of all processes: time, destination, real protocol, process, and the result when it failed.",
        annotations(title = "List connections", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ConnectionList>()
    )]
    async fn list_connections(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = match args.request() {
            Ok(r) => r,
            Err(e) => return Ok(failure(e)),
        };
        match self.telemetry.list_connections(request).await {
            Ok(list) => answer(format::connection_list(&list), &list),
            Err(e) => Ok(telemetry_failure(e)),
        }
    }

    /// Analyse connection patterns.
    #[tool(
        description = "Analyse the connection patterns of a process or of all processes over the last `duration` seconds (default 60): top destinations, protocols, ports, TCP results, errors, rate.",
        annotations(title = "Analyze patterns", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Analysis>()
    )]
    async fn analyze_patterns(
        &self,
        Parameters(args): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = match args.request() {
            Ok(r) => r,
            Err(e) => return Ok(failure(e)),
        };
        match self.telemetry.analyze_patterns(request).await {
            Ok(a) => answer(format::analysis(&a), &a),
            Err(e) => Ok(telemetry_failure(e)),
        }
    }

    /// Count packet drops.
    #[tool(
        description = "Count the packets the kernel dropped for a process or for all processes over the last `duration` seconds (default 60), by the kernel's drop reason (NO_SOCKET, NETFILTER_DROP, ...). Routine drops (sockets closing) are counted apart.",
        annotations(title = "Packet drop summary", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DropSummary>()
    )]
    async fn get_packet_drop_summary(
        &self,
        Parameters(args): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = match args.request() {
            Ok(r) => r,
            Err(e) => return Ok(failure(e)),
        };
        match self.telemetry.drop_summary(request).await {
            Ok(s) => answer(
                format::drop_summary(&s, args.pid, args.process_name.as_deref()),
                &s,
            ),
            Err(e) => Ok(telemetry_failure(e)),
        }
    }

    /// List recent packet drops.
    #[tool(
        description = "List the most recent packet drops that point at a problem (up to `max_events`, default 100): reason, 5-tuple, kernel location, owning process. Routine drops are left out.",
        annotations(title = "List packet drops", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DropList>()
    )]
    async fn list_packet_drops(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let request = match args.request() {
            Ok(r) => r,
            Err(e) => return Ok(failure(e)),
        };
        match self.telemetry.list_drops(request).await {
            Ok(list) => answer(format::drop_list(&list), &list),
            Err(e) => Ok(telemetry_failure(e)),
        }
    }

    /// AI analysis of a text.
    #[tool(
        description = "Ask an AI model (any OpenAI-compatible endpoint) to analyse network telemetry text: what is normal, what is suspicious, what to check next.",
        annotations(title = "AI insights", read_only_hint = true, open_world_hint = true)
    )]
    async fn ai_insights(
        &self,
        Parameters(args): Parameters<InsightsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.summary_text.trim().is_empty() {
            return Ok(failure("summary_text must not be empty"));
        }
        self.not_configured(None).await
    }

    /// AI analysis of a question, with the model calling the telemetry tools itself.
    #[tool(
        description = "Ask an AI model a question about this host's network behaviour; the model looks the data up itself with the read-only telemetry tools.",
        annotations(
            title = "Contextual analysis",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn contextual_analysis(
        &self,
        Parameters(args): Parameters<ContextualArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.query.trim().is_empty() {
            return Ok(failure("query must not be empty"));
        }
        let window = WindowArgs {
            pid: args.pid,
            process_name: args.process_name.clone(),
            duration: args.duration,
        };
        self.not_configured(Some(window)).await
    }
}

impl<T: Telemetry> NetspyMcp<T> {
    /// Until an AI endpoint is configured: say how, and give the local analysis instead.
    async fn not_configured(
        &self,
        window: Option<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut text = String::from(
            "AI Network Insights: no AI endpoint is configured. Set OPENAI_API_KEY (and OPENAI_BASE_URL and \
             NETSPY_MODEL for other OpenAI-compatible servers such as Ollama or vLLM) where netspy runs.\n\n\
             Local analysis instead:\n",
        );
        let window = window.unwrap_or_default();
        let request = match window.request() {
            Ok(r) => r,
            Err(e) => return Ok(failure(e)),
        };
        match self.telemetry.analyze_patterns(request).await {
            Ok(a) => {
                text.push_str(&format::analysis(&a));
                answer(text, &a)
            }
            Err(e) => Ok(telemetry_failure(e)),
        }
    }
}

#[tool_handler(
    name = "network-telemetry",
    instructions = "Per-process network telemetry of this Linux host from eBPF: connection attempts with their real protocol and result, and packet drops with the kernel's reason. All tools are read-only. Filter by pid or process_name; summaries look back `duration` seconds (default 60)."
)]
impl<T: Telemetry> ServerHandler for NetspyMcp<T> {}
