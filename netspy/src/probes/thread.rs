//! The probes' own thread: the ring readers and the drop-rate clock run on a single-threaded
//! runtime of their own, never on the async workers that serve the API. A flood of HTTP
//! requests then cannot delay the draining of the rings (the kernel would lose events once a
//! ring fills); the readers need a small, steady share of one CPU.

use tokio::runtime::{EnterGuard, Runtime};
use tokio_util::sync::CancellationToken;

use super::ProbeError;

/// A runtime whose tasks run on the `netspy-rings` thread once [`ProbeThread::run_until`]
/// is called.
pub(super) struct ProbeThread {
    runtime: Runtime,
}

impl ProbeThread {
    pub(super) fn new() -> Result<Self, ProbeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProbeError::Load(format!("starting the ring readers' runtime: {e}")))?;
        Ok(Self { runtime })
    }

    /// Inside this guard, `tokio::spawn` and descriptor registration go to this runtime.
    pub(super) fn enter(&self) -> EnterGuard<'_> {
        self.runtime.enter()
    }

    /// Starts the thread; its tasks run until `cancel`, and are dropped with the runtime.
    pub(super) fn run_until(self, cancel: CancellationToken) -> Result<(), ProbeError> {
        std::thread::Builder::new()
            .name("netspy-rings".into())
            .spawn(move || self.runtime.block_on(cancel.cancelled()))
            .map(drop)
            .map_err(|e| ProbeError::Load(format!("starting the ring reader thread: {e}")))
    }
}
