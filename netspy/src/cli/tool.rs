//! Tool flags shared by single-command mode (`netspy --tool ...`) and interactive mode, and
//! single-command mode itself.

use clap::{Args, builder::RangedI64ValueParser};
use serde_json::{Map, Value, json};

use super::output;
use crate::{
    client::{Client, DEFAULT_SERVER},
    insights::{AiArgs, Insights},
    mcp::{MAX_QUESTION, MAX_SUMMARY_TEXT, Session, ToolInfo},
    query::{MAX_DURATION_SECONDS, MAX_NAME_CHARS},
};

/// The daemon to ask (both modes).
#[derive(Clone, Debug, Args)]
pub struct ServerArgs {
    /// The netspy daemon to ask.
    #[arg(long, value_name = "URL", default_value = DEFAULT_SERVER, env = "NETSPY_SERVER")]
    pub server: String,

    /// Bearer token of the daemon, when it has one.
    #[arg(long, env = "NETSPY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ServerArgs {
    /// An MCP session with the embedded server over this daemon, its AI tools using `ai`.
    pub async fn session(&self, ai: &AiArgs) -> anyhow::Result<Session> {
        let client = Client::new(&self.server, self.token.clone())?;
        Ok(Session::connect(client, Insights::from_env(ai)?).await?)
    }
}

/// `--duration`: the daemon's range, checked before anything is sent.
pub fn seconds() -> RangedI64ValueParser {
    clap::value_parser!(i64).range(1..=MAX_DURATION_SECONDS)
}

/// `--max-events`.
pub fn count() -> RangedI64ValueParser {
    clap::value_parser!(i64).range(1..)
}

/// A text of at most `max` characters (the daemon's limits, checked before sending).
fn at_most(max: usize) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |value: &str| match value.chars().count() {
        n if n > max => Err(format!("{n} characters; at most {max}")),
        0 => Err("empty".to_owned()),
        _ => Ok(value.to_owned()),
    }
}

/// `--process`, `--unit`, `--container`: a name or pattern of at most [`MAX_NAME_CHARS`]
/// characters.
pub fn name_pattern() -> impl Fn(&str) -> Result<String, String> + Clone {
    at_most(MAX_NAME_CHARS)
}

/// The process and window filter, as flags (single-command and interactive modes).
#[derive(Clone, Debug, Default, Args)]
pub struct ScopeFlags {
    /// Only this process id.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pid: Option<u32>,

    /// Only processes with this name, or with a thread of this name (`*`, `?` and `[...]`
    /// make a pattern; `\*` matches a literal `*`).
    #[arg(long, value_name = "NAME", value_parser = name_pattern())]
    pub process: Option<String>,

    /// Look back this many seconds (default 60, at most a year).
    #[arg(long, value_name = "S", value_parser = seconds(), allow_negative_numbers = true)]
    pub duration: Option<i64>,

    /// Only processes in this systemd unit (`nginx.service`; `*`, `?` and `[...]` make a
    /// pattern).
    #[arg(long, value_name = "UNIT", value_parser = name_pattern())]
    pub unit: Option<String>,

    /// Only processes in this container (its id, or a pattern such as `4f2c1e8b*`).
    #[arg(long, value_name = "ID", value_parser = name_pattern())]
    pub container: Option<String>,
}

/// The filter and the length of a list, as flags.
#[derive(Clone, Debug, Default, Args)]
pub struct ListFlags {
    #[command(flatten)]
    #[allow(missing_docs, reason = "flattened: its fields are the flags")]
    pub scope: ScopeFlags,

    /// At most this many events in lists, the most recent (default 100).
    #[arg(long, value_name = "N", value_parser = count(), allow_negative_numbers = true)]
    pub max_events: Option<i64>,
}

/// Filters and inputs a tool may take.
#[derive(Clone, Debug, Default, Args)]
pub struct ToolFlags {
    #[command(flatten)]
    #[allow(missing_docs, reason = "flattened: its fields are the flags")]
    pub list: ListFlags,

    /// Text for `ai_insights`.
    #[arg(long, value_name = "TEXT", value_parser = at_most(MAX_SUMMARY_TEXT))]
    pub summary_text: Option<String>,

    /// Question for `contextual_analysis`.
    #[arg(long, value_name = "Q", value_parser = at_most(MAX_QUESTION))]
    pub query: Option<String>,
}

impl From<ListFlags> for ToolFlags {
    fn from(list: ListFlags) -> Self {
        Self {
            list,
            ..Self::default()
        }
    }
}

