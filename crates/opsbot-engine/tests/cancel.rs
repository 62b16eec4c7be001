//! A running job can be cancelled where its provider can (`取消:#N` / `cancel #N`): its
//! owner or an administrator only, audited, ending 已取消 with the asker told; a job
//! that cannot be cancelled (its provider cannot, or it is past its point of no return)
//! says so. Plain 取消 / n still answers the pending confirmation.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use async_trait::async_trait;
use common::*;
use opsbot_core::{
    commit_cancel, AuditResult, Inventory, JobId, JobState, OpOutcome, Progress, Provider,
    ProviderError, VmOperation,
};
use opsbot_engine::{Caller, Engine, EngineSettings, Refusal, Status};
use opsbot_sim::SimProvider;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A sim whose every delay is a hundred times longer: a clone takes minutes, so it is
/// surely still running when the test cancels it (and the test never waits that long:
/// the cancellation ends it at once).
async fn slow_harness(policy: opsbot_core::Policy) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let sim = Arc::new(SimProvider::new("sim", store.clone(), 100.0));
    let engine = Engine::new(
        store.clone(),
        sessions.clone(),
        vec![sim],
        policy,
        EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    Harness {
        engine,
        store,
        sessions,
        dir,
    }
}

fn two_users() -> opsbot_core::Policy {
    policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("ops", &["克隆", "开机", "任务"], &["sim/**"]),
        ],
        &[(ADMIN, &["admin"]), ("alice", &["ops"]), ("bob", &["ops"])],
        &[],
    )
}

/// Starts a clone as `user` and waits for its first progress report: it is running
/// and at a cancellable step.
async fn running_clone(h: &Harness, user: &str, name: &str, ip: &str) -> (JobId, Collector) {
    let r = h.say(user, &format!("克隆:1,{name},{ip}")).await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let mut c = Collector::new();
    let r = h.engine.handle(msg(user, "确认"), c.sink()).await;
    let id = r.job().unwrap_or_else(|| panic!("a job: {}", r.text));
    let first = tokio::time::timeout(Duration::from_secs(30), c.rx.recv())
        .await
        .expect("no progress within 30 s")
        .unwrap();
    assert_eq!(first.job, id);
    assert!(first.finished.is_none(), "{}", first.text);
    (id, c)
}

#[tokio::test]
async fn the_owner_cancels_a_running_sim_clone_and_is_told() {
    let h = slow_harness(two_users()).await;
    let (id, mut c) = running_clone(&h, "alice", "cancel-me", "10.96.0.50").await;

    let r = h.say("alice", &format!("取消:#{}", id.0)).await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    assert!(
        r.text.contains(&format!("已请求取消任务 {id}")),
        "{}",
        r.text
    );

    let (replies, state) = c.until_done().await;
    assert_eq!(state, JobState::Cancelled, "{replies:?}");
    let last = &replies.last().unwrap().text;
    assert!(last.starts_with(&format!("🚫 {id} 已取消")), "{last}");

    // Nothing was cloned; the record and 任务 say 已取消; both ends are audited.
    assert!(h.vm("cancel-me").await.is_none());
    let job = h.store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    let r = h.say("alice", &format!("任务:{}", id.0)).await;
    assert!(r.text.contains("状态: 已取消"), "{}", r.text);
    let audit = h
        .store
        .audit_log(&opsbot_store::AuditQuery {
            user: Some("alice".into()),
            result: None,
            limit: 50,
            offset: 0,
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.text == format!("取消:#{}", id.0) && a.result == AuditResult::Ok),
        "the request: {audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|a| a.job_id == Some(id.0) && a.result == AuditResult::Cancelled),
        "the job's end: {audit:?}"
    );

    // Cancelling again: it has ended.
    let r = h.say("alice", &format!("cancel #{}", id.0)).await;
    assert_eq!(r.status, Status::Failed, "{}", r.text);
    assert!(r.text.contains("已结束(已取消),无需取消"), "{}", r.text);
}

