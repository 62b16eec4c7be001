//! Handing work to the engine under a deadline: what it answers within the budget is
//! returned for the platform's passive reply, and
//! an answer that comes later goes to the channel's [`Late`] (or another late handler)
//! instead. Never lost, never twice.

use futures::FutureExt;
use opsbot_engine::{Engine, Incoming, ReplySink, Response};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
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

/// Runs `work` and waits up to `budget` for its answer; an answer that comes later is
/// given to `late`.
///
/// The work is polled right here, not in a task of its own: most answers come at once,
/// and a task costs a spawn, a hand-off between worker threads and a wake-up per
/// message. Work still pending at the budget moves to a task, where it finishes and
/// hands its answer to `late`. So does work whose request is dropped meanwhile (the
/// platform hung up): a command is never cut off halfway by its caller going away.
pub(crate) async fn within<T, W, L>(work: W, late: L, budget: Duration) -> Handoff<T>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    L: FnOnce(T) + Send + 'static,
{
    // A panic in the work is caught here as a task would catch it: the caller answers
    // that nothing will come instead of going down with it.
    let mut pending = Pending {
        work: Some(Box::pin(AssertUnwindSafe(work).catch_unwind())),
        late: Some(late),
    };
    let polled = {
        let work = pending
            .work
            .as_mut()
            .expect("work is there until it is taken");
        tokio::time::timeout(budget, work).await
    };
    match polled {
        Ok(Ok(answer)) => {
            pending.work = None;
            Handoff::InTime(answer)
        }
        Ok(Err(_panic)) => {
            pending.work = None;
            Handoff::Lost
        }
        // `pending` goes out of scope with the work still in it: it moves to a task.
        Err(_) => Handoff::Late,
    }
}

type Caught<T> = Pin<Box<dyn Future<Output = std::thread::Result<T>> + Send>>;

/// Work not finished where it was started; dropped, it finishes in a task of its own.
struct Pending<T: Send + 'static, L: FnOnce(T) + Send + 'static> {
    work: Option<Caught<T>>,
    late: Option<L>,
}

impl<T, L> Drop for Pending<T, L>
where
    T: Send + 'static,
    L: FnOnce(T) + Send + 'static,
{
    fn drop(&mut self) {
        let (Some(work), Some(late)) = (self.work.take(), self.late.take()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Ok(answer) = work.await {
                        late(answer);
                    }
                });
            }
            // Only when the runtime itself is going away, which ends every task anyway.
            Err(_) => tracing::warn!("a command was dropped with its runtime before it answered"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{within, Handoff};
    use std::time::Duration;
    use tokio::sync::{mpsc, oneshot};

    /// Long enough never to run out in a test that expects an answer in time.
    const BUDGET: Duration = Duration::from_secs(3600);
    /// For work that waits until the test lets it go, so it always outlasts this.
    const SHORT: Duration = Duration::from_millis(20);

    /// The late answers, as the late handler saw them.
    fn late_to(tx: mpsc::UnboundedSender<u32>) -> impl FnOnce(u32) + Send + 'static {
        move |answer| {
            let _ = tx.send(answer);
        }
    }

    #[tokio::test]
    async fn an_answer_in_time_is_returned_and_not_given_late() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let answer = within(async { 7 }, late_to(tx), BUDGET).await;
        assert!(matches!(answer, Handoff::InTime(7)));
        // The handler was dropped unused: the channel closes with nothing in it.
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn work_past_the_budget_finishes_and_its_answer_goes_late_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (go, wait) = oneshot::channel::<()>();
        let answer = within(
            async move {
                let _ = wait.await;
                9
            },
            late_to(tx),
            SHORT,
        )
        .await;
        assert!(matches!(answer, Handoff::Late));
        go.send(()).unwrap();
        assert_eq!(rx.recv().await, Some(9));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_lost_not_propagated() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let answer = within(
            async {
                if true {
                    panic!("engine bug");
                }
                1
            },
            late_to(tx),
            BUDGET,
        )
        .await;
        assert!(matches!(answer, Handoff::Lost));
        assert_eq!(rx.recv().await, None);
    }

    /// The platform hung up before the budget: the command still runs to its end, and
    /// its answer goes late.
    #[tokio::test]
    async fn work_whose_caller_is_dropped_finishes_in_a_task() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (go, wait) = oneshot::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let call = tokio::spawn(within(
            async move {
                let _ = started_tx.send(());
                let _ = wait.await;
                11
            },
            late_to(tx),
            BUDGET,
        ));
        started.await.unwrap();
        call.abort();
        assert!(call.await.is_err_and(|e| e.is_cancelled()));
        go.send(()).unwrap();
        assert_eq!(rx.recv().await, Some(11));
        assert_eq!(rx.recv().await, None);
    }
}
