//! MCP: the "network-telemetry" server (tools over [`crate::query::Telemetry`]) and its
//! transports: stdio (`netspy mcp`), Streamable HTTP at `/mcp` and the legacy HTTP+SSE
//! transport at `/sse` + `/messages` on the daemon's listener; and [`Session`], an MCP client
//! with the server embedded in the same process (what the CLI uses).

mod args;
pub mod format;
mod http;
mod jsonrpc;
mod schema;
mod session;
mod sse;
pub mod stdio;
mod tools;

pub(crate) use self::tools::{Answer, parse, respond};
pub use self::{
    args::{ContextualArgs, InsightsArgs, ListArgs, MAX_QUESTION, MAX_SUMMARY_TEXT, WindowArgs},
    http::{SessionLimits, router},
    session::{Session, SessionError, ToolAnswer, ToolInfo},
    tools::{NetspyMcp, TOOL_NAMES},
};
