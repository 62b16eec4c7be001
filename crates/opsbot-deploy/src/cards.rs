//! Deploy messages with buttons: what an order's state offers to do (批准 / 驳回 on an
//! approval request; 暂停, 继续, 终止, 回滚, 重试失败主机 on its progress) and the card
//! that carries it. A button runs the very command a person would type (`批准:12`), as
//! whoever taps it, so the engine's permission check, job and audit apply unchanged
//! (the tap is the confirmation); the card's text names those commands, so a surface
//! without buttons can act by typing.

use crate::config::Project;
use crate::model::{HostState, OrderKind, OrderState};
use crate::orders::names;
use chrono::{DateTime, Utc};
use opsbot_core::card::{task_id, Action, Card, CardKeys, Field, Style};
use opsbot_store::deploy::{HostRunRecord, OrderRecord};
use std::time::Duration;

/// The slot of an approval's buttons: 批准 and 驳回 exclude each other.
pub const DECIDE: &str = "decide";
/// The slot of a progress message's buttons: whichever is tapped first acts, once.
pub const NEXT: &str = "next";

/// What a message about an order offers to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub buttons: Vec<Offered>,
    /// When the buttons stop working (Unix seconds).
    pub expires_at: i64,
    /// An approval request (批准 / 驳回) rather than progress.
    pub approval: bool,
}

/// One button: its words and the command it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub label: String,
    pub style: Style,
    pub command: String,
}

impl Offer {
    fn slot(&self) -> &'static str {
        if self.approval {
            DECIDE
        } else {
            NEXT
        }
    }
}

/// What order `o` (with its hosts `runs`) offers in its state now; `ttl` bounds a
/// progress message's buttons, an approval's end when the order expires. `None`: the
/// state offers nothing (a plain message).
pub fn offer(
    o: &OrderRecord,
    runs: &[HostRunRecord],
    now: DateTime<Utc>,
    ttl: Duration,
) -> Option<Offer> {
    let state = OrderState::parse(&o.state)?;
    let run = |label: &str, style, name: &str| Offered {
        label: label.to_string(),
        style,
        command: format!("{name}:{}", o.id),
    };
    let later = now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let mut buttons = Vec::new();
    let mut expires_at = later;
    let approval = state == OrderState::Pending;
    match state {
        OrderState::Pending => {
            // An approval is worth nothing once the order expired.
            expires_at = o.expires_at.map_or(later, |t| t.timestamp());
            buttons.push(run("批准", Style::Primary, names::APPROVE));
            buttons.push(run("驳回", Style::Danger, names::REJECT));
        }
        OrderState::Running => buttons.push(run("暂停", Style::Secondary, names::PAUSE)),
        // Still held by its instance (hosts in flight): 继续 would be refused now.
        OrderState::Paused if o.owner.is_some() => {}
        OrderState::Paused | OrderState::Interrupted => {
            buttons.push(run("继续", Style::Primary, names::RESUME));
            buttons.push(run("终止", Style::Danger, names::ABORT));
        }
        OrderState::PartlyFailed | OrderState::Failed => {
            buttons.push(run("重试失败主机", Style::Primary, names::RETRY));
            buttons.extend(rollback(o, runs));
        }
        OrderState::Succeeded | OrderState::Aborted => buttons.extend(rollback(o, runs)),
        OrderState::Ready | OrderState::RolledBack | OrderState::Rejected | OrderState::Expired => {
        }
    }
    (!buttons.is_empty()).then_some(Offer {
        buttons,
        expires_at,
        approval,
    })
}

/// 回滚 back to the release the order's hosts ran before it, named (`回滚:shop,5`), so
/// an old card never undoes a newer release; only for a release that reached a host.
fn rollback(o: &OrderRecord, runs: &[HostRunRecord]) -> Option<Offered> {
    if !matches!(
        OrderKind::parse(&o.kind),
        Some(OrderKind::Release | OrderKind::Retry)
    ) {
        return None;
    }
    let version = o.version.unwrap_or(o.id);
    let before = crate::orders::most_common(
        runs.iter()
            .filter(|h| h.state == HostState::Succeeded.as_str())
            .filter_map(|h| h.previous_version)
            .filter(|v| *v != version),
    )?;
    Some(Offered {
        label: format!("回滚到 #{before}"),
        style: Style::Danger,
        command: format!("{}:{},{before}", names::ROLLBACK, o.project),
    })
}

