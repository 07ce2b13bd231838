//! `GET /api/stream`: the history as it grows, as Server-Sent Events (one `connection` or
//! `packet_drop` event per record, its data the JSON `/api/events` gives, its id the cursor
//! to resume from with `Last-Event-ID`; a comment line every 15 s keeps proxies from closing
//! a quiet stream). The followers read the store (`query/stream.rs`) a step at a time on the
//! query threads, so a slow one costs ingest nothing and holds at most one step of events;
//! the number of followers is capped.

use std::{
    collections::VecDeque,
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Extension,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::Stream;
use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{error::ApiError, params::Params};
use crate::query::{Cursor, Query, QueryError, StreamRequest};

/// How often a follower looks for new records.
const POLL: Duration = Duration::from_millis(200);
/// Time between keep-alive comments on a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Least time between two position messages (see [`Follower::next`]).
const POSITION: Duration = Duration::from_secs(5);

/// The followers: their cap and counters.
#[derive(Debug)]
pub struct Streams {
    slots: Arc<Semaphore>,
    open: Gauge,
    refused: Counter,
    sent: Counter,
    missed: Counter,
}

impl Streams {
    /// At most `max` followers at once.
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            open: Gauge::default(),
            refused: Counter::default(),
            sent: Counter::default(),
            missed: Counter::default(),
        }
    }

    /// Adds the counters to `/metrics`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("streams_open", "Event streams open", self.open.clone());
        registry.register(
            "streams_refused",
            "Event streams refused because --max-streams were open",
            self.refused.clone(),
        );
        registry.register(
            "stream_events_sent",
            "Events sent on event streams",
            self.sent.clone(),
        );
        registry.register(
            "stream_events_missed",
            "Records evicted from the history before a stream that fell behind read them",
            self.missed.clone(),
        );
    }
}

/// A follower's place and its hold on a slot.
struct Follower {
    query: Query,
    req: StreamRequest,
    cursor: Cursor,
    streams: Arc<Streams>,
    _slot: OwnedSemaphorePermit,
    pending: VecDeque<Event>,
    position_sent: Instant,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.streams.open.dec();
    }
}

impl Follower {
    /// The next SSE event: the next of the current step, or the next step's first once
    /// one has something (waiting [`POLL`] between looks). Steps run on the query threads,
    /// as every question does; a step the gate sheds is tried again at the next look.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            let (req, cursor) = (self.req.clone(), self.cursor);
            let step = match self
                .query
                .answer(move |q| q.stream_step(&req, cursor, now))
                .await
            {
                Ok(step) => step,
                Err(QueryError::BadRequest(e)) => {
                    tracing::debug!("stream ended: {e}");
                    return None;
                }
                Err(_) => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            for (kind, n) in step.missed {
                self.streams.missed.inc_by(n);
                let data = serde_json::json!({ "type": kind.name(), "missed": n });
                self.pending
                    .push_back(Event::default().event("missed").data(data.to_string()));
            }
            let sent_any = !step.events.is_empty();
            for (cursor, view) in step.events {
                // The view is untagged: its JSON is the kind's own.
                let (name, data) = (view.kind().name(), serde_json::to_string(&view));
                let Ok(data) = data else { continue };
                self.streams.sent.inc();
                self.pending.push_back(
                    Event::default()
                        .id(cursor.to_string())
                        .event(name)
                        .data(data),
                );
                self.position_sent = Instant::now();
            }
            if let Some(next) = step.cursor {
                // Records went by that this follower's filters leave out: now and then, say
                // where it is (`event: position`, whose id moves the client's
                // Last-Event-ID), so a reconnect does not read them again.
                if !sent_any && next != self.cursor && self.position_sent.elapsed() >= POSITION {
                    self.pending.push_back(
                        Event::default()
                            .id(next.to_string())
                            .event("position")
                            .data("{}"),
                    );
                    self.position_sent = Instant::now();
                }
                self.cursor = next;
            }
            if self.pending.is_empty() && !step.more {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// The handler.
pub async fn stream(
    State(query): State<Query>,
    Extension(streams): Extension<Arc<Streams>>,
    headers: HeaderMap,
    Params(req): Params<StreamRequest>,
) -> Response {
    match start(query, streams, &headers, req) {
        Ok(events) => Sse::new(events)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn start(
    query: Query,
    streams: Arc<Streams>,
    headers: &HeaderMap,
    req: StreamRequest,
) -> Result<impl Stream<Item = Result<Event, Infallible>> + use<>, ApiError> {
    query.ensure_ready()?;
    req.validate()?;
    let cursor = match headers.get("last-event-id") {
        Some(id) => id
            .to_str()
            .map_err(|_| ApiError::bad_request("Last-Event-ID must be text"))?
            .parse::<Cursor>()?,
        None => query.stream_start(),
    };
    let Ok(slot) = streams.slots.clone().try_acquire_owned() else {
        streams.refused.inc();
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams open (--max-streams); try again later",
        ));
    };
    streams.open.inc();
    let follower = Follower {
        query,
        req,
        cursor,
        streams,
        _slot: slot,
        pending: VecDeque::new(),
        position_sent: Instant::now(),
    };
    Ok(futures::stream::unfold(follower, Follower::next))
}
