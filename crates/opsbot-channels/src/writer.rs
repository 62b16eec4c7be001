//! The ordered outbox writer every channel shares: replies are handed over without
//! waiting (a reply sink must not block), written into the store one batch at a time in
//! the order given, and the delivery worker is woken. A store outage delays a write; it
//! does not drop it.

use opsbot_store::{NewOutbox, OutboxStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Starts the writer; must run inside the tokio runtime.
pub(crate) fn spawn_writer(
    store: Arc<dyn OutboxStore>,
    wake: Arc<Notify>,
) -> mpsc::UnboundedSender<Vec<NewOutbox>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<NewOutbox>>();
    tokio::spawn(async move {
        while let Some(items) = rx.recv().await {
            for item in &items {
                let mut wait = Duration::from_millis(200);
                while let Err(e) = store.outbox_push(item).await {
                    tracing::error!(channel = %item.channel, error = %e, "cannot queue a reply; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
            wake.notify_one();
        }
    });
    tx
}
