//! Cards with buttons end to end over real HTTP: cards reach the stand-in WeCom (which
//! enforces the template-card rules) through the outbox, clicks come back as WeCom
//! encrypts and signs them, and the passive replies and `update_template_card` calls
//! are read back as WeCom would apply them. The click runs as the person who tapped,
//! once, with the same permissions, jobs and audit as the typed command.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::wecom::{AppConfig, RetryPolicy, Settings, WecomChannel};
use opsbot_channels::wecom_bot::{BotChannel, BotConfig};
use opsbot_core::{
    Action, AuditResult, Card, CardKeys, Choice, JobState, Notice, PowerState, Selection, Style,
};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::{
    aibot_text_json, build_aibot_post, build_callback_post, decrypt_aibot_card_reply,
    decrypt_aibot_reply, push_aibot_callback, push_callback, AppClickEvent, BotCardReply,
    CardClick, FakeWecom, PassiveReply,
};
use opsbot_store::{AuditQuery, JobQuery, NewOutbox, Store};
use opsbot_wecom::WecomCrypto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;
const SECRET: &str = "app-secret";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const GROUP: &str = "wrOpsRoomChatId0000000000000000";

/// The server's card keys (a sub-key of its secret key in `opsbot serve`).
fn keys() -> CardKeys {
    CardKeys::new([9; 32])
}

/// zhangsan and lisi: administrators; wangwu: a member with no role.
fn policy() -> opsbot_core::Policy {
    opsbot_core::Policy::new(
        vec![opsbot_core::Role {
            name: "admin".into(),
            commands: vec!["*".into()],
            scopes: vec!["*".into()],
        }],
        BTreeMap::from([
            ("zhangsan".to_string(), vec!["admin".to_string()]),
            ("lisi".to_string(), vec!["admin".to_string()]),
        ]),
        BTreeMap::new(),
    )
    .unwrap()
}

struct World {
    fake: FakeWecom,
    store: Arc<dyn Store>,
    /// The app's callback URL.
    app_url: String,
    /// The smart robot's callback URL.
    bot_url: String,
    app_crypto: WecomCrypto,
    bot_crypto: WecomCrypto,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::from_millis(50)],
        max_attempts: 5,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

async fn world() -> World {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, SECRET, AGENT);
    fake.add_users(&["zhangsan", "lisi", "wangwu"]);
    let app_crypto = WecomCrypto::new(TOKEN, AES_KEY, CORP).unwrap();
    fake.set_callback(AGENT, app_crypto.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let sim = Arc::new(opsbot_sim::SimProvider::new("sim", store.clone(), 0.01));
    let settings = EngineSettings {
        cards: Some(keys()),
        ..EngineSettings::default()
    };
    let engine = Engine::new(store.clone(), sessions, vec![sim], policy(), settings)
        .await
        .unwrap();
    engine.ensure_synced().await.unwrap();
    let engine = Arc::new(engine);
    let app = AppConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        corp_id: CORP.into(),
        agent_id: AGENT,
        secret: SECRET.into(),
        encoding_aes_key: AES_KEY.into(),
        api_base: fake.base_url(),
    };
    let app_settings = Settings {
        progress_interval: Duration::from_secs(3600),
        retry: retry(),
        ..Settings::default()
    };
    let channel =
        Arc::new(WecomChannel::new(&[app], engine.clone(), store.clone(), app_settings).unwrap());
    let bot = BotConfig {
        callback: opsbot_channels::Callback::new("ops", TOKEN),
        encoding_aes_key: AES_KEY.into(),
        bot_id: None,
        api_base: fake.base_url(),
    };
    let bot_settings = opsbot_channels::wecom_bot::Settings {
        retry: retry(),
        ..Default::default()
    };
    let bots =
        Arc::new(BotChannel::new(&[bot], engine.clone(), store.clone(), bot_settings).unwrap());
    let (stop, rx) = watch::channel(false);
    tokio::spawn(
        channel
            .delivery(format!("test-app-{}", next()), &[])
            .unwrap()
            .run(rx.clone()),
    );
    tokio::spawn(bots.delivery(format!("test-bot-{}", next())).run(rx));
    let router = opsbot_http::router(opsbot_http::AppState {
        store: store.clone(),
        version: "test",
        channels: opsbot_channels::ChannelRegistry::default()
            .with(channel.clone())
            .with(bots.clone()),
        alerts: None,
        api: None,
        cmdb: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        opsbot_http::serve(listener, router, std::future::pending())
            .await
            .unwrap()
    });
    World {
        fake,
        store,
        app_url: format!("http://{addr}/wecom/ops/callback"),
        bot_url: format!("http://{addr}/wecom/bot/ops/callback"),
        app_crypto,
        bot_crypto: WecomCrypto::new(TOKEN, AES_KEY, "").unwrap(),
        _stop: stop,
        _dir: dir,
    }
}

fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// Polls `probe` until it yields (deadline 30 s).
async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl World {
    /// `user` types `text` to the app; the HTTP body of the answer.
    async fn say(&self, user: &str, text: &str) -> String {
        let xml = format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content><MsgId>{}</MsgId><AgentID>{AGENT}</AgentID></xml>",
            now(),
            next()
        );
        let post = build_callback_post(
            &self.app_crypto,
            AGENT,
            &xml,
            b"0123456789abcdef",
            &now(),
            &next().to_string(),
        );
        let out = push_callback(&self.app_url, &post).await.unwrap();
        assert_eq!(out.status, 200, "{}", out.body);
        out.body
    }

    /// The `n`th card the fake accepted (waiting for it), as sent.
    async fn card_sent(&self, n: usize) -> Value {
        until(&format!("card #{n} sent"), || {
            self.fake.cards_sent().get(n).map(|c| c.card.clone())
        })
        .await
    }

    /// Posts `click` to the app's callback; what WeCom makes of the answer.
    async fn push(&self, click: &CardClick) -> PassiveReply {
        let out = click.push(&self.app_url).await.unwrap();
        assert_eq!(out.status, 200, "{}", out.body);
        self.fake.apply_passive_reply(click, &out.body).unwrap()
    }

    /// `user` taps button `n` of card `task` (sent by the app).
    async fn tap(&self, user: &str, card: &Value, n: usize) -> PassiveReply {
        let click = self
            .fake
            .click(AGENT, user, task(card), key(card, n))
            .unwrap();
        self.push(&click).await
    }

    async fn jobs(&self) -> Vec<opsbot_core::JobRecord> {
        self.store
            .jobs(&JobQuery {
                limit: 20,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// Waits for the only job to end.
    async fn job_done(&self) -> opsbot_core::JobRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let jobs = self.jobs().await;
            assert!(jobs.len() <= 1, "{jobs:?}");
            if let Some(job) = jobs.into_iter().find(|j| j.state != JobState::Running) {
                return job;
            }
            assert!(tokio::time::Instant::now() < deadline, "no job ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The API update of card `task` (everyone's copy), once it arrived.
    async fn updated_for_all(&self, task: &str) -> Value {
        until("the card updated for everyone", || {
            self.fake
                .card_updates()
                .into_iter()
                .find(|u| u.task_id == task && u.response_code.is_some() && u.atall)
                .map(|u| u.body["template_card"].clone())
        })
        .await
    }

    /// A card running `command`, signed by `keys`, queued for `users` by a producer,
    /// as the alert gateway or deploys do.
    async fn queue_card(
        &self,
        keys: &CardKeys,
        users: &[&str],
        command: &str,
        expires_at: i64,
    ) -> Card {
        let card = make_card(keys, command, expires_at);
        let notice = Notice {
            channel: "wecom:ops".into(),
            target: opsbot_core::notice::Target::Members {
                users: users.iter().map(|u| u.to_string()).collect(),
                parties: vec![],
                tags: vec![],
            },
            body: opsbot_core::notice::Body::Card { card: card.clone() },
        };
        self.store
            .outbox_push(&NewOutbox::from(&notice))
            .await
            .unwrap();
        card
    }

    /// A card asking how many CPUs web-01 gets (6 or 8, 6 preselected) with a 改配
    /// button taking the answer, queued for `users`.
    async fn queue_choice_card(&self, users: &[&str]) -> Card {
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
            task_id,
            source: "opsbot 巡检".into(),
            title: "web-01 CPU 不足".into(),
            desc: String::new(),
            sub_title: "选择核数,点 改配".into(),
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
        let notice = Notice {
            channel: "wecom:ops".into(),
            target: opsbot_core::notice::Target::Members {
                users: users.iter().map(|u| u.to_string()).collect(),
                parties: vec![],
                tags: vec![],
            },
            body: opsbot_core::notice::Body::Card { card: card.clone() },
        };
        self.store
            .outbox_push(&NewOutbox::from(&notice))
            .await
            .unwrap();
        card
    }

    async fn vm_cpu(&self, name: &str) -> u32 {
        let pool = self.store.load_pool().await.unwrap();
        pool.inventory
            .vms
            .into_iter()
            .find(|v| v.name == name)
            .unwrap()
            .cpu
    }

    async fn vm_power(&self, name: &str) -> PowerState {
        let pool = self.store.load_pool().await.unwrap();
        pool.inventory
            .vms
            .into_iter()
            .find(|v| v.name == name)
            .unwrap()
            .power
    }
}

/// A card with one button running `command`, signed by `keys`.
fn make_card(keys: &CardKeys, command: &str, expires_at: i64) -> Card {
    let task_id = opsbot_core::card::task_id("t");
    let button = keys.for_card(&task_id, expires_at).button(
        "开机",
        Style::Primary,
        "power",
        "web04",
        Action::run(command),
    );
    Card {
        task_id,
        source: "opsbot 巡检".into(),
        title: "web-04 已关机".into(),
        desc: String::new(),
        sub_title: "点 开机 启动它".into(),
        fields: vec![opsbot_core::Field::new("虚拟机", "web-04")],
        selection: None,
        buttons: vec![button],
        text: format!("web-04 已关机;发送 {command} 开机"),
        markdown: false,
        expires_at,
    }
}

fn task(card: &Value) -> &str {
    card["task_id"].as_str().unwrap()
}

fn key(card: &Value, n: usize) -> &str {
    card["button_list"][n]["key"].as_str().unwrap()
}

fn later() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

/// A click on `key` of `task` by `user` that WeCom's client would never send (a key not
/// on the card), encrypted and signed as WeCom does.
fn crafted_click(crypto: &WecomCrypto, user: &str, task: &str, key: &str) -> CardClick {
    crafted_click_with(crypto, user, task, key, vec![])
}

/// [`crafted_click`] answering the card's questions with `selected_items`, which WeCom's
/// client would only send from the card's options.
fn crafted_click_with(
    crypto: &WecomCrypto,
    user: &str,
    task: &str,
    key: &str,
    selected_items: Vec<(String, Vec<String>)>,
) -> CardClick {
    let event = AppClickEvent {
        corp_id: CORP.into(),
        user: user.into(),
        create_time: chrono::Utc::now().timestamp(),
        event_key: key.into(),
        task_id: task.into(),
        card_type: "button_interaction".into(),
        response_code: format!("rc-crafted-{}", next()),
        agent_id: AGENT,
        selected_items,
    };
    let post = build_callback_post(
        crypto,
        AGENT,
        &event.to_xml(),
        b"craftedclick0000",
        &now(),
        &next().to_string(),
    );
    CardClick { event, post }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_destructive_command_is_confirmed_with_a_card_button() {
    let w = world().await;
    // A confirmation to one person is a card by the outbox, with no passive text.
    assert_eq!(w.say("zhangsan", "关机:web-01").await, "");
    let card = w.card_sent(0).await;
    assert_eq!(w.fake.cards_sent()[0].recipients, ["zhangsan"]);
    assert_eq!(card["card_type"], "button_interaction");
    assert!(
        card["main_title"]["title"]
            .as_str()
            .unwrap()
            .contains("web-01"),
        "{card}"
    );
    assert_eq!(card["button_list"][0]["text"], "确认");
    assert_eq!(card["button_list"][1]["text"], "取消");
    assert_eq!(w.vm_power("web-01").await, PowerState::PoweredOn);
    card_shot("confirm-card", &card);

    // The passive reply stays empty: the card changes for everyone (here: the asker)
    // with the click's one-time code, and says who acted.
    let reply = w.tap("zhangsan", &card, 0).await;
    assert_eq!(reply, PassiveReply::Nothing);
    let updated = w.updated_for_all(task(&card)).await;
    let done = updated["button_list"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(done.starts_with("已由 zhangsan 确认 #"), "{done}");
    let job = w.job_done().await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.user, "zhangsan");
    assert_eq!(w.vm_power("web-01").await, PowerState::PoweredOff);
    let seen = w.fake.card_as_seen(task(&card), "zhangsan").unwrap();
    assert!(seen.to_string().contains(&done), "{seen}");
    assert_eq!(w.jobs().await.len(), 1);
    card_shot("confirm-card-after", &seen);
}

/// Writes `card` as JSON and as an HTML page under `$OPSBOT_CARD_SHOTS`, for the
/// README's screenshots (`scripts/card-screenshots.sh`); nothing without the variable.
fn card_shot(name: &str, card: &Value) {
    if let Some(dir) = std::env::var_os("OPSBOT_CARD_SHOTS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), card.to_string()).unwrap();
        std::fs::write(
            dir.join(format!("{name}.html")),
            opsbot_fakes::card_html(card),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_card_runs_once_for_an_authorised_clicker_and_never_for_others() {
    let w = world().await;
    let queued = w
        .queue_card(
            &keys(),
            &["zhangsan", "lisi", "wangwu"],
            "开机:web-04",
            later(),
        )
        .await;
    let card = w.card_sent(0).await;
    assert_eq!(task(&card), queued.task_id);
    assert_eq!(card["horizontal_content_list"][0]["value"], "web-04");
    // Kept with the send's one-time code.
    let kept = w.store.card_get(&queued.task_id).await.unwrap().unwrap();
    assert_eq!(kept.channel, "wecom:ops");
    assert_eq!(
        kept.response_code,
        w.fake.cards_sent()[0].response_code,
        "the send's code is kept"
    );

    // No role: ⛔, the card unchanged, nothing ran, audited as denied.
    let reply = w.tap("wangwu", &card, 0).await;
    let PassiveReply::Text(text) = reply else {
        panic!("not refused: {reply:?}")
    };
    assert!(text.starts_with("⛔"), "{text}");
    assert_eq!(w.fake.card_as_seen(task(&card), "wangwu").unwrap(), card);
    assert!(w.jobs().await.is_empty());
    let audit = w
        .store
        .audit_log(&AuditQuery {
            user: Some("wangwu".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].result, AuditResult::Denied);
    assert_eq!(audit[0].text, "卡片按钮「开机」");
    assert_eq!(audit[0].command.as_deref(), Some("开机:web-04"));

    // Allowed: runs once as the clicker, and everyone sees who acted.
    let reply = w.tap("zhangsan", &card, 0).await;
    assert_eq!(reply, PassiveReply::Nothing);
    let updated = w.updated_for_all(task(&card)).await;
    let done = updated["button_list"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(done.starts_with("已由 zhangsan 执行 #"), "{done}");
    let job = w.job_done().await;
    assert_eq!(
        (job.user.as_str(), job.state),
        ("zhangsan", JobState::Succeeded)
    );
    assert_eq!(w.vm_power("web-04").await, PowerState::PoweredOn);
    let lisi = w.fake.card_as_seen(task(&card), "lisi").unwrap();
    assert_eq!(lisi["button_list"][0]["text"], done.as_str());

    // A late tap on the settled card is told who did it; nothing runs again.
    let reply = w.tap("lisi", &card, 0).await;
    assert_eq!(reply, PassiveReply::Text(done));
    assert_eq!(w.jobs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_choice_on_a_card_runs_with_the_picked_option_and_a_forged_one_is_refused() {
    let w = world().await;
    let queued = w.queue_choice_card(&["zhangsan"]).await;
    let card = w.card_sent(0).await;
    assert_eq!(task(&card), queued.task_id);
    assert_eq!(
        card["button_selection"],
        serde_json::json!({
            "question_key": "cpu",
            "title": "CPU",
            "option_list": [{"id": "6", "text": "6 核"}, {"id": "8", "text": "8 核"}],
            "selected_id": "6",
        })
    );
    let before = w.vm_cpu("web-01").await;
    // WeCom's client offers only the card's options: the fake will not send 16.
    assert!(w
        .fake
        .click_with(
            AGENT,
            "zhangsan",
            task(&card),
            key(&card, 0),
            &[("cpu", &["16"])]
        )
        .is_err());
    // Forged all the same, encrypted and signed as WeCom does: refused, nothing claimed.
    let forged = crafted_click_with(
        &w.app_crypto,
        "zhangsan",
        task(&card),
        key(&card, 0),
        vec![("cpu".into(), vec!["16".into()])],
    );
    let reply = w.push(&forged).await;
    let PassiveReply::Text(text) = reply else {
        panic!("not refused: {reply:?}")
    };
    assert!(text.starts_with('⛔') && text.contains("16"), "{text}");
    assert!(w.jobs().await.is_empty());
    assert!(w.store.action_claims(task(&card)).await.unwrap().is_empty());
    assert_eq!(w.fake.card_as_seen(task(&card), "zhangsan").unwrap(), card);

    // Picked 8: runs CPU:web-01,8 as the clicker.
    let click = w
        .fake
        .click_with(
            AGENT,
            "zhangsan",
            task(&card),
            key(&card, 0),
            &[("cpu", &["8"])],
        )
        .unwrap();
    assert_eq!(w.push(&click).await, PassiveReply::Nothing);
    let updated = w.updated_for_all(task(&card)).await;
    assert!(
        updated.to_string().contains("已由 zhangsan 执行 #"),
        "{updated}"
    );
    let job = w.job_done().await;
    assert_eq!(
        (job.user.as_str(), job.text.as_str(), job.state),
        ("zhangsan", "CPU:web-01,8", JobState::Succeeded)
    );
    assert_ne!(before, 8);
    assert_eq!(w.vm_cpu("web-01").await, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_expired_keys_are_refused() {
    let w = world().await;
    let queued = w
        .queue_card(&keys(), &["zhangsan"], "开机:web-04", later())
        .await;
    let card = w.card_sent(0).await;
    let real = key(&card, 0).to_string();
    let refused = |reply: PassiveReply| match reply {
        PassiveReply::Text(text) => text,
        other => panic!("not refused: {other:?}"),
    };
    // A key that is no button of the card.
    let click = crafted_click(&w.app_crypto, "zhangsan", &queued.task_id, "run.x.1.00");
    assert!(refused(w.push(&click).await).contains("按钮无效"));
    // The real key with its MAC changed: the shape holds, the MAC does not.
    let mut tampered = real.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let click = crafted_click(&w.app_crypto, "zhangsan", &queued.task_id, &tampered);
    assert!(refused(w.push(&click).await).contains("按钮无效"));
    // A card signed with another server's key, sent all the same.
    w.queue_card(
        &CardKeys::new([1; 32]),
        &["zhangsan"],
        "开机:web-04",
        later(),
    )
    .await;
    let foreign = w.card_sent(1).await;
    assert!(refused(w.tap("zhangsan", &foreign, 0).await).contains("按钮无效"));
    // A card whose buttons have expired: says what to type instead.
    w.queue_card(
        &keys(),
        &["zhangsan"],
        "开机:web-04",
        chrono::Utc::now().timestamp() - 1,
    )
    .await;
    let expired = w.card_sent(2).await;
    let text = refused(w.tap("zhangsan", &expired, 0).await);
    assert!(
        text.contains("已过期") && text.contains("开机:web-04"),
        "{text}"
    );
    assert!(w.jobs().await.is_empty());
    assert_eq!(w.vm_power("web-04").await, PowerState::PoweredOff);
    // Every card as it was sent.
    for (i, sent) in w.fake.cards_sent().iter().enumerate() {
        let seen = w
            .fake
            .card_as_seen(sent.task_id.as_deref().unwrap(), "zhangsan")
            .unwrap();
        assert_eq!(seen, sent.card, "card {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_click_posted_twice_runs_once() {
    let w = world().await;
    w.queue_card(&keys(), &["zhangsan"], "开机:web-04", later())
        .await;
    let card = w.card_sent(0).await;
    let click = w
        .fake
        .click(AGENT, "zhangsan", task(&card), key(&card, 0))
        .unwrap();
    let first = w.push(&click).await;
    assert_eq!(first, PassiveReply::Nothing);
    // WeCom's retry of the very same callback: acknowledged, nothing runs.
    let again = click.push(&w.app_url).await.unwrap();
    assert_eq!((again.status, again.body.as_str()), (200, ""));
    assert_eq!(w.job_done().await.state, JobState::Succeeded);
    assert_eq!(w.jobs().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engineers_tapping_at_once_run_it_once_and_the_second_is_told_who() {
    let w = world().await;
    w.queue_card(&keys(), &["zhangsan", "lisi"], "开机:web-04", later())
        .await;
    let card = w.card_sent(0).await;
    let a = w
        .fake
        .click(AGENT, "zhangsan", task(&card), key(&card, 0))
        .unwrap();
    let b = w
        .fake
        .click(AGENT, "lisi", task(&card), key(&card, 0))
        .unwrap();
    let (ra, rb) = tokio::join!(a.push(&w.app_url), b.push(&w.app_url));
    let ra = w.fake.apply_passive_reply(&a, &ra.unwrap().body).unwrap();
    let rb = w.fake.apply_passive_reply(&b, &rb.unwrap().body).unwrap();
    let winner = w.job_done().await.user;
    assert_eq!(w.jobs().await.len(), 1);
    // The winner's card changes for everyone; the other is told who acted.
    let mut replies = [ra, rb];
    replies.sort_by_key(|r| matches!(r, PassiveReply::Text(_)));
    let [PassiveReply::Nothing, PassiveReply::Text(told)] = &replies else {
        panic!("one runs, one is told: {replies:?}");
    };
    assert!(told.starts_with(&format!("已由 {winner} ")), "{told}");
    let updated = w.updated_for_all(task(&card)).await;
    assert!(
        updated["button_list"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("已由 {winner} ")),
        "{updated}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_button_is_refused_after_the_pending_command_changed() {
    let w = world().await;
    assert_eq!(w.say("zhangsan", "关机:web-01").await, "");
    let first = w.card_sent(0).await;
    assert_eq!(w.say("zhangsan", "重启:web-02").await, "");
    w.card_sent(1).await;
    let reply = w.tap("zhangsan", &first, 0).await;
    let PassiveReply::Text(text) = reply else {
        panic!("not refused: {reply:?}")
    };
    assert!(text.contains("已不再等待确认"), "{text}");
    assert!(w.jobs().await.is_empty());
    assert_eq!(w.vm_power("web-01").await, PowerState::PoweredOn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_chats_get_the_words_of_confirmations_and_cards() {
    let w = world().await;
    let client = opsbot_wecom::WecomClient::new(opsbot_wecom::ClientConfig {
        api_base: w.fake.base_url(),
        ..Default::default()
    })
    .unwrap();
    let chat = client
        .app(opsbot_wecom::AppCredentials::new(CORP, AGENT, SECRET))
        .appchat_create(&opsbot_wecom::api::NewAppChat {
            name: Some("集群控制".into()),
            owner: Some("zhangsan".into()),
            users: vec!["zhangsan".into(), "lisi".into()],
            chat_id: Some("opsroom".into()),
        })
        .await
        .unwrap();
    let xml = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[关机:web-01]]></Content><MsgId>{}</MsgId><AgentID>{AGENT}</AgentID><ChatId><![CDATA[{chat}]]></ChatId></xml>",
        now(),
        next()
    );
    let post = build_callback_post(&w.app_crypto, AGENT, &xml, b"0123456789abcdef", &now(), "7");
    assert_eq!(push_callback(&w.app_url, &post).await.unwrap().body, "");
    let prompt = until("the prompt in the chat", || {
        w.fake
            .sent_to("appchat/send")
            .into_iter()
            .find(|m| m.body.to_string().contains("回复 确认"))
    })
    .await;
    assert!(prompt.body["text"]["content"]
        .as_str()
        .unwrap()
        .starts_with("@zhangsan "));
    // A producer's card to a chat: its words.
    let card = make_card(&keys(), "开机:web-04", later());
    let notice = Notice {
        channel: "wecom:ops".into(),
        target: opsbot_core::notice::Target::AppChat { chat: chat.clone() },
        body: opsbot_core::notice::Body::Card { card },
    };
    w.store
        .outbox_push(&NewOutbox::from(&notice))
        .await
        .unwrap();
    until("the card's words in the chat", || {
        w.fake
            .sent_to("appchat/send")
            .into_iter()
            .find(|m| m.body.to_string().contains("发送 开机:web-04 开机"))
    })
    .await;
    assert!(w.fake.cards_sent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smart_robot_confirms_with_a_card_and_updates_it_for_the_clicker() {
    let w = world().await;
    let response_url = w.fake.mint_response_url();
    let msg = format!("msg-{}", next());
    let post = build_aibot_post(
        &w.bot_crypto,
        &aibot_text_json(
            &msg,
            Some(GROUP),
            "zhangsan",
            "@opsbot 关机:web-01",
            &response_url,
        ),
        b"0123456789abcdef",
        &now(),
        &next().to_string(),
    );
    let ack = push_aibot_callback(&w.bot_url, &post).await.unwrap();
    let ack = decrypt_aibot_reply(&w.bot_crypto, &ack.body).unwrap();
    assert_eq!(ack["msgtype"], "stream", "{ack}");
    // The card follows by the message's response_url.
    let sent = until("the card at the response_url", || {
        w.fake
            .sent_to("aibot/response")
            .into_iter()
            .find(|m| m.body["msgtype"] == "template_card")
            .map(|m| m.body["template_card"].clone())
    })
    .await;
    assert_eq!(sent["button_list"][0]["text"], "确认");
    assert!(w.store.card_get(task(&sent)).await.unwrap().is_some());

    let click = w.fake.aibot_card_click(
        &w.bot_crypto,
        Some(GROUP),
        "zhangsan",
        task(&sent),
        key(&sent, 0),
        &[],
    );
    let out = push_aibot_callback(&w.bot_url, &click.post).await.unwrap();
    assert_eq!(out.status, 200);
    let reply = decrypt_aibot_card_reply(&w.bot_crypto, &out.body).unwrap();
    let BotCardReply::UpdateCard { userids, card } = reply else {
        panic!("not updated: {reply:?}")
    };
    assert_eq!(userids, ["zhangsan"]);
    assert_eq!(card["task_id"], sent["task_id"]);
    let done = card["button_list"][0]["text"].as_str().unwrap().to_string();
    assert!(done.starts_with("已由 zhangsan 确认 #"), "{done}");
    let job = w.job_done().await;
    assert_eq!(
        (job.user.as_str(), job.state),
        ("zhangsan", JobState::Succeeded)
    );
    assert_eq!(w.vm_power("web-01").await, PowerState::PoweredOff);
    // The job's result goes once by the click's own response_url, to the asker.
    let result = until("the result at the click's response_url", || {
        w.fake
            .sent_to("aibot/response")
            .into_iter()
            .find(|m| m.body["msgtype"] == "markdown")
            .map(|m| m.body["markdown"]["content"].as_str().unwrap().to_string())
    })
    .await;
    assert!(result.starts_with("@zhangsan "), "{result}");

    // Someone else's tap on the asker's confirmation: their conversation has nothing
    // pending; the card stays.
    let other = w.fake.aibot_card_click(
        &w.bot_crypto,
        Some(GROUP),
        "lisi",
        task(&sent),
        key(&sent, 1),
        &[],
    );
    let out = push_aibot_callback(&w.bot_url, &other.post).await.unwrap();
    let reply = decrypt_aibot_card_reply(&w.bot_crypto, &out.body).unwrap();
    assert!(
        matches!(&reply, BotCardReply::UpdateCard { userids, .. } if userids == &["lisi"])
            || matches!(&reply, BotCardReply::Other(v) if v["msgtype"] == "stream"),
        "{reply:?}"
    );
    assert_eq!(w.jobs().await.len(), 1);
}
