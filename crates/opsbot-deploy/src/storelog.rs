//! A [`LogSink`] that keeps lines in the store: lines are gathered in memory and
//! written in chunks (every half second, or sooner when a chunk is large), so a step
//! printing thousands of lines costs a few writes, and readers (`日志:#N`, the web's
//! live log) see them within a second.

use crate::log::LogSink;
use opsbot_store::deploy::{DeployStore, LogOf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Flushed when it holds this much.
const CHUNK: usize = 32 * 1024;
const EVERY: Duration = Duration::from_millis(500);

pub struct StoreLog {
    store: Arc<dyn DeployStore>,
    order: i64,
    build: i64,
    host: String,
    buf: Mutex<String>,
    full: Notify,
    /// Serialises writes so chunks keep their order.
    writing: tokio::sync::Mutex<()>,
}

impl StoreLog {
    /// The log of `host` of order `order` (`""`: the order's own lines).
    pub fn start(store: Arc<dyn DeployStore>, order: i64, host: String) -> Arc<StoreLog> {
        Self::spawn(store, order, 0, host)
    }

    /// The log of build `build`.
    pub fn build(store: Arc<dyn DeployStore>, build: i64) -> Arc<StoreLog> {
        Self::spawn(store, 0, build, String::new())
    }

    fn spawn(store: Arc<dyn DeployStore>, order: i64, build: i64, host: String) -> Arc<StoreLog> {
        let log = Arc::new(StoreLog {
            store,
            order,
            build,
            host,
            buf: Mutex::new(String::new()),
            full: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&log);
        tokio::spawn(async move {
            loop {
                let Some(l) = weak.upgrade() else { break };
                let full = l.full.notified();
                tokio::select! {
                    _ = full => {}
                    _ = tokio::time::sleep(EVERY) => {}
                }
                l.flush().await;
            }
        });
        log
    }

    /// Writes what is gathered.
    pub async fn flush(&self) {
        let _turn = self.writing.lock().await;
        let text = std::mem::take(&mut *self.buf.lock().expect("log lock"));
        if text.is_empty() {
            return;
        }
        let text = text.trim_end_matches('\n');
        let of = if self.build > 0 {
            LogOf::Build(self.build)
        } else {
            LogOf::Order(self.order, Some(&self.host))
        };
        if let Err(e) = self.store.log_append(of, text).await {
            tracing::warn!(order = self.order, build = self.build, error = %e, "could not keep log lines");
        }
    }
}

impl LogSink for StoreLog {
    fn line(&self, text: &str) {
        let mut buf = self.buf.lock().expect("log lock");
        buf.push_str(text);
        buf.push('\n');
        if buf.len() >= CHUNK {
            self.full.notify_one();
        }
    }
}
