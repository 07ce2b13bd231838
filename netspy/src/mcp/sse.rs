//! The legacy HTTP+SSE transport (MCP 2024-11-05) for clients that still speak it:
//! `GET /sse` opens an event stream whose first event names the endpoint to POST messages to
//! (`/messages?sessionId=...`); every server message then arrives as a `message` event.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json,
    body::Body,
    extract::{Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, PollSender};

use super::{
    NetspyMcp,
    http::{read_message, too_many_sessions},
};
use crate::{
    api::{ErrorBody, HttpStats},
    insights::Insights,
    query::Telemetry,
};

type Inboxes = Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>;

/// Live SSE sessions: where to deliver each session's client messages.
#[derive(Clone)]
pub struct Sessions<T: Telemetry> {
    inboxes: Inboxes,
    telemetry: T,
    insights: Option<Insights>,
    max_sessions: usize,
    stats: Arc<HttpStats>,
    shutdown: CancellationToken,
}

impl<T: Telemetry> Sessions<T> {
    /// No sessions yet; at most `max_sessions` at once.
    pub fn new(
        telemetry: T,
        insights: Option<Insights>,
        max_sessions: usize,
        stats: Arc<HttpStats>,
        shutdown: CancellationToken,
    ) -> Self {
        let inboxes = Inboxes::default();
        let counted = inboxes.clone();
        stats.track_sessions(
            "sse",
            Arc::new(move || {
                Some(
                    counted
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .len(),
                )
            }),
        );
        Self {
            inboxes,
            telemetry,
            insights,
            max_sessions,
            stats,
            shutdown,
        }
    }

    fn inboxes(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>> {
        self.inboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes the session when its event stream is dropped (the client went away).
struct SessionGuard {
    id: String,
    inboxes: Inboxes,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.inboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

/// `GET /sse`: a new session and its event stream.
pub async fn connect<T: Telemetry>(State(sessions): State<Sessions<T>>) -> Response {
    let id = uuid_like();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(64);
    {
        // Counted and taken under one lock, so that a burst cannot overshoot the cap.
        let mut inboxes = sessions.inboxes();
        if inboxes.len() >= sessions.max_sessions {
            drop(inboxes);
            sessions.stats.session_refused("sse");
            return too_many_sessions("SSE", sessions.max_sessions);
        }
        inboxes.insert(id.clone(), to_server);
    }

    let server =
        NetspyMcp::new(sessions.telemetry.clone()).with_insights(sessions.insights.clone());
    let stop = sessions.shutdown.child_token();
    let session_id = id.clone();
    tokio::spawn(async move {
        let transport = (PollSender::new(to_client), ReceiverStream::new(from_client));
        match server.serve(transport).await {
            Ok(running) => {
                tokio::select! {
                    _ = running.waiting() => {}
                    () = stop.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::debug!(session = %session_id, "SSE session ended before initialization: {e}")
            }
        }
    });

    let guard = SessionGuard {
        id: id.clone(),
        inboxes: sessions.inboxes.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={id}"));
    let messages = ReceiverStream::new(from_server).map(move |message| {
        let _keep = &guard;
        Ok::<_, Infallible>(
            Event::default()
                .event("message")
                .json_data(&message)
                .unwrap_or_else(|e| {
                    tracing::error!("serializing an MCP message: {e}");
                    Event::default().comment("dropped an unserializable message")
                }),
        )
    });
    // The stream ends at shutdown, so that no open client holds the daemon up.
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        futures::stream::once(async move { Ok(endpoint) })
            .chain(messages)
            .take_until(sessions.shutdown.clone().cancelled_owned()),
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The `sessionId` query parameter of `POST /messages`.
#[derive(Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `POST /messages?sessionId=...`: one JSON-RPC message for a session; answers go out on its
/// event stream.
pub async fn message<T: Telemetry>(
    State(sessions): State<Sessions<T>>,
    query: Result<Query<SessionQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    let Ok(Query(SessionQuery { session_id })) = query else {
        return error(StatusCode::BAD_REQUEST, "missing sessionId query parameter");
    };
    let message = match read_message(body).await {
        Ok((_, message)) => message,
        Err(refused) => return refused,
    };
    let inbox = sessions.inboxes().get(&session_id).cloned();
    let Some(inbox) = inbox else {
        return error(
            StatusCode::NOT_FOUND,
            "no such session (open one with GET /sse)",
        );
    };
    match inbox.send(message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => error(StatusCode::GONE, "the session has ended"),
    }
}

/// A random session id (128 bits from the OS).
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    if getrandom(&mut bytes).is_err() {
        // Unique enough for routing when the OS has no entropy to give.
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
