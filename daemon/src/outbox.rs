//! How the daemon writes to one peer without ever waiting for it. Answers, routed requests and
//! replies are offered to a bounded queue (`try_send`); what to do when it is full is the
//! caller's policy: a caller that does not read its answers is disconnected, a sidecar that does
//! not take requests has new calls refused. Subscription streams have a queue of their own and
//! may wait for room (backpressure to a slow reader of history), but only in the stream's own
//! task, and never past the peer's disconnection.
//!
//! A message offered while nothing waits for the peer is written by the offering task itself,
//! as far as the socket takes it without waiting: a routed call then costs no wake-up of the
//! writer task (the hop a bare proxy does not have). Whatever the socket does not take at once
//! is left to the writer, and everything offered after it queues behind it, so order holds.

use futures::SinkExt;
use pm_protocol::connection::FrameSink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, mpsc};
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
    line: Arc<Line>,
    /// Fires when the daemon drops this peer: the writer stops, the reader stops (and
    /// `line.gone` is set, which is cheaper to read on every message).
    dropped: CancellationToken,
}

impl Outbox {
    /// The outbox of connection `conn`, and its writer task (which ends once every holder of
    /// the outbox is gone and the queue is written, or at once when the peer is dropped).
    pub fn open(conn: u64, sink: FrameSink) -> (Arc<Outbox>, JoinHandle<()>) {
        let (answers, answers_rx) = mpsc::channel(QUEUE);
        let (streams, streams_rx) = mpsc::channel(STREAM_QUEUE);
        let dropped = CancellationToken::new();
        let line = Arc::new(Line {
            sink: Mutex::new(sink),
            behind: AtomicUsize::new(0),
            flush: Notify::new(),
            stuck: Stuck::new(),
            gone: AtomicBool::new(false),
        });
        let writer = tokio::spawn(write(line.clone(), answers_rx, streams_rx, dropped.clone()));
        let (budget, stream_budget) = (Arc::new(Semaphore::new(BUDGET)), Arc::new(Semaphore::new(BUDGET)));
        (Arc::new(Outbox { conn, answers, streams, budget, stream_budget, line, dropped }), writer)
    }

    /// What `msg` costs of the budget (a message larger than the whole budget takes all of it).
    fn cost(msg: &str) -> Option<u32> {
        (msg.len() >= SMALL).then(|| msg.len().min(BUDGET) as u32)
    }

    /// Writes a message at once if nothing waits for the peer, else queues it if there is room.
    pub fn offer(&self, msg: String) -> Result<(), Refused> {
        let msg = match self.write_first(msg) {
            Ok(written) => return if written { Ok(()) } else { Err(Refused::Closed) },
            Err(msg) => msg,
        };
        let bytes = match Self::cost(&msg) {
            Some(cost) => Some(self.budget.clone().try_acquire_many_owned(cost).map_err(|_| Refused::Full)?),
            None => None,
        };
        // Counted before it is queued, so nothing offered after it can be written before it.
        let waiting = Behind::count(&self.line.behind);
        match self.answers.try_send(Queued { msg, _bytes: bytes }) {
            Ok(()) => {
                waiting.queued();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(Refused::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Closed),
        }
    }

    /// Writes `msg` at once if nothing waits for the peer: `Ok(true)` written (or handed to the
    /// writer to finish), `Ok(false)` the peer is gone, `Err(msg)` it must be queued.
    fn write_first(&self, msg: String) -> Result<bool, String> {
        if self.line.gone.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match self.line.write_now(msg) {
            Written::Yes => Ok(true),
            Written::Broken => {
                self.line.broken(&self.dropped);
                Ok(false)
            }
            Written::No(msg) => Err(msg),
        }
    }

    /// Whether the peer has taken nothing for [`STALL`] while messages wait for it.
    pub fn is_stalled(&self) -> bool {
        self.line.stuck.longer_than(STALL)
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
        let msg = match self.write_first(msg) {
            Ok(written) => return written,
            Err(msg) => msg,
        };
        let cost = Self::cost(&msg);
        // Counted while it waits for room, as in `offer`; uncounted if it is not queued after all.
        let waiting = Behind::count(&self.line.behind);
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
                let sent = self.streams.send(Queued { msg, _bytes: bytes }).await.is_ok();
                if sent {
                    // The writer uncounts it once written.
                    waiting.queued();
                }
                sent
            } => sent,
        }
    }

    /// Disconnects the peer: nothing more is written but a moment's worth of what is queued.
    pub fn drop_peer(&self, why: &str) {
        if !self.line.gone.swap(true, Ordering::Relaxed) {
            tracing::warn!("disconnecting connection {}: {why}", self.conn);
            self.dropped.cancel();
        }
    }

    /// Whether the peer is dropped (a flag, cheaper than [`Outbox::dropped`] to check often).
    pub fn is_gone(&self) -> bool {
        self.line.gone.load(Ordering::Relaxed)
    }

    /// Resolves once the peer is dropped.
    pub fn dropped(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.dropped.cancelled()
    }
}