/// The card for order `o` of `p` saying `text` with `offer`'s buttons; a fresh task id
/// every time (WeCom refuses one it has seen, so each recipient gets its own card).
pub fn card(keys: &CardKeys, offer: &Offer, o: &OrderRecord, p: &Project, text: &str) -> Card {
    let task = task_id(&format!("dp{}", o.id));
    let object = format!("o{}", o.id);
    let signer = keys.for_card(&task, offer.expires_at);
    let buttons = offer
        .buttons
        .iter()
        .map(|b| {
            signer.button(
                b.label.clone(),
                b.style,
                offer.slot(),
                &object,
                Action::run(b.command.clone()),
            )
        })
        .collect();
    let mut fields = vec![Field::new("项目", p.name.clone())];
    match (OrderKind::parse(&o.kind), o.build, o.version) {
        (Some(OrderKind::Rollback), _, Some(v)) => {
            fields.push(Field::new("回滚到", format!("#{v}")))
        }
        (_, Some(b), _) => fields.push(Field::new("构建", format!("#{b}"))),
        _ => {}
    }
    fields.push(Field::new(
        "批次",
        format!("已完成 {}/{}", o.batch.clamp(0, o.batches), o.batches),
    ));
    fields.push(Field::new("发起", o.user.clone()));
    if let Some(a) = &o.approver {
        fields.push(Field::new("审批", a.clone()));
    }
    Card {
        task_id: task.clone(),
        source: "opsbot 发布".into(),
        title: format!("发布单 #{} · {}", o.id, p.name),
        desc: format!("{} · {}", crate::render::kind_label(&o.kind), o.state),
        sub_title: crate::render::clip(text, SUB_TITLE),
        fields,
        buttons,
        text: with_commands(text, offer),
        markdown: false,
        expires_at: offer.expires_at,
    }
}

/// WeCom advises at most ~112–160 characters under the title.
const SUB_TITLE: usize = 150;

/// `text` and a line naming the commands of the buttons it does not name already, so
/// whoever reads it without buttons can type them.
pub fn with_commands(text: &str, offer: &Offer) -> String {
    let missing: Vec<String> = offer
        .buttons
        .iter()
        .filter(|b| !mentions(text, &b.command))
        .map(|b| format!("「{}」{}", b.command, b.label))
        .collect();
    if missing.is_empty() {
        text.to_string()
    } else {
        format!("{text}\n可发送{}", missing.join(","))
    }
}

