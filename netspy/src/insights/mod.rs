//! AI insights from any OpenAI-compatible endpoint (OpenAI, Azure-style gateways, Ollama,
//! vLLM, llama.cpp): plain analysis of a text (`ai_insights`), and an analyst that looks the
//! data up itself through the read-only telemetry tools (`contextual_analysis`).
//!
//! Event strings (process names, paths) are chosen by whoever runs on the host, so they reach
//! the model only as quoted, length-capped data (`prompt.rs`); the model can call only the
//! read-only tools, with validated arguments and a capped number of calls (`agent.rs`); the
//! API key never appears in logs, errors or answers (`chat.rs`).
//!
//! async-openai lives only here.

mod agent;
mod chat;
mod prompt;

use std::time::Duration;

use clap::Args;

use self::chat::Chat;
pub use self::{
    agent::{ToolExecutor, ToolSpec},
    chat::InsightsError,
};

/// The model the original netspy used; any name the endpoint serves is accepted.
pub const DEFAULT_MODEL: &str = "gpt-3.5-turbo";
/// OpenAI's API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Where AI insights come from. The key is read from OPENAI_API_KEY only (never a flag, so it
/// does not show in `ps`).
#[derive(Clone, Debug, Args)]
pub struct AiArgs {
    /// Base URL of an OpenAI-compatible API (Ollama: http://localhost:11434/v1).
    #[arg(long = "openai-base-url", value_name = "URL", env = "OPENAI_BASE_URL")]
    pub base_url: Option<String>,

    /// Model for AI insights (any name the endpoint serves).
    #[arg(long, value_name = "NAME", env = "NETSPY_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,

    /// How long one AI answer may take, retries included (e.g. 30s, 2m).
    #[arg(long = "ai-timeout", value_name = "DURATION", default_value = "60s",
          env = "NETSPY_AI_TIMEOUT", value_parser = parse_timeout)]
    pub timeout: Duration,
}

impl Default for AiArgs {
    fn default() -> Self {
        Self {
            base_url: None,
            model: DEFAULT_MODEL.into(),
            timeout: Duration::from_secs(60),
        }
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30s, 2m)"))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(600) {
        return Err("the AI timeout must be between 1s and 10m".into());
    }
    Ok(d)
}

/// A configured AI analyst.
#[derive(Clone)]
pub struct Insights {
    chat: Chat,
}

impl std::fmt::Debug for Insights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Insights")
            .field("endpoint", &self.chat.endpoint())
            .finish_non_exhaustive()
    }
}

/// How to configure AI insights, for answers given without them.
pub const HOW_TO_CONFIGURE: &str = "Set OPENAI_API_KEY where netspy runs (and OPENAI_BASE_URL and NETSPY_MODEL, or \
     --openai-base-url and --model, for other OpenAI-compatible servers such as Ollama, vLLM or llama.cpp).";

impl Insights {
    /// The analyst `args` and the `OPENAI_API_KEY` environment describe, or None when none is
    /// configured (no key and no base URL).
    pub fn from_env(args: &AiArgs) -> Result<Option<Self>, InsightsError> {
        let key = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        Self::new(args, key)
    }

    /// The analyst for `args` with an explicit key.
    pub fn new(args: &AiArgs, key: Option<String>) -> Result<Option<Self>, InsightsError> {
        if key.is_none() && args.base_url.is_none() {
            return Ok(None);
        }
        let base_url = args
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        Chat::new(&base_url, key, &args.model, args.timeout).map(|chat| Some(Self { chat }))
    }

    /// `base_url (model)`, for messages.
    pub fn endpoint(&self) -> String {
        self.chat.endpoint()
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        self.chat.model()
    }

    /// An analysis of a telemetry text.
    pub async fn analyze_text(&self, text: &str) -> Result<String, InsightsError> {
        let messages = vec![prompt::system(), prompt::user_text(text)];
        let reply = self.chat.complete(messages, None).await?;
        reply
            .text()
            .ok_or_else(|| InsightsError::Empty(self.endpoint()))
    }

    /// An answer to a question, the model calling the read-only tools of `tools` itself.
    pub async fn contextual<E: ToolExecutor>(
        &self,
        question: &str,
        focus: &prompt::Focus,
        tools: &E,
    ) -> Result<String, InsightsError> {
        agent::run(&self.chat, question, focus, tools).await
    }
}

pub use self::prompt::Focus;

/// The structured answer of the AI tools (`ai_insights`, `contextual_analysis`): the model's
/// analysis, or, when no model answered, why not and the local pattern analysis instead.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct InsightsAnswer {
    /// `model` when the AI answered, `local` when the local analysis stands in.
    pub source: InsightsSource,
    /// The model's analysis (source `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<String>,
    /// The model that answered (source `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why no model answered, and how to fix it (source `local`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deterministic pattern analysis of the same window (source `local`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_analysis: Option<crate::query::Analysis>,
}

/// Who produced an [`InsightsAnswer`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum InsightsSource {
    /// The configured AI model.
    Model,
    /// netspy's local pattern analysis.
    Local,
}

impl InsightsAnswer {
    /// The model's answer.
    pub fn from_model(model: &str, analysis: String) -> Self {
        Self {
            source: InsightsSource::Model,
            analysis: Some(analysis),
            model: Some(model.to_owned()),
            reason: None,
            local_analysis: None,
        }
    }

    /// The local analysis, with why the model did not answer.
    pub fn local(reason: String, analysis: crate::query::Analysis) -> Self {
        Self {
            source: InsightsSource::Local,
            analysis: None,
            model: None,
            reason: Some(reason),
            local_analysis: Some(analysis),
        }
    }
}
