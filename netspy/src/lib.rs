//! netspy: per-process network telemetry for Linux from eBPF.
//!
//! # Layout
//! - [`probes`]: loads and attaches the kernel programs (netspy-ebpf) with per-probe
//!   fallbacks, reads their ring buffers and counts received and lost events.
//! - [`events`]: decodes the kernel's wire structs into domain events, once.
//! - [`correlate`]: the correlation stage: host names to connections, TCP outcomes to their
//!   connects, drops that lost their socket to their sender (shared by store and trace).
//! - [`store`]: the bounded, indexed history (compact records, interned strings).
//! - [`query`]: every question, answered in one place; request/answer types for REST and MCP.
//! - [`api`]: the REST API (axum) over the query layer.
//! - [`daemon`]: `netspy daemon`, the composition root.
//! - [`insights`]: AI analysis through any OpenAI-compatible endpoint (async-openai).
//! - [`cli`]: the `netspy` command line (the only code that writes to stdout).
//! - [`logging`]: tracing to stderr with secrets masked, and rate limits for client-caused lines.
//!
//! Data flows one way: kernel -> probes -> events -> correlate -> store -> query -> api (or
//! `netspy trace` straight from correlate).

pub mod api;
pub mod cgroups;
pub mod cli;
pub mod client;
pub mod config_file;
pub mod correlate;
pub mod daemon;
mod error_chain;
pub mod events;
pub mod insights;
pub mod kinds;
pub mod logging;
pub mod mcp;
pub mod probes;
pub mod procfs;
pub mod query;
pub mod service;
pub mod store;
pub mod text;
pub mod tls;
