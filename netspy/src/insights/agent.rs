//! The contextual analyst: a bounded loop in which the model may call the read-only
//! telemetry tools (function calling generated from the MCP tool schemas) before answering.

use std::future::Future;

use serde_json::{Value, json};

use super::{
    chat::{Chat, InsightsError},
    prompt::{self, Focus},
};

/// Rounds of tool calls before the model must answer.
pub const MAX_ROUNDS: usize = 4;
/// Tool calls honoured per round.
pub const MAX_CALLS_PER_ROUND: usize = 6;

/// A tool offered to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// Runs the read-only tools the model asks for.
pub trait ToolExecutor: Send + Sync {
    /// The tools the model may call (read-only ones only).
    fn specs(&self) -> Vec<ToolSpec>;
    /// Runs one; the text answer, or why it failed (both go back to the model).
    fn execute(
        &self,
        name: &str,
        arguments: Value,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

fn function(spec: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    })
}

/// Asks `question`, letting the model call `tools`.
pub async fn run<E: ToolExecutor>(
    chat: &Chat,
    question: &str,
    focus: &Focus,
    tools: &E,
) -> Result<String, InsightsError> {
    let specs = tools.specs();
    let functions: Vec<Value> = specs.iter().map(function).collect();
    let mut messages = vec![prompt::system(), prompt::user_question(question, focus)];
    for round in 0..=MAX_ROUNDS {
        // The last round offers no tools: the model has to answer with what it has.
        let offered = (round < MAX_ROUNDS).then_some(functions.as_slice());
        let reply = chat.complete(messages.clone(), offered).await?;
        let calls = reply.tool_calls();
        if calls.is_empty() || offered.is_none() {
            return reply
                .text()
                .ok_or_else(|| InsightsError::Empty(chat.endpoint()));
        }
        messages.push(reply.message());
        for (i, call) in calls.iter().enumerate() {
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let content = if i >= MAX_CALLS_PER_ROUND {
                format!("refused: at most {MAX_CALLS_PER_ROUND} tool calls per turn")
            } else {
                run_call(call, &specs, tools).await
            };
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
        }
    }
    Err(InsightsError::Empty(chat.endpoint()))
}

/// One tool call, validated: a known read-only tool, arguments a JSON object. The result goes
/// back quoted, as data.
async fn run_call<E: ToolExecutor>(call: &Value, specs: &[ToolSpec], tools: &E) -> String {
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !specs.iter().any(|s| s.name == name) {
        tracing::warn!(
            tool = name,
            "the model asked for a tool it was not offered; refused"
        );
        return format!("refused: {name:?} is not one of the available tools");
    }
    let raw = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or("{}");
    let arguments =
        match serde_json::from_str::<Value>(if raw.trim().is_empty() { "{}" } else { raw }) {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(_) | Err(_) => return "error: the arguments must be a JSON object".to_owned(),
        };
    tracing::info!(tool = name, %arguments, "AI analyst calls a tool");
    match tools.execute(name, arguments).await {
        Ok(text) => prompt::quote(&text),
        Err(e) => format!("error: {e}"),
    }
}
