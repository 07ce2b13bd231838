//! netspy as a library: ask a running daemon through the typed REST client, and through an
//! MCP session with netspy's server embedded in this process (what the CLI does).
//!
//! `cargo run --example library -- [http://localhost:8080] [PROCESS]`
#![allow(clippy::print_stdout, reason = "an example prints its results")]

use netspy::{
    client::Client,
    mcp::Session,
    query::{ListConnections, ListRequest, SummarizeConnections, SummaryRequest, Telemetry},
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://localhost:8080".to_owned());
    let process = args.next().unwrap_or_else(|| "curl".to_owned());

    // 1. The typed REST client: health, a connection summary, recent connections.
    let daemon = Client::new(&server, std::env::var("NETSPY_TOKEN").ok())?;
    let health = daemon.health().await?;
    println!(
        "daemon {} ({}), up {}",
        health.version, health.status, health.uptime
    );
    let summary = daemon
        .ask::<SummarizeConnections>(SummaryRequest {
            command: Some(process.clone()),
            ..Default::default()
        })
        .await?;
    println!(
        "{process}: {} connection attempts in the last {} s",
        summary.count, summary.duration_seconds
    );
    let recent = daemon
        .ask::<ListConnections>(ListRequest {
            command: Some(process.clone()),
            limit: Some(5),
            ..Default::default()
        })
        .await?;
    for event in recent.events_by_pid.values().flatten() {
        println!(
            "  {} {} {} {:?}",
            event.time, event.destination, event.protocol, event.outcome
        );
    }

    // 2. An MCP session with the embedded server: the same tools an AI assistant gets.
    let session = Session::connect(daemon, None).await?;
    for tool in session.tools().await? {
        println!("tool {}: {}", tool.name, tool.description);
    }
    let answer = session
        .call("analyze_patterns", json!({ "process_name": process }))
        .await?;
    println!("{}", answer.text);
    Ok(())
}
