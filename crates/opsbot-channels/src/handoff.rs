//! Handing work to the engine under a deadline: the engine runs in a task of its own;
//! what it answers within the budget is returned for the platform's passive reply, and
//! an answer that comes later goes to the channel's [`Late`] (or another late handler)
//! instead. Never lost, never twice.

use opsbot_engine::{Engine, Incoming, ReplySink, Response};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where an answer goes that missed the passive reply.
pub(crate) trait Late: Send + Sync + 'static {
    fn late(&self, response: Response);
}

pub(crate) enum Handoff<T = Response> {
    /// The engine answered in time.
    InTime(T),
    /// Slower than the budget: the answer goes (or went) to the late handler.
    Late,
    /// The engine task ended without answering (it panicked); nothing will come.
    Lost,
}

pub(crate) async fn hand_off(
    engine: &Arc<Engine>,
    incoming: Incoming,
    jobs: Arc<dyn ReplySink>,
    late: Arc<dyn Late>,
    budget: Duration,
) -> Handoff {
    let engine = engine.clone();
    within(
        async move { engine.handle(incoming, jobs).await },
        move |response| late.late(response),
        budget,
    )
    .await
}

/// Runs `work` in a task of its own and waits up to `budget` for its answer; an answer
/// that comes later is given to `late`.
pub(crate) async fn within<T, W, L>(work: W, late: L, budget: Duration) -> Handoff<T>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    L: FnOnce(T) + Send + 'static,
{
    // Whichever side sees the answer go unclaimed hands it over; only once.
    let late = Arc::new(Mutex::new(Some(late)));
    let for_task = late.clone();
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let answer = work.await;
        if let Err(answer) = tx.send(answer) {
            give(&for_task, answer);
        }
    });
    match tokio::time::timeout(budget, &mut rx).await {
        Ok(Ok(answer)) => Handoff::InTime(answer),
        Ok(Err(_)) => Handoff::Lost,
        Err(_) => {
            // Closing first means an answer that lands now is either taken here or
            // refused to the task, which then hands it to `late`: never lost, never twice.
            rx.close();
            if let Ok(answer) = rx.try_recv() {
                give(&late, answer);
            }
            Handoff::Late
        }
    }
}

fn give<T, L: FnOnce(T)>(late: &Mutex<Option<L>>, answer: T) {
    let taken = late.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(late) = taken {
        late(answer);
    }
}
