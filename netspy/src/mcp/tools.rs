//! The "network-telemetry" MCP server: every tool, each a call into [`Telemetry`] whose answer
//! goes back as the original text AND as structured content with an output schema. The same
//! read-only tools serve the AI analyst's function calls (`insights::ToolExecutor`).

use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_handler, tool_router,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::sync::Arc;

use super::{
    args::{self, ContextualArgs, InsightsArgs, ListArgs, WindowArgs},
    format,
};
use crate::{
    insights::{
        Focus, HOW_TO_CONFIGURE, Insights, InsightsAnswer, InsightsError, ToolExecutor, ToolSpec,
    },
    query::{
        Analysis, AnalyzePatterns, ConnectionList, ConnectionSummary, DropList, DropSummary,
        ListConnections, ListDrops, SummarizeConnections, SummarizeDrops, Telemetry,
    },
};

/// Every tool, for the CLI's `--tool` (checked and completed by clap); a test keeps it
/// equal to the router's list.
pub const TOOL_NAMES: [&str; tool_count()] = tool_names();

/// The tools of the layers' data, before the kinds' tools.
const DATA_TOOLS: &[&str] = &[
    "get_network_summary",
    "list_connections",
    "analyze_patterns",
    "get_packet_drop_summary",
    "list_packet_drops",
];

/// The AI tools, after every data tool.
const AI_TOOLS: &[&str] = &["ai_insights", "contextual_analysis"];

/// How many tools there are.
const fn tool_count() -> usize {
    let (mut n, mut k) = (DATA_TOOLS.len() + AI_TOOLS.len(), 0);
    while k < crate::kinds::TOOL_NAMES.len() {
        n += crate::kinds::TOOL_NAMES[k].len();
        k += 1;
    }
    n
}

/// The layers' data tools, the kinds' (each kind's in order), then the AI tools.
const fn tool_names() -> [&'static str; tool_count()] {
    let mut names = [""; tool_count()];
    let mut n = 0;
    let mut i = 0;
    while i < DATA_TOOLS.len() {
        names[n] = DATA_TOOLS[i];
        (n, i) = (n + 1, i + 1);
    }
    let mut k = 0;
    while k < crate::kinds::TOOL_NAMES.len() {
        let mut i = 0;
        while i < crate::kinds::TOOL_NAMES[k].len() {
            names[n] = crate::kinds::TOOL_NAMES[k][i];
            (n, i) = (n + 1, i + 1);
        }
        k += 1;
    }
    let mut i = 0;
    while i < AI_TOOLS.len() {
        names[n] = AI_TOOLS[i];
        (n, i) = (n + 1, i + 1);
    }
    names
}

/// The MCP server over any [`Telemetry`] (in-process in the daemon, REST elsewhere).
#[derive(Clone)]
pub struct NetspyMcp<T: Telemetry> {
    telemetry: T,
    insights: Option<Insights>,
    /// The tools, their schemas rewritten once (rmcp asks for the router on every call).
    router: Arc<ToolRouter<Self>>,
}

impl<T: Telemetry> NetspyMcp<T> {
    /// A server answering from `telemetry`, without AI insights.
    pub fn new(telemetry: T) -> Self {
        Self {
            telemetry,
            insights: None,
            router: Arc::new(Self::tools()),
        }
    }

    /// The same server with an AI analyst for `ai_insights` and `contextual_analysis`.
    pub fn with_insights(mut self, insights: Option<Insights>) -> Self {
        self.insights = insights;
        self
    }
}

/// A tool's answer: text for people, the typed answer for programs; or why it failed.
pub(crate) type Answer<A> = Result<(String, A), String>;

/// The MCP result of an answer.
pub(crate) fn respond<A: Serialize>(answer: Answer<A>) -> Result<CallToolResult, ErrorData> {
    match answer {
        Ok((text, structured)) => {
            let value = serde_json::to_value(&structured).map_err(|e| {
                ErrorData::internal_error(format!("serializing the answer: {e}"), None)
            })?;
            let mut result = CallToolResult::structured(value);
            result.content = vec![ContentBlock::text(text)];
            Ok(result)
        }
        // A tool-level failure the caller (often a model) can read and act on.
        Err(message) => Ok(CallToolResult::error(vec![ContentBlock::text(message)])),
    }
}

/// The one implementation of each data tool, shared by MCP and the AI analyst.
impl<T: Telemetry> NetspyMcp<T> {
    /// Where the answers come from.
    pub(crate) fn telemetry(&self) -> &T {
        &self.telemetry
    }

