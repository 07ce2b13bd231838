//! One async reader per ring buffer: drains records, decodes them, counts them, and sends
//! the events on.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use aya::maps::{MapData, RingBuf};
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
        loop {
            let mut guard = tokio::select! {
                () = cancel.cancelled() => return,
                guard = fd.readable_mut() => match guard {
                    Ok(guard) => guard,
                    Err(e) => {
                        tracing::error!(?kind, "ring buffer poll failed: {e}");
                        return;
                    }
                },
            };
            let ring = guard.get_inner_mut();
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
            guard.clear_ready();
            for event in batch.drain(..) {
                if tx.send(event).await.is_err() {
                    return; // nobody listens any more
                }
            }
        }
    });
    Ok(())
}
