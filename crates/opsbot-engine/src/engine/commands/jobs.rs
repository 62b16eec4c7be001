//! 任务: the asker's latest jobs, or one job by number (their own; anyone's for an
//! administrator; someone else's reads as one that does not exist).

use super::{foreign, names, Ctx, Handled};
use crate::command::{Command, CommandSpec, ListKind};
use crate::engine::{invalid, ok};
use crate::format;
use opsbot_core::JobId;
use opsbot_store::JobQuery;

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
