//! The job runner: long operations run as background tasks that post progress and a
//! result to the channel that started them, record their state in the store, and are
//! never left "running" forever: a graceful stop marks them interrupted, and a crashed
//! process's jobs are found by their stale heartbeat (by every running instance, see
//! [`crate::Engine::sweep_stale_jobs`]).
//!
//! An asker a channel reaches through the outbox is told of an interruption by a notice
//! the channel gives when the job starts ([`ReplySink::interrupt_notice`]): it is held
//! in the store with the job and goes out only if the job ends interrupted, so it
//! reaches them even when this process is gone. A job that ends otherwise drops it.
//!
//! Each job runs under its claim ([`JobFence`]): its progress and result are recorded
//! only while the claim holds, and its provider sees the claim (`Progress::fence`) to
//! make its commit conditional on it, or to ask the store whether it still holds just
//! before remote work it cannot take back (`Progress::claim`). An instance paused past
//! the stale deadline comes back fenced out: its job was interrupted, its result is
//! refused and not reported as done.

use crate::reply::{Reply, ReplySink};
use opsbot_core::{
    AuditEntry, AuditResult, Cancel, CancelRequest, ClaimCheck, JobFence, JobId, JobState,
    Progress, Step,
};
use opsbot_store::{AuditStore, InterruptFilter, JobStore, NewJob, OutboxStore};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

/// What an asker is told when their job was interrupted, however it happened.
pub(crate) fn interrupted_notice(id: JobId) -> String {
    // Queued when the job starts, so it cannot know the target's state at the
    // interruption: the job's record (任务:N) has it.
    format!(
        "⚠ {id} 已中断: 运行它的 opsbot 在任务结束前停止了;目标的当前状态见 任务:{},请检查目标的实际状态",
        id.0
    )
}

/// Who started a job and with what text.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub user: String,
    pub channel: String,
    pub chat: Option<String>,
    pub command: &'static str,
    pub text: String,
    /// The work honours a cancellation (its provider can cancel it, see
    /// `Provider::can_cancel`); otherwise `取消:#N` says it cannot.
    pub cancellable: bool,
    /// `provider/vm-id` of the VM it acts on, if one: what the sweep reports the state
    /// of when it interrupts the job.
    pub target: Option<String>,
}

/// What a job is about: the summary its asker reads, and the VM it acts on when it
/// acts on one (`provider/vm-id`, see [`JobContext::target`]).
pub(crate) struct JobAbout {
    pub summary: String,
    pub target: Option<String>,
}

impl From<String> for JobAbout {
    fn from(summary: String) -> Self {
        JobAbout {
            summary,
            target: None,
        }
    }
}

pub type JobFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Progress reports of a running job; cheap to call from provider code.
#[derive(Debug, Clone)]
pub struct JobProgress {
    id: JobId,
    claim: JobClaim,
    tx: mpsc::UnboundedSender<(u8, String)>,
    cancel: Option<Cancel>,
    /// Set when the work stopped because of the cancellation (its provider said
    /// so), as opposed to failing for another reason after one was asked for.
    stopped: Arc<AtomicBool>,
}

impl JobProgress {
    /// Reports progress with a note the engine wrote.
    pub(crate) fn note(&self, percent: u8, note: String) {
        let _ = self.tx.send((percent.min(100), note));
    }

