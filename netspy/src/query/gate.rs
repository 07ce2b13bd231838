//! How much query work the daemon takes on at once: a few queries run at a time on the
//! blocking pool (never on the async workers that serve connections and `/health`), a short
//! queue waits for them, and each request has a deadline. Past the queue or the deadline a
//! request is shed: `QueryError::Overloaded`, a 503 with `Retry-After`, counted by reason.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use tokio::{sync::Semaphore, time::Instant};

use super::QueryError;

/// Limits on query work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Queries running at once.
    pub concurrent: usize,
    /// Queries waiting for one of those places; more are shed at once.
    pub queued: usize,
    /// The longest a request may take, waiting included; past it the client gets a 503 (a
    /// query already running finishes in the background, keeping its place).
    pub deadline: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            concurrent: std::thread::available_parallelism().map_or(2, usize::from),
            queued: 64,
            deadline: Duration::from_secs(10),
        }
    }
}

/// Why a request was shed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedReason {
    /// `queue_full` or `deadline`.
    pub reason: &'static str,
}

/// The gate every data query passes.
pub struct Gate {
    limits: QueryLimits,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Queries running now.
    pub running: Gauge,
    /// Requests shed, by reason.
    pub shed: Family<ShedReason, Counter>,
}

/// Seconds a shed client is told to wait before asking again.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// One place in the queue, given back however the wait ends (the request may be dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gate {
    /// A gate with these limits (at least one query runs at a time).
    pub fn new(limits: QueryLimits) -> Self {
        let shed = Family::default();
        for reason in ["queue_full", "deadline"] {
            let _ = shed.get_or_create(&ShedReason { reason });
        }
        Self {
            permits: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            limits,
            waiting: AtomicUsize::new(0),
            running: Gauge::default(),
            shed,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    fn shed(&self, reason: &'static str) -> QueryError {
        self.shed.get_or_create(&ShedReason { reason }).inc();
        QueryError::Overloaded(match reason {
            "queue_full" => format!(
                "netspy is busy: {} queries are running and {} waiting; try again in {RETRY_AFTER_SECONDS} s",
                self.limits.concurrent, self.limits.queued
            ),
            _ => format!(
                "netspy is busy: the query did not finish within {} ms; try again in {RETRY_AFTER_SECONDS} s or ask a narrower question",
                self.limits.deadline.as_millis()
            ),
        })
    }

    /// Runs `work` on the blocking pool once a place is free, within the deadline.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let deadline = Instant::now() + self.limits.deadline;
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.limits.queued {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    return Err(self.shed("queue_full"));
                }
                let _place = Waiting(&self.waiting);
                match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await
                {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => {
                        return Err(QueryError::Unavailable("netspy is stopping".into()));
                    }
                    Err(_) => return Err(self.shed("deadline")),
                }
            }
        };
        let gate = self.clone();
        gate.running.inc();
        let job = tokio::task::spawn_blocking(move || {
            let answer = work();
            gate.running.dec();
            drop(permit);
            answer
        });
        match tokio::time::timeout_at(deadline, job).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::error!("a query failed: {e}");
                Err(QueryError::Unavailable(
                    "netspy could not answer this question (see its log)".into(),
                ))
            }
            Err(_) => Err(self.shed("deadline")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(concurrent: usize, queued: usize, deadline_ms: u64) -> Arc<Gate> {
        Arc::new(Gate::new(QueryLimits {
            concurrent,
            queued,
            deadline: Duration::from_millis(deadline_ms),
        }))
    }

    /// A query that holds its place until `release` says so.
    fn held(release: std::sync::mpsc::Receiver<()>) -> impl FnOnce() -> Result<u32, QueryError> {
        move || {
            let _ = release.recv_timeout(Duration::from_secs(5));
            Ok(1)
        }
    }

    fn shed_count(gate: &Gate, reason: &'static str) -> u64 {
        gate.shed.get_or_create(&ShedReason { reason }).get()
    }

    #[tokio::test]
    async fn past_the_running_and_waiting_places_a_request_is_shed_at_once() {
        let gate = gate(1, 1, 5000);
        let (release, hold) = std::sync::mpsc::channel();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(held(hold)).await }
        });
        while gate.running.get() == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(|| Ok(2)).await }
        });
        while gate.waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let third = gate.run(|| Ok(3)).await;
        assert!(matches!(third, Err(QueryError::Overloaded(ref m)) if m.contains("busy")));
        assert_eq!(shed_count(&gate, "queue_full"), 1);
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2), "the waiting one ran after");
        assert_eq!(gate.waiting.load(Ordering::Relaxed), 0);
        assert_eq!(gate.running.get(), 0);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_shed_and_the_work_keeps_its_place() {
        let gate = gate(1, 4, 100);
        let (release, hold) = std::sync::mpsc::channel();
        let slow = gate.run(held(hold)).await;
        assert!(matches!(slow, Err(QueryError::Overloaded(ref m)) if m.contains("100 ms")));
        // Still running: a second request waits for it, then is shed at its own deadline.
        assert_eq!(gate.running.get(), 1);
        assert!(matches!(
            gate.run(|| Ok(2)).await,
            Err(QueryError::Overloaded(_))
        ));
        assert_eq!(shed_count(&gate, "deadline"), 2);
        release.send(()).unwrap();
        while gate.running.get() == 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(gate.run(|| Ok(3)).await, Ok(3));
    }

    #[tokio::test]
    async fn a_dropped_waiting_request_gives_its_place_back() {
        let gate = gate(1, 1, 5000);
        let (release, hold) = std::sync::mpsc::channel();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(held(hold)).await }
        });
        while gate.running.get() == 0 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(|| Ok(2)).await }
        });
        while gate.waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(gate.waiting.load(Ordering::Relaxed), 0);
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
    }
}
