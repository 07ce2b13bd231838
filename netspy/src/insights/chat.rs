//! One chat-completions exchange with an OpenAI-compatible endpoint (async-openai, whose
//! client retries 429 and 5xx three times with exponential backoff or the server's
//! Retry-After): one deadline over the whole exchange, retries included, so that nothing
//! hangs; errors explained in words; the API key kept out of every message.

use std::time::Duration;

use async_openai::{Client, config::OpenAIConfig, error::OpenAIError};
use serde_json::{Value, json};

/// Retries async-openai makes on 429 and 5xx before giving up.
const RETRIES: u32 = 3;

/// Why the model gave no answer. Every message names the endpoint and what to do.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InsightsError {
    /// Bad configuration (URL).
    #[error("AI endpoint configuration: {0}")]
    Config(String),
    /// 401/403.
    #[error("the AI endpoint {0} rejected the API key (HTTP {1}): check OPENAI_API_KEY")]
    Unauthorized(String, u16),
    /// 404 (usually an unknown model).
    #[error(
        "the AI endpoint {0} does not serve model {1:?} (HTTP 404): set NETSPY_MODEL or --model to one it serves"
    )]
    ModelNotFound(String, String),
    /// 429 on every attempt.
    #[error(
        "the AI endpoint {0} is rate limiting (HTTP 429, still after {RETRIES} retries): try again later"
    )]
    RateLimited(String),
    /// 5xx on every attempt.
    #[error("the AI endpoint {0} failed (HTTP {1}, still after {RETRIES} retries)")]
    Server(String, u16),
    /// Another refusal.
    #[error("the AI endpoint {0} refused the request (HTTP {1}): {2}")]
    Rejected(String, u16, String),
    /// No answer in time.
    #[error("no answer from the AI endpoint {0} within {1}s (raise --ai-timeout for slow models)")]
    Timeout(String, u64),
    /// Could not connect.
    #[error("cannot reach the AI endpoint {0}: {1}")]
    Unreachable(String, String),
    /// An answer netspy could not read.
    #[error("unexpected answer from the AI endpoint {0}: {1}")]
    Protocol(String, String),
    /// An answer without text.
    #[error("the AI endpoint {0} answered with no text")]
    Empty(String),
}

/// The assistant message of a completion.
pub struct Reply {
    message: Value,
}

impl Reply {
    /// The text, if any.
    pub fn text(&self) -> Option<String> {
        self.message
            .get("content")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            // A model that repeats the key it was called with does not pass it on.
            .map(|t| crate::logging::redact(t).into_owned())
    }

    /// The tool calls asked for.
    pub fn tool_calls(&self) -> Vec<Value> {
        self.message
            .get("tool_calls")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The message as it goes back into the conversation.
    pub fn message(&self) -> Value {
        self.message.clone()
    }
}

/// A configured endpoint and model.
#[derive(Clone)]
pub struct Chat {
    client: Client<OpenAIConfig>,
    base_url: String,
    model: String,
    timeout: Duration,
}

impl Chat {
    /// An endpoint at `base_url` (no key: local servers such as Ollama need none).
    pub fn new(
        base_url: &str,
        key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, InsightsError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let scheme = base_url.split("://").next().unwrap_or("");
        if !matches!(scheme, "http" | "https") || !base_url.contains("://") {
            return Err(InsightsError::Config(format!(
                "base URL {base_url:?} must start with http:// or https://"
            )));
        }
        if model.trim().is_empty() {
            return Err(InsightsError::Config("the model name is empty".into()));
        }
        if let Some(key) = &key {
            // Whatever the endpoint or a library echoes back, the key is masked in every log
            // line and answer.
            crate::logging::register_secret(key);
        }
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| InsightsError::Config(format!("building the HTTP client: {e}")))?;
        // Local servers ignore the key; OpenAI's client insists on one.
        let config = OpenAIConfig::new()
            .with_api_base(&base_url)
            .with_api_key(key.unwrap_or_else(|| "none".into()));
        let client = Client::with_config(config).with_http_client(http);
        Ok(Self {
            client,
            base_url,
            model: model.to_owned(),
            timeout,
        })
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// `base_url (model)`.
    pub fn endpoint(&self) -> String {
        format!("{} (model {})", self.base_url, self.model)
    }

    /// One completion of `messages`, with `tools` offered when given.
    pub async fn complete(
        &self,
        messages: Vec<Value>,
        tools: Option<&[Value]>,
    ) -> Result<Reply, InsightsError> {
        let mut request = json!({
            "model": self.model,
            "messages": messages,
            "temperature": 0.2,
            "stream": false,
        });
        if let Some(tools) = tools.filter(|t| !t.is_empty()) {
            request["tools"] = Value::Array(tools.to_vec());
            request["tool_choice"] = json!("auto");
        }
        // One deadline for the exchange: a Retry-After of an hour must not hold the tool.
        let chat = self.client.chat();
        let exchange = chat.create_byot::<_, Value>(&request);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(response)) => self.reply(&response),
            Ok(Err(e)) => Err(self.explain(e)),
            Err(_) => Err(InsightsError::Timeout(
                self.endpoint(),
                self.timeout.as_secs(),
            )),
        }
    }

    fn reply(&self, response: &Value) -> Result<Reply, InsightsError> {
        let message = response
            .pointer("/choices/0/message")
            .cloned()
            .ok_or_else(|| {
                InsightsError::Protocol(
                    self.endpoint(),
                    "no choices[0].message in the answer".into(),
                )
            })?;
        Ok(Reply { message })
    }

    fn explain(&self, e: OpenAIError) -> InsightsError {
        let endpoint = self.endpoint();
        let error = match e {
            OpenAIError::ApiError(response) => {
                let status = response.status_code.as_u16();
                match status {
                    401 | 403 => InsightsError::Unauthorized(endpoint, status),
                    404 => InsightsError::ModelNotFound(endpoint, self.model.clone()),
                    429 => InsightsError::RateLimited(endpoint),
                    500..=599 => InsightsError::Server(endpoint, status),
                    _ => InsightsError::Rejected(endpoint, status, response.api_error.message),
                }
            }
            OpenAIError::Reqwest(e) if e.is_timeout() => {
                InsightsError::Timeout(endpoint, self.timeout.as_secs())
            }
            OpenAIError::Reqwest(e) => {
                InsightsError::Unreachable(endpoint, crate::error_chain::error_chain(&e))
            }
            OpenAIError::JSONDeserialize(e, _) => InsightsError::Protocol(endpoint, e.to_string()),
            other => InsightsError::Protocol(endpoint, other.to_string()),
        };
        self.redacted(error)
    }

    /// The error with every registered secret (the API key) removed from the endpoint's
    /// words.
    fn redacted(&self, error: InsightsError) -> InsightsError {
        let clean = |text: String| crate::logging::redact(&text).into_owned();
        match error {
            InsightsError::Rejected(a, s, m) => InsightsError::Rejected(a, s, clean(m)),
            InsightsError::Unreachable(a, m) => InsightsError::Unreachable(a, clean(m)),
            InsightsError::Protocol(a, m) => InsightsError::Protocol(a, clean(m)),
            other => other,
        }
    }
}
