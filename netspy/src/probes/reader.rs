//! One reader task per ring buffer, on the probes' own thread ([`super::thread`]): drains records, decodes them, counts them, and sends
//! the events on in batches.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use netspy_common::ring;
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tokio_util::sync::CancellationToken;

use super::KindCounts;
use crate::events::{Event, KernelNames, Kind};

/// Records read, per kind, and records that did not decode.
#[derive(Debug, Default)]
pub struct Received {
    /// Indexed by [`Kind`]'s position in [`Kind::ALL`].
    per_kind: [AtomicU64; Kind::ALL.len()],
    decode_errors: AtomicU64,
}

impl Received {
    fn count(&self, kind: Kind, n: u64) {
        if n > 0 {
            self.per_kind[kind as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Current counts.
    pub fn counts(&self) -> KindCounts {
        let mut counts = KindCounts::default();
        for kind in Kind::ALL {
            counts.add(kind, self.per_kind[kind as usize].load(Ordering::Relaxed));
        }
        counts
    }

    /// Records that did not decode.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }
}

/// At most this many events travel in one batch: a reader that finds more sends several.
pub const BATCH_EVENTS: usize = 4096;

/// Decodes the records waiting in the ring, up to a batch, into `batch`; true when the ring
/// may hold more.
fn read_batch(
    ring: &mut RingBuf<MapData>,
    kind: Kind,
    names: &KernelNames,
    received: &Received,
    batch: &mut Vec<Event>,
) -> bool {
    let mut read = 0;
    // A ring may carry more than one kind (lookups travel with the connects).
    let mut per_kind = [0u64; Kind::ALL.len()];
    while read < BATCH_EVENTS {
        let Some(record) = ring.next() else {
            break;
        };
        read += 1;
        match names.decode(kind, &record) {
            Ok(event) => {
                per_kind[event.kind() as usize] += 1;
                batch.push(event);
            }
            Err(e) => {
                received.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{e}");
            }
        }
    }
    for kind in Kind::ALL {
        received.count(kind, per_kind[kind as usize]);
    }
    read == BATCH_EVENTS
}

/// Starts the reader task for one ring buffer: it sends its events in batches on `tx`, its
/// kind's own channel, so that a slow consumer backs up into this ring only.
pub fn spawn(
    ring: RingBuf<MapData>,
    kind: Kind,
    names: Arc<KernelNames>,
    tx: mpsc::Sender<Vec<Event>>,
    received: Arc<Received>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    // register_with_interest panics outside a runtime: say so instead.
    tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
    // SAFETY: the ring owns its map fd, which stays open and unchanged for as long as the
    // AsyncFd (which owns the ring) lives.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    tokio::spawn(async move {
        // The kernel wakes us only as the wakeup policy says (by default never); the timer
        // picks up whatever is waiting.
        let mut drain = tokio::time::interval(Duration::from_millis(ring::DRAIN_INTERVAL_MS));
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = drain.tick() => {}
                guard = fd.readable_mut() => match guard {
                    // Clear first: a wakeup that lands while we drain must not be lost
                    // (the kernel wakes us once per batch, not per record).
                    Ok(mut guard) => guard.clear_ready(),
                    Err(e) => {
                        tracing::error!(?kind, "ring buffer poll failed: {e}");
                        return;
                    }
                },
            }
            loop {
                let mut batch = Vec::new();
                let more = read_batch(fd.get_mut(), kind, &names, &received, &mut batch);
                if !batch.is_empty() && tx.send(batch).await.is_err() {
                    return; // nobody listens any more
                }
                if !more {
                    break;
                }
            }
        }
    });
    Ok(())
}