#[tokio::test]
async fn only_the_owner_or_an_administrator_may_cancel() {
    let h = slow_harness(two_users()).await;
    let (id, mut c) = running_clone(&h, "bob", "bobs-vm", "10.96.0.51").await;

    // Another user's job is as unknown as a missing one: nothing says it exists.
    let r = h.say("alice", &format!("cancel #{}", id.0)).await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    let missing = h.say("alice", "cancel #9999").await;
    assert_eq!(
        r.text.replace(&id.to_string(), "#N"),
        missing.text.replace("#9999", "#N"),
        "the same answer as for a job that does not exist"
    );
    assert_eq!(
        h.store.job(id).await.unwrap().unwrap().state,
        JobState::Running,
        "still running"
    );

    // An administrator may, over the API as in chat; the owner is told through the
    // job's own channel.
    let admin = Caller {
        user: ADMIN.into(),
        channel: "api".into(),
    };
    let said = h.engine.cancel_job(&admin, id).await.unwrap();
    assert!(said.contains("已请求取消"), "{said}");
    let (replies, state) = c.until_done().await;
    assert_eq!(state, JobState::Cancelled, "{replies:?}");
    let last = &replies.last().unwrap().text;
    assert!(
        last.starts_with(&format!("🚫 {id} 已取消(由 {ADMIN} 取消)")),
        "bob hears who: {last}"
    );

    match h.engine.cancel_job(&admin, JobId(9999)).await {
        Err(Refusal::NotFound(m)) => assert!(m.contains("不存在"), "{m}"),
        other => panic!("{other:?}"),
    }
    match h.engine.cancel_job(&admin, id).await {
        Err(Refusal::Failed(m)) => assert!(m.contains("无需取消"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn plain_cancel_still_answers_the_confirmation() {
    let h = harness(admin_policy()).await;
    let r = h.say(ADMIN, "关机:web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation);
    let r = h.say(ADMIN, "n").await;
    assert!(r.text.starts_with("已取消: "), "{}", r.text);
    let r = h.say(ADMIN, "取消:#abc").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("不是正整数"), "{}", r.text);
    let r = h.say(ADMIN, "取消:#77").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(r.text.contains("任务 #77 不存在"), "{}", r.text);
}

/// A provider in front of the sim whose operations wait for the test: one that cannot
/// cancel, or one that is already past its point of no return when asked.
struct Gate {
    sim: SimProvider,
    cancellable: bool,
    release: Arc<Notify>,
    entered: Arc<Notify>,
}

#[async_trait]
impl Provider for Gate {
    fn name(&self) -> &str {
        self.sim.name()
    }
    fn kind(&self) -> &'static str {
        "sim"
    }
    async fn inventory(&self) -> Result<Inventory, ProviderError> {
        self.sim.inventory().await
    }
    fn can_cancel(&self, _op: &VmOperation) -> bool {
        self.cancellable
    }
    async fn execute(
        &self,
        op: &VmOperation,
        progress: &dyn Progress,
    ) -> Result<OpOutcome, ProviderError> {
        if self.cancellable {
            // Past the point of no return before anyone asks.
            commit_cancel(progress)?;
        }
        self.entered.notify_one();
        self.release.notified().await;
        self.sim.execute(op, progress).await
    }
}

async fn gated(cancellable: bool) -> (Harness, Arc<Notify>, Arc<Notify>) {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Gate {
        sim: SimProvider::new("sim", store.clone(), 0.01),
        cancellable,
        release: release.clone(),
        entered: entered.clone(),
    });
    let engine = Engine::new(
        store.clone(),
        sessions.clone(),
        vec![gate],
        admin_policy(),
        EngineSettings::default(),
    )
    .await
    .unwrap();
    engine.ensure_synced().await.unwrap();
    (
        Harness {
            engine,
            store,
            sessions,
            dir,
        },
        release,
        entered,
    )
}

#[tokio::test]
async fn a_job_its_provider_cannot_cancel_says_so_and_runs_on() {
    for (cancellable, want) in [
        (false, "不能取消:该操作不支持中途取消"),
        (true, "已进入不可撤回的阶段,不能再取消"),
    ] {
        let (h, release, entered) = gated(cancellable).await;
        let mut c = Collector::new();
        let r = h.engine.handle(msg(ADMIN, "开机:web-04"), c.sink()).await;
        let id = r.job().unwrap_or_else(|| panic!("{}", r.text));
        entered.notified().await;
        let r = h.say(ADMIN, &format!("取消:#{}", id.0)).await;
        assert_eq!(r.status, Status::Failed, "{}", r.text);
        assert!(r.text.contains(want), "{want} in {}", r.text);
        release.notify_one();
        let (replies, state) = c.until_done().await;
        assert_eq!(state, JobState::Succeeded, "{replies:?}");
    }
}
