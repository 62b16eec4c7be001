//! The alert gateway's commands: 告警 (firing alerts, paged; 告警:死信, undeliverable
//! messages), 确认:id[,id…] (acknowledge one alert or a group's; without an argument
//! 确认 confirms a pending operation, which the dispatch answers) and 静默. They run through the registered
//! alert desk (`opsbot_core::Feature::Alerts`); its answers are worded in
//! `render::desk`.

use super::{foreign, names, Ctx, Handled};
use crate::command::{parse_minutes, Command, CommandSpec, ListKind};
use crate::engine::{failed, invalid, ok};
use crate::format;
use crate::render::desk::{self, Asked};
use crate::reply::Response;
use crate::session::{Paging, Session};
use opsbot_core::{AlertDesk, DeskError, Feature};

pub const ALERTS: CommandSpec = CommandSpec::new(
    names::ALERTS,
    &["alerts"],
    "告警[:页码] / 告警:死信",
    "正在发生的告警;死信: 投递失败的消息",
    |a| match a.args.first().map(|s| s.to_lowercase()) {
        Some(w) if w == "死信" || w == "dead" => {
            a.count(1, 1)?;
            Ok(Command::List {
                kind: ListKind::DeadLetters,
                page: 1,
                filter: Default::default(),
            })
        }
        _ => Ok(Command::List {
            kind: ListKind::Alerts,
            page: a.page()?,
            filter: Default::default(),
        }),
    },
)
.requires(Feature::Alerts)
.runs(run)
.example("告警");

pub const CONFIRM: CommandSpec = CommandSpec::new(
    names::CONFIRM,
    &["ack", "confirm", "y", "yes", "是"],
    "确认:告警编号[,编号…] / 确认",
    "确认告警(可一次确认多条);不带参数时确认待执行的操作",
    |a| {
        a.count(0, opsbot_core::alerts::MAX_ACK_IDS)?;
        Ok(if a.args.is_empty() {
            Command::Confirm
        } else {
            Command::Ack {
                ids: a.args.clone(),
            }
        })
    },
)
.runs(run)
.example("确认:42");

pub const SILENCE: CommandSpec = CommandSpec::new(
    names::SILENCE,
    &["silence"],
    "静默:匹配,时长",
    "在一段时间内静默匹配的告警",
    |a| {
        a.count(2, 2)?;
        let minutes = parse_minutes(&a.args[1]).ok_or_else(|| {
            a.usage(format!(
                "时长「{}」无效,例如 30m、2h、1d(最长 30 天)",
                a.args[1]
            ))
        })?;
        Ok(Command::Silence {
            matcher: a.text(0),
            minutes,
        })
    },
)
.requires(Feature::Alerts)
.runs(run)
.example("静默:web-*,2h");

fn run(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let user = cx.asker.user();
        let name = cmd.name();
        let Some(alert_desk) = cx.engine.subsystems.alerts() else {
            return Ok(failed(format!("{name}: 告警网关尚未配置,此功能暂不可用")));
        };
        Ok(match cmd {
            Command::List { kind, page, .. } => {
                list(alert_desk.as_ref(), cx.sess, kind, page).await
            }
            Command::Ack { ids } => match ids.as_slice() {
                [id] => answer(alert_desk.ack(id, user).await, Asked::Ack, desk::acked),
                _ => acked_all(alert_desk.ack_all(&ids, user).await),
            },
            Command::Silence { matcher, minutes } => answer(
                alert_desk.silence(&matcher, minutes, user).await,
                Asked::Silence,
                desk::silence,
            ),
            cmd => foreign(&cmd),
        })
    })
}

/// A desk's answer as a chat response: its data worded, or why it could not answer.
fn answer<T>(result: Result<T, DeskError>, asked: Asked, say: fn(&T) -> String) -> Response {
    match result {
        Ok(t) => ok(say(&t)),
        Err(e @ DeskError::Unavailable(_)) => failed(desk::error(&e, asked)),
        Err(e) => invalid(desk::error(&e, asked)),
    }
}

/// The answers to one 确认 of several alerts, a line each: done when any was
/// acknowledged, failed when none was and the desk was down (trying again may do),
/// invalid otherwise.
fn acked_all(results: Vec<Result<opsbot_core::Acked, DeskError>>) -> Response {
    let lines: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(a) => desk::acked(a),
            Err(e) => desk::error(e, Asked::Ack),
        })
        .collect();
    let text = lines.join("\n");
    if results.iter().any(Result::is_ok) {
        return ok(text);
    }
    if results
        .iter()
        .any(|r| matches!(r, Err(DeskError::Unavailable(_))))
    {
        failed(text)
    } else {
        invalid(text)
    }
}

/// 告警 (firing alerts, paged from the store) and 告警:死信 (undeliverable messages).
async fn list(alert_desk: &dyn AlertDesk, sess: &mut Session, kind: ListKind, n: u32) -> Response {
    let size = format::PAGE_SIZE as u64;
    if kind == ListKind::DeadLetters {
        return match alert_desk.dead_letters(size).await {
            Ok(p) => {
                let lines: Vec<String> = p.rows.iter().map(desk::dead_letter).collect();
                let (mut text, _) = format::paged("投递失败的消息(死信)", p.total, 1, &lines);
                if p.total > size {
                    text.push_str(&format!("\n只显示最新 {size} 条"));
                }
                ok(text)
            }
            Err(e) => answer::<()>(Err(e), Asked::Alerts, |_| String::new()),
        };
    }
    let mut n = u64::from(n.max(1));
    let mut page = alert_desk.firing((n - 1) * size, size).await;
    // Past the last page: show the last one, as the other lists do.
    if let Ok(p) = &page {
        let last = p.total.div_ceil(size).max(1);
        if n > last {
            n = last;
            page = alert_desk.firing((n - 1) * size, size).await;
        }
    }
    match page {
        Ok(p) => {
            let lines: Vec<String> = p.rows.iter().map(desk::firing).collect();
            let (text, more) = format::paged("正在发生的告警", p.total, n as u32, &lines);
            sess.paging = Some(Paging {
                command: names::ALERTS.to_string(),
                page: n as u32,
                last: !more,
            });
            ok(text)
        }
        Err(e) => answer::<()>(Err(e), Asked::Alerts, |_| String::new()),
    }
}
