//! The engine's click path: a button runs as the person who tapped it, through the same
//! permission checks, jobs and audit as the typed command, once per slot; forged,
//! expired and misrouted clicks change nothing; confirmation cards act on the clicker's
//! own pending command only.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_core::{
    Action, AuditResult, Card, CardKeys, Choice, JobState, PowerState, Selection, Style,
};
use opsbot_engine::{Click, Clicked, EngineSettings, Status};
use opsbot_store::{AuditQuery, JobQuery, NewCard};
use std::sync::Arc;

const CHANNEL: &str = "test";

fn keys() -> CardKeys {
    CardKeys::new([42; 32])
}

fn settings() -> EngineSettings {
    EngineSettings {
        cards: Some(keys()),
        ..EngineSettings::default()
    }
}

/// admin: everything; ops: 开机 only; wangwu: nothing.
fn team() -> opsbot_core::Policy {
    policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("ops", &["开机"], &["*"]),
        ],
        &[(ADMIN, &["admin"]), ("lisi", &["ops"])],
        &[],
    )
}

/// A card with one button running `command` (for `roles`), expiring at `expires_at`,
/// signed by `keys`, as the channel keeps it before sending.
async fn put_card(
    h: &Harness,
    keys: &CardKeys,
    command: &str,
    roles: &[&str],
    expires_at: i64,
) -> Card {
    let task_id = opsbot_core::card::task_id("t");
    let action = Action::Run {
        command: command.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    };
    let button = keys.for_card(&task_id, expires_at).button(
        "开机",
        Style::Primary,
        "power",
        "web04",
        action,
    );
    let card = Card {
        task_id: task_id.clone(),
        source: "opsbot".into(),
        title: "web-04 已关机".into(),
        desc: String::new(),
        sub_title: String::new(),
        fields: vec![],
        selection: None,
        buttons: vec![button],
        text: format!("web-04 已关机;发送 {command} 开机"),
        markdown: false,
        expires_at,
    };
    h.store
        .card_put(&NewCard {
            task_id,
            channel: CHANNEL.into(),
            target: r#"{"to":"user","user":"admin"}"#.into(),
            card: card.to_json(),
            expires_at: chrono::DateTime::from_timestamp(expires_at, 0).unwrap(),
        })
        .await
        .unwrap();
    card
}

fn later() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

fn click(user: &str, card: &Card, key: &str) -> Click {
    Click {
        channel: CHANNEL.into(),
        user: user.into(),
        chat: None,
        task_id: card.task_id.clone(),
        key: key.into(),
        selected: vec![],
    }
}