    /// The work stopped on the cancellation: the job ends 已取消.
    pub(crate) fn stopped_on_cancel(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

/// A subsystem's long work reports through the same channel as a provider's.
impl opsbot_core::chat::JobReport for JobProgress {
    fn job(&self) -> u64 {
        self.id.0 as u64
    }

    fn note(&self, percent: u8, text: String) {
        JobProgress::note(self, percent, text);
    }
}

impl Progress for JobProgress {
    fn report(&self, percent: u8, step: &Step) {
        self.note(percent, crate::render::provider::step(step));
    }

    fn cancel(&self) -> Option<&Cancel> {
        self.cancel.as_ref()
    }

    fn fence(&self) -> Option<&JobFence> {
        Some(&self.claim.fence)
    }

    fn claim(&self) -> Option<&dyn ClaimCheck> {
        Some(&self.claim)
    }
}

/// A job's claim and the store that can say whether it still holds.
#[derive(Clone)]
struct JobClaim {
    fence: JobFence,
    jobs: Arc<dyn JobStore>,
}

impl std::fmt::Debug for JobClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobClaim")
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ClaimCheck for JobClaim {
    async fn still_held(&self) -> bool {
        match self.jobs.fence_holds(&self.fence).await {
            Ok(held) => held,
            // Not held, as `ClaimCheck` documents: work whose claim cannot be confirmed
            // could not be recorded either.
            Err(e) => {
                tracing::warn!(job = self.fence.job.0, error = %e, "could not confirm the job's claim; treating it as lost");
                false
            }
        }
    }
}

/// What [`JobRunner::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Asked: the job ends cancelled once its provider has stopped (the asker hears).
    Requested,
    /// Asked before; still stopping.
    AlreadyRequested,
    /// Its provider cannot cancel this kind of work.
    NotCancellable,
    /// Past the point of no return: it will finish.
    TooLate,
    /// Not running in this process (finished, or run by another instance).
    NotRunningHere,
}

struct Running {
    abort: AbortHandle,
    /// `None`: the work cannot be cancelled.
    cancel: Option<Cancel>,
    stopped: Arc<AtomicBool>,
    /// Who asked to cancel it (the asker is told, when it was someone else).
    cancelled_by: Option<String>,
    sink: Arc<dyn ReplySink>,
    ctx: JobContext,
    started: Instant,
    /// A notice is held in the store for this job: the asker hears of an interruption
    /// through it, not through the sink.
    held_notice: bool,
}

pub struct JobRunner {
    jobs: Arc<dyn JobStore>,
    /// Holds a job's interruption notice until the job ends.
    outbox: Arc<dyn OutboxStore>,
    audit: Arc<dyn AuditStore>,
    owner: String,
    running: Mutex<HashMap<JobId, Running>>,
    idle: Notify,
}

impl JobRunner {
    /// `heartbeat`: how often the heartbeat of this process's running jobs is refreshed
    /// (well within the time after which other instances call them stale).
    pub fn new(
        jobs: Arc<dyn JobStore>,
        outbox: Arc<dyn OutboxStore>,
        audit: Arc<dyn AuditStore>,
        owner: String,
        heartbeat: Duration,
    ) -> Arc<Self> {
        let runner = Arc::new(JobRunner {
            jobs,
            outbox,
            audit,
            owner,
            running: Mutex::new(HashMap::new()),
            idle: Notify::new(),
        });
        let weak = Arc::downgrade(&runner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(heartbeat.max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                let Some(runner) = weak.upgrade() else { break };
                if runner.running_count() > 0 {
                    if let Err(e) = runner.jobs.heartbeat_jobs(&runner.owner).await {
                        tracing::warn!(error = %e, "job heartbeat failed");
                    }
                }
            }
        });
        runner
    }

    pub fn running_count(&self) -> usize {
        self.running.lock().expect("jobs lock").len()
    }

