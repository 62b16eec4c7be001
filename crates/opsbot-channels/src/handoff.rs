//! Handing a message to the engine under a deadline: the engine runs in a task of its
//! own; what it answers within the budget is returned for the platform's passive reply,
//! and an answer that comes later goes to the channel's [`Late`] instead. Never lost,
//! never twice.

use opsbot_engine::{Engine, Incoming, ReplySink, Response};
use std::sync::Arc;
use std::time::Duration;

/// Where an answer goes that missed the passive reply.
pub(crate) trait Late: Send + Sync + 'static {
    fn late(&self, response: Response);
}

pub(crate) enum Handoff {
    /// The engine answered in time.
    InTime(Response),
    /// Slower than the budget: the answer goes (or went) to [`Late::late`].
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
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let for_task = late.clone();
    tokio::spawn(async move {
        let response = engine.handle(incoming, jobs).await;
        if let Err(response) = tx.send(response) {
            for_task.late(response);
        }
    });
    match tokio::time::timeout(budget, &mut rx).await {
        Ok(Ok(response)) => Handoff::InTime(response),
        Ok(Err(_)) => Handoff::Lost,
        Err(_) => {
            // Closing first means a response that lands now is either taken here or
            // refused to the task, which then hands it to `late`: never lost, never twice.
            rx.close();
            if let Ok(response) = rx.try_recv() {
                late.late(response);
            }
            Handoff::Late
        }
    }
}
