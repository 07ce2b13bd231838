//! One async reader per ring buffer: drains records, decodes them, counts them, and sends
//! the events on.

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
    connection: AtomicU64,
    tcp_outcome: AtomicU64,
    packet_drop: AtomicU64,
    decode_errors: AtomicU64,
}

impl Received {
    fn counter(&self, kind: Kind) -> &AtomicU64 {
        match kind {
            Kind::Connection => &self.connection,
            Kind::TcpOutcome => &self.tcp_outcome,
            Kind::PacketDrop => &self.packet_drop,
        }
    }

    /// Current counts.
    pub fn counts(&self) -> KindCounts {
        KindCounts {
            connection: self.connection.load(Ordering::Relaxed),
            tcp_outcome: self.tcp_outcome.load(Ordering::Relaxed),
            packet_drop: self.packet_drop.load(Ordering::Relaxed),
        }
    }

    /// Records that did not decode.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }
}

/// Decodes every record waiting in the ring into `batch`.
fn read_all(
    ring: &mut RingBuf<MapData>,
    kind: Kind,
    names: &KernelNames,
    received: &Received,
    batch: &mut Vec<Event>,
) {
    while let Some(record) = ring.next() {
        received.counter(kind).fetch_add(1, Ordering::Relaxed);
        match names.decode(kind, &record) {
            Ok(event) => batch.push(event),
            Err(e) => {
                received.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{e}");
            }
        }
    }
}

/// Starts the reader task for one ring buffer.
pub fn spawn(
    ring: RingBuf<MapData>,
    kind: Kind,
    names: Arc<KernelNames>,
    tx: mpsc::Sender<Event>,
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
        let mut batch = Vec::new();
        // The kernel wakes us only for a batch (see netspy-ebpf output_flags); the timer
        // picks up whatever is waiting in between.
        let mut drain = tokio::time::interval(Duration::from_millis(ring::DRAIN_INTERVAL_MS));
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = drain.tick() => read_all(fd.get_mut(), kind, &names, &received, &mut batch),
                guard = fd.readable_mut() => match guard {
                    Ok(mut guard) => {
                        // Clear first: a wakeup that lands while we drain must not be lost
                        // (the kernel wakes us once per batch, not per record).
                        guard.clear_ready();
                        read_all(guard.get_inner_mut(), kind, &names, &received, &mut batch);
                    }
                    Err(e) => {
                        tracing::error!(?kind, "ring buffer poll failed: {e}");
                        return;
                    }
                },
            }
            for event in batch.drain(..) {
                if tx.send(event).await.is_err() {
                    return; // nobody listens any more
                }
            }
        }
    });
    Ok(())
}
