//! An MCP client connected, inside this process, to netspy's own MCP server, whose
//! telemetry is the REST client of a daemon. The CLI speaks MCP through this, as the
//! original netspy did; library users can too.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use netspy::{client::Client, mcp::Session};
//! let session = Session::connect(Client::new("http://localhost:8080", None)?, None).await?;
//! let answer = session.call("get_network_summary", serde_json::json!({"process_name": "curl"})).await?;
//! println!("{}", answer.text);
//! # Ok(()) }
//! ```

use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, ContentBlock},
    service::RunningService,
};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::NetspyMcp;
use crate::{client::Client, insights::Insights};

/// Why a session could not start or a call could not be made (tool failures are not errors:
/// they are [`ToolAnswer`]s with `is_error`).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The in-process MCP session did not come up.
    #[error("starting the MCP session: {0}")]
    Start(String),
    /// The server refused the call (unknown tool, arguments of the wrong type, ...).
    #[error("{0}")]
    Call(String),
}

/// A tool's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolAnswer {
    /// The text, as the original netspy printed it.
    pub text: String,
    /// The typed answer (matches the tool's output schema), when the tool gives one.
    pub structured: Option<Value>,
    /// True when the tool failed; `text` says why.
    pub is_error: bool,
}

/// A tool the server offers.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Names of the arguments it takes.
    pub arguments: Vec<String>,
    /// Names of the arguments it cannot do without.
    pub required: Vec<String>,
}

/// An MCP client with netspy's MCP server in the same process.
pub struct Session {
    client: RunningService<RoleClient, ()>,
    server: JoinHandle<()>,
}

impl Session {
    /// Starts the embedded server over `daemon` and connects to it (MCP initialize). With
    /// `insights`, the AI tools use that endpoint.
    pub async fn connect(daemon: Client, insights: Option<Insights>) -> Result<Self, SessionError> {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            match NetspyMcp::new(daemon)
                .with_insights(insights)
                .serve(server_io)
                .await
            {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(e) => tracing::error!("embedded MCP server: {e}"),
            }
        });
        let client = ().serve(client_io).await.map_err(|e| SessionError::Start(e.to_string()))?;
        Ok(Self { client, server })
    }

    /// The tools, with their argument names.
    pub async fn tools(&self) -> Result<Vec<ToolInfo>, SessionError> {
        let tools = self
            .client
            .list_all_tools()
            .await
            .map_err(|e| SessionError::Call(e.to_string()))?;
        Ok(tools
            .into_iter()
            .map(|t| ToolInfo {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                arguments: t
                    .input_schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default(),
                required: t
                    .input_schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Calls a tool with a JSON object of arguments.
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<ToolAnswer, SessionError> {
        let Value::Object(arguments) = arguments else {
            return Err(SessionError::Call(
                "tool arguments must be a JSON object".into(),
            ));
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = self
            .client
            .call_tool(params)
            .await
            .map_err(|e| SessionError::Call(e.to_string()))?;
        let text = result
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok(ToolAnswer {
            text,
            structured: result.structured_content,
            is_error: result.is_error.unwrap_or(false),
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.abort();
    }
}
