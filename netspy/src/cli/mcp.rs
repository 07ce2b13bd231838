//! `netspy mcp`: the MCP server on stdio for desktop MCP clients, answering from a daemon
//! over REST. stdout carries only JSON-RPC; logs go to stderr.

use anyhow::Context as _;
use clap::Args;
use rmcp::ServiceExt;

use crate::{
    client::{Client, DEFAULT_SERVER},
    mcp::NetspyMcp,
};

/// Options of `netspy mcp`.
#[derive(Clone, Debug, Args)]
pub struct McpArgs {
    /// The netspy daemon to answer from.
    #[arg(long, value_name = "URL", default_value = DEFAULT_SERVER, env = "NETSPY_SERVER")]
    pub server: String,

    /// Bearer token of the daemon, when it has one.
    #[arg(long, env = "NETSPY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn run(args: McpArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server, args.token)?;
    tracing::info!("MCP server on stdio, answering from {}", client.base());
    let running = NetspyMcp::new(client)
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session on stdio")?;
    running.waiting().await.context("serving MCP on stdio")?;
    Ok(())
}