    /// Records the job, starts `work` in the background and returns its id at once.
    pub async fn start(
        self: &Arc<Self>,
        ctx: JobContext,
        sink: Arc<dyn ReplySink>,
        work: impl FnOnce(JobProgress) -> JobFuture,
    ) -> opsbot_store::Result<JobId> {
        let fence = self
            .jobs
            .start_job(&NewJob {
                owner: self.owner.clone(),
                user: ctx.user.clone(),
                channel: ctx.channel.clone(),
                chat: ctx.chat.clone(),
                command: ctx.command.to_string(),
                text: ctx.text.clone(),
                message: "已受理".into(),
                target: ctx.target.clone(),
            })
            .await?;
        let id = fence.job;
        let notice = sink.interrupt_notice(id, &interrupted_notice(id));
        let held_notice = !notice.is_empty();
        if held_notice {
            if let Err(e) = self.outbox.outbox_hold(id, &notice).await {
                // Not started: say so in the record, or it would wait to be called
                // interrupted with nobody told.
                let note = format!("未执行: 无法保存中断通知({e})");
                if let Err(e) = self.jobs.update_job(id, JobState::Failed, 0, &note).await {
                    tracing::error!(job = id.0, error = %e, "could not record a job that did not start");
                }
                return Err(e);
            }
        }
        crate::metrics::job_started(ctx.command);
        let (tx, mut rx) = mpsc::unbounded_channel::<(u8, String)>();
        let cancel = ctx.cancellable.then(Cancel::default);
        let stopped = Arc::new(AtomicBool::new(false));
        let future = work(JobProgress {
            id,
            claim: JobClaim {
                fence: fence.clone(),
                jobs: self.jobs.clone(),
            },
            tx,
            cancel: cancel.clone(),
            stopped: stopped.clone(),
        });

        // Holding the map lock while spawning means the task cannot finish (and try to
        // remove itself) before it is registered.
        let mut running = self.running.lock().expect("jobs lock");
        let runner = self.clone();
        let task_sink = sink.clone();
        let task = tokio::spawn(async move {
            let forward_sink = task_sink.clone();
            let store = runner.jobs.clone();
            let claim = fence.clone();
            // Not a separate task: aborting the job must stop its progress notes too.
            let forwarder = async move {
                while let Some((pct, note)) = rx.recv().await {
                    let noted = store
                        .update_fenced_job(&claim, JobState::Running, pct, &note)
                        .await;
                    if let Err(e) = noted {
                        tracing::warn!(job = id.0, error = %e, "could not record job progress");
                    }
                    forward_sink.send(Reply::progress(id, pct, format!("{id} {pct}% {note}")));
                }
            };
            // The work and its progress notes run side by side in this one task; when
            // the work is done its sender is gone, and the last notes drain first.
            let (result, ()) = tokio::join!(future, forwarder);
            runner.finish(&fence, result).await;
        });
        running.insert(
            id,
            Running {
                abort: task.abort_handle(),
                cancel,
                stopped,
                cancelled_by: None,
                sink,
                ctx,
                started: Instant::now(),
                held_notice,
            },
        );
        Ok(id)
    }

    /// Asks job `id`'s provider to stop it, for user `by`. Who may ask is the caller's
    /// decision.
    pub fn cancel(&self, id: JobId, by: &str) -> CancelOutcome {
        let mut running = self.running.lock().expect("jobs lock");
        let Some(job) = running.get_mut(&id) else {
            return CancelOutcome::NotRunningHere;
        };
        match job.cancel.as_ref().map(Cancel::request) {
            None => CancelOutcome::NotCancellable,
            Some(CancelRequest::Taken) => {
                job.cancelled_by = Some(by.to_string());
                CancelOutcome::Requested
            }
            Some(CancelRequest::AlreadyAsked) => CancelOutcome::AlreadyRequested,
            Some(CancelRequest::TooLate) => CancelOutcome::TooLate,
        }
    }