async fn jobs(h: &Harness) -> Vec<opsbot_core::JobRecord> {
    h.store
        .jobs(&JobQuery {
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn audit(h: &Harness) -> Vec<opsbot_core::AuditEntry> {
    h.store
        .audit_log(&AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn refused(c: &Clicked) -> &str {
    match c {
        Clicked::Refused { text } => text,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_authorised_click_runs_once_as_the_clicker_and_settles_the_card() {
    let h = harness_with(team(), settings(), None).await;
    let card = put_card(&h, &keys(), "开机:web-04", &[], later()).await;
    let key = card.buttons[0].key.clone();
    let mut c = Collector::new();
    let done = h.engine.click(click("lisi", &card, &key), c.sink()).await;
    let Clicked::Done {
        button_text,
        card: settled,
        job: Some(job),
        ..
    } = done
    else {
        panic!("not run: {done:?}")
    };
    assert_eq!(button_text, format!("已由 lisi 执行 {job}"));
    assert_eq!(
        settled.buttons[0].done.as_deref(),
        Some(button_text.as_str())
    );
    let (_, state) = c.until_done().await;
    assert_eq!(state, JobState::Succeeded);
    assert_eq!(h.vm("web-04").await.unwrap().power, PowerState::PoweredOn);
    // The job is the clicker's, and the stored card says who acted.
    let recorded = jobs(&h).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].user, "lisi");
    assert_eq!(recorded[0].text, "开机:web-04");
    let stored: Card =
        serde_json::from_str(&h.store.card_get(&card.task_id).await.unwrap().unwrap().card)
            .unwrap();
    assert_eq!(
        stored.buttons[0].done.as_deref(),
        Some(button_text.as_str())
    );
    let entry = audit(&h)
        .await
        .into_iter()
        .find(|a| a.text == "卡片按钮「开机」")
        .unwrap();
    assert_eq!(entry.user, "lisi");
    assert_eq!(entry.command.as_deref(), Some("开机:web-04"));
    assert_eq!(entry.result, AuditResult::Accepted);

    // A second tap, by anyone: told who acted, nothing runs.
    let again = h
        .engine
        .click(click(ADMIN, &card, &key), Arc::new(opsbot_engine::Discard))
        .await;
    assert!(
        matches!(&again, Clicked::Taken { button_text: t, .. } if *t == button_text),
        "{again:?}"
    );
    assert_eq!(jobs(&h).await.len(), 1);
}

#[tokio::test]
async fn a_clicker_without_the_permission_is_refused_and_audited() {
    let h = harness_with(team(), settings(), None).await;
    let card = put_card(&h, &keys(), "开机:web-04", &[], later()).await;
    let key = card.buttons[0].key.clone();
    let r = h
        .engine
        .click(
            click("wangwu", &card, &key),
            Arc::new(opsbot_engine::Discard),
        )
        .await;
    assert!(refused(&r).starts_with("⛔"), "{r:?}");
    assert!(jobs(&h).await.is_empty());
    let entry = audit(&h).await.into_iter().next().unwrap();
    assert_eq!(
        (entry.user.as_str(), entry.result),
        ("wangwu", AuditResult::Denied)
    );
    // Nothing claimed: someone allowed still can.
    let r = h
        .engine
        .click(click(ADMIN, &card, &key), Arc::new(opsbot_engine::Discard))
        .await;
    assert!(matches!(r, Clicked::Done { .. }), "{r:?}");

    // A button limited to roles: holding the command is not enough.
    let card = put_card(&h, &keys(), "开机:web-04", &["sre"], later()).await;
    let r = h
        .engine
        .click(
            click("lisi", &card, &card.buttons[0].key),
            Arc::new(opsbot_engine::Discard),
        )
        .await;
    assert!(refused(&r).contains("sre"), "{r:?}");
}

#[tokio::test]
async fn forged_expired_and_misrouted_keys_change_nothing() {
    let h = harness_with(team(), settings(), None).await;
    let card = put_card(&h, &keys(), "开机:web-04", &[], later()).await;
    let discard = || Arc::new(opsbot_engine::Discard);
    // A key that is no button of the card.
    let r = h
        .engine
        .click(click(ADMIN, &card, "run.web04.9999999999.00ff"), discard())
        .await;
    assert!(refused(&r).contains("按钮无效"), "{r:?}");
    // A card whose key was signed with another secret: valid shape, wrong MAC.
    let forged = put_card(&h, &CardKeys::new([7; 32]), "开机:web-04", &[], later()).await;
    let r = h
        .engine
        .click(click(ADMIN, &forged, &forged.buttons[0].key), discard())
        .await;
    assert!(refused(&r).contains("按钮无效"), "{r:?}");
    // Expired: says what to type instead.
    let old = put_card(&h, &keys(), "开机:web-04", &[], 1_000).await;
    let r = h
        .engine
        .click(click(ADMIN, &old, &old.buttons[0].key), discard())
        .await;
    assert!(
        refused(&r).contains("已过期") && refused(&r).contains("开机:web-04"),
        "{r:?}"
    );
    // Through another channel than it was sent by.
    let mut elsewhere = click(ADMIN, &card, &card.buttons[0].key);
    elsewhere.channel = "wecom:other".into();
    assert!(matches!(
        h.engine.click(elsewhere, discard()).await,
        Clicked::Refused { .. }
    ));
    // An unknown card.
    let mut unknown = click(ADMIN, &card, &card.buttons[0].key);
    unknown.task_id = "nope-1".into();
    assert!(matches!(
        h.engine.click(unknown, discard()).await,
        Clicked::Refused { .. }
    ));
    assert!(jobs(&h).await.is_empty());
    assert_eq!(h.vm("web-04").await.unwrap().power, PowerState::PoweredOff);
    let invalid = audit(&h)
        .await
        .iter()
        .filter(|a| a.result == AuditResult::Invalid)
        .count();
    assert_eq!(invalid, 5);
    // Without card keys, no button works at all.
    let off = engine_on(&h.store, &h.sessions, team(), EngineSettings::default()).await;
    assert!(matches!(
        off.click(click(ADMIN, &card, &card.buttons[0].key), discard())
            .await,
        Clicked::Refused { .. }
    ));
}

#[tokio::test]
async fn two_clicks_at_once_run_the_action_once() {
    let h = harness_with(team(), settings(), None).await;
    let card = put_card(&h, &keys(), "开机:web-04", &[], later()).await;
    let key = card.buttons[0].key.clone();
    let engine = Arc::new(h.engine);
    let tap = |user: &'static str| {
        let (engine, card, key) = (engine.clone(), card.clone(), key.clone());
        tokio::spawn(async move {
            engine
                .click(click(user, &card, &key), Arc::new(opsbot_engine::Discard))
                .await
        })
    };
    let (a, b) = (tap(ADMIN), tap("lisi"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let outcomes = [&a, &b];
    let done: Vec<_> = outcomes
        .iter()
        .filter(|c| matches!(c, Clicked::Done { .. }))
        .collect();
    assert_eq!(done.len(), 1, "{a:?} / {b:?}");
    let other = outcomes
        .iter()
        .find(|c| !matches!(c, Clicked::Done { .. }))
        .unwrap();
    let Clicked::Taken { button_text, .. } = other else {
        panic!("the loser is told who acted: {other:?}")
    };
    assert!(button_text.starts_with("已由 "), "{button_text}");
    let runs = h
        .store
        .jobs(&JobQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
}

#[tokio::test]
async fn a_confirmation_carries_a_card_whose_buttons_answer_the_pending_command() {
    let h = harness_with(team(), settings(), None).await;
    let r = h.say(ADMIN, "关机:web-01").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    let card = r.card.clone().expect("a confirmation card");
    assert_eq!(card.text, r.text);
    assert_eq!(card.buttons.len(), 2);
    assert!(
        matches!(&card.buttons[0].action, Action::Confirm { command } if command == "关机:web-01")
    );
    assert!(matches!(&card.buttons[1].action, Action::Cancel { .. }));
    // The channel keeps the card before it sends it.
    h.store
        .card_put(&NewCard {
            task_id: card.task_id.clone(),
            channel: CHANNEL.into(),
            target: "{}".into(),
            card: card.to_json(),
            expires_at: chrono::DateTime::from_timestamp(card.expires_at, 0).unwrap(),
        })
        .await
        .unwrap();
    // Someone else's click finds nothing pending in their own conversation.
    let r = h
        .engine
        .click(
            click("lisi", &card, &card.buttons[0].key),
            Arc::new(opsbot_engine::Discard),
        )
        .await;
    assert!(refused(&r).contains("没有待确认的操作"), "{r:?}");
    let mut c = Collector::new();
    let done = h
        .engine
        .click(click(ADMIN, &card, &card.buttons[0].key), c.sink())
        .await;
    let Clicked::Done {
        button_text,
        job: Some(_),
        ..
    } = done
    else {
        panic!("not confirmed: {done:?}")
    };
    assert!(
        button_text.starts_with("已由 admin 确认 #"),
        "{button_text}"
    );
    assert_eq!(c.until_done().await.1, JobState::Succeeded);
    assert_eq!(h.vm("web-01").await.unwrap().power, PowerState::PoweredOff);
    // 取消 after 确认: the slot is taken.
    let r = h
        .engine
        .click(
            click(ADMIN, &card, &card.buttons[1].key),
            Arc::new(opsbot_engine::Discard),
        )
        .await;
    assert!(matches!(r, Clicked::Taken { .. }), "{r:?}");
    assert_eq!(jobs(&h).await.len(), 1);

    // Without keys the confirmation is typed only.
    let plain = engine_on(&h.store, &h.sessions, team(), EngineSettings::default()).await;
    let r = plain
        .handle(msg(ADMIN, "重启:web-02"), Arc::new(opsbot_engine::Discard))
        .await;
    assert_eq!(r.status, Status::NeedsConfirmation);
    assert!(r.card.is_none());
}

#[tokio::test]
async fn a_confirm_button_is_refused_once_the_pending_command_changed() {
    let h = harness_with(team(), settings(), None).await;
    let first = h.say(ADMIN, "关机:web-01").await.card.unwrap();
    h.store
        .card_put(&NewCard {
            task_id: first.task_id.clone(),
            channel: CHANNEL.into(),
            target: "{}".into(),
            card: first.to_json(),
            expires_at: chrono::DateTime::from_timestamp(first.expires_at, 0).unwrap(),
        })
        .await
        .unwrap();
    // Another destructive command replaces the pending one.
    assert_eq!(
        h.say(ADMIN, "重启:web-02").await.status,
        Status::NeedsConfirmation
    );
    let r = h
        .engine
        .click(
            click(ADMIN, &first, &first.buttons[0].key),
            Arc::new(opsbot_engine::Discard),
        )
        .await;
    assert!(refused(&r).contains("已不再等待确认"), "{r:?}");
    assert!(jobs(&h).await.is_empty());
    assert_eq!(h.vm("web-01").await.unwrap().power, PowerState::PoweredOn);
}

/// A card asking how many CPUs web-01 gets (6 or 8, 6 preselected), with one button
/// taking the answer, stored as the channel keeps it before sending.
async fn put_choice_card(h: &Harness) -> Card {
    let task_id = opsbot_core::card::task_id("t");
    let expires_at = later();
    let button = keys().for_card(&task_id, expires_at).button(
        "改配",
        Style::Primary,
        "cpu",
        "web01",
        Action::Choose {
            command: "CPU:web-01,{}".into(),
            question: "cpu".into(),
            options: vec!["6".into(), "8".into()],
        },
    );
    let card = Card {
        task_id: task_id.clone(),
        source: "opsbot".into(),
        title: "web-01 CPU 不足".into(),
        desc: String::new(),
        sub_title: String::new(),
        fields: vec![],
        selection: Some(Selection {
            question: "cpu".into(),
            title: "CPU".into(),
            options: vec![Choice::new("6", "6 核"), Choice::new("8", "8 核")],
            selected: "6".into(),
        }),
        buttons: vec![button],
        text: "web-01 CPU 不足;发送 CPU:web-01,6 改配".into(),
        markdown: false,
        expires_at,
    };
    h.store
        .card_put(&NewCard {
            task_id,
            channel: CHANNEL.into(),
            target: r#"{"to":"user","user":"admin"}"#.into(),
            card: card.to_json(),
            expires_at: chrono::DateTime::from_timestamp(expires_at, 0).unwrap(),
        })
        .await
        .unwrap();
    card
}

fn answered(mut c: Click, ids: &[&str]) -> Click {
    c.selected = vec![("cpu".into(), ids.iter().map(|i| i.to_string()).collect())];
    c
}

#[tokio::test]
async fn a_choice_runs_the_command_with_the_clickers_answer_and_nothing_else() {
    let h = harness_with(team(), settings(), None).await;
    let card = put_choice_card(&h).await;
    let key = card.buttons[0].key.clone();
    let discard = || -> Arc<dyn opsbot_engine::ReplySink> { Arc::new(opsbot_engine::Discard) };
    // An option the button was not signed with, several, or an answer to nothing: refused,
    // nothing claimed, audited.
    for ids in [&["4"][..], &["6", "8"], &[], &["8,16"]] {
        let c = answered(click(ADMIN, &card, &key), ids);
        let out = h.engine.click(c, discard()).await;
        assert!(refused(&out).starts_with('⛔'), "{ids:?}: {out:?}");
    }
    assert!(h
        .store
        .action_claims(&card.task_id)
        .await
        .unwrap()
        .is_empty());
    assert!(jobs(&h).await.is_empty());
    assert_eq!(h.vm("web-01").await.unwrap().cpu, 4);
    assert!(audit(&h)
        .await
        .iter()
        .any(|a| a.result == AuditResult::Invalid && a.text == "卡片按钮「改配」"));

    // The answer 8: runs CPU:web-01,8 as the clicker.
    let mut c = Collector::new();
    let out = h
        .engine
        .click(answered(click(ADMIN, &card, &key), &["8"]), c.sink())
        .await;
    let Clicked::Done {
        card: settled,
        job: Some(_),
        ..
    } = out
    else {
        panic!("not run: {out:?}")
    };
    // The settled card keeps its question (WeCom shows it read-only).
    assert_eq!(settled.selection, card.selection);
    let (_, state) = c.until_done().await;
    assert_eq!(state, JobState::Succeeded);
    assert_eq!(h.vm("web-01").await.unwrap().cpu, 8);
    let recorded = jobs(&h).await;
    assert_eq!(recorded[0].text, "CPU:web-01,8");
    assert_eq!(recorded[0].user, ADMIN);
}

#[tokio::test]
async fn a_choice_without_an_answer_takes_the_cards_default() {
    let h = harness_with(team(), settings(), None).await;
    let card = put_choice_card(&h).await;
    let key = card.buttons[0].key.clone();
    let mut c = Collector::new();
    let out = h.engine.click(click(ADMIN, &card, &key), c.sink()).await;
    assert!(matches!(out, Clicked::Done { job: Some(_), .. }), "{out:?}");
    let (_, state) = c.until_done().await;
    assert_eq!(state, JobState::Succeeded);
    assert_eq!(jobs(&h).await[0].text, "CPU:web-01,6");
    assert_eq!(h.vm("web-01").await.unwrap().cpu, 6);
}
