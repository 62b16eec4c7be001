//! A job taken from its instance: the instance was silent past the stale deadline
//! (paused, cut off) and another instance's sweep interrupted its job. When it comes
//! back, its provider operation must not change the VM and its result must not be
//! recorded; the interruption says what the VM looks like.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use async_trait::async_trait;
use common::*;
use opsbot_core::{
    AuditResult, Inventory, JobState, OpOutcome, PowerState, Progress, Provider, ProviderError,
    VmOperation,
};
use opsbot_engine::jobs::{JobContext, JobRunner};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_sim::SimProvider;
use opsbot_store::InterruptFilter;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// The sim, with every operation held at its start until the test lets it go: the
/// instance "paused" while its job runs.
struct Held {
    sim: SimProvider,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Provider for Held {
    fn name(&self) -> &str {
        self.sim.name()
    }
    fn kind(&self) -> &'static str {
        "sim"
    }
    async fn inventory(&self) -> Result<Inventory, ProviderError> {
        self.sim.inventory().await
    }
    async fn execute(
        &self,
        op: &VmOperation,
        progress: &dyn Progress,
    ) -> Result<OpOutcome, ProviderError> {
        self.entered.notify_one();
        self.release.notified().await;
        self.sim.execute(op, progress).await
    }
}

fn settings(owner: &str, stale_after: Duration) -> EngineSettings {
    EngineSettings {
        owner: owner.into(),
        stale_after,
        ..EngineSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_taken_over_changes_nothing_and_says_the_vms_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/opsbot.db", dir.path().display());
    let store = opsbot_store::connect(&url).await.unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let held = Arc::new(Held {
        sim: SimProvider::new("sim", store.clone(), 0.0),
        entered: Notify::new(),
        release: Notify::new(),
    });
    let a = Engine::new(
        store.clone(),
        sessions.clone(),
        vec![held.clone()],
        admin_policy(),
        settings("proc-a", Duration::from_secs(120)),
    )
    .await
    .unwrap();
    a.ensure_synced().await.unwrap();

    let pool = store.load_pool().await.unwrap();
    let vm = pool
        .inventory
        .vms
        .iter()
        .find(|v| {
            !v.template
                && v.power == PowerState::PoweredOff
                && pool
                    .inventory
                    .hosts
                    .iter()
                    .any(|h| h.name == v.host && h.connection_state == "connected")
        })
        .expect("a powered-off VM in the sim")
        .clone();

    let mut c = Collector::new();
    let mut ask = msg(ADMIN, &format!("开机:{}", vm.name));
    ask.assume_yes = true;
    let r = a.handle(ask, c.sink()).await;
    let id = r.job().unwrap_or_else(|| panic!("a job: {}", r.text));
    tokio::time::timeout(Duration::from_secs(30), held.entered.notified())
        .await
        .expect("the operation did not start within 30 s");

    // Instance b finds a's job stale (b calls anything older than now stale) and
    // interrupts it while a's operation is held.
    let b = Engine::new(
        store.clone(),
        sessions.clone(),
        vec![Arc::new(SimProvider::new("sim", store.clone(), 0.0))],
        admin_policy(),
        settings("proc-b", Duration::ZERO),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.job(id).await.unwrap().unwrap().state == JobState::Running {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not swept within 30 s"
        );
        b.sweep_stale_jobs().await.unwrap();
    }
    let swept = store.job(id).await.unwrap().unwrap();
    assert_eq!(swept.state, JobState::Interrupted);
    assert!(
        swept
            .message
            .contains(&format!("{} 当前状态: 关机", vm.name)),
        "the interruption names the VM's state: {}",
        swept.message
    );

    // a comes back: its operation goes on, fenced out.
    held.release.notify_one();
    let (replies, state) = c.until_done().await;
    assert_eq!(state, JobState::Interrupted, "{replies:?}");
    let last = &replies.last().unwrap().text;
    assert!(
        last.contains("已被其他实例中断,本实例的结果未记录"),
        "{last}"
    );

    // The VM was not powered on, in the sim or the pool; the record is the sweep's.
    let inv = held.sim.inventory().await.unwrap();
    let now = inv.vms.iter().find(|v| v.id == vm.id).unwrap();
    assert_eq!(
        now.power,
        PowerState::PoweredOff,
        "the fenced-out job changed the VM"
    );
    let pool = store.load_pool().await.unwrap();
    let pooled = pool.inventory.vms.iter().find(|v| v.id == vm.id).unwrap();
    assert_eq!(pooled.power, PowerState::PoweredOff);
    let record = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.message.as_str()),
        (JobState::Interrupted, swept.message.as_str()),
        "the refused result did not overwrite the interruption"
    );
    let audit = store
        .audit_log(&opsbot_store::AuditQuery {
            user: Some(ADMIN.into()),
            result: None,
            limit: 50,
            offset: 0,
        })
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.job_id == Some(id.0)
            && e.result == AuditResult::Cancelled
            && e.message.contains("结果未记录")),
        "a's end of the job is audited: {audit:?}"
    );
}

/// What a provider whose commit cannot go through the store (a vCenter task) asks just
/// before its remote work: the job's claim holds while the job runs here, and no longer
/// once another instance interrupted the job (its token moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_check_says_not_held_once_the_job_was_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/opsbot.db", dir.path().display());
    let store = opsbot_store::connect(&url).await.unwrap();
    // A heartbeat that never comes during the test: only the interruption moves the claim.
    let runner = JobRunner::new(
        store.clone(),
        store.clone(),
        store.clone(),
        "proc-a".into(),
        Duration::from_secs(3600),
    );
    let answers = Arc::new(Mutex::new(Vec::new()));
    let interrupted = Arc::new(Notify::new());
    let (asked, first_answer) = oneshot::channel();
    let (work_answers, work_interrupted) = (answers.clone(), interrupted.clone());
    let ctx = JobContext {
        user: ADMIN.into(),
        channel: "test".into(),
        chat: None,
        command: "开机",
        text: "开机:vm-1".into(),
        cancellable: false,
        target: None,
    };
    let mut c = Collector::new();
    let id = runner
        .start(ctx, c.sink(), move |progress| {
            Box::pin(async move {
                let claim = progress.claim().expect("a job runs under a claim");
                let held = claim.still_held().await;
                work_answers.lock().unwrap().push(held);
                asked.send(()).unwrap();
                work_interrupted.notified().await;
                let held = claim.still_held().await;
                work_answers.lock().unwrap().push(held);
                if held {
                    Ok("done".into())
                } else {
                    Err(opsbot_engine::render::provider::FENCED_OUT.into())
                }
            })
        })
        .await
        .unwrap();
    first_answer.await.unwrap();

    let taken = store
        .interrupt_jobs(
            &InterruptFilter::Owner("proc-a".into()),
            "interrupted by the test",
        )
        .await
        .unwrap();
    assert_eq!(taken, vec![id]);
    interrupted.notify_one();

    let (replies, state) = c.until_done().await;
    assert_eq!(state, JobState::Interrupted, "{replies:?}");
    assert_eq!(*answers.lock().unwrap(), vec![true, false]);
    let record = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.message.as_str()),
        (JobState::Interrupted, "interrupted by the test")
    );
}
