//! 任务: the asker's latest jobs, or one job by number (their own; anyone's for an
//! administrator; someone else's reads as one that does not exist).

use super::{foreign, names, Ctx, Handled};
use crate::command::{Command, CommandSpec, ListKind};
use crate::engine::{failed, invalid, ok, Engine};
use crate::format;
use crate::jobs::CancelOutcome;
use crate::reply::Response;
use crate::view::Viewer;
use opsbot_core::{JobId, JobState};
use opsbot_store::{JobQuery, StoreError};

pub const JOBS: CommandSpec = CommandSpec::new(
    names::JOBS,
    &["jobs", "job"],
    "任务[:编号]",
    "我的任务及进度",
    |a| {
        a.count(0, 1)?;
        match a.opt(0) {
            Some(id) => {
                let id = id.trim_start_matches('#');
                let id: i64 = id
                    .parse()
                    .map_err(|_| a.usage(format!("任务编号「{id}」不是整数")))?;
                Ok(Command::Job { id })
            }
            None => Ok(Command::List {
                kind: ListKind::Jobs,
                page: 1,
                filter: Default::default(),
            }),
        }
    },
)
.runs(run)
.example("任务:22");

fn run(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let engine = cx.engine;
        let zone = &engine.settings.zone;
        Ok(match cmd {
            Command::List {
                kind: ListKind::Jobs,
                page,
                ..
            } => {
                let lines = engine
                    .store
                    .jobs(&JobQuery {
                        user: Some(cx.asker.user().to_string()),
                        state: None,
                        // The latest screenful; older ones by number (任务:N).
                        limit: format::PAGE_SIZE as u64,
                    })
                    .await?
                    .iter()
                    .map(|j| format::job_line(j, zone))
                    .collect();
                engine.list_reply(cx.sess, names::JOBS, page, lines)
            }
            Command::Job { id } => match engine.store.job(JobId(id)).await? {
                Some(j) if cx.asker.view.sees_job(&j) => ok(format!(
                    "任务 #{}: {}\n命令: {}\n状态: {} {}%\n开始: {}\n结果: {}",
                    j.id.0,
                    j.command,
                    j.text,
                    j.state.label(),
                    j.progress,
                    zone.stamp(j.created_at),
                    j.message
                )),
                _ => invalid(format!("任务 #{id} 不存在或不属于您")),
            },
            cmd => foreign(&cmd),
        })
    })
}

/// `取消:#N` (the `CANCEL` entry's handler; plain 取消 never gets here).
pub(super) fn cancel(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let Command::CancelJob { id } = cmd else {
            foreign(&cmd)
        };
        cancel_job(cx.engine, &cx.asker.view, JobId(id)).await
    })
}

/// Stops job `id` for `viewer` where its provider can: the job's owner or an
/// administrator only. Another user's job is as unknown as a missing one (the same
/// answer as `任务:N`), so a job number reveals nothing about whose it is. The job's own end (已取消, or done when it was too late) reaches
/// its asker through the job's channel; this answer says whether it was asked.
pub(crate) async fn cancel_job(
    engine: &Engine,
    viewer: &Viewer,
    id: JobId,
) -> Result<Response, StoreError> {
    let job = match engine.store.job(id).await? {
        Some(job) if viewer.sees_job(&job) => job,
        _ => {
            return Ok(invalid(format!(
                "任务 {id} 不存在或不属于您(只有发起人或管理员可以取消)。发送 任务 查看您的任务"
            )))
        }
    };
    if job.state != JobState::Running {
        return Ok(failed(format!(
            "任务 {id}({})已结束({}),无需取消",
            job.command,
            job.state.label()
        )));
    }
    Ok(match engine.jobs.cancel(id, viewer.user()) {
        CancelOutcome::Requested => ok(format!(
            "已请求取消任务 {id}({}):正在停止,结束时会通知发起人",
            job.command
        )),
        CancelOutcome::AlreadyRequested => ok(format!(
            "任务 {id}({})已在取消中,结束时会通知发起人",
            job.command
        )),
        CancelOutcome::NotCancellable => failed(format!(
            "任务 {id}({})不能取消:该操作不支持中途取消,请等待它完成",
            job.command
        )),
        CancelOutcome::TooLate => failed(format!(
            "任务 {id}({})已进入不可撤回的阶段,不能再取消;它将运行完成",
            job.command
        )),
        // Still running, but not here: the store says so, the runner does not know it.
        CancelOutcome::NotRunningHere => failed(format!(
            "任务 {id}({})由另一个 opsbot 进程运行,只能在运行它的进程中取消",
            job.command
        )),
    })
}
