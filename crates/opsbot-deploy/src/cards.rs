//! Deploy messages with buttons: what an order's state offers to do (批准 / 驳回 on an
//! approval request; 暂停, 继续, 终止, 回滚, 重试失败主机 on its progress) and the card
//! that carries it. 回滚 lets the clicker pick the release to return to from a drop-down
//! of the project's recent releases (the one the hosts ran before preselected). A button runs the very command a person would type (`批准:12`), as
//! whoever taps it, so the engine's permission check, job and audit apply unchanged
//! (the tap is the confirmation); the card's text names those commands, so a surface
//! without buttons can act by typing.

use crate::config::Project;
use crate::model::{HostState, OrderKind, OrderState};
use crate::orders::names;
use chrono::{DateTime, Utc};
use opsbot_core::card::{
    task_id, Action, Card, CardKeys, Choice, Field, Selection, Style, MAX_CHOICES,
};
use opsbot_core::Zone;
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
    /// Its words in the text form (`回滚到 #5`), and on the button unless it picks.
    pub label: String,
    pub style: Style,
    /// The command typed without buttons (a pick's default filled in).
    pub command: String,
    /// On a card, the button runs `command` with an option picked from a drop-down.
    pub pick: Option<Pick>,
}

/// A button that runs a command with an option picked from the card's drop-down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The button's words.
    pub button: String,
    /// The command with `{}` where the picked option's id goes (`回滚:shop,{}`).
    pub command: String,
    /// The drop-down's label.
    pub title: String,
    /// Newest first, at most [`MAX_CHOICES`].
    pub options: Vec<Choice>,
    /// The option preselected.
    pub selected: String,
}

/// The question key of the release drop-down.
pub const RELEASE_QUESTION: &str = "release";

/// A finished release of a project, as the 回滚 drop-down lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release (order id) its hosts run.
    pub version: i64,
    /// `#6 · 3f2a1bc · 03-02 10:00`.
    pub text: String,
}

impl Release {
    /// Release `version` of the build of commit `revision`, finished `at`, its time
    /// shown in `zone`.
    pub fn new(version: i64, revision: &str, at: DateTime<Utc>, zone: &Zone) -> Self {
        let mut text = format!("#{version}");
        let commit = revision.get(..7).unwrap_or(revision);
        if !commit.is_empty() {
            text.push_str(" · ");
            text.push_str(commit);
        }
        text.push_str(" · ");
        text.push_str(&zone.format(at, "%m-%d %H:%M"));
        Release { version, text }
    }
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
/// progress message's buttons, an approval's end when the order expires. `releases`:
/// the project's finished releases, which 回滚 may pick from (any order; those not
/// older than `o` are left out). `None`: the state offers nothing (a plain message).
pub fn offer(
    o: &OrderRecord,
    runs: &[HostRunRecord],
    releases: &[Release],
    now: DateTime<Utc>,
    ttl: Duration,
) -> Option<Offer> {
    let state = OrderState::parse(&o.state)?;
    let run = |label: &str, style, name: &str| Offered {
        label: label.to_string(),
        style,
        command: format!("{name}:{}", o.id),
        pick: None,
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
            buttons.extend(rollback(o, runs, releases));
        }
        OrderState::Succeeded | OrderState::Aborted => buttons.extend(rollback(o, runs, releases)),
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
/// With more than one older release to go back to, the card picks among the newest
/// [`MAX_CHOICES`] of them, the one the hosts ran before preselected.
fn rollback(o: &OrderRecord, runs: &[HostRunRecord], releases: &[Release]) -> Option<Offered> {
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
        pick: pick_release(o, version, before, releases),
    })
}

/// The drop-down of releases older than `version`, newest first, `before` among them
/// and preselected; `None` when there is nothing else to pick.
fn pick_release(o: &OrderRecord, version: i64, before: i64, releases: &[Release]) -> Option<Pick> {
    let mut older: Vec<&Release> = releases.iter().filter(|r| r.version < version).collect();
    older.sort_by_key(|r| std::cmp::Reverse(r.version));
    older.dedup_by_key(|r| r.version);
    let default = Release {
        version: before,
        text: format!("#{before}"),
    };
    // The preselected release stays in the list, whatever the store says.
    let mut shown: Vec<&Release> = older.iter().copied().take(MAX_CHOICES).collect();
    if !shown.iter().any(|r| r.version == before) {
        let known = older.iter().copied().find(|r| r.version == before);
        shown.truncate(MAX_CHOICES - 1);
        shown.push(known.unwrap_or(&default));
        shown.sort_by_key(|r| std::cmp::Reverse(r.version));
    }
    if shown.len() < 2 {
        return None;
    }
    Some(Pick {
        button: "回滚".into(),
        command: format!("{}:{},{{}}", names::ROLLBACK, o.project),
        title: "回滚到".into(),
        options: shown
            .iter()
            .map(|r| Choice::new(r.version.to_string(), r.text.clone()))
            .collect(),
        selected: before.to_string(),
    })
}

