//! Card clicks: a tap on a card's button runs what the button does as the person who
//! tapped, through the same permission checks, jobs and audit as the typed command.
//!
//! A click is honoured only for a button of the card as it was stored when sent, sent
//! through the channel the click came by, whose key this server signed for exactly its
//! action and which has not expired. Permission is checked before anything is claimed
//! and without side effects; then the button's slot is claimed in the store, which one
//! click wins across every instance, and only the winner runs. The card is settled
//! afterwards ("已由 lisi 执行 #42") so every channel can show who acted.
//!
//! Confirmation cards (确认 / 取消 of a pending destructive command) act on the
//! clicker's own conversation only: the button does what typing 确认 or 取消 would,
//! and only while exactly that command is still pending.

use super::{
    format, nothing_to_confirm, sessions_down, store_down, Asker, Engine, Incoming, Outcome,
};
use crate::command::Command;
use crate::reply::{Discard, ReplySink, Response, Status};
use crate::session::{self, Session};
use crate::view::Viewer;
use chrono::{DateTime, Utc};
use opsbot_core::{Action, Button, Card, JobId, Style, Zone};
use opsbot_store::{ActionClaim, ClaimResult};
use std::sync::Arc;
use std::time::Instant;

/// A tap on a card's button, as a channel received it in a verified callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The channel it came through (`wecom:<app>`, `wecom-bot:<robot>`): the card must
    /// have been sent through the same one.
    pub channel: String,
    /// Who tapped, from the signed callback; nothing in the key stands for the user.
    pub user: String,
    /// The group chat it was tapped in (a robot's card in a group).
    pub chat: Option<String>,
    pub task_id: String,
    /// The key of the button tapped.
    pub key: String,
    /// Answers to the card's questions, if it has any: (question key, option ids).
    pub selected: Vec<(String, Vec<String>)>,
}

/// What came of a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clicked {
    /// The button's action ran. The tapped button now reads `button_text`; `card` is
    /// the card settled for everyone; `message` is the engine's answer (a job's result
    /// follows through the sink).
    Done {
        button_text: String,
        card: Card,
        job: Option<JobId>,
        message: String,
    },
    /// Someone took the button's slot first, or it was done already: `button_text` says
    /// who and what; `card` is the card as it stands, settled with it.
    Taken { button_text: String, card: Card },
    /// Nothing happened: why, and what to do instead. The card stays as it is.
    Refused { text: String },
}

fn refused(text: impl Into<String>) -> Clicked {
    Clicked::Refused { text: text.into() }
}

/// The slot both buttons of a confirmation card share.
const CONFIRM_SLOT: &str = "confirm";
/// How often a settled card is re-read and written again when another click replaced
/// it meanwhile.
const SETTLE_TRIES: usize = 5;

