//! Answering the requests that arrive on one connection: each runs in its own task (a slow
//! method never holds up the others), at most `max_concurrent` at once (then the reader waits,
//! which holds back the sender), and answers go out through one writer.
//!
//! Dropping the responder ends its connection: the writer stops and running methods are
//! cancelled.

use super::dispatch;
use crate::mux;
use jsonrpsee::Methods;
use pm_protocol::connection::FrameSink;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// Answers queued for the writer before answering tasks wait.
const OUT_QUEUE: usize = 1024;

pub(crate) struct Responder {
    out: mpsc::Sender<String>,
    methods: Methods,
    permits: Arc<Semaphore>,
    max_frame: usize,
    writer: JoinHandle<()>,
    /// Dropped with the responder, which tells running methods to stop.
    _alive: watch::Sender<()>,
    alive: watch::Receiver<()>,
}

impl Responder {
    /// Starts the writer of a connection's sending half.
    pub fn new(sink: FrameSink, methods: Methods, max_concurrent: usize, max_frame: usize) -> Responder {
        let (out, queue) = mpsc::channel(OUT_QUEUE);
        let writer = tokio::spawn(mux::write(sink, queue));
        let (_alive, alive) = watch::channel(());
        let permits = Arc::new(Semaphore::new(max_concurrent.max(1)));
        Responder { out, methods, permits, max_frame, writer, _alive, alive }
    }

    /// Sends a frame of this side's own (a request to the daemon); false if the connection is
    /// gone.
    pub async fn send(&self, frame: String) -> bool {
        self.out.send(frame).await.is_ok()
    }

    /// Runs an incoming frame in a task of its own; its answer, if any, goes to the peer.
    /// Waits while `max_concurrent` are already running.
    pub async fn handle(&self, text: String) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else { return };
        let (methods, out, max_frame, mut alive) =
            (self.methods.clone(), self.out.clone(), self.max_frame, self.alive.clone());
        tokio::spawn(async move {
            let answer = tokio::select! {
                answer = dispatch::frame(&methods, &text, max_frame) => answer,
                // The connection ended: nobody is left to answer.
                _ = alive.changed() => return,
            };
            drop(permit);
            if let Some(answer) = answer {
                let _ = out.send(answer).await;
            }
        });
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.writer.abort();
    }
}
