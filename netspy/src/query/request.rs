//! Request types: one flat struct per kind of question, taken by the REST API from a query
//! string or a JSON body (flat on purpose: serde's `flatten` breaks numbers in query strings).
//! Field docs become schema descriptions.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EventKind, scope::MAX_NAME_CHARS};
use crate::{events::TcpResult, store::Outcome};

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
    /// Only processes in this systemd unit (name or glob).
    pub unit: Option<String>,
    /// Only processes in this container (id, or glob such as `4f2c1e8b*`).
    pub container: Option<String>,
}

/// A request struct: the scope's fields (each written here once, with its schema), the
/// window's fields when `duration` states its default (a stream has none: it follows from
/// now), then the request's own fields; and its [`Scope`]. Flat on purpose (see the module
/// doc).
macro_rules! scoped_request {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(duration: $duration:literal,)?
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Only this process id.
            #[serde(default)]
            #[schemars(range(max = 4_294_967_295u32))]
            pub pid: Option<u32>,
            /// Only processes with this name (the process's or one of its threads', 15
            /// characters as the kernel keeps them). `*`, `?` and `[...]` make it a glob:
            /// `python*` (a pattern that is not a valid glob is refused with 400 saying why).
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub command: Option<String>,
            /// Same as `command` (the original API's alias), used when `command` is absent.
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub process_name: Option<String>,
            $(
            #[doc = concat!("Look back this many seconds from `until` (", $duration, "). Not used when `since` is given, but checked all the same.")]
            #[serde(default)]
            #[schemars(range(min = 1, max = 31_536_000))]
            pub duration_seconds: Option<i64>,
            /// Start of the window (RFC 3339), inclusive; must be before `until`.
            #[serde(default)]
            #[schemars(example = "2026-01-01T00:00:00Z")]
            pub since: Option<DateTime<Utc>>,
            /// End of the window (RFC 3339), exclusive; default now. Without `since` the
            /// window reaches back `duration_seconds` from here.
            #[serde(default)]
            #[schemars(example = "2026-01-02T00:00:00Z")]
            pub until: Option<DateTime<Utc>>,
            )?
            /// Only processes in this systemd unit, the innermost on their cgroup's path
            /// (`nginx.service`, `session-3.scope`); `*`, `?` and `[...]` make it a glob.
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub unit: Option<String>,
            /// Only processes in this container: its 64-hex-digit id as the runtime names
            /// its cgroup (docker, containerd, cri-o, podman), or a glob such as `4f2c1e8b*`.
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub container: Option<String>,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// The process and window filter.
            #[allow(clippy::needless_update, reason = "requests with a window fill every field")]
            pub fn scope(&self) -> Scope {
                Scope {
                    pid: self.pid,
                    command: self.command.clone(),
                    process_name: self.process_name.clone(),
                    $(
                    duration_seconds: scoped_request!(@window $duration self.duration_seconds),
                    since: self.since,
                    until: self.until,
                    )?
                    unit: self.unit.clone(),
                    container: self.container.clone(),
                    ..Scope::default()
                }
            }

            /// A request with this filter (its window, when it has one), its own fields left
            /// to their defaults.
            #[allow(clippy::needless_update, reason = "some requests have no fields of their own")]
            pub fn scoped(scope: Scope) -> Self {
                Self {
                    pid: scope.pid,
                    command: scope.command,
                    process_name: scope.process_name,
                    $(
                    duration_seconds: scoped_request!(@window $duration scope.duration_seconds),
                    since: scope.since,
                    until: scope.until,
                    )?
                    unit: scope.unit,
                    container: scope.container,
                    ..Default::default()
                }
            }
        }

        impl super::questions::Scoped for $name {
            fn scope(&self) -> Scope {
                $name::scope(self)
            }

            fn limit(&self) -> Option<i64> {
                scoped_request!(@limit self $($field)*)
            }
        }
    };
    // A window field (the default it states only decides that there is a window).
    (@window $duration:literal $value:expr) => { $value };
    // The request's `limit` field, when it has one.
    (@limit $request:ident limit $($rest:ident)*) => { $request.limit };
    (@limit $request:ident $other:ident $($rest:ident)*) => {
        scoped_request!(@limit $request $($rest)*)
    };
    (@limit $request:ident) => { None };
}

