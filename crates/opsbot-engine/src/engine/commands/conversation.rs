//! The conversation helpers: 帮助 and the commands that act on the session (菜单, 取消,
//! 下一页, 返回, 退出; 确认 without arguments is in `alerts.rs` beside its other
//! meaning). Everyone may use them; the engine's dispatch answers all but 帮助.

use super::{foreign, names, Ctx, Handled, COMMANDS};
use crate::command::{spec, subsystem_specs, Command, CommandSpec, ParseError};
use crate::engine::{invalid, ok, Asker, Engine};
use crate::reply::{Response, Status};
use std::fmt::Write;

pub const HELP: CommandSpec = CommandSpec::new(
    names::HELP,
    &["help", "?", "？"],
    "帮助[:页码] / 帮助:命令",
    "列出您可以使用的命令;帮助:命令 显示该命令的用法和例子",
    |a| {
        a.count(0, 1)?;
        // A number is a page of the list; anything else names a command.
        match a.opt(0) {
            Some(t) if !t.bytes().all(|b| b.is_ascii_digit()) => Ok(Command::Help {
                page: 1,
                topic: Some(t),
            }),
            _ => Ok(Command::Help {
                page: a.page()?,
                topic: None,
            }),
        }
    },
)
.example("帮助:克隆")
.runs(help);

pub const MENU: CommandSpec =
    CommandSpec::new(names::MENU, &["menu"], "菜单", "数字菜单", |a| {
        a.count(0, 0).map(|_| Command::Menu)
    })
    .example("菜单");

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
        let Command::Help { page, topic } = cmd else {
            foreign(&cmd)
        };
        if let Some(topic) = topic {
            return Ok(command_help(cx.engine, cx.asker, &topic));
        }
        let (lines, missing) = help_lines(cx.engine, cx.asker);
        let mut reply = cx.engine.list_reply(cx.sess, names::HELP, page, lines);
        // Not a command the asker can use: said under the list, not numbered in it.
        if !missing.is_empty() {
            let _ = write!(reply.text, "\n(未配置,暂不可用: {})", missing.join("、"));
        }
        reply
            .text
            .push_str("\n发送 帮助:命令 查看该命令的用法和例子");
        Ok(reply)
    })
}

/// `帮助:命令`: one command's usage, summary, example, other names and whether it asks
/// for confirmation (as configured), for a command the asker may run.
fn command_help(engine: &Engine, asker: &Asker<'_>, topic: &str) -> Response {
    let always = |name: &str| [names::HELP, names::MENU, names::CONFIRM].contains(&name);
    let declared: Vec<&opsbot_core::ChatCommand> =
        subsystem_specs(engine.subsystems.command_sets(), topic)
            .map(|(_, _, d)| d)
            .collect();
    // A real built-in command comes first; the subsystems that share its name, or
    // declare the same name as another subsystem, are named under it.
    let builtin = spec(topic).filter(|c| c.requires.is_none());
    let registered = declared.first().copied().filter(|_| builtin.is_none());
    let others: Vec<&opsbot_core::ChatCommand> = declared
        .iter()
        .copied()
        .filter(|d| registered.is_none_or(|r| !std::ptr::eq(*d, r)))
        .collect();
    let (name, aliases, usage, summary, example, missing) = match (registered, spec(topic)) {
        (Some(d), _) => (d.name, d.aliases, d.usage, d.summary, None, false),
        (None, Some(c)) => (
            c.name,
            c.aliases,
            c.usage,
            c.summary,
            c.example,
            c.requires.is_some_and(|f| !engine.subsystems.has(f)),
        ),
        (None, None) => {
            let mut text = format!("没有命令「{topic}」。");
            if let Err(ParseError::Unknown {
                suggestion: Some(s),
                ..
            }) = engine.parse(topic)
            {
                let _ = write!(text, "您是不是要看「{s}」?发送 帮助:{s}。");
            }
            text.push_str("发送 帮助 查看可用命令");
            return invalid(text);
        }
    };
    if !always(name) && !asker.can_run(name) {
        return Response::new(
            Status::Denied,
            format!("⛔ 您没有权限执行「{name}」,发送 帮助 查看您可以使用的命令"),
        );
    }
    let mut text = format!("【{name}】{summary}\n用法: {usage}");
    if let Some(e) = example {
        let _ = write!(text, "\n例: {e}");
    }
    for d in &others {
        let _ = write!(text, "\n也可用于: {} — {}", d.usage, d.summary);
    }
    if !aliases.is_empty() {
        let _ = write!(text, "\n也可以写: {}", aliases.join("、"));
    }
    let _ = write!(
        text,
        "\n确认: {}",
        if engine.confirms(name) {
            "执行前需要回复 确认 或 y"
        } else {
            "直接执行,不需要确认"
        }
    );
    if missing {
        text.push_str("\n⚠ 此命令所需的子系统未配置,暂不可用");
    }
    ok(text)
}

/// The commands the asker may run, and (apart) the ones they may run once this build's
/// missing subsystems are configured: a command whose subsystem is not registered is
/// not offered as a command.
fn help_lines(engine: &Engine, asker: &Asker<'_>) -> (Vec<String>, Vec<&'static str>) {
    let missing: Vec<&str> = COMMANDS
        .iter()
        .filter(|c| c.listed && c.requires.is_some_and(|f| !engine.subsystems.has(f)))
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
        .filter(|m| !registered.iter().any(|d| d.name == *m) && listed(m))
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
    (lines, missing)
}
