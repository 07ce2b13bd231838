//! netspy: per-process network telemetry for Linux from eBPF.
//!
//! # Layout
//! - [`probes`]: loads and attaches the kernel programs (netspy-ebpf) with per-probe
//!   fallbacks, reads their ring buffers and counts received and lost events.
//! - [`events`]: decodes the kernel's wire structs into domain events, once.
//! - [`host_names`]: names connections by the host names their process looked up.
//! - [`store`]: the bounded, indexed history (compact records, interned strings).
//! - [`query`]: every question, answered in one place; request/answer types for REST and MCP.
//! - [`api`]: the REST API (axum) over the query layer.
//! - [`daemon`]: `netspy daemon`, the composition root.
//! - [`insights`]: AI analysis through any OpenAI-compatible endpoint (async-openai).
//! - [`cli`]: the `netspy` command line (the only code that writes to stdout).
//! - [`logging`]: tracing to stderr with secrets masked, and rate limits for client-caused lines.
//!
//! Data flows one way: kernel -> probes -> events -> host_names -> store -> query -> api (or
//! `netspy trace` straight from host_names).

pub mod api;
pub mod cgroups;
pub mod cli;
pub mod client;
pub mod config_file;
pub mod daemon;
mod error_chain;
pub mod events;
pub mod host_names;
pub mod insights;
pub mod logging;
pub mod mcp;
pub mod probes;
pub mod procfs;
pub mod query;
pub mod service;
pub mod store;
pub mod text;
pub mod tls;