impl Engine {
    /// Handles a click: checks the card, the key and the clicker's permission, claims
    /// the button's slot and runs its action as the clicker, the click being the
    /// confirmation. Job progress and results go to `sink`.
    #[tracing::instrument(skip_all, fields(channel = %click.channel, user = %click.user, task = %click.task_id))]
    pub async fn click(&self, click: Click, sink: Arc<dyn ReplySink>) -> Clicked {
        let started = Instant::now();
        let Some(keys) = self.settings.cards.clone() else {
            return refused("卡片按钮未启用([chat] buttons = false),请直接发送命令");
        };
        let record = match self.store.card_get(&click.task_id).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                let text = "这张卡片已失效(已过期或不存在),按钮不再可用";
                self.audit_click(&click, None, Status::Invalid, text, started)
                    .await;
                return refused(text);
            }
            Err(e) => return refused(store_down(&e).text),
        };
        let card: Card = match serde_json::from_str(&record.card) {
            Ok(card) => card,
            Err(e) => {
                tracing::error!(error = %e, "a stored card does not parse");
                return refused("这张卡片已无法读取,按钮不再可用;请直接发送命令");
            }
        };
        // A card sent through another app or robot is not this channel's to redeem.
        let button = card
            .button(&click.key)
            .filter(|_| record.channel == click.channel)
            .cloned();
        let Some(button) = button else {
            let text = format!("⛔ {}", opsbot_core::KeyError::Forged);
            self.audit_click(&click, None, Status::Invalid, &text, started)
                .await;
            return refused(text);
        };
        if let Err(e) = keys.verify(&click.task_id, &button, Utc::now().timestamp()) {
            let text = format!("⛔ {e}。{}", self.instead(&button.action));
            self.audit_click(&click, Some(&button), Status::Invalid, &text, started)
                .await;
            return refused(text);
        }
        if let Some(taken) = self.already_taken(&click.task_id, &card, &button).await {
            return taken;
        }
        match &button.action {
            Action::Confirm { command } | Action::Cancel { command } => {
                let command = command.clone();
                self.answer_pending(&click, card, &button, &command, sink)
                    .await
            }
            Action::Run { .. } | Action::SilenceToday { .. } | Action::Choose { .. } => {
                self.run_button(&click, card, &button, sink, started).await
            }
        }
    }

    /// The slot of `button` as a later click finds it: done on the card, or claimed.
    async fn already_taken(&self, task_id: &str, card: &Card, button: &Button) -> Option<Clicked> {
        if let Some(done) = &button.done {
            return Some(Clicked::Taken {
                button_text: done.clone(),
                card: card.clone(),
            });
        }
        // Unreadable claims are no answer: the claim itself decides.
        let claims = self.store.action_claims(task_id).await.ok()?;
        let claim = claims.into_iter().find(|c| c.slot == button.slot)?;
        Some(taken(card, &button.slot, &claim))
    }

    /// A `Run`, `SilenceToday` or `Choose` button: permission, claim, run.
    async fn run_button(
        &self,
        click: &Click,
        card: Card,
        button: &Button,
        sink: Arc<dyn ReplySink>,
        started: Instant,
    ) -> Clicked {
        let text = match &button.action {
            Action::SilenceToday { matcher } => format!(
                "静默:{matcher},{}m",
                minutes_to_midnight(&self.settings.zone, Utc::now())
            ),
            Action::Choose { .. } => match chosen(click, &card, &button.action) {
                Ok(text) => text,
                Err(why) => {
                    self.audit_click(click, Some(button), Status::Invalid, &why, started)
                        .await;
                    return refused(why);
                }
            },
            action => action.command().to_string(),
        };
        let cmd = match self.parse(&text) {
            Ok(cmd) if !cmd.is_conversational() => cmd,
            Ok(_) | Err(_) => {
                tracing::warn!(command = %text, "a card button names no command it can run");
                return refused(format!("按钮的命令「{text}」无效,未执行"));
            }
        };
        let msg = Incoming {
            channel: click.channel.clone(),
            user: click.user.clone(),
            chat: click.chat.clone(),
            text: format!("卡片按钮「{}」", button.text),
            assume_yes: true,
        };
        let viewer = self.viewer_in(&click.user, click.chat.as_deref());
        if let Some(refusal) = self.may_click(&msg, &viewer, &cmd, &button.action).await {
            let outcome = Outcome {
                command: Some(cmd.name()),
                ran: Some(text),
                cancelled: false,
                response: refusal,
            };
            self.audit(&msg, &outcome, started).await;
            return refused(outcome.response.text);
        }
        if let Err(answer) = self.claim(&click.task_id, &card, button, &click.user).await {
            return answer;
        }
        let asker = Asker {
            msg: &msg,
            view: viewer,
            pinned: None,
            dry_run: false,
            command: None,
        };
        let mut outcome = self
            .run(&asker, cmd, true, &mut Session::default(), &sink)
            .await;
        outcome.ran = Some(text);
        self.audit(&msg, &outcome, started).await;
        let Response { status, text, .. } = outcome.response;
        match status {
            Status::Ok | Status::Accepted(_) => {
                let job = match status {
                    Status::Accepted(job) => Some(job),
                    _ => None,
                };
                let done = match job {
                    Some(job) => format!("已由 {} 执行 {job}", click.user),
                    // Done at once (an acknowledgement, a silence, an approval): the
                    // button's own words say what.
                    None => format!("已由 {} {}", click.user, button.text),
                };
                self.finish(click, card, &done, job, text).await
            }
            _ => {
                self.release(click, &button.slot).await;
                refused(text)
            }
        }
    }

    /// A confirmation card's button: what typing 确认 / 取消 would do, if the clicker's
    /// own conversation still waits for exactly `command`.
    async fn answer_pending(
        &self,
        click: &Click,
        card: Card,
        button: &Button,
        command: &str,
        sink: Arc<dyn ReplySink>,
    ) -> Clicked {
        let key = session::key(&click.channel, click.chat.as_deref(), &click.user);
        let sess = match session::load(self.sessions.as_ref(), &key).await {
            Ok(sess) => sess,
            Err(e) => return refused(sessions_down(&e).text),
        };
        match &sess.pending {
            Some(p) if p.text == command => {}
            Some(p) => {
                return refused(format!(
                    "这张卡片的操作「{command}」已不再等待确认:您之后发送的「{}」正在等待确认。\
                     如需执行卡片上的操作,请重新发送该命令",
                    p.summary
                ))
            }
            None => {
                let ttl = format::duration(self.settings.session_ttl);
                return refused(nothing_to_confirm(
                    sess.settled.as_ref(),
                    !sess.is_empty(),
                    &ttl,
                ));
            }
        }
        if let Err(answer) = self.claim(&click.task_id, &card, button, &click.user).await {
            return answer;
        }
        let confirm = matches!(button.action, Action::Confirm { .. });
        let typed = Incoming {
            channel: click.channel.clone(),
            user: click.user.clone(),
            chat: click.chat.clone(),
            text: if confirm { "确认" } else { "取消" }.into(),
            assume_yes: false,
        };
        let response = self.handle(typed, sink).await;
        match response.status {
            Status::Ok | Status::Accepted(_) => {
                let job = response.job();
                let done = match (confirm, job) {
                    (true, Some(job)) => format!("已由 {} 确认 {job}", click.user),
                    (true, None) => format!("已由 {} 确认", click.user),
                    (false, _) => format!("已由 {} 取消", click.user),
                };
                self.finish(click, card, &done, job, response.text).await
            }
            _ => {
                self.release(click, &button.slot).await;
                refused(response.text)
            }
        }
    }

    /// Why the clicker may not run `cmd`, checked without side effects: the button's
    /// roles, the command's permission, and for subsystem commands and VM operations a
    /// dry run (their scope checks and what is impossible now). Other built-in commands
    /// are never dry-run: those that never ask for confirmation would act.
    async fn may_click(
        &self,
        msg: &Incoming,
        viewer: &Viewer,
        cmd: &Command,
        action: &Action,
    ) -> Option<Response> {
        let name = cmd.name();
        if let Action::Run { roles, .. } = action {
            if !roles.is_empty() && !viewer.roles().iter().any(|r| roles.contains(r)) {
                return Some(Response::new(
                    Status::Denied,
                    format!(
                        "⛔ 您({})没有权限使用这个按钮:它只允许角色 {} 执行。如需开通,请联系管理员",
                        msg.user,
                        roles.join("、")
                    ),
                ));
            }
        }
        if !viewer.may(name) {
            return Some(Response::new(
                Status::Denied,
                format!(
                    "⛔ 您({})没有权限执行「{name}」。如需开通,请联系管理员",
                    msg.user
                ),
            ));
        }
        if !matches!(cmd, Command::Subsystem { .. } | Command::Vm(_)) {
            return None;
        }
        let asker = Asker {
            msg,
            view: viewer.clone(),
            pinned: None,
            dry_run: true,
            command: None,
        };
        let discard: Arc<dyn ReplySink> = Arc::new(Discard);
        let planned = self
            .run(&asker, cmd.clone(), true, &mut Session::default(), &discard)
            .await;
        match planned.response.status {
            Status::NeedsConfirmation | Status::Ok | Status::Accepted(_) => None,
            Status::Denied | Status::Invalid | Status::Failed => Some(planned.response),
        }
    }

    /// Claims the button's slot for `user`; the answer to give instead when it cannot.
    async fn claim(
        &self,
        task_id: &str,
        card: &Card,
        button: &Button,
        user: &str,
    ) -> Result<(), Clicked> {
        match self
            .store
            .action_claim(task_id, &button.slot, user, Utc::now())
            .await
        {
            Ok(ClaimResult::Won) => Ok(()),
            Ok(ClaimResult::Taken(claim)) => Err(taken(card, &button.slot, &claim)),
            Err(e) => Err(refused(store_down(&e).text)),
        }
    }

    /// Gives the slot back: its action did not start.
    async fn release(&self, click: &Click, slot: &str) {
        if let Err(e) = self
            .store
            .action_release(&click.task_id, slot, &click.user)
            .await
        {
            tracing::warn!(error = %e, slot, "could not release a card slot whose action did not start");
        }
    }

    /// Records what the winning click did and settles the card with it.
    async fn finish(
        &self,
        click: &Click,
        card: Card,
        done: &str,
        job: Option<JobId>,
        message: String,
    ) -> Clicked {
        let slot = card
            .button(&click.key)
            .map(|b| b.slot.clone())
            .unwrap_or_default();
        if let Err(e) = self
            .store
            .action_done(&click.task_id, &slot, done, job.map(|j| j.0))
            .await
        {
            tracing::warn!(error = %e, %slot, "could not record what a card button did");
        }
        let card = self.settle(&click.task_id, &slot, done, card).await;
        Clicked::Done {
            button_text: done.to_string(),
            card,
            job,
            message,
        }
    }

    /// Writes the card with `slot` settled as `done`, re-reading it when another click
    /// settled another slot meanwhile; the card settled here when the store will not.
    async fn settle(&self, task_id: &str, slot: &str, done: &str, mut card: Card) -> Card {
        for _ in 0..SETTLE_TRIES {
            let record = match self.store.card_get(task_id).await {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not re-read a card to settle it");
                    break;
                }
            };
            let Ok(mut current) = serde_json::from_str::<Card>(&record.card) else {
                break;
            };
            current.settle(slot, done);
            match self
                .store
                .card_replace(task_id, record.version, &current.to_json())
                .await
            {
                Ok(true) => return current,
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not store a settled card");
                    break;
                }
            }
        }
        card.settle(slot, done);
        card
    }

    /// What to type instead of an expired or forged button.
    fn instead(&self, action: &Action) -> String {
        match action {
            Action::Run { command, .. } => format!("如需执行,请发送「{command}」"),
            Action::SilenceToday { matcher } => {
                format!("如需静默,请发送「静默:{matcher},<时长>」(如 2h)")
            }
            Action::Confirm { command } | Action::Cancel { command } => {
                format!("确认已过期;如需执行,请重新发送「{command}」")
            }
            Action::Choose { command, .. } => format!(
                "如需执行,请发送「{}」(<选项> 换成要选的一项)",
                command.replacen("{}", "<选项>", 1)
            ),
        }
    }

    /// Audits a click refused before its command could be looked at.
    async fn audit_click(
        &self,
        click: &Click,
        button: Option<&Button>,
        status: Status,
        text: &str,
        started: Instant,
    ) {
        let msg = Incoming {
            channel: click.channel.clone(),
            user: click.user.clone(),
            chat: click.chat.clone(),
            text: match button {
                Some(b) => format!("卡片按钮「{}」", b.text),
                None => format!("卡片按钮(卡片 {})", click.task_id),
            },
            assume_yes: true,
        };
        let outcome = Outcome {
            response: Response::new(status, text),
            command: None,
            ran: button.map(|b| b.action.command().to_string()),
            cancelled: false,
        };
        self.audit(&msg, &outcome, started).await;
    }

    /// The confirmation card of a pending command: 确认 / 取消 in one slot, alive as
    /// long as the pending command; `None` without card keys.
    pub(super) fn confirmation_card(
        &self,
        command: &str,
        summary: &str,
        text: &str,
    ) -> Option<Card> {
        let keys = self.settings.cards.as_ref()?;
        let ttl = self.settings.session_ttl;
        let expires_at =
            Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let task_id = opsbot_core::card::task_id("cf");
        let buttons = keys.for_card(&task_id, expires_at);
        let confirm = buttons.button(
            "确认",
            Style::Primary,
            CONFIRM_SLOT,
            "cf",
            Action::Confirm {
                command: command.to_string(),
            },
        );
        let cancel = buttons.button(
            "取消",
            Style::Neutral,
            CONFIRM_SLOT,
            "cf",
            Action::Cancel {
                command: command.to_string(),
            },
        );
        Some(Card {
            task_id,
            source: "opsbot 确认".into(),
            title: summary.to_string(),
            desc: String::new(),
            sub_title: format!(
                "点 确认 执行,点 取消 放弃({}内有效);也可回复 确认 或 取消",
                format::duration(ttl)
            ),
            fields: Vec::new(),
            selection: None,
            buttons: vec![confirm, cancel],
            text: text.to_string(),
            markdown: false,
            expires_at,
        })
    }
}

