//! Request types: one flat struct per kind of question, taken by the REST API from a query
//! string or a JSON body (flat on purpose: serde's `flatten` breaks numbers in query strings).
//! Field docs become schema descriptions.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scope::MAX_NAME_CHARS;

/// Which process, over which time window: the filter every question shares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this process id.
    pub pid: Option<u32>,
    /// Only this process name or glob.
    pub command: Option<String>,
    /// Alias of `command`.
    pub process_name: Option<String>,
    /// Look back this many seconds.
    pub duration_seconds: Option<i64>,
    /// Window start.
    pub since: Option<DateTime<Utc>>,
    /// Window end.
    pub until: Option<DateTime<Utc>>,
}

/// A count over a window: connection and packet-drop summaries, pattern analysis.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SummaryRequest {
    /// Only this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Only processes with this name (the process's or one of its threads', 15 characters
    /// as the kernel keeps them). `*`, `?` and
    /// `[...]` make it a glob: `python*` (a pattern that is not a valid glob is refused
    /// with 400 saying why).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub command: Option<String>,
    /// Same as `command` (the original API's alias), used when `command` is absent.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// Look back this many seconds from `until` (default 60). Not used when `since` is
    /// given, but checked all the same.
    #[serde(default)]
    #[schemars(range(min = 1, max = 31_536_000))]
    pub duration_seconds: Option<i64>,
    /// Start of the window (RFC 3339), inclusive; must be before `until`.
    #[serde(default)]
    #[schemars(example = "2026-01-01T00:00:00Z")]
    pub since: Option<DateTime<Utc>>,
    /// End of the window (RFC 3339), exclusive; default now. Without `since` the window
    /// reaches back `duration_seconds` from here.
    #[serde(default)]
    #[schemars(example = "2026-01-02T00:00:00Z")]
    pub until: Option<DateTime<Utc>>,
}

impl SummaryRequest {
    /// The process and window filter.
    pub fn scope(&self) -> Scope {
        Scope {
            pid: self.pid,
            command: self.command.clone(),
            process_name: self.process_name.clone(),
            duration_seconds: self.duration_seconds,
            since: self.since,
            until: self.until,
        }
    }
}

/// A list of events: `list-connections`, `list-packet-drops`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    /// Only this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Only processes with this name (the process's or one of its threads', 15 characters
    /// as the kernel keeps them). `*`, `?` and
    /// `[...]` make it a glob: `python*` (a pattern that is not a valid glob is refused
    /// with 400 saying why).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub command: Option<String>,
    /// Same as `command` (the original API's alias), used when `command` is absent.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// Look back this many seconds from `until` (default 60, as summaries). Not used when
    /// `since` is given, but checked all the same.
    #[serde(default)]
    #[schemars(range(min = 1, max = 31_536_000))]
    pub duration_seconds: Option<i64>,
    /// Start of the window (RFC 3339), inclusive; must be before `until`.
    #[serde(default)]
    #[schemars(example = "2026-01-01T00:00:00Z")]
    pub since: Option<DateTime<Utc>>,
    /// End of the window (RFC 3339), exclusive; default now. Without `since` the window
    /// reaches back `duration_seconds` from here.
    #[serde(default)]
    #[schemars(example = "2026-01-02T00:00:00Z")]
    pub until: Option<DateTime<Utc>>,
    /// At most this many events, the most recent (default 100; capped by the daemon's
    /// maximum, which the answer reports).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<i64>,
    /// Drops: include routine drops (sockets closing, queues purged), left out by default.
    #[serde(default)]
    pub include_routine: Option<bool>,
}

impl ListRequest {
    /// The process and window filter.
    pub fn scope(&self) -> Scope {
        Scope {
            pid: self.pid,
            command: self.command.clone(),
            process_name: self.process_name.clone(),
            duration_seconds: self.duration_seconds,
            since: self.since,
            until: self.until,
        }
    }
}

/// Generic event search: `/api/events`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// Only this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Only processes with this name (the process's or one of its threads', 15 characters
    /// as the kernel keeps them). `*`, `?` and
    /// `[...]` make it a glob: `python*` (a pattern that is not a valid glob is refused
    /// with 400 saying why).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub command: Option<String>,
    /// Same as `command` (the original API's alias), used when `command` is absent.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// Look back this many seconds from `until` (default the whole history). Not used when
    /// `since` is given, but checked all the same.
    #[serde(default)]
    #[schemars(range(min = 1, max = 31_536_000))]
    pub duration_seconds: Option<i64>,
    /// Start of the window (RFC 3339), inclusive; must be before `until`.
    #[serde(default)]
    #[schemars(example = "2026-01-01T00:00:00Z")]
    pub since: Option<DateTime<Utc>>,
    /// End of the window (RFC 3339), exclusive; default now. Without `since` the window
    /// reaches back `duration_seconds` from here.
    #[serde(default)]
    #[schemars(example = "2026-01-02T00:00:00Z")]
    pub until: Option<DateTime<Utc>>,
    /// `connection` or `packet_drop` (default both).
    #[serde(default, rename = "type")]
    pub kind: Option<EventKind>,
    /// At most this many events, the most recent (default 100; capped by the daemon's
    /// maximum, which the answer reports).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<i64>,
    /// Only connections with this TCP result (drops have none, so none match: with
    /// `type=packet_drop` the answer is empty).
    #[serde(default)]
    pub outcome: Option<OutcomeFilter>,
    /// Drops: include routine drops (sockets closing, queues purged), left out by default.
    #[serde(default)]
    pub include_routine: Option<bool>,
}

impl EventsRequest {
    /// The process and window filter.
    pub fn scope(&self) -> Scope {
        Scope {
            pid: self.pid,
            command: self.command.clone(),
            process_name: self.process_name.clone(),
            duration_seconds: self.duration_seconds,
            since: self.since,
            until: self.until,
        }
    }
}

/// Kinds of events.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Connect attempts.
    Connection,
    /// Packet drops.
    PacketDrop,
}

/// TCP results to filter connections by.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFilter {
    /// Handshake completed.
    Established,
    /// Refused by the peer.
    Refused,
    /// No answer.
    TimedOut,
    /// Another error.
    Failed,
    /// Closed before completing.
    Aborted,
    /// No TCP result known.
    Unknown,
}
