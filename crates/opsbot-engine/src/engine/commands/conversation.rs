//! The conversation helpers: 帮助 and the commands that act on the session (菜单, 取消,
//! 下一页, 返回, 退出; 确认 without arguments is in `alerts.rs` beside its other
//! meaning). Everyone may use them; the engine's dispatch answers all but 帮助.

use super::{foreign, names, Ctx, Handled, COMMANDS};
use crate::command::{Command, CommandSpec};
use crate::engine::{Asker, Engine};

pub const HELP: CommandSpec = CommandSpec::new(
    names::HELP,
    &["help", "?", "？"],
    "帮助[:页码]",
    "列出您可以使用的命令",
    |a| Ok(Command::Help { page: a.page()? }),
)
.runs(help);

pub const MENU: CommandSpec =
    CommandSpec::new(names::MENU, &["menu"], "菜单", "数字菜单", |a| {
        a.count(0, 0).map(|_| Command::Menu)
    });

/// Plain 取消 answers the pending confirmation (in the dispatch); `取消:#N` stops a
/// running job (`jobs.rs`).
pub const CANCEL: CommandSpec = CommandSpec::new(
    names::CANCEL,
    &["cancel", "n", "no", "否"],
    "取消 / 取消:#任务号",
    "放弃待确认的操作;带任务号时取消运行中的任务",
    |a| {
        a.count(0, 1)?;
        match a.opt(0) {
            None => Ok(Command::Cancel),
            Some(id) => {
                let digits = id.trim_start_matches('#');
                let id: i64 =
                    digits.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        a.usage(format!("任务编号「{id}」不是正整数,例如 取消:#22"))
                    })?;
                Ok(Command::CancelJob { id })
            }
        }
    },
)
.hidden()
.runs(super::jobs::cancel);

pub const NEXT_PAGE: CommandSpec = CommandSpec::new(
    names::NEXT_PAGE,
    &["next", "more", "+"],
    "下一页",
    "上一个列表的下一页",
    |a| a.count(0, 0).map(|_| Command::NextPage),
)
.hidden();

pub const BACK: CommandSpec =
    CommandSpec::new(names::BACK, &["back"], "返回", "菜单上一级", |a| {
        a.count(0, 0).map(|_| Command::Back)
    })
    .hidden();

pub const EXIT: CommandSpec = CommandSpec::new(
    names::EXIT,
    &["exit", "quit"],
    "退出",
    "退出菜单",
    |a| a.count(0, 0).map(|_| Command::Exit),
)
.hidden();

fn help(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let Command::Help { page } = cmd else {
            foreign(&cmd)
        };
        let lines = help_lines(cx.engine, cx.asker);
        Ok(cx.engine.list_reply(cx.sess, names::HELP, page, lines))
    })
}

/// What the asker may run, then what this build cannot run yet: a command whose
/// subsystem is not registered is not offered.
fn help_lines(engine: &Engine, asker: &Asker<'_>) -> Vec<String> {
    let missing: Vec<&str> = COMMANDS
        .iter()
        .filter(|c| c.requires.is_some_and(|f| !engine.subsystems.has(f)))
        .map(|c| c.name)
        .collect();
    let listed = |name: &str| {
        [names::HELP, names::MENU, names::CONFIRM].contains(&name) || asker.can_run(name)
    };
    let registered: Vec<&'static opsbot_core::ChatCommand> = engine
        .subsystems
        .command_sets()
        .iter()
        .flat_map(|set| set.commands())
        .collect();
    // A registered subsystem answers a planned command of the same name.
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|m| !registered.iter().any(|d| d.name == *m))
        .collect();
    let mut lines: Vec<String> = Vec::new();
    for c in COMMANDS.iter().filter(|c| c.listed) {
        // The subsystems' commands come before the conversation's own (菜单, 任务, …).
        if c.name == names::MENU {
            lines.extend(
                registered
                    .iter()
                    .filter(|d| listed(d.name))
                    .map(|d| format!("{} — {}", d.usage, d.summary)),
            );
        }
        if !missing.contains(&c.name)
            && listed(c.name)
            && !registered.iter().any(|d| d.name == c.name)
        {
            lines.push(format!("{} — {}", c.usage, c.summary));
        }
    }
    lines.push(format!("(未配置: {})", missing.join("、")));
    lines
}
