//! MCP tool arguments, named as the original netspy tools named them, and their mapping onto
//! the query layer's requests.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::query::{
    DEFAULT_LIMIT, DEFAULT_WINDOW_SECONDS, FieldNames, ListRequest, MAX_NAME_CHARS, Scope, Scoped,
    SummaryRequest,
};

/// The tools' names of the fields the REST API names otherwise, for the query layer's
/// refusals.
pub const ARGUMENT_NAMES: FieldNames = FieldNames {
    duration: "duration",
    limit: "max_events",
};

/// Tool arguments: the process and window filter (each field written here once, with its
/// schema), then the tool's own arguments. Defaults and rules are the query layer's.
macro_rules! tool_args {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Only this process id.
            #[serde(default)]
            #[schemars(range(max = 4_294_967_295u32))]
            pub pid: Option<u32>,
            /// Only processes with this name (as `ps -o comm` shows it), or with a thread of
            /// this name; `*`, `?` and `[...]` make a pattern, e.g. `python*`.
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub process_name: Option<String>,
            /// Look back this many seconds (default 60, at most a year).
            #[serde(default)]
            #[schemars(range(min = 1, max = 31_536_000))]
            pub duration: Option<i64>,
            /// Only processes in this systemd unit (`nginx.service`, `session-3.scope`);
            /// `*`, `?` and `[...]` make a pattern.
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub unit: Option<String>,
            /// Only processes in this container (its id, or a pattern such as `4f2c1e8b*`).
            #[serde(default)]
            #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
            pub container: Option<String>,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// The process and window filter, in the query layer's terms.
            pub fn scope(&self) -> Scope {
                Scope {
                    pid: self.pid,
                    // As `process_name`, so that a refusal names the tools' argument.
                    process_name: self.process_name.clone(),
                    duration_seconds: self.duration,
                    unit: self.unit.clone(),
                    container: self.container.clone(),
                    ..Scope::default()
                }
            }
        }
    };
}

tool_args! {
    /// A process filter and a look-back window.
    #[derive(Default)]
    pub struct WindowArgs {}
}

tool_args! {
    /// A process filter, a look-back window and how many events to return.
    #[derive(Default)]
    pub struct ListArgs {
        /// At most this many events, the most recent (default 100).
        #[serde(default)]
        #[schemars(range(min = 1))]
        pub max_events: Option<i64>,
    }
}

tool_args! {
    /// A question for the AI analyst, who looks the data up itself, and what to focus on.
    pub struct ContextualArgs {
        /// The question, in plain words ("why does curl fail?").
        #[schemars(length(min = 1, max = MAX_QUESTION))]
        pub query: String,
    }
}

/// Text to analyse.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsightsArgs {
    /// The network telemetry to analyse (for example the output of another tool).
    #[schemars(length(min = 1, max = MAX_SUMMARY_TEXT))]
    pub summary_text: String,
}

/// Longest `summary_text`, in characters.
pub const MAX_SUMMARY_TEXT: usize = 16_384;
/// Longest `query`, in characters.
pub const MAX_QUESTION: usize = 4_096;

/// A required text argument: not blank, at most `max` characters (as its schema says).
pub fn text(name: &str, value: &str, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if value.trim().is_empty() {
        Err(format!("{name} must not be empty"))
    } else if chars > max {
        Err(format!(
            "{name} must be at most {max} characters, got {chars}"
        ))
    } else {
        Ok(())
    }
}

impl WindowArgs {
    /// The query-layer request, or why the arguments are wrong (in the tools' words).
    /// The query layer's default window is sent as such: a daemon of another make (the
    /// original ebpf-server) applies it too.
    pub fn request(&self) -> Result<SummaryRequest, String> {
        checked(SummaryRequest {
            duration_seconds: Some(self.duration.unwrap_or(DEFAULT_WINDOW_SECONDS)),
            ..SummaryRequest::scoped(self.scope())
        })
    }
}

impl ListArgs {
    /// The query-layer request, or why the arguments are wrong (in the tools' words).
    /// The query layer's default length is sent as such (the daemon says when its cap
    /// cut it; another make of daemon applies it too).
    pub fn request(&self) -> Result<ListRequest, String> {
        let default = i64::try_from(DEFAULT_LIMIT).unwrap_or(i64::MAX);
        checked(ListRequest {
            limit: Some(self.max_events.unwrap_or(default)),
            ..ListRequest::scoped(self.scope())
        })
    }
}

impl ContextualArgs {
    /// The window this question looks at (its filter, without the question).
    pub fn window(&self) -> WindowArgs {
        WindowArgs {
            pid: self.pid,
            process_name: self.process_name.clone(),
            duration: self.duration,
            unit: self.unit.clone(),
            container: self.container.clone(),
        }
    }
}

/// The request, once the query layer's rules pass.
fn checked<R: Scoped>(request: R) -> Result<R, String> {
    match request.check(ARGUMENT_NAMES) {
        Ok(()) => Ok(request),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_layer_defaults_and_refuses_in_the_tools_words() {
        let req = WindowArgs::default().request().unwrap();
        let window = SummaryRequest {
            duration_seconds: Some(60),
            ..Default::default()
        };
        assert_eq!(req, window, "the query layer's default window, sent");
        let req = ListArgs::default().request().unwrap();
        assert_eq!((req.limit, req.duration_seconds), (Some(100), None));
        let req = ListArgs {
            process_name: Some("curl".into()),
            max_events: Some(5),
            duration: Some(30),
            ..Default::default()
        }
        .request()
        .unwrap();
        assert_eq!(
            (req.limit, req.process_name.as_deref(), req.duration_seconds),
            (Some(5), Some("curl"), Some(30))
        );
        let err = WindowArgs {
            duration: Some(-5),
            ..Default::default()
        }
        .request()
        .unwrap_err();
        assert_eq!(err, "duration must be between 1 and 31536000, got -5");
        let err = ListArgs {
            max_events: Some(0),
            ..Default::default()
        }
        .request()
        .unwrap_err();
        assert_eq!(err, "max_events must be at least 1, got 0");
        let err = ListArgs {
            process_name: Some(String::new()),
            ..Default::default()
        }
        .request()
        .unwrap_err();
        assert_eq!(err, "process_name must not be empty");
    }
}
