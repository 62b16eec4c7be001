//! Watch streams: newline-delimited events from a resourceVersion on, bookmarks, a 410
//! ERROR event for a resourceVersion older than the kept history, `timeoutSeconds`, and
//! streams cut mid-way by `drop_watches`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::resources::Kind;
use super::selector::Selector;
use super::status::ApiError;
use super::store::Change;
use super::table;
use super::Shared;

/// What one watch asked for.
pub(crate) struct WatchRequest {
    pub kind: Kind,
    pub namespace: Option<String>,
    /// None: start with ADDED events for what exists now ("" or "0").
    pub resource_version: Option<u64>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub selector: Selector,
    /// The client asked for Tables (kubectl's default printing).
    pub table: bool,
}

impl WatchRequest {
    fn wants(&self, c: &Change) -> bool {
        c.kind == self.kind
            && self.namespace.as_deref().is_none_or(|ns| ns == c.namespace)
            && self.selector.matches(&c.object)
    }

    fn line(&self, event_type: &str, object: &Value) -> Bytes {
        let object = if self.table {
            table::single(self.kind, object)
        } else {
            object.clone()
        };
        let mut line =
            serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// Starts a watch; the response streams until the timeout, the client leaves, or
/// `drop_watches`.
pub(crate) fn start(shared: &Arc<Shared>, req: WatchRequest) -> Response {
    let (tx, rx) = mpsc::channel::<Chunk>(256);
    let (initial, mut changes, mut seen) = {
        let st = shared.store.lock().expect("store lock");
        let mut initial = Vec::new();
        match req.resource_version {
            None => {
                for (key, obj) in st.list(req.kind, req.namespace.as_deref()) {
                    let mut obj = obj.clone();
                    obj["kind"] = json!(key.0.kind());
                    obj["apiVersion"] = json!(key.0.api_version());
                    if req.selector.matches(&obj) {
                        initial.push(req.line("ADDED", &obj));
                    }
                }
            }
            Some(rv) => match st.changes_since(rv) {
                Some(changes) => {
                    for c in changes.iter().filter(|c| req.wants(c)) {
                        initial.push(req.line(c.event_type, &c.object));
                    }
                }
                None => {
                    let gone = ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        st.oldest_watchable
                    ));
                    let mut line =
                        serde_json::to_vec(&json!({"type": "ERROR", "object": gone.to_json()}))
                            .unwrap_or_default();
                    line.push(b'\n');
                    drop(st);
                    let _ = tx.try_send(Ok(Bytes::from(line)));
                    return stream_response(rx);
                }
            },
        }
        (initial, st.subscribe(), st.rv)
    };
    let mut dropped = shared.drop_watches.subscribe();
    let interval = *shared.bookmark_interval.lock().expect("bookmark lock");
    tokio::spawn(async move {
        for line in initial {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut bookmark =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(c) => {
                        seen = seen.max(c.rv);
                        if req.wants(&c) && tx.send(Ok(req.line(c.event_type, &c.object))).await.is_err() {
                            return;
                        }
                    }
                    // Too slow a reader: cut it off, as the real server drops slow watchers.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Err(std::io::Error::other("watcher too slow"))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = bookmark.tick(), if req.bookmarks => {
                    let object = json!({
                        "kind": req.kind.kind(),
                        "apiVersion": req.kind.api_version(),
                        "metadata": {"resourceVersion": seen.to_string()},
                    });
                    let mut line = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object}))
                        .unwrap_or_default();
                    line.push(b'\n');
                    if tx.send(Ok(Bytes::from(line))).await.is_err() {
                        return;
                    }
                }
                _ = dropped.changed() => {
                    // An error ends the body mid-stream: the connection is cut.
                    let _ = tx.send(Err(std::io::Error::other("watch dropped"))).await;
                    return;
                }
                _ = sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    stream_response(rx)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn stream_response(rx: mpsc::Receiver<Chunk>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("watch response")
}