    /// The connection summary; its text also tells the drops of the same window.
    async fn network_summary(&self, args: &WindowArgs) -> Answer<ConnectionSummary> {
        let request = args.request()?;
        let (s, drops) = tokio::join!(
            self.telemetry.ask::<SummarizeConnections>(request.clone()),
            self.telemetry.ask::<SummarizeDrops>(request)
        );
        let s = s.map_err(|e| e.to_string())?;
        // The drops are an addition: without them (a shed query, an older server) the
        // summary still answers, without that line.
        Ok((
            format::network_summary(
                &s,
                drops.ok().as_ref(),
                args.pid,
                args.process_name.as_deref(),
            ),
            s,
        ))
    }

    async fn connections(&self, args: &ListArgs) -> Answer<ConnectionList> {
        let list = self
            .telemetry
            .ask::<ListConnections>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((format::connection_list(&list), list))
    }

    async fn patterns(&self, args: &WindowArgs) -> Answer<Analysis> {
        let a = self
            .telemetry
            .ask::<AnalyzePatterns>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((format::analysis(&a), a))
    }

    async fn drop_summary(&self, args: &WindowArgs) -> Answer<DropSummary> {
        let s = self
            .telemetry
            .ask::<SummarizeDrops>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            format::drop_summary(&s, args.pid, args.process_name.as_deref()),
            s,
        ))
    }

    async fn drops(&self, args: &ListArgs) -> Answer<DropList> {
        let list = self
            .telemetry
            .ask::<ListDrops>(args.request()?)
            .await
            .map_err(|e| e.to_string())?;
        Ok((format::drop_list(&list), list))
    }

    /// The AI's answer to `ask`, or the local analysis of `window` when no AI endpoint is
    /// configured or it failed.
    async fn with_ai<'s, Fut>(
        &'s self,
        window: &WindowArgs,
        ask: impl FnOnce(&'s Insights) -> Fut,
    ) -> Answer<InsightsAnswer>
    where
        Fut: Future<Output = Result<String, InsightsError>>,
    {
        let Some(ai) = &self.insights else {
            let why = format!("no AI endpoint is configured. {HOW_TO_CONFIGURE}");
            return self.without_ai(&why, window).await;
        };
        match ask(ai).await {
            Ok(text) => Ok((
                format!("AI Network Insights:\n{text}"),
                InsightsAnswer::from_model(ai.model(), text),
            )),
            Err(e) => self.without_ai(&e.to_string(), window).await,
        }
    }

    /// The local analysis that stands in when the AI cannot answer, after `why`.
    async fn without_ai(&self, why: &str, window: &WindowArgs) -> Answer<InsightsAnswer> {
        let (analysis, answer) = self.patterns(window).await?;
        Ok((
            format!("AI Network Insights: {why}\n\nLocal analysis instead:\n{analysis}"),
            InsightsAnswer::local(why.to_owned(), answer),
        ))
    }
}

#[tool_router]
impl<T: Telemetry> NetspyMcp<T> {
    /// Count connection attempts.
    #[tool(
        description = "Count the outbound connection attempts of a process (by pid or name) or of all processes over the last `duration` seconds (default 60), with their TCP results (established, refused, timed out), failed calls by errno, and the packet drops of the same window. Every answer says what its window could not see (netspy not yet running, history evicted, events lost in the kernel).",
        annotations(title = "Network summary", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ConnectionSummary>()
    )]
    async fn get_network_summary(
        &self,
        Parameters(args): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.network_summary(&args).await)
    }

    /// List recent connection attempts.
    #[tool(
        description = "List the most recent connection attempts (up to `max_events`, default 100) of a process or of all processes over the last `duration` seconds (default 60): time, destination, real protocol, process and pid, and the result (TCP handshake result and time, or the failed call's errno).",
        annotations(title = "List connections", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ConnectionList>()
    )]
    async fn list_connections(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.connections(&args).await)
    }

    /// Analyse connection patterns.
    #[tool(
        description = "Analyse the connection patterns of a process or of all processes over the last `duration` seconds (default 60): top destinations, protocols, ports, TCP results, handshake times, errors, rate.",
        annotations(title = "Analyze patterns", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Analysis>()
    )]
    async fn analyze_patterns(
        &self,
        Parameters(args): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.patterns(&args).await)
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
        respond(self.drop_summary(&args).await)
    }

    /// List recent packet drops.
    #[tool(
        description = "List the most recent packet drops that point at a problem (up to `max_events`, default 100) over the last `duration` seconds (default 60): reason, 5-tuple, kernel location, owning process. Routine drops are left out.",
        annotations(title = "List packet drops", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DropList>()
    )]
    async fn list_packet_drops(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        respond(self.drops(&args).await)
    }

    /// AI analysis of a text.
    #[tool(
        description = "Ask an AI model (any OpenAI-compatible endpoint) to analyse network telemetry text: what is normal, what is suspicious, what to check next. Without a configured endpoint, says how to configure one and gives the local pattern analysis.",
        annotations(title = "AI insights", read_only_hint = true, open_world_hint = true),
        output_schema = schema_for_output::<InsightsAnswer>()
    )]
    async fn ai_insights(
        &self,
        Parameters(args): Parameters<InsightsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(e) = args::text("summary_text", &args.summary_text, args::MAX_SUMMARY_TEXT) {
            return respond::<()>(Err(e));
        }
        let window = WindowArgs::default();
        respond(
            self.with_ai(&window, |ai| ai.analyze_text(&args.summary_text))
                .await,
        )
    }

    /// AI analysis of a question, with the model calling the telemetry tools itself.
    #[tool(
        description = "Ask an AI model a question about this host's network behaviour; the model looks the data up itself with the read-only telemetry tools (a bounded number of calls).",
        annotations(
            title = "Contextual analysis",
            read_only_hint = true,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<InsightsAnswer>()
    )]
    async fn contextual_analysis(
        &self,
        Parameters(args): Parameters<ContextualArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(e) = args::text("query", &args.query, args::MAX_QUESTION) {
            return respond::<()>(Err(e));
        }
        let window = args.window();
        if let Err(e) = window.request() {
            return respond::<()>(Err(e));
        }
        let focus = Focus {
            pid: window.pid,
            process_name: window.process_name.clone(),
            duration: window.duration,
            unit: window.unit.clone(),
            container: window.container.clone(),
        };
        respond(
            self.with_ai(&window, |ai| ai.contextual(&args.query, &focus, self))
                .await,
        )
    }
}

