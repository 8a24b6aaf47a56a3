//! How the daemon writes to one peer without ever waiting for it. Answers, routed requests and
//! replies are offered to a bounded queue (`try_send`); what to do when it is full is the
//! caller's policy: a caller that does not read its answers is disconnected, a sidecar that does
//! not take requests has new calls refused. Subscription streams have a queue of their own and
//! may wait for room (backpressure to a slow reader of history), but only in the stream's own
//! task, and never past the peer's disconnection.

use futures::SinkExt;
use pm_protocol::connection::FrameSink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Answers, replies and requests queued for a peer before it counts as not reading: more than
/// a connection may have in flight, so a client that pipelines up to its caps and reads at its
/// own pace is never dropped.
pub const QUEUE: usize = 8192;
/// Bytes of large answers queued for a peer before it counts as not reading; streams have as
/// much again of their own, so a slow stream never crowds out answers. Messages under
/// [`SMALL`] are bounded by [`QUEUE`] alone, which keeps the budget off the hot path.
pub const BUDGET: usize = 32 * 1024 * 1024;
pub const SMALL: usize = 4096;
/// Stream notifications queued before a stream waits for the peer.
const STREAM_QUEUE: usize = 256;
/// How long the writer may be stuck on a peer that has messages waiting before the peer
/// counts as not taking requests (calls to it are then refused at once).
pub const STALL: Duration = Duration::from_secs(1);
/// How long a dropped peer's writer still tries to hand over what was queued (such as the
/// reason it is dropped) before the socket is closed.
const LAST_WORDS: Duration = Duration::from_millis(250);

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The peer is not reading: its queue is full.
    Full,
    /// The connection is closing or closed.
    Closed,
}

/// A message and its share of the byte budget (a large one), given back once written.
struct Queued {
    msg: String,
    _bytes: Option<OwnedSemaphorePermit>,
}

pub struct Outbox {
    /// The connection's id.
    pub conn: u64,
    answers: mpsc::Sender<Queued>,
    streams: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
    stream_budget: Arc<Semaphore>,
    /// Since when the writer has been stuck on a write, if it is.
    stuck: Arc<Stuck>,
    /// Fires when the daemon drops this peer: the writer stops, the reader stops.
    dropped: CancellationToken,
    /// The same, as a flag that is cheap to read on every message.
    gone: AtomicBool,
}

impl Outbox {
    /// The outbox of connection `conn`, and its writer task (which ends once every holder of
    /// the outbox is gone and the queue is written, or at once when the peer is dropped).
    pub fn open(conn: u64, sink: FrameSink) -> (Arc<Outbox>, JoinHandle<()>) {
        let (answers, answers_rx) = mpsc::channel(QUEUE);
        let (streams, streams_rx) = mpsc::channel(STREAM_QUEUE);
        let dropped = CancellationToken::new();
        let stuck = Arc::new(Stuck::new());
        let writer = tokio::spawn(write(sink, answers_rx, streams_rx, dropped.clone(), stuck.clone()));
        let (budget, stream_budget) = (Arc::new(Semaphore::new(BUDGET)), Arc::new(Semaphore::new(BUDGET)));
        let gone = AtomicBool::new(false);
        (Arc::new(Outbox { conn, answers, streams, budget, stream_budget, stuck, dropped, gone }), writer)
    }

    /// What `msg` costs of the budget (a message larger than the whole budget takes all of it).
    fn cost(msg: &str) -> Option<u32> {
        (msg.len() >= SMALL).then(|| msg.len().min(BUDGET) as u32)
    }

    /// Queues a message if there is room.
    pub fn offer(&self, msg: String) -> Result<(), Refused> {
        if self.gone.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        let bytes = match Self::cost(&msg) {
            Some(cost) => Some(self.budget.clone().try_acquire_many_owned(cost).map_err(|_| Refused::Full)?),
            None => None,
        };
        self.answers.try_send(Queued { msg, _bytes: bytes }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Full,
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
        })
    }

    /// Whether the peer has taken nothing for [`STALL`] while messages wait for it.
    pub fn is_stalled(&self) -> bool {
        self.stuck.longer_than(STALL)
    }

    /// Queues an answer for the peer; a peer whose queue is full is not reading its answers
    /// and is disconnected (its other pending answers are dropped with it).
    pub fn answer(&self, msg: String) {
        if self.offer(msg) == Err(Refused::Full) {
            self.drop_peer(&format!("it did not read its answers ({QUEUE} messages or {BUDGET} bytes unread)"));
        }
    }

    /// Queues a stream notification, waiting for room; false once the peer is gone.
    pub async fn stream(&self, msg: String) -> bool {
        if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        let cost = Self::cost(&msg);
        tokio::select! {
            _ = self.dropped.cancelled() => false,
            sent = async {
                let bytes = match cost {
                    Some(cost) => match self.stream_budget.clone().acquire_many_owned(cost).await {
                        Ok(bytes) => Some(bytes),
                        Err(_) => return false,
                    },
                    None => None,
                };
                self.streams.send(Queued { msg, _bytes: bytes }).await.is_ok()
            } => sent,
        }
    }

    /// Disconnects the peer: nothing more is written but a moment's worth of what is queued.
    pub fn drop_peer(&self, why: &str) {
        if !self.gone.swap(true, Ordering::Relaxed) {
            tracing::warn!("disconnecting connection {}: {why}", self.conn);
            self.dropped.cancel();
        }
    }

    /// Resolves once the peer is dropped.
    pub fn dropped(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.dropped.cancelled()
    }
}

