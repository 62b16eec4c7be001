//! The pool version check, shared by the requests that arrive together: one query
//! answers every request that was waiting when it STARTED, so a read never sees a
//! version older than its own arrival (what a query of its own would give: a write
//! committed before the request arrived is seen), while a burst of reads costs one
//! round trip per query time instead of one each. At most one check runs at a time;
//! requests arriving meanwhile wait for the next one, which starts when it ends.

use opsbot_store::{PoolStore, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

type Checked = Option<Result<i64, StoreError>>;

/// A check not started yet, which arriving requests join.
struct Round {
    id: u64,
    answer: watch::Receiver<Checked>,
}

#[derive(Default)]
pub(super) struct VersionChecks {
    next: Mutex<Option<Round>>,
    /// One check at a time.
    turn: tokio::sync::Mutex<()>,
    ids: AtomicU64,
}

impl VersionChecks {
    /// The store's pool version, as of some moment after this call began.
    pub(super) async fn current(&self, store: &dyn PoolStore) -> Result<i64, StoreError> {
        let lead = {
            let mut next = self.next.lock().expect("version lock poisoned");
            match &*next {
                Some(round) => Err(round.answer.clone()),
                None => {
                    let (tx, answer) = watch::channel(None);
                    let id = self.ids.fetch_add(1, Ordering::Relaxed);
                    *next = Some(Round { id, answer });
                    Ok(Lead {
                        checks: self,
                        id,
                        tx,
                    })
                }
            }
        };
        match lead {
            Ok(lead) => lead.run(store).await,
            Err(mut answer) => {
                let shared = answer
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|v| v.clone());
                match shared {
                    Some(version) => version,
                    // The leading request was dropped before it asked: ask alone.
                    None => store.pool_version().await,
                }
            }
        }
    }
}

/// The request that runs a round's query. Dropped early (its request was cancelled),
/// it takes the round away, so the waiting ones ask for themselves.
struct Lead<'a> {
    checks: &'a VersionChecks,
    id: u64,
    tx: watch::Sender<Checked>,
}

impl Lead<'_> {
    async fn run(self, store: &dyn PoolStore) -> Result<i64, StoreError> {
        let _turn = self.checks.turn.lock().await;
        // From here on, arrivals start the next round: this query starts after them.
        self.close();
        let version = store.pool_version().await;
        self.tx.send_replace(Some(version.clone()));
        version
    }

    fn close(&self) {
        let mut next = self.checks.next.lock().expect("version lock poisoned");
        if next.as_ref().is_some_and(|r| r.id == self.id) {
            *next = None;
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.close();
    }
}
