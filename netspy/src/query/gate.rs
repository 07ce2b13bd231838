//! How much query work the daemon takes on at once: a small pool of query threads of its
//! own (never the async workers that serve connections and `/health`, never tokio's blocking
//! pool) takes questions from a short queue, and each request has a deadline. Past the queue
//! or the deadline a request is shed: `QueryError::Overloaded`, a 503 with `Retry-After`,
//! counted by reason. A question whose request is gone (shed or disconnected) before a
//! thread takes it up is skipped, not answered for nobody.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use tokio::{sync::oneshot, time::Instant};

use super::QueryError;

/// Limits on query work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Queries running at once: the number of query threads.
    pub concurrent: usize,
    /// Queries waiting for one of those threads; more are shed at once.
    pub queued: usize,
    /// The longest a request may take, waiting included; past it the client gets a 503 (a
    /// query already running finishes, keeping its thread).
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

/// A question on its way to a query thread.
type Job = Box<dyn FnOnce() + Send>;

/// The gate every data query passes.
pub struct Gate {
    limits: QueryLimits,
    jobs: Sender<Job>,
    /// Queries running now.
    pub running: Gauge,
    /// Requests shed, by reason.
    pub shed: Family<ShedReason, Counter>,
}

/// Seconds a shed client is told to wait before asking again.
pub const RETRY_AFTER_SECONDS: u64 = 1;

impl Gate {
    /// A gate with these limits and its query threads (at least one; they stop once the gate
    /// and the questions it queued are gone).
    pub fn new(limits: QueryLimits) -> Self {
        let shed = Family::default();
        for reason in ["queue_full", "deadline"] {
            let _ = shed.get_or_create(&ShedReason { reason });
        }
        let (jobs, queue) = crossbeam_channel::bounded(limits.queued);
        for number in 0..limits.concurrent.max(1) {
            let queue: Receiver<Job> = queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("netspy-query-{number}"))
                .spawn(move || queue.iter().for_each(|job| job()));
            if let Err(e) = started {
                tracing::error!("starting query thread {number}: {e}");
            }
        }
        Self {
            limits,
            jobs,
            running: Gauge::default(),
            shed,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// Questions waiting for a query thread.
    pub fn waiting(&self) -> usize {
        self.jobs.len()
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

    /// Runs `work` on a query thread once one is free, within the deadline.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let deadline = Instant::now() + self.limits.deadline;
        let (answer, answered) = oneshot::channel();
        let running = self.running.clone();
        let job: Job = Box::new(move || {
            if answer.is_closed() {
                return; // shed or disconnected while it waited
            }
            running.inc();
            let outcome = catch_unwind(AssertUnwindSafe(work));
            running.dec();
            let _ = answer.send(outcome);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(self.shed("queue_full")),
            Err(TrySendError::Disconnected(_)) => {
                return Err(QueryError::Unavailable("netspy is stopping".into()));
            }
        }
        match tokio::time::timeout_at(deadline, answered).await {
            Ok(Ok(Ok(answer))) => answer,
            Ok(Ok(Err(_))) => {
                tracing::error!("a query panicked");
                Err(QueryError::Unavailable(
                    "netspy could not answer this question (see its log)".into(),
                ))
            }
            Ok(Err(_)) => Err(QueryError::Unavailable("netspy is stopping".into())),
            Err(_) => Err(self.shed("deadline")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

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
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let third = gate.run(|| Ok(3)).await;
        assert!(matches!(third, Err(QueryError::Overloaded(ref m)) if m.contains("busy")));
        assert_eq!(shed_count(&gate, "queue_full"), 1);
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2), "the waiting one ran after");
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.running.get(), 0);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_shed_and_the_work_keeps_its_place() {
        // Long enough for the thread to take the question up however loaded the machine.
        let gate = gate(1, 4, 1000);
        let (release, hold) = std::sync::mpsc::channel();
        let slow = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(held(hold)).await }
        });
        while gate.running.get() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let slow = slow.await.unwrap();
        assert!(matches!(slow, Err(QueryError::Overloaded(ref m)) if m.contains("1000 ms")));
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
    async fn a_request_dropped_while_it_waited_is_skipped_not_run() {
        let gate = gate(1, 1, 5000);
        let (release, hold) = std::sync::mpsc::channel();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(held(hold)).await }
        });
        while gate.running.get() == 0 {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicBool::new(false));
        let waiting = tokio::spawn({
            let (gate, ran) = (gate.clone(), ran.clone());
            async move {
                gate.run(move || {
                    ran.store(true, Ordering::Relaxed);
                    Ok(2)
                })
                .await
            }
        });
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        // The thread takes the dead question up next and skips it, which frees its place.
        for _ in 0..1000 {
            if gate.waiting() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(gate.run(|| Ok(3)).await, Ok(3), "its place came back");
        assert!(
            !ran.load(Ordering::Relaxed),
            "nobody was waiting for its answer"
        );
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_panicking_query_is_an_error_and_its_thread_goes_on() {
        let gate = gate(1, 1, 5000);
        let panicked = gate
            .run(|| -> Result<u32, QueryError> { panic!("boom") })
            .await;
        assert!(matches!(panicked, Err(QueryError::Unavailable(_))));
        assert_eq!(gate.run(|| Ok(4)).await, Ok(4));
        assert_eq!(gate.running.get(), 0);
    }
}