/// The command a `Choose` button runs for the clicker's answer to its question (the
/// card's preselected option when the click brings none), or why it runs nothing: an
/// answer that is not one of the options the key was signed with.
fn chosen(click: &Click, card: &Card, action: &Action) -> Result<String, String> {
    let Action::Choose { question, .. } = action else {
        return Ok(action.command().into_owned());
    };
    let answer = click
        .selected
        .iter()
        .find(|(q, _)| q == question)
        .map(|(_, ids)| ids.as_slice());
    let id = match answer {
        Some([id]) => id.clone(),
        Some(_) => return Err("⛔ 这个按钮只接受一个选项,未执行".into()),
        None => match card.selection.as_ref().filter(|s| &s.question == question) {
            Some(s) => s.selected.clone(),
            None => return Err("⛔ 没有选择任何选项,未执行".into()),
        },
    };
    action.chosen(&id).ok_or_else(|| {
        tracing::warn!(option = ?id, "a card click chose an option its button does not offer");
        format!("⛔ 选项「{id}」不是这个按钮的选项,未执行")
    })
}

/// The answer to a click on a slot `claim` holds: who acted, and the card settled so.
fn taken(card: &Card, slot: &str, claim: &ActionClaim) -> Clicked {
    let text = claim
        .outcome
        .clone()
        .unwrap_or_else(|| format!("已由 {} 处理中", claim.user));
    let mut card = card.clone();
    card.settle(slot, &text);
    Clicked::Taken {
        button_text: text,
        card,
    }
}

