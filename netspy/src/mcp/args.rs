//! MCP tool arguments, named as the original netspy tools named them, and their mapping onto
//! the query layer's requests.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::query::{ListRequest, MAX_NAME_CHARS, Scope, SummaryRequest};

/// A process filter and a look-back window.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowArgs {
    /// Only this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Only processes with this name (as `ps -o comm` shows it), or with a thread of this
    /// name; `*` and `?` make a pattern, e.g. `python*`.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// Look back this many seconds (default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 31_536_000))]
    pub duration: Option<i64>,
    /// Only processes in this systemd unit (`nginx.service`, `session-3.scope`); `*`, `?`
    /// and `[...]` make a pattern.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub unit: Option<String>,
    /// Only processes in this container (its id, or a pattern such as `4f2c1e8b*`).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub container: Option<String>,
}

/// A process filter and how many events to return.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Only processes with this name (as `ps -o comm` shows it), or with a thread of this
    /// name; `*` and `?` make a pattern.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// At most this many events, the most recent (default 100).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_events: Option<i64>,
    /// Look back this many seconds (default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 31_536_000))]
    pub duration: Option<i64>,
    /// Only processes in this systemd unit (`nginx.service`, `session-3.scope`); `*`, `?`
    /// and `[...]` make a pattern.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub unit: Option<String>,
    /// Only processes in this container (its id, or a pattern such as `4f2c1e8b*`).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub container: Option<String>,
}

/// Text to analyse.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsightsArgs {
    /// The network telemetry to analyse (for example the output of another tool).
    #[schemars(length(min = 1, max = MAX_SUMMARY_TEXT))]
    pub summary_text: String,
}

/// A question for the AI analyst, who looks the data up itself.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextualArgs {
    /// The question, in plain words ("why does curl fail?").
    #[schemars(length(min = 1, max = MAX_QUESTION))]
    pub query: String,
    /// Focus on this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Focus on processes with this name.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// Look back this many seconds (default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 31_536_000))]
    pub duration: Option<i64>,
}

/// Default look-back of the summary tools, in seconds.
pub const DEFAULT_DURATION: i64 = 60;
/// Default number of events of the list tools.
pub const DEFAULT_MAX_EVENTS: i64 = 100;

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

fn positive(name: &str, value: Option<i64>) -> Result<Option<i64>, String> {
    match value {
        Some(v) if v < 1 => Err(format!("{name} must be a positive number, got {v}")),
        v => Ok(v),
    }
}

impl WindowArgs {
    /// The window in seconds, default applied.
    pub fn duration(&self) -> i64 {
        self.duration.unwrap_or(DEFAULT_DURATION)
    }

    /// The query-layer request, or why the arguments are wrong.
    pub fn request(&self) -> Result<SummaryRequest, String> {
        let request = SummaryRequest {
            pid: self.pid,
            // As `process_name`, so that the query layer's messages use the tools' word.
            process_name: self.process_name.clone(),
            duration_seconds: Some(
                positive("duration", self.duration)?.unwrap_or(DEFAULT_DURATION),
            ),
            unit: self.unit.clone(),
            container: self.container.clone(),
            ..Default::default()
        };
        checked(request.scope()).map(|()| request)
    }
}

impl ListArgs {
    /// The query-layer request, or why the arguments are wrong.
    pub fn request(&self) -> Result<ListRequest, String> {
        let request = ListRequest {
            pid: self.pid,
            // As `process_name`, so that the query layer's messages use the tools' word.
            process_name: self.process_name.clone(),
            duration_seconds: positive("duration", self.duration)?,
            limit: Some(positive("max_events", self.max_events)?.unwrap_or(DEFAULT_MAX_EVENTS)),
            unit: self.unit.clone(),
            container: self.container.clone(),
            ..Default::default()
        };
        checked(request.scope()).map(|()| request)
    }
}

/// The query layer's checks.
fn checked(scope: Scope) -> Result<(), String> {
    scope.validate().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let req = WindowArgs::default().request().unwrap();
        assert_eq!(req.duration_seconds, Some(60));
        let req = ListArgs {
            process_name: Some("curl".into()),
            ..Default::default()
        }
        .request()
        .unwrap();
        assert_eq!(
            (req.limit, req.process_name.as_deref()),
            (Some(100), Some("curl"))
        );
        let err = WindowArgs {
            duration: Some(-5),
            ..Default::default()
        }
        .request()
        .unwrap_err();
        assert_eq!(err, "duration must be a positive number, got -5");
        let err = ListArgs {
            max_events: Some(0),
            ..Default::default()
        }
        .request()
        .unwrap_err();
        assert_eq!(err, "max_events must be a positive number, got 0");
    }
}
