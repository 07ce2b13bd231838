//! The probes' decoded events, one bounded channel per ring buffer: a flood of one kind
//! (drops) fills its own channel and then its own ring, where the kernel counts what it
//! could not deliver, while the other kinds flow on.

use std::{future::poll_fn, task::Poll};

use tokio::sync::mpsc;

use crate::events::Event;

/// Batches each channel holds before its reader waits (and its ring starts to fill): up to
/// 131,072 events, 650 ms of a 200k/s stream on top of what the ring holds, so that the store
/// writer may wait for a query's read lock that long without a loss.
pub(super) const CHANNEL_BATCHES: usize = 32;

/// The receiving ends, one per kind.
pub struct EventStreams {
    kinds: Vec<mpsc::Receiver<Vec<Event>>>,
    /// Which kind is asked first next time, so that no kind starves the others.
    first: usize,
}

impl EventStreams {
    pub(super) fn new(kinds: Vec<mpsc::Receiver<Vec<Event>>>) -> Self {
        Self { kinds, first: 0 }
    }

    /// The next batch of events of any kind (never empty); None once every reader stopped.
    pub async fn next(&mut self) -> Option<Vec<Event>> {
        poll_fn(|cx| {
            let count = self.kinds.len();
            let mut open = false;
            for i in 0..count {
                let at = (self.first + i) % count;
                match self.kinds[at].poll_recv(cx) {
                    Poll::Ready(Some(batch)) => {
                        self.first = (at + 1) % count;
                        return Poll::Ready(Some(batch));
                    }
                    Poll::Ready(None) => {}
                    Poll::Pending => open = true,
                }
            }
            if open {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, PacketDrop};

    fn drop_event() -> Event {
        let addr = "127.0.0.1:1".parse().unwrap();
        Event::PacketDrop(PacketDrop::tcp_no_socket(chrono::Utc::now(), addr, addr))
    }

    #[tokio::test]
    async fn every_kind_gets_its_turn_and_the_end_is_seen() {
        let (flood, flood_rx) = mpsc::channel(CHANNEL_BATCHES);
        let (quiet, quiet_rx) = mpsc::channel(CHANNEL_BATCHES);
        let mut streams = EventStreams::new(vec![flood_rx, quiet_rx]);
        for _ in 0..CHANNEL_BATCHES {
            flood.send(vec![drop_event()]).await.unwrap();
        }
        quiet.send(vec![drop_event(), drop_event()]).await.unwrap();
        let first = streams.next().await.unwrap();
        let second = streams.next().await.unwrap();
        assert_eq!(
            (first.len(), second.len()),
            (1, 2),
            "the quiet kind is not starved"
        );
        drop((flood, quiet));
        let mut rest = 0;
        while let Some(batch) = streams.next().await {
            rest += batch.len();
        }
        assert_eq!(rest, CHANNEL_BATCHES - 1);
    }
}