/// Whole minutes from `now` to the next midnight in `zone` (at least one): what
/// "silence for today" means at the moment it is tapped.
fn minutes_to_midnight(zone: &Zone, now: DateTime<Utc>) -> u32 {
    let offset = zone.offset_at(now);
    let local = now.with_timezone(&offset).naive_local();
    let Some(midnight) = local.date().succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)) else {
        return 1;
    };
    // The offset at midnight itself, should the zone change it overnight.
    let approx = midnight - offset;
    let end = midnight - zone.offset_at(approx.and_utc());
    let seconds = (end.and_utc() - now).num_seconds().max(1);
    u32::try_from((seconds + 59) / 60).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn today_ends_at_midnight_in_the_chat_zone() {
        let shanghai = Zone::parse("+08:00").unwrap();
        // 15:30 UTC is 23:30 in Shanghai: half an hour left.
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 15, 30, 0).unwrap();
        assert_eq!(minutes_to_midnight(&shanghai, now), 30);
        let utc = Zone::parse("UTC").unwrap();
        assert_eq!(minutes_to_midnight(&utc, now), 8 * 60 + 30);
        // A few seconds before midnight still silences for a minute.
        let late = Utc.with_ymd_and_hms(2026, 3, 1, 23, 59, 50).unwrap();
        assert_eq!(minutes_to_midnight(&utc, late), 1);
    }
}
