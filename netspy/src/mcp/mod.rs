//! MCP: the "network-telemetry" server (tools over [`crate::query::Telemetry`]) and its
//! transports: stdio (`netspy mcp`), Streamable HTTP at `/mcp` and the legacy HTTP+SSE
//! transport at `/sse` + `/messages` on the daemon's listener.

mod args;
pub mod format;
mod http;
mod sse;
mod tools;

pub use self::{
    args::{ContextualArgs, InsightsArgs, ListArgs, WindowArgs},
    http::{OriginPolicy, router},
    tools::NetspyMcp,
};
