//! Recording the streams of incoming messages, batched: a callback waits until its
//! message's stream is in the store, and the streams of messages arriving together are
//! written in one transaction (group commit), so a burst of a hundred group messages
//! costs one write, not a hundred writers queueing for the database.

use super::quiet::Quiet;
use opsbot_store::{ChannelStore, NewStream, StreamOpened};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most streams one write takes.
const BATCH: usize = 256;

type Answer = oneshot::Sender<Result<StreamOpened, String>>;

pub(crate) struct Opener {
    queue: mpsc::UnboundedSender<(NewStream, Answer)>,
}

impl Opener {
    /// Starts the writer; must run inside the tokio runtime. Each write counts as
    /// activity for `quiet`: the engine work of the messages it recorded waits until
    /// their acknowledgements are out.
    pub(crate) fn start(store: Arc<dyn ChannelStore>, quiet: Arc<Quiet>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(store, quiet, rx));
        Opener { queue }
    }

    /// Records `stream` (or finds the one its message already has); returns once that is
    /// durable. An error (the store's, as text) means it is not recorded.
    pub(crate) async fn open(&self, stream: NewStream) -> Result<StreamOpened, String> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((stream, tx))
            .map_err(|_| "the stream writer has stopped".to_string())?;
        rx.await
            .map_err(|_| "the stream writer has stopped".to_string())?
    }
}

async fn write(
    store: Arc<dyn ChannelStore>,
    quiet: Arc<Quiet>,
    mut rx: mpsc::UnboundedReceiver<(NewStream, Answer)>,
) {
    while let Some(first) = rx.recv().await {
        // Whatever queued up while the last write ran goes into this one.
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let streams: Vec<NewStream> = batch.iter().map(|(s, _)| s.clone()).collect();
        let opened = store.stream_open_many(&streams).await;
        quiet.arrived();
        match opened {
            Ok(opened) => {
                for ((_, answer), opened) in batch.into_iter().zip(opened) {
                    let _ = answer.send(Ok(opened));
                }
            }
            Err(e) if batch.len() > 1 => {
                // One message the store refuses, or another instance opening one of
                // them at the same moment, must not fail the others: one at a time.
                tracing::warn!(error = %e, streams = batch.len(), "recording robot streams together failed; one at a time");
                for (stream, answer) in batch {
                    let opened = store.stream_open(&stream).await.map_err(|e| e.to_string());
                    let _ = answer.send(opened);
                }
            }
            Err(e) => {
                for (_, answer) in batch {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
    }
}