impl From<ScopeFlags> for ToolFlags {
    fn from(scope: ScopeFlags) -> Self {
        ListFlags {
            scope,
            max_events: None,
        }
        .into()
    }
}

impl ToolFlags {
    /// The flags given, by name.
    pub fn given(&self) -> Vec<&'static str> {
        self.table()
            .into_iter()
            .filter(|(.., value)| value.is_some())
            .map(|(_, flag, _)| flag)
            .collect()
    }

    /// The tool arguments these flags give, keeping only those `tool` accepts; the others
    /// are returned by their flag name so the caller can say they were ignored. An
    /// argument the tool requires and no flag gives is an error naming its flag.
    pub fn arguments(&self, tool: &ToolInfo) -> anyhow::Result<(Value, Vec<&'static str>)> {
        let mut arguments = Map::new();
        let mut ignored = Vec::new();
        for (name, flag, value) in self.table() {
            match value {
                Some(v) if tool.arguments.iter().any(|a| a == name) => {
                    arguments.insert(name.to_owned(), v);
                }
                Some(_) => ignored.push(flag),
                None if tool.required.iter().any(|r| r == name) => {
                    anyhow::bail!("{} needs {flag}", tool.name);
                }
                None => {}
            }
        }
        Ok((Value::Object(arguments), ignored))
    }

    /// Each tool argument, its flag, and the value given.
    fn table(&self) -> [(&'static str, &'static str, Option<Value>); 8] {
        let (scope, list) = (&self.list.scope, &self.list);
        [
            ("pid", "--pid", scope.pid.map(|v| json!(v))),
            (
                "process_name",
                "--process",
                scope.process.as_ref().map(|v| json!(v)),
            ),
            ("duration", "--duration", scope.duration.map(|v| json!(v))),
            ("unit", "--unit", scope.unit.as_ref().map(|v| json!(v))),
            (
                "container",
                "--container",
                scope.container.as_ref().map(|v| json!(v)),
            ),
            (
                "max_events",
                "--max-events",
                list.max_events.map(|v| json!(v)),
            ),
            (
                "summary_text",
                "--summary-text",
                self.summary_text.as_ref().map(|v| json!(v)),
            ),
            ("query", "--query", self.query.as_ref().map(|v| json!(v))),
        ]
    }
}

/// Finds a tool by name, or says which exist.
pub fn find<'a>(tools: &'a [ToolInfo], name: &str) -> anyhow::Result<&'a ToolInfo> {
    tools.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        anyhow::anyhow!("unknown tool {name:?}; the tools are: {}", names.join(", "))
    })
}

/// `netspy --tool NAME ...`: one call, its text (or `--json` answer) on stdout. Returns
/// whether the tool succeeded.
pub async fn run_once(
    server: &ServerArgs,
    ai: &AiArgs,
    name: &str,
    flags: &ToolFlags,
    json_output: bool,
) -> anyhow::Result<bool> {
    let session = server.session(ai).await?;
    let tools = session.tools().await?;
    let tool = find(&tools, name)?;
    let (arguments, ignored) = flags.arguments(tool)?;
    for flag in ignored {
        output::warn(&format!("{flag} does not apply to {name}; ignored"));
    }
    let answer = session.call(name, arguments).await?;
    if answer.is_error {
        output::error(&answer.text);
        return Ok(false);
    }
    if json_output {
        let value = answer
            .structured
            .unwrap_or_else(|| json!({ "text": answer.text }));
        output::line(&serde_json::to_string_pretty(&value)?);
    } else {
        output::line(&answer.text);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_the_arguments_the_tool_takes() {
        let tool = ToolInfo {
            name: "get_network_summary".into(),
            description: String::new(),
            arguments: vec!["pid".into(), "process_name".into(), "duration".into()],
            required: Vec::new(),
        };
        let flags = ToolFlags::from(ListFlags {
            scope: ScopeFlags {
                process: Some("curl".into()),
                duration: Some(30),
                ..Default::default()
            },
            max_events: Some(5),
        });
        let (args, ignored) = flags.arguments(&tool).unwrap();
        assert_eq!(args, json!({"process_name": "curl", "duration": 30}));
        assert_eq!(ignored, vec!["--max-events"]);
        let insights = ToolInfo {
            name: "ai_insights".into(),
            description: String::new(),
            arguments: vec!["summary_text".into()],
            required: vec!["summary_text".into()],
        };
        assert_eq!(
            flags.arguments(&insights).unwrap_err().to_string(),
            "ai_insights needs --summary-text"
        );
    }
}
