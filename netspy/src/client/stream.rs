//! Following a daemon's event stream (`GET /api/stream`, Server-Sent Events).

use eventsource_stream::Eventsource as _;
use futures::{Stream, StreamExt as _};

use super::Client;
use crate::query::{EventKind, EventView, StreamRequest, TelemetryError};

/// How long connecting to the daemon may take (the stream itself has no end).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest silence of the stream before it counts as broken.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

/// One item of the stream.
#[derive(Debug)]
pub enum StreamItem {
    /// An event, with the id to resume after it (`Last-Event-ID`).
    Event {
        /// Its id.
        id: String,
        /// The event, as `/api/events` gives it.
        view: Box<EventView>,
    },
    /// Where the stream is after records the filters left out: the id to resume from.
    Position {
        /// Its id.
        id: String,
    },
    /// Records of one kind (`connection`, `packet_drop`) evicted from the daemon's history
    /// before this stream read them.
    Missed {
        /// Their kind.
        kind: String,
        /// How many (matching the filters or not).
        count: u64,
    },
}

impl Client {
    /// The daemon's events as it stores them, filtered by `req`, from after the event
    /// `last_id` (`None`: from now). Ends when the daemon closes the stream.
    pub async fn follow(
        &self,
        req: &StreamRequest,
        last_id: Option<&str>,
    ) -> Result<impl Stream<Item = Result<StreamItem, TelemetryError>> + use<>, TelemetryError>
    {
        req.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // The daemon writes at least every 15 s (keep-alive comments): a silence this
            // long is a daemon or network gone without a word.
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| TelemetryError::Protocol(format!("building the HTTP client: {e}")))?;
        let url = format!("{}/api/stream", self.base);
        let mut request = http.get(&url).query(req);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(self.refusal(&url, status, &text));
        }
        let base = self.base.clone();
        Ok(response
            .bytes_stream()
            .eventsource()
            .filter_map(move |item| {
                let item = match item {
                    Ok(event) => decode(&event.event, &event.id, &event.data),
                    Err(e) => Some(Err(TelemetryError::Unreachable(format!(
                        "the stream from {base} broke: {e}"
                    )))),
                };
                std::future::ready(item)
            }))
    }
}

/// An SSE event as a stream item (None for kinds this client does not know).
fn decode(kind: &str, id: &str, data: &str) -> Option<Result<StreamItem, TelemetryError>> {
    let bad = |e: serde_json::Error| {
        TelemetryError::Protocol(format!("unexpected {kind} event in the stream: {e}"))
    };
    // Each kind read as its own view (the untagged EventView would try them in turn).
    let event = |view: Result<EventView, serde_json::Error>| {
        view.map(|view| StreamItem::Event {
            id: id.to_owned(),
            view: Box::new(view),
        })
        .map_err(bad)
    };
    if let Some(kind) = EventKind::named(kind) {
        return Some(event(kind.parse_view(data)));
    }
    Some(match kind {
        "position" => Ok(StreamItem::Position { id: id.to_owned() }),
        "missed" => serde_json::from_str::<serde_json::Value>(data)
            .map(|v| StreamItem::Missed {
                kind: v["type"].as_str().unwrap_or_default().to_owned(),
                count: v["missed"].as_u64().unwrap_or(0),
            })
            .map_err(bad),
        _ => return None,
    })
}