    /// The jobs `user` runs in this process, oldest first, with their command names.
    pub fn running_of(&self, user: &str) -> Vec<(JobId, &'static str)> {
        let mut jobs: Vec<(JobId, &'static str)> = self
            .running
            .lock()
            .expect("jobs lock")
            .iter()
            .filter(|(_, j)| j.ctx.user == user)
            .map(|(id, j)| (*id, j.ctx.command))
            .collect();
        jobs.sort();
        jobs
    }

    async fn finish(&self, fence: &JobFence, result: Result<String, String>) {
        let id = fence.job;
        let Some(job) = self.running.lock().expect("jobs lock").remove(&id) else {
            return;
        };
        let cancelled = job.stopped.load(Ordering::Acquire);
        let asked = job.cancel.as_ref().is_some_and(Cancel::is_requested);
        let (state, audit, text) = match &result {
            Ok(msg) if asked => (
                JobState::Succeeded,
                AuditResult::Ok,
                format!("✅ {id} {msg}(取消请求到达时已无法停止,操作已完成)"),
            ),
            Ok(msg) => (
                JobState::Succeeded,
                AuditResult::Ok,
                format!("✅ {id} {msg}"),
            ),
            Err(msg) if cancelled => (
                JobState::Cancelled,
                AuditResult::Cancelled,
                match &job.cancelled_by {
                    Some(by) if *by != job.ctx.user => {
                        format!("🚫 {id} 已取消(由 {by} 取消): {msg}")
                    }
                    _ => format!("🚫 {id} 已取消: {msg}"),
                },
            ),
            Err(msg) => (
                JobState::Failed,
                AuditResult::Failed,
                format!("❌ {id} 失败: {msg}"),
            ),
        };
        crate::metrics::job_finished(job.ctx.command, state.as_str(), job.started.elapsed());
        let message = result.unwrap_or_else(|e| e);
        let progress = if state == JobState::Succeeded { 100 } else { 0 };
        match self
            .jobs
            .update_fenced_job(fence, state, progress, &message)
            .await
        {
            Ok(true) => {}
            Ok(false) => return self.fenced_out(id, job, &message).await,
            Err(e) => tracing::error!(job = id.0, error = %e, "could not record job result"),
        }
        if job.held_notice {
            // Left behind, it would only go out if the job were later (wrongly) called
            // interrupted; the next drop sweeps it up.
            if let Err(e) = self.outbox.outbox_drop_held(id).await {
                tracing::warn!(job = id.0, error = %e, "could not drop the interruption notice of a finished job");
            }
        }
        self.audit(&job, id, audit, &message).await;
        job.sink.send(Reply::finished(id, state, text));
        self.idle.notify_waiters();
    }

    /// The job was interrupted by another instance while this one was silent (paused,
    /// cut off from the store): its result is not recorded and not reported as done.
    /// The asker was told of the interruption already (the held notice, released by
    /// it), or is told now.
    async fn fenced_out(&self, id: JobId, job: Running, result: &str) {
        tracing::warn!(
            job = id.0,
            result,
            "job was interrupted by another instance; its result is refused"
        );
        let message = format!("已被其他实例中断,本实例的结果未记录({result})");
        self.audit(&job, id, AuditResult::Cancelled, &message).await;
        if !job.held_notice {
            job.sink.send(Reply::finished(
                id,
                JobState::Interrupted,
                format!(
                    "⚠ {id} {message};请用 任务:{} 查看记录并检查目标的实际状态",
                    id.0
                ),
            ));
        }
        self.idle.notify_waiters();
    }

    async fn audit(&self, job: &Running, id: JobId, result: AuditResult, message: &str) {
        let entry = AuditEntry {
            id: 0,
            at: chrono::Utc::now(),
            user: job.ctx.user.clone(),
            channel: job.ctx.channel.clone(),
            chat: job.ctx.chat.clone(),
            text: job.ctx.text.clone(),
            command: Some(job.ctx.command.to_string()),
            result,
            message: format!("任务 {id}: {message}"),
            duration_ms: job.started.elapsed().as_millis() as i64,
            job_id: Some(id.0),
        };
        if let Err(e) = self.audit.append_audit(&entry).await {
            tracing::error!(job = id.0, error = %e, "could not write the audit entry of a job");
        }
    }

    /// Waits until no job runs, or `timeout` passes. Returns whether all finished.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.running_count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.running_count() == 0;
            }
        }
    }

    /// Waits for one job to reach a final state, or `timeout`.
    pub async fn wait_job(&self, id: JobId, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if !self.running.lock().expect("jobs lock").contains_key(&id) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Stops every job of this process and records it as interrupted, telling each
    /// user. Used on shutdown once the grace period is over.
    pub async fn interrupt_all(&self, reason: &str) -> usize {
        let jobs: Vec<(JobId, Running)> = self.running.lock().expect("jobs lock").drain().collect();
        for (_, job) in &jobs {
            job.abort.abort();
            crate::metrics::job_finished(
                job.ctx.command,
                JobState::Interrupted.as_str(),
                job.started.elapsed(),
            );
        }
        let message = format!("已中断: {reason};请检查目标的实际状态");
        if let Err(e) = self
            .jobs
            .interrupt_jobs(&InterruptFilter::Owner(self.owner.clone()), &message)
            .await
        {
            tracing::error!(error = %e, "could not record interrupted jobs");
        }
        for (id, job) in &jobs {
            self.audit(job, *id, AuditResult::Cancelled, &message).await;
            // An asker with a held notice hears of it through that (released now that
            // the job is interrupted), not twice.
            if !job.held_notice {
                job.sink.send(Reply::finished(
                    *id,
                    JobState::Interrupted,
                    format!("⚠ {id} {message}"),
                ));
            }
        }
        self.idle.notify_waiters();
        jobs.len()
    }
}