pub(crate) fn parse<A: DeserializeOwned>(arguments: Value) -> Result<A, String> {
    serde_json::from_value(arguments).map_err(|e| format!("invalid arguments: {e}"))
}

impl<T: Telemetry> NetspyMcp<T> {
    /// The tools, with schemas every client takes (`schema.rs`).
    fn tools() -> ToolRouter<Self> {
        let mut router = Self::tool_router() + crate::kinds::tool_router();
        for route in router.map.values_mut() {
            let tool = &mut route.attr;
            super::schema::make_portable(Arc::make_mut(&mut tool.input_schema));
            if let Some(output) = &mut tool.output_schema {
                super::schema::make_portable(Arc::make_mut(output));
            }
        }
        router
    }
}

impl<T: Telemetry> ToolExecutor for NetspyMcp<T> {
    fn specs(&self) -> Vec<ToolSpec> {
        self.router
            .list_all()
            .into_iter()
            // The data tools: the ones that read this host's telemetry only (the AI tools
            // reach an outside model, so they are open-world and never offered to it).
            .filter(|t| {
                t.annotations
                    .as_ref()
                    .is_some_and(|a| a.open_world_hint == Some(false))
            })
            .map(|t| ToolSpec {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                parameters: Value::Object(t.input_schema.as_ref().clone()),
            })
            .collect()
    }

    async fn execute(&self, name: &str, arguments: Value) -> Result<String, String> {
        match name {
            "get_network_summary" => Ok(self.network_summary(&parse(arguments)?).await?.0),
            "list_connections" => Ok(self.connections(&parse(arguments)?).await?.0),
            "analyze_patterns" => Ok(self.patterns(&parse(arguments)?).await?.0),
            "get_packet_drop_summary" => Ok(self.drop_summary(&parse(arguments)?).await?.0),
            "list_packet_drops" => Ok(self.drops(&parse(arguments)?).await?.0),
            other => match crate::kinds::execute(self, other, arguments).await {
                Some(text) => text,
                None => Err(format!("{other:?} is not an available tool")),
            },
        }
    }
}

#[tool_handler(
    router = self.router,
    name = "network-telemetry",
    instructions = "Per-process network telemetry of this Linux host from eBPF: connection attempts with their real protocol and result, packet drops with the kernel's reason, host-name lookups and TCP retransmissions. All tools are read-only. Filter by pid or process_name; every tool looks back `duration` seconds (default 60) and says when that window is not fully covered."
)]
impl<T: Telemetry> ServerHandler for NetspyMcp<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;

    #[test]
    fn the_cli_knows_every_tool() {
        let mut listed: Vec<String> = NetspyMcp::<Client>::tools()
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        listed.sort_unstable();
        let mut names = TOOL_NAMES.map(str::to_owned).to_vec();
        names.sort_unstable();
        assert_eq!(listed, names);
    }

    #[tokio::test]
    async fn the_analyst_can_run_every_tool_it_is_offered() {
        // A daemon that is not there: each tool runs and fails to reach it.
        let client = Client::new("http://127.0.0.1:9", None).unwrap();
        let mcp = NetspyMcp::new(client);
        let offered = mcp.specs();
        assert!(offered.iter().any(|t| t.name == "list_retransmits"));
        for tool in offered {
            let answer = mcp.execute(&tool.name, serde_json::json!({})).await;
            assert!(
                matches!(&answer, Err(e) if !e.contains("not an available tool")),
                "{}: {answer:?}",
                tool.name
            );
        }
    }
}
