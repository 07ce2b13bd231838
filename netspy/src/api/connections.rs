//! The server loop's register of open connections: which have a request in flight, which
//! has been idle longest, and closing one to make room without cutting a request short.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Instant,
};

use axum::body::{Body, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio_util::sync::CancellationToken;

/// Set in [`Connection::busy`] once the connection was chosen to make room: no request was
/// in flight then, and whatever starts afterwards is let finish.
const EVICTED: usize = 1 << (usize::BITS - 1);

/// One open connection.
pub struct Connection {
    /// Requests in flight (response bodies included), plus [`EVICTED`].
    busy: AtomicUsize,
    served: AtomicU64,
    idle_since_ms: AtomicU64,
    close: CancellationToken,
}

impl Connection {
    /// Cancelled when the connection was chosen to make room.
    pub fn evicted(&self) -> &CancellationToken {
        &self.close
    }

    /// True while a request of this connection is in flight.
    pub fn in_flight(&self) -> bool {
        self.busy.load(Ordering::Acquire) & !EVICTED > 0
    }

    /// True once it has served a request.
    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0
    }
}

/// Whether a new connection fits.
pub enum Room {
    /// Under the cap.
    Free,
    /// An idle connection was told to close to make room.
    Evicted,
    /// At the cap, every connection busy.
    Full,
}

/// The open connections.
pub struct Connections {
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Connections {
    /// None open yet.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::default(),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a new connection; it leaves the register when the returned guard drops.
    pub fn add(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            close: CancellationToken::new(),
        });
        self.open().insert(id, connection.clone());
        Registered {
            id,
            handle: Handle {
                connection,
                connections: self.clone(),
            },
        }
    }

    /// Makes room for one more under `max`, telling the longest-idle connection to close
    /// when full. The choice is atomic with the connection's next request: a connection
    /// whose request began first is not chosen.
    pub fn make_room(&self, max: usize) -> Room {
        let open = self.open();
        if open.len() < max {
            return Room::Free;
        }
        let mut idle: Vec<&Arc<Connection>> = open
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .collect();
        idle.sort_unstable_by_key(|c| c.idle_since_ms.load(Ordering::Relaxed));
        for connection in idle {
            if connection
                .busy
                .compare_exchange(0, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                connection.close.cancel();
                return Room::Evicted;
            }
        }
        Room::Full
    }
}

/// A connection's place in the register, given up on drop (whatever ends its task).
pub struct Registered {
    id: u64,
    /// The connection and a way to mark its requests.
    pub handle: Handle,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.handle.connections.open().remove(&self.id);
    }
}

/// A registered connection, for its requests to mark it busy.
#[derive(Clone)]
pub struct Handle {
    /// The connection.
    pub connection: Arc<Connection>,
    connections: Arc<Connections>,
}

impl Handle {
    /// Marks the connection busy until the returned guard drops.
    pub fn busy(&self) -> Busy {
        self.connection.busy.fetch_add(1, Ordering::AcqRel);
        self.connection.served.fetch_add(1, Ordering::Relaxed);
        Busy {
            connection: self.connection.clone(),
            connections: self.connections.clone(),
        }
    }
}

/// A request in flight on a connection.
pub struct Busy {
    connection: Arc<Connection>,
    connections: Arc<Connections>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connection
            .idle_since_ms
            .store(self.connections.now_ms(), Ordering::Relaxed);
        self.connection.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is sent or dropped.
pub struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl TrackedBody {
    /// `inner`, holding `busy` until it ends.
    pub fn new(inner: Body, busy: Busy) -> Self {
        Self { inner, _busy: busy }
    }
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_connection_makes_room_and_a_busy_one_never_does() {
        let connections = Arc::new(Connections::new());
        let first = connections.add();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = connections.add();
        assert!(matches!(connections.make_room(3), Room::Free));
        let request = first.handle.busy();
        assert!(matches!(connections.make_room(2), Room::Evicted));
        assert!(
            second.handle.connection.evicted().is_cancelled(),
            "the idle one"
        );
        assert!(!first.handle.connection.evicted().is_cancelled());
        // Still two registered (the evicted one closes in its own task); nothing else idle.
        assert!(matches!(connections.make_room(2), Room::Full));
        // A request that starts on an evicted connection is seen as in flight.
        let late = second.handle.busy();
        assert!(second.handle.connection.in_flight());
        drop((late, request, second));
        assert!(matches!(connections.make_room(2), Room::Free));
        drop(first);
        assert!(connections.open().is_empty());
    }
}
