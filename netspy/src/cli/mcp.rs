//! `netspy mcp`: the MCP server on stdio for desktop MCP clients, answering from a daemon
//! over REST. stdout carries only JSON-RPC; logs go to stderr.

use anyhow::Context as _;
use clap::Args;

use super::ServerArgs;
use crate::{client::Client, mcp::NetspyMcp};

/// Options of `netspy mcp`.
#[derive(Clone, Debug, Args)]
pub struct McpArgs {
    /// The daemon to answer from.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Where the AI tools get their answers (OPENAI_API_KEY is read from the environment).
    #[command(flatten)]
    pub ai: crate::insights::AiArgs,
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn run(args: McpArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server.server, args.server.token)?;
    tracing::info!("MCP server on stdio, answering from {}", client.base());
    let insights = crate::insights::Insights::from_env(&args.ai)?;
    let server = NetspyMcp::new(client).with_insights(insights);
    let (running, writer) =
        crate::mcp::stdio::serve(server, tokio::io::stdin(), tokio::io::stdout())
            .await
            .context("starting the MCP session on stdio")?;
    running.waiting().await.context("serving MCP on stdio")?;
    // Every answer out before the process ends.
    let _ = writer.await;
    Ok(())
}