/// The card for order `o` of `p` saying `text` with `offer`'s buttons; a fresh task id
/// every time (WeCom refuses one it has seen, so each recipient gets its own card).
pub fn card(keys: &CardKeys, offer: &Offer, o: &OrderRecord, p: &Project, text: &str) -> Card {
    let task = task_id(&format!("dp{}", o.id));
    let object = format!("o{}", o.id);
    let signer = keys.for_card(&task, offer.expires_at);
    let mut selection = None;
    let buttons = offer
        .buttons
        .iter()
        .map(|b| match &b.pick {
            // WeCom shows one drop-down per card: a second pick is a plain button.
            Some(p) if selection.is_none() => {
                // The default first: what the text form names.
                let options: Vec<String> = std::iter::once(p.selected.clone())
                    .chain(
                        p.options
                            .iter()
                            .map(|c| c.id.clone())
                            .filter(|id| *id != p.selected),
                    )
                    .collect();
                selection = Some(Selection {
                    question: RELEASE_QUESTION.into(),
                    title: p.title.clone(),
                    options: p.options.clone(),
                    selected: p.selected.clone(),
                });
                signer.button(
                    p.button.clone(),
                    b.style,
                    offer.slot(),
                    &object,
                    Action::Choose {
                        command: p.command.clone(),
                        question: RELEASE_QUESTION.into(),
                        options,
                    },
                )
            }
            _ => signer.button(
                b.label.clone(),
                b.style,
                offer.slot(),
                &object,
                Action::run(b.command.clone()),
            ),
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
        selection,
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
        offer(o, runs, &[], Utc::now(), Duration::from_secs(60))
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
        let f = offer(&o, &[], &[], Utc::now(), Duration::from_secs(60)).unwrap();
        assert!(f.approval);
        assert_eq!(f.expires_at, expiry.timestamp());
        let text = "发布单 #12: 发布 shop\n⏳ 等待审批:审批人发送「批准:12」或「驳回:12,原因」";
        let c = card(&keys, &f, &o, &project(), text);
        assert!(c.task_id.starts_with("dp12-"));
        assert_eq!(c.title, "发布单 #12 · shop");
        assert_eq!(c.desc, "发布 · 待审批");
        assert_eq!(c.expires_at, expiry.timestamp());
        let seen: Vec<(&str, Style, &str, &Action)> = c
            .buttons
            .iter()
            .map(|b| (b.text.as_str(), b.style, b.slot.as_str(), &b.action))
            .collect();
        assert_eq!(
            seen,
            [
                ("批准", Style::Primary, DECIDE, &Action::run("批准:12")),
                ("驳回", Style::Danger, DECIDE, &Action::run("驳回:12")),
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
        let f = offer(&o, &[], &[], now, Duration::from_secs(3600)).unwrap();
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

    fn releases(versions: impl IntoIterator<Item = i64>) -> Vec<Release> {
        versions
            .into_iter()
            .map(|v| Release {
                version: v,
                text: format!("#{v} · r{v}"),
            })
            .collect()
    }

    /// Order 12 succeeded on hosts that ran release 5 before it.
    fn rolled_out() -> (OrderRecord, Vec<HostRunRecord>) {
        let runs = vec![
            host("a", HostState::Succeeded, Some(5)),
            host("b", HostState::Succeeded, Some(5)),
        ];
        (order(OrderState::Succeeded), runs)
    }

    #[test]
    fn rollback_picks_among_the_older_releases_the_previous_preselected() {
        let keys = CardKeys::new([3; 32]);
        let (o, runs) = rolled_out();
        // Out of order, a duplicate, and releases not older than the order: left out.
        let known = releases([3, 5, 12, 4, 13, 5]);
        let now = Utc::now();
        let f = offer(&o, &runs, &known, now, Duration::from_secs(600)).unwrap();
        let pick = f.buttons[0].pick.as_ref().unwrap();
        let ids: Vec<&str> = pick.options.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["5", "4", "3"]);
        assert_eq!(pick.options[0].text, "#5 · r5");
        assert_eq!(pick.selected, "5");
        // The text form still names the previous release.
        assert_eq!(f.buttons[0].command, "回滚:shop,5");
        let text = "✅ 发布单 #12 成功";
        let c = card(&keys, &f, &o, &project(), text);
        assert_eq!(c.text, format!("{text}\n可发送「回滚:shop,5」回滚到 #5"));
        let selection = c.selection.as_ref().unwrap();
        assert_eq!(selection.question, RELEASE_QUESTION);
        assert_eq!(selection.title, "回滚到");
        assert_eq!(selection.selected, "5");
        assert_eq!(selection.options, pick.options);
        assert_eq!(c.buttons.len(), 1);
        let b = &c.buttons[0];
        assert_eq!(
            (b.text.as_str(), b.style, b.slot.as_str()),
            ("回滚", Style::Danger, NEXT)
        );
        assert_eq!(
            b.action,
            Action::Choose {
                command: "回滚:shop,{}".into(),
                question: RELEASE_QUESTION.into(),
                options: vec!["5".into(), "4".into(), "3".into()],
            }
        );
        assert_eq!(b.action.command(), "回滚:shop,5");
        assert_eq!(b.action.chosen("3").as_deref(), Some("回滚:shop,3"));
        assert_eq!(b.action.chosen("12"), None);
        assert!(b.key.starts_with("pick.o12."), "{}", b.key);
        assert_eq!(keys.verify(&c.task_id, b, now.timestamp()), Ok(()));
        // A failed release offers the same pick beside 重试.
        let mut failed = o.clone();
        failed.state = OrderState::PartlyFailed.as_str().into();
        let f = offer(&failed, &runs, &known, now, Duration::from_secs(600)).unwrap();
        let c = card(&keys, &f, &failed, &project(), "x");
        assert_eq!(c.buttons.len(), 2);
        assert!(matches!(c.buttons[0].action, Action::Run { .. }));
        assert!(matches!(c.buttons[1].action, Action::Choose { .. }));
        assert!(c.selection.is_some());
    }

    #[test]
    fn rollback_with_one_release_to_go_back_to_stays_a_plain_button() {
        let keys = CardKeys::new([3; 32]);
        let (o, runs) = rolled_out();
        for known in [releases([]), releases([5]), releases([5, 12])] {
            let f = offer(&o, &runs, &known, Utc::now(), Duration::from_secs(60)).unwrap();
            assert_eq!(f.buttons[0].pick, None, "{known:?}");
            let c = card(&keys, &f, &o, &project(), "x");
            assert_eq!(c.selection, None);
            assert_eq!(c.buttons[0].text, "回滚到 #5");
            assert_eq!(c.buttons[0].action, Action::run("回滚:shop,5"));
        }
        // A rollback order offers no 回滚, however many releases there are.
        let mut back = order(OrderState::Succeeded);
        back.kind = "rollback".into();
        back.version = Some(5);
        assert_eq!(
            offer(
                &back,
                &runs,
                &releases([1, 2, 3, 4]),
                Utc::now(),
                Duration::from_secs(60)
            ),
            None
        );
    }

    #[test]
    fn rollback_lists_ten_releases_and_always_the_previous_one() {
        let (o, mut runs) = rolled_out();
        let known = releases(1..=11);
        let f = offer(&o, &runs, &known, Utc::now(), Duration::from_secs(60)).unwrap();
        let ids: Vec<String> = f.buttons[0]
            .pick
            .as_ref()
            .unwrap()
            .options
            .iter()
            .map(|c| c.id.clone())
            .collect();
        assert_eq!(
            ids,
            (2..=11).rev().map(|v| v.to_string()).collect::<Vec<_>>()
        );
        // The hosts ran #1 before: it is listed (last, being the oldest) and preselected,
        // even when the store did not list it.
        for h in &mut runs {
            h.previous_version = Some(1);
        }
        for known in [releases(1..=11), releases(2..=11)] {
            let f = offer(&o, &runs, &known, Utc::now(), Duration::from_secs(60)).unwrap();
            let pick = f.buttons[0].pick.as_ref().unwrap();
            let ids: Vec<&str> = pick.options.iter().map(|c| c.id.as_str()).collect();
            assert_eq!(ids.len(), MAX_CHOICES);
            assert_eq!(ids[..2], ["11", "10"]);
            assert_eq!(ids[MAX_CHOICES - 1], "1");
            assert_eq!(pick.selected, "1");
        }
    }

    #[test]
    fn a_release_reads_version_commit_and_local_time() {
        let zone = Zone::parse("+08:00").unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = Release::new(6, "3f2a1bc9d8e7f6", at, &zone);
        assert_eq!(
            (r.version, r.text.as_str()),
            (6, "#6 · 3f2a1bc · 03-02 18:05")
        );
        // An svn revision is short already; an unknown one is left out.
        assert_eq!(
            Release::new(6, "r812", at, &zone).text,
            "#6 · r812 · 03-02 18:05"
        );
        assert_eq!(Release::new(6, "", at, &zone).text, "#6 · 03-02 18:05");
    }

    #[test]
    fn a_command_is_named_only_whole() {
        assert!(mentions("发送「继续:12」继续", "继续:12"));
        assert!(!mentions("发送「继续:12」继续", "继续:1"));
        assert!(mentions("「驳回:1,原因」", "驳回:1"));
    }
}