/// Whether `text` names `command` whole (`继续:1` is not named by `继续:12`).
fn mentions(text: &str, command: &str) -> bool {
    text.match_indices(command).any(|(at, _)| {
        !text[at + command.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(state: OrderState) -> OrderRecord {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        OrderRecord {
            id: 12,
            project: "shop".into(),
            kind: "release".into(),
            build: Some(3),
            version: None,
            state: state.as_str().into(),
            user: "alice".into(),
            channel: "wecom:ops".into(),
            chat: None,
            approver: None,
            reason: None,
            batch: 1,
            batches: 2,
            plan: "{}".into(),
            owner: None,
            heartbeat_at: None,
            created_at: t,
            updated_at: t,
            expires_at: None,
            finished_at: None,
        }
    }

    fn host(name: &str, state: HostState, prev: Option<i64>) -> HostRunRecord {
        HostRunRecord {
            order: 12,
            host: name.into(),
            address: name.into(),
            batch: 0,
            state: state.as_str().into(),
            step: "done".into(),
            exit_code: None,
            previous_version: prev,
            error: None,
            started_at: None,
            finished_at: None,
        }
    }

    fn commands(o: &OrderRecord, runs: &[HostRunRecord]) -> Vec<String> {
        offer(o, runs, Utc::now(), Duration::from_secs(60))
            .map(|f| f.buttons.into_iter().map(|b| b.command).collect())
            .unwrap_or_default()
    }

    #[test]
    fn each_state_offers_what_it_allows() {
        let done = [
            host("a", HostState::Succeeded, Some(5)),
            host("b", HostState::Succeeded, Some(5)),
            host("c", HostState::Failed, Some(5)),
        ];
        let cases: [(OrderState, Option<&str>, &[&str]); 12] = [
            (OrderState::Pending, None, &["批准:12", "驳回:12"]),
            (OrderState::Running, None, &["暂停:12"]),
            (OrderState::Paused, None, &["继续:12", "终止:12"]),
            // Pausing, hosts still in flight: nothing to tap yet.
            (OrderState::Paused, Some("node-a"), &[]),
            (OrderState::Interrupted, None, &["继续:12", "终止:12"]),
            (OrderState::PartlyFailed, None, &["重试:12", "回滚:shop,5"]),
            (OrderState::Failed, None, &["重试:12", "回滚:shop,5"]),
            (OrderState::Succeeded, None, &["回滚:shop,5"]),
            (OrderState::Aborted, None, &["回滚:shop,5"]),
            (OrderState::RolledBack, None, &[]),
            (OrderState::Rejected, None, &[]),
            (OrderState::Expired, None, &[]),
        ];
        for (state, owner, want) in cases {
            let mut o = order(state);
            o.owner = owner.map(Into::into);
            assert_eq!(commands(&o, &done), want, "{state}");
        }
        assert!(commands(&order(OrderState::Ready), &done).is_empty());
    }

    #[test]
    fn rollback_only_when_a_host_runs_the_release_and_had_one_before() {
        let o = order(OrderState::Succeeded);
        // A first release: nothing to go back to.
        assert!(commands(&o, &[host("a", HostState::Succeeded, None)]).is_empty());
        // No host took it.
        let failed = order(OrderState::Failed);
        assert_eq!(
            commands(&failed, &[host("a", HostState::Failed, Some(5))]),
            ["重试:12"]
        );
        // The release most hosts ran before.
        let runs = [
            host("a", HostState::Succeeded, Some(4)),
            host("b", HostState::Succeeded, Some(5)),
            host("c", HostState::Succeeded, Some(5)),
        ];
        assert_eq!(commands(&o, &runs), ["回滚:shop,5"]);
        // A rollback order is not rolled back by a button.
        let mut back = order(OrderState::Succeeded);
        back.kind = "rollback".into();
        back.version = Some(5);
        assert!(commands(&back, &runs).is_empty());
    }

    fn project() -> Project {
        let c: crate::DeployConfig = toml::from_str(
            "[[projects]]\nname = \"shop\"\ndeploy_root = \"/srv/shop\"\nrepo = { kind = \"git\", url = \"file:///r\" }\n",
        )
        .unwrap();
        c.projects[0].clone()
    }

    #[test]
    fn an_approval_card_decides_once_until_the_order_expires() {
        let keys = CardKeys::new([3; 32]);
        let mut o = order(OrderState::Pending);
        let expiry = Utc::now() + chrono::Duration::hours(2);
        o.expires_at = Some(expiry);
        o.batch = 0;
        let f = offer(&o, &[], Utc::now(), Duration::from_secs(60)).unwrap();
        assert!(f.approval);
        assert_eq!(f.expires_at, expiry.timestamp());
        let text = "发布单 #12: 发布 shop\n⏳ 等待审批:审批人发送「批准:12」或「驳回:12,原因」";
        let c = card(&keys, &f, &o, &project(), text);
        assert!(c.task_id.starts_with("dp12-"));
        assert_eq!(c.title, "发布单 #12 · shop");
        assert_eq!(c.desc, "发布 · 待审批");
        assert_eq!(c.expires_at, expiry.timestamp());
        let seen: Vec<(&str, Style, &str, &str)> = c
            .buttons
            .iter()
            .map(|b| {
                (
                    b.text.as_str(),
                    b.style,
                    b.slot.as_str(),
                    b.action.command(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("批准", Style::Primary, DECIDE, "批准:12"),
                ("驳回", Style::Danger, DECIDE, "驳回:12"),
            ]
        );
        for b in &c.buttons {
            assert_eq!(keys.verify(&c.task_id, b, Utc::now().timestamp()), Ok(()));
            assert_eq!(
                keys.verify(&c.task_id, b, expiry.timestamp() + 1),
                Err(opsbot_core::card::KeyError::Expired)
            );
            assert!(b.key.starts_with("run.o12."), "{}", b.key);
        }
        // The text already names both commands: nothing is added.
        assert_eq!(c.text, text);
        let names: Vec<&str> = c.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(names, ["项目", "构建", "批次", "发起"]);
        // Every card is new to WeCom.
        assert_ne!(card(&keys, &f, &o, &project(), text).task_id, c.task_id);
    }

    #[test]
    fn a_progress_card_names_its_commands_in_its_text() {
        let keys = CardKeys::new([3; 32]);
        let mut o = order(OrderState::Running);
        o.approver = Some("bob".into());
        let now = Utc::now();
        let f = offer(&o, &[], now, Duration::from_secs(3600)).unwrap();
        assert!(!f.approval);
        assert_eq!(f.expires_at, now.timestamp() + 3600);
        let c = card(
            &keys,
            &f,
            &o,
            &project(),
            "🚀 发布单 #12 开始发布: shop → 3 台主机",
        );
        assert_eq!(c.buttons.len(), 1);
        assert_eq!(c.buttons[0].slot, NEXT);
        assert_eq!(c.buttons[0].text, "暂停");
        assert!(keys
            .verify(&c.task_id, &c.buttons[0], now.timestamp())
            .is_ok());
        assert_eq!(
            c.text,
            "🚀 发布单 #12 开始发布: shop → 3 台主机\n可发送「暂停:12」暂停"
        );
        assert!(c.fields.iter().any(|f| f.key == "审批" && f.value == "bob"));
    }

    #[test]
    fn a_command_is_named_only_whole() {
        assert!(mentions("发送「继续:12」继续", "继续:12"));
        assert!(!mentions("发送「继续:12」继续", "继续:1"));
        assert!(mentions("「驳回:1,原因」", "驳回:1"));
    }
}