/// The writing end of a connection, shared by its writer task and the tasks that write to it
/// directly.
struct Line {
    /// Held by whoever writes: the writer task (across its awaits) or a direct write (never
    /// across an await).
    sink: Mutex<FrameSink>,
    /// Messages queued or in the writer's hands, plus a direct write the socket has not fully
    /// taken: while any, a new message queues behind them instead of being written at once.
    behind: AtomicUsize,
    /// Tells the writer that a direct write left bytes for it to flush.
    flush: Notify,
    /// Since when the writer has been stuck on a write, if it is.
    stuck: Stuck,
    /// Whether the daemon dropped the peer.
    gone: AtomicBool,
}

/// One message counted in `behind` while it waits for room in a queue: uncounted again unless
/// it was queued (also when the wait is given up).
struct Behind<'a>(Option<&'a AtomicUsize>);

impl<'a> Behind<'a> {
    fn count(behind: &'a AtomicUsize) -> Behind<'a> {
        behind.fetch_add(1, Ordering::AcqRel);
        Behind(Some(behind))
    }

    fn queued(mut self) {
        self.0 = None;
    }
}

impl Drop for Behind<'_> {
    fn drop(&mut self) {
        if let Some(behind) = self.0 {
            behind.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What the writer does next.
enum Next {
    Answer(Queued),
    Stream(Queued),
    /// Flush what a direct write left.
    Flush,
    AnswersDone,
    StreamsDone,
}

/// What became of a direct write.
enum Written {
    Yes,
    /// Not written: something waits for the peer, or the sink cannot take it now.
    No(String),
    /// The connection is broken.
    Broken,
}

impl Line {
    /// The connection broke: nothing more is written, and the reader stops too.
    fn broken(&self, dropped: &CancellationToken) {
        self.gone.store(true, Ordering::Relaxed);
        dropped.cancel();
    }

    /// Writes `msg` without waiting, if nothing is queued or being written: as much as the
    /// socket takes at once, the rest left for the writer to flush.
    fn write_now(&self, msg: String) -> Written {
        let Ok(mut sink) = self.sink.try_lock() else { return Written::No(msg) };
        if self.behind.load(Ordering::Acquire) != 0 {
            return Written::No(msg);
        }
        // Polled once, never awaited: a pending write is handed to the writer below, which
        // polls again with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        match sink.as_mut().poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Written::Broken,
            Poll::Pending => return Written::No(msg),
        }
        if sink.as_mut().start_send(msg).is_err() {
            return Written::Broken;
        }
        match sink.as_mut().poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => Written::Yes,
            Poll::Ready(Err(_)) => Written::Broken,
            Poll::Pending => {
                self.behind.fetch_add(1, Ordering::AcqRel);
                self.flush.notify_one();
                Written::Yes
            }
        }
    }
}

/// Writes answers before stream notifications, flushing when caught up so bursts go out in few
/// writes, and flushes what direct writes left. Ends when every sender is gone, the connection
/// breaks, or the peer is dropped.
async fn write(
    line: Arc<Line>,
    mut answers: mpsc::Receiver<Queued>,
    mut streams: mpsc::Receiver<Queued>,
    dropped: CancellationToken,
) {
    // Both queues close when the last holder of the outbox is gone.
    let (mut answers_open, mut streams_open) = (true, true);
    // Made once: a fresh one per message would register and unregister a waker each time.
    let cancelled = dropped.cancelled();
    tokio::pin!(cancelled);
    // An answer taken from the queue just as the peer was dropped (it may say why).
    let mut last = None;
    while answers_open || streams_open {
        // Messages first: while they come, the other branches (each a lock to poll) wait, and
        // a dropped peer is seen through its flag.
        let next = tokio::select! {
            biased;
            msg = answers.recv(), if answers_open => msg.map_or(Next::AnswersDone, Next::Answer),
            msg = streams.recv(), if streams_open => msg.map_or(Next::StreamsDone, Next::Stream),
            _ = line.flush.notified() => Next::Flush,
            _ = &mut cancelled => break,
        };
        // A queue is done once it is closed and empty (a closed queue may still hold messages).
        let answer = matches!(next, Next::Answer(_));
        let msg = match next {
            Next::Answer(Queued { msg, .. }) | Next::Stream(Queued { msg, .. }) => Some(msg),
            Next::Flush => None,
            Next::AnswersDone => {
                answers_open = false;
                continue;
            }
            Next::StreamsDone => {
                streams_open = false;
                continue;
            }
        };
        if line.gone.load(Ordering::Relaxed) {
            last = msg.filter(|_| answer);
            break;
        }
        let caught_up = answers.is_empty() && streams.is_empty();
        let mut sink = line.sink.lock().await;
        line.stuck.start();
        let sent = tokio::select! {
            biased;
            sent = async {
                match msg {
                    Some(msg) if !caught_up => sink.feed(msg).await,
                    Some(msg) => sink.send(msg).await,
                    None => sink.flush().await,
                }
            } => sent,
            _ = &mut cancelled => break,
        };
        line.stuck.done();
        // Written (or flushed), and still under the lock: a direct write may follow it.
        line.behind.fetch_sub(1, Ordering::AcqRel);
        drop(sink);
        if sent.is_err() {
            line.broken(&dropped);
            return;
        }
    }
    // A dropped peer still gets what is queued (such as why it is dropped) if it takes it
    // at once; a peer that hung up normally gets its remaining answers.
    let _ = tokio::time::timeout(LAST_WORDS, async {
        let mut sink = line.sink.lock().await;
        let queued = std::iter::from_fn(|| answers.try_recv().ok().map(|queued| queued.msg));
        for msg in last.into_iter().chain(queued) {
            if sink.feed(msg).await.is_err() {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_written_at_once_or_queued_arrive_whole_and_in_order() {
        use tokio::io::AsyncBufReadExt;
        // A pipe smaller than a message, messages from a few bytes to more than the sink buffers
        // before it must flush: some are written at once, some half, some queue.
        let (ours, theirs) = tokio::io::duplex(48);
        let conn = pm_protocol::Connection::ndjson(ours, 1 << 20);
        let (out, writer) = Outbox::open(7, conn.sink);
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(theirs).lines();
            let mut got = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                got.push(line);
                if got.len().is_multiple_of(7) {
                    // A reader that lags now and then.
                    tokio::task::yield_now().await;
                }
            }
            got
        });
        let sent: Vec<String> =
            (0..1000).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i * 37 % 12_000))).collect();
        for (i, msg) in sent.iter().enumerate() {
            assert_eq!(out.offer(msg.clone()), Ok(()), "message {i} refused");
            if i.is_multiple_of(50) {
                tokio::task::yield_now().await;
            }
        }
        drop(out);
        tokio::time::timeout(Duration::from_secs(20), writer).await.expect("the writer ends").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(20), reader).await.expect("the reader ends").unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "messages arrived out of order or changed");
    }

    #[tokio::test]
    async fn a_message_is_not_written_ahead_of_one_queued_before_it() {
        use tokio::io::AsyncReadExt;
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let conn = pm_protocol::Connection::ndjson(ours, 1 << 20);
        let (out, writer) = Outbox::open(7, conn.sink);
        // The line is busy (as while the writer writes), so the first message queues...
        let busy = out.line.sink.try_lock().unwrap();
        assert_eq!(out.offer("1".into()), Ok(()));
        drop(busy);
        // ...and the second, offered while the line is free but the first still waits, too.
        assert_eq!(out.offer("2".into()), Ok(()));
        drop(out);
        tokio::time::timeout(Duration::from_secs(5), writer).await.expect("the writer ends").unwrap();
        let mut got = String::new();
        theirs.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "1\n2\n");
    }

    #[tokio::test]
    async fn a_dropped_peer_still_gets_why() {
        use tokio::io::AsyncReadExt;
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let conn = pm_protocol::Connection::ndjson(ours, 1 << 20);
        let (out, writer) = Outbox::open(7, conn.sink);
        // The writer is busy with a queue, so the reason queues behind it.
        out.line.behind.fetch_add(1, Ordering::AcqRel);
        out.line.flush.notify_one();
        let _ = out.offer("\"why\"".into());
        out.drop_peer("test");
        tokio::time::timeout(Duration::from_secs(5), writer).await.expect("the writer ends").unwrap();
        let mut got = String::new();
        theirs.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "\"why\"\n");
    }
}