/// Writes answers before stream notifications, flushing when caught up so bursts go out in few
/// writes. Ends when every sender is gone, the connection breaks, or the peer is dropped.
async fn write(
    mut sink: FrameSink,
    mut answers: mpsc::Receiver<Queued>,
    mut streams: mpsc::Receiver<Queued>,
    dropped: CancellationToken,
    stuck: Arc<Stuck>,
) {
    // Both queues close when the last holder of the outbox is gone.
    let (mut answers_open, mut streams_open) = (true, true);
    // Made once: a fresh one per message would register and unregister a waker each time.
    let cancelled = dropped.cancelled();
    tokio::pin!(cancelled);
    while answers_open || streams_open {
        let msg = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            msg = answers.recv(), if answers_open => msg.ok_or(true),
            msg = streams.recv(), if streams_open => msg.ok_or(false),
        };
        // A queue is done once it is closed and empty (a closed queue may still hold messages).
        let Queued { msg, _bytes } = match msg {
            Ok(queued) => queued,
            Err(answers_done) => {
                if answers_done {
                    answers_open = false
                } else {
                    streams_open = false
                }
                continue;
            }
        };
        let caught_up = answers.is_empty() && streams.is_empty();
        stuck.start();
        let sent = tokio::select! {
            _ = &mut cancelled => break,
            sent = async { if caught_up { sink.send(msg).await } else { sink.feed(msg).await } } => sent,
        };
        stuck.done();
        if sent.is_err() {
            // The peer is gone: stop the reader too.
            dropped.cancel();
            return;
        }
    }
    // A dropped peer still gets what is queued (such as why it is dropped) if it takes it
    // at once; a peer that hung up normally gets its remaining answers.
    let _ = tokio::time::timeout(LAST_WORDS, async {
        while let Ok(queued) = answers.try_recv() {
            if sink.feed(queued.msg).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    })
    .await;
}

/// When the writer started the write it is still in, as milliseconds after `base` plus one
/// (zero: not writing). Two relaxed stores per message, read only when routing a request.
struct Stuck {
    base: std::time::Instant,
    since: AtomicU64,
}

impl Stuck {
    fn new() -> Stuck {
        Stuck { base: std::time::Instant::now(), since: AtomicU64::new(0) }
    }

    fn start(&self) {
        self.since.store(self.base.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }

    fn done(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    fn longer_than(&self, limit: Duration) -> bool {
        match self.since.load(Ordering::Relaxed) {
            0 => false,
            since => self.base.elapsed().as_millis() as u64 + 1 - since > limit.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outbox whose peer never reads.
    fn stuck() -> (Arc<Outbox>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64);
        let conn = pm_protocol::Connection::ndjson(ours, 1 << 30);
        let (out, writer) = Outbox::open(7, conn.sink);
        // The writer ends with the test.
        drop(writer);
        (out, theirs)
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_is_dropped_not_waited_for() {
        let (out, _peer) = stuck();
        // One message can be in the writer's hands, a few more in the pipe.
        for _ in 0..QUEUE + 64 {
            out.answer("{}".into());
        }
        tokio::time::timeout(Duration::from_secs(5), out.dropped()).await.expect("dropped");
        assert_eq!(out.offer("{}".into()), Err(Refused::Closed));
        assert!(!out.stream("{}".into()).await, "streams stop for a dropped peer");
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_too() {
        let (out, _peer) = stuck();
        let big = "x".repeat(BUDGET / 3 + 1);
        // One may be taken by the writer; after that the budget holds two at most.
        let taken = (0..4).filter(|_| out.offer(big.clone()).is_ok()).count();
        assert!(taken <= 3, "{taken} messages of a third of the budget were queued");
        assert_eq!(out.offer(big.clone()), Err(Refused::Full));
        assert_eq!(out.offer("{}".into()), Ok(()), "small messages still fit");
    }
}
