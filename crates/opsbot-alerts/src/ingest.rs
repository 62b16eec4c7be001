//! Group commit: every request's alerts go to ONE writer task, which stores whatever
//! has queued up in a single transaction and answers each request only after that
//! transaction committed. Durable before the 2xx, and thousands of alerts per second
//! on SQLite, because a batch pays for one commit. A full queue answers "overloaded"
//! at once (HTTP 503: Alertmanager retries 5xx and drops on 4xx). A request the store
//! refuses (a value it cannot keep) is refused alone with a 400; the others of its
//! batch are stored (see `AlertStore::alerts_ingest`).

use crate::{Error, Result};
use opsbot_store::alerts::AlertStore;
use opsbot_store::alerts::{IngestPayload, IngestedPayload, NewNotice};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Alerts in one transaction at most (a bigger backlog is taken in several).
const MAX_BATCH_ALERTS: usize = 2000;

struct Job {
    item: IngestPayload,
    reply: oneshot::Sender<Result<IngestedPayload>>,
}

/// The handle requests submit through. Dropping every clone stops the writer once the
/// queue is drained.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    capacity: usize,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Ingestor {
    /// Starts the writer. `news` hears of every (route, group) that got a pending
    /// notice, after its transaction committed.
    pub fn start(
        store: Arc<dyn AlertStore>,
        capacity: usize,
        news: mpsc::UnboundedSender<NewNotice>,
    ) -> (Ingestor, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(writer(store, rx, news));
        (Ingestor { tx, capacity }, task)
    }

    /// Stores one request's alerts; returns once they are durable.
    pub async fn submit(&self, item: IngestPayload) -> Result<IngestedPayload> {
        let (reply, done) = oneshot::channel();
        self.tx.try_send(Job { item, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded(self.capacity),
            mpsc::error::TrySendError::Closed(_) => Error::Stopping,
        })?;
        done.await.map_err(|_| Error::Stopping)?
    }
}

async fn writer(
    store: Arc<dyn AlertStore>,
    mut rx: mpsc::Receiver<Job>,
    news: mpsc::UnboundedSender<NewNotice>,
) {
    while let Some(first) = rx.recv().await {
        let mut alerts = first.item.alerts.len();
        let mut jobs = vec![first];
        while alerts < MAX_BATCH_ALERTS {
            match rx.try_recv() {
                Ok(job) => {
                    alerts += job.item.alerts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (batch, replies): (Vec<IngestPayload>, Vec<_>) =
            jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
        match store.alerts_ingest(&batch).await {
            Ok(done) => {
                for (reply, out) in replies.into_iter().zip(done) {
                    let out = match out {
                        Ok(out) => out,
                        Err(e) => {
                            tracing::warn!(error = %e, "one request's alerts were not stored");
                            let _ = reply.send(Err(Error::from(&e)));
                            continue;
                        }
                    };
                    for a in &out.alerts {
                        for n in &a.notices {
                            let _ = news.send(n.clone());
                        }
                    }
                    // The sender may have gone (client hung up): the alerts are stored.
                    let _ = reply.send(Ok(out));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = replies.len(), alerts, "storing alerts failed; the senders get 503");
                for reply in replies {
                    let _ = reply.send(Err(Error::from(&e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsbot_store::alerts::{AlertUpsert, NewAlertPayload, FIRING};

    fn item(fp: &str) -> IngestPayload {
        IngestPayload {
            payload: NewAlertPayload {
                source: "generic".into(),
                peer: "127.0.0.1".into(),
                content_type: "application/json".into(),
                body: "{}".into(),
            },
            alerts: vec![AlertUpsert {
                fingerprint: fp.into(),
                source: "generic".into(),
                status: FIRING.into(),
                severity: String::new(),
                name: fp.into(),
                summary: String::new(),
                endpoint: String::new(),
                metric: String::new(),
                labels: Default::default(),
                annotations: Default::default(),
                recipients: Vec::new(),
                parse_error: None,
                starts_at: chrono::Utc::now(),
                ends_at: None,
                notices: vec![NewNotice {
                    route: "r".into(),
                    group_key: "{}".into(),
                    group_wait: std::time::Duration::ZERO,
                    group_interval: std::time::Duration::ZERO,
                }],
            }],
        }
    }

    /// On one thread the writer cannot run while the requests are submitted: the
    /// queue holds `capacity`, the next is refused at once, the rest commit together.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_is_overload_and_the_rest_commit_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let store = opsbot_store::connect(&url).await.unwrap();
        let (news, mut heard) = mpsc::unbounded_channel();
        let (ingestor, _task) = Ingestor::start(store.clone(), 3, news);
        let results =
            futures::future::join_all((0..4).map(|i| ingestor.submit(item(&format!("fp-{i}")))))
                .await;
        let refused: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
        assert_eq!(refused.len(), 1);
        assert!(matches!(refused[0], Err(Error::Overloaded(3))));
        assert_eq!(refused[0].as_ref().unwrap_err().status(), 503);
        let stored: Vec<i64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|p| p.payload_id)
            .collect();
        assert_eq!(stored.len(), 3);
        assert_eq!(store.alerts_count(FIRING).await.unwrap(), 3);
        for _ in 0..3 {
            assert_eq!(heard.recv().await.unwrap().route, "r");
        }
        drop(ingestor);
    }
}