scoped_request! {
    /// A count over a window: connection and packet-drop summaries, pattern analysis.
    pub struct SummaryRequest {
        duration: "default 60",
    }
}

scoped_request! {
    /// A list of events: `list-connections`, `list-packet-drops`.
    pub struct ListRequest {
        duration: "default 60, as summaries",
        /// At most this many events, the most recent (default 100; capped by the daemon's
        /// maximum, which the answer reports).
        #[serde(default)]
        #[schemars(range(min = 1))]
        pub limit: Option<i64>,
        /// Drops: include routine drops (sockets closing, queues purged), left out by default.
        #[serde(default)]
        pub include_routine: Option<bool>,
    }
}

scoped_request! {
    /// Generic event search: `/api/events`.
    pub struct EventsRequest {
        duration: "default the whole history",
        /// `connection`, `packet_drop`, `dns` or `retransmit` (default connections and
        /// drops, as the original API had it; lookups and retransmissions only when asked
        /// for).
        #[serde(default, rename = "type")]
        pub kind: Option<EventKind>,
        /// At most this many events, the most recent (default 100; capped by the daemon's
        /// maximum, which the answer reports).
        #[serde(default)]
        #[schemars(range(min = 1))]
        pub limit: Option<i64>,
        /// Only connections with this TCP result (the other kinds have none, so they are
        /// left out: with a `type` that has none the answer is empty).
        #[serde(default)]
        pub outcome: Option<OutcomeFilter>,
        /// Drops: include routine drops (sockets closing, queues purged), left out by default.
        #[serde(default)]
        pub include_routine: Option<bool>,
    }
}

scoped_request! {
    /// What a follower of `/api/stream` wants: the list filters, without a window (it
    /// follows from now, or from where `Last-Event-ID` says it left off).
    pub struct StreamRequest {
        /// `connection`, `packet_drop` or `retransmit` (default all three; lookups are in
        /// `/api/list-dns`).
        #[serde(default, rename = "type")]
        pub kind: Option<EventKind>,
        /// Only connections with this TCP result (the other kinds have none, so they are
        /// left out; refused with a `type` that has none).
        #[serde(default)]
        pub outcome: Option<OutcomeFilter>,
        /// Drops: include routine drops (sockets closing, queues purged), left out by default.
        #[serde(default)]
        pub include_routine: Option<bool>,
    }
}

/// A TCP result to filter connections by: one of [`TcpResult`]'s names, or `unknown` (no
/// TCP result known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeFilter(pub Option<TcpResult>);

/// The filter's word for "no TCP result known".
const UNKNOWN: &str = "unknown";

impl OutcomeFilter {
    /// Every name the filter takes.
    fn names() -> &'static [&'static str] {
        static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            TcpResult::ALL
                .iter()
                .map(|r| r.label())
                .chain([UNKNOWN])
                .collect()
        });
        &NAMES
    }

    /// The stored outcome this filter matches (as [`Outcome::reported`] gives it).
    pub fn stored(self) -> Outcome {
        self.0.map_or(Outcome::Unknown, Outcome::Tcp)
    }
}

impl Serialize for OutcomeFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.map_or(UNKNOWN, TcpResult::label))
    }
}

impl<'de> Deserialize<'de> for OutcomeFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        match (TcpResult::from_label(&name), name == UNKNOWN) {
            (Some(result), _) => Ok(Self(Some(result))),
            (None, true) => Ok(Self(None)),
            (None, false) => Err(serde::de::Error::unknown_variant(&name, Self::names())),
        }
    }
}

impl JsonSchema for OutcomeFilter {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OutcomeFilter".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A TCP result (established, refused, timed_out, failed, aborted), or unknown: no TCP result known.",
            "type": "string",
            "enum": Self::names(),
        })
    }
}
