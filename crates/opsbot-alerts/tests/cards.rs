//! Alert cards and remediation on a real SQLite store, with an engine stand-in that
//! records what it is asked to run: what reaches the outbox (a card for app members,
//! text for robots and for resolutions), the buttons and their keys, and automatic
//! remediation's limits (once per announcement, hourly limit, cool-down, flapping,
//! refusals), each outcome on the card.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use async_trait::async_trait;
use opsbot_alerts::auto::{Auto, Outcome, Remedy};
use opsbot_alerts::config::AlertsConfig;
use opsbot_alerts::silence::Silences;
use opsbot_alerts::{Gateway, Source};
use opsbot_core::chat::{Operator, Started};
use opsbot_core::notice::{Body, Target};
use opsbot_core::{Action, AlertDesk, Card, CardKeys};
use opsbot_store::{OutboxItem, OutboxQuery, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: [u8; 32] = [7; 32];

const CONFIG: &str = r#"
group_wait = "0s"
group_interval = "0s"
timezone = "+08:00"
remediation_user = "opsbot-auto"
flap_window = "1h"
flap_threshold = 3
[sources.generic]
token = "generic-token"
[[robots]]
name = "team"
key = "robot-key"
[[routes]]
name = "payments"
labels = { team = "payments" }
app = "ops"
users = ["oncall"]
robots = ["team"]
[default]
app = "ops"
users = ["oncall"]
[[remediations]]
name = "scale"
routes = ["payments"]
command = "扩容:{{labels.namespace}}/{{labels.deployment}},+2"
mode = "auto"
max_per_hour = 3
cooldown = "15m"
[[remediations]]
name = "restart"
alertname = ["Down*"]
command = "重启:{{endpoint}}"
label = "重启 {{endpoint}}"
roles = ["oncall"]
"#;

/// The engine stand-in: records (user, channel, command) and answers with a job, or
/// refuses what `refuse` names.
#[derive(Default)]
struct Engine {
    ran: Mutex<Vec<(String, String, String)>>,
    refuse: Mutex<Option<String>>,
}

#[async_trait]
impl Operator for Engine {
    async fn run_as(&self, _: &str, _: &str, _: &str) -> Result<String, String> {
        unreachable!("automatic remediation only starts commands")
    }

    async fn start_as(&self, user: &str, channel: &str, text: &str) -> Result<Started, String> {
        if let Some(why) = self.refuse.lock().unwrap().clone() {
            return Err(why);
        }
        let mut ran = self.ran.lock().unwrap();
        ran.push((user.into(), channel.into(), text.into()));
        Ok(Started {
            job: Some(100 + ran.len() as i64),
            message: "已受理".into(),
        })
    }
}

struct World {
    store: Arc<dyn Store>,
    gateway: Arc<Gateway>,
    engine: Arc<Engine>,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn world(config: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/a.db", dir.path().display()))
        .await
        .unwrap();
    let config: AlertsConfig = toml::from_str(config).unwrap();
    let mut settings = config.compile(&["ops"]).unwrap();
    settings.cards = Some(CardKeys::new(KEY));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let silences = Arc::new(Silences::new(store.clone()));
    let engine = Arc::new(Engine::default());
    let remedy = Remedy {
        operator: engine.clone(),
        runs: store.clone(),
    };
    let (gateway, _task) = Gateway::start(
        Arc::new(settings),
        silences,
        store.clone(),
        store.clone(),
        None,
        Some(remedy),
        rx,
    );
    World {
        store,
        gateway,
        engine,
        _stop: stop,
        _dir: dir,
    }
}

async fn post(w: &World, body: &str) -> Vec<i64> {
    w.gateway
        .ingest(
            Source::Generic,
            "127.0.0.1",
            "application/json",
            "",
            body.as_bytes(),
        )
        .await
        .unwrap()
        .alerts
}

/// Waits until the outbox holds `n` items, oldest first.
async fn outbox_of(w: &World, n: usize) -> Vec<OutboxItem> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut items = w.store.outbox_list(&OutboxQuery::default()).await.unwrap();
        items.reverse();
        if items.len() >= n {
            assert_eq!(items.len(), n, "{items:#?}");
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "outbox has {} of {n}: {items:#?}",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn body(item: &OutboxItem) -> Body {
    serde_json::from_str(&item.body).unwrap()
}

fn card(item: &OutboxItem) -> Card {
    match body(item) {
        Body::Card { card } => card,
        other => panic!("not a card: {other:?}"),
    }
}

fn payments(name: &str, deployment: &str) -> String {
    format!(
        r#"{{"name":"{name}","endpoint":"{deployment}-pod","severity":"critical","summary":"p99 > 2s","labels":{{"team":"payments","namespace":"payments","deployment":"{deployment}"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_to_members_are_cards_robots_and_resolutions_text() {
    let w = world(CONFIG).await;
    let ids = post(&w, r#"{"name":"DownHost","endpoint":"web-01","severity":"critical","summary":"no answer to ping"}"#).await;
    let items = outbox_of(&w, 1).await;
    assert_eq!(items[0].channel, "wecom:ops");
    let target: Target = serde_json::from_str(&items[0].target).unwrap();
    assert!(matches!(target, Target::Members { ref users, .. } if users == &["oncall"]));
    let c = card(&items[0]);
    let id = ids[0];
    assert_eq!(c.title, "🔴 DownHost @web-01");
    assert_eq!(c.sub_title, "no answer to ping");
    let actions: Vec<(&str, &Action)> = c
        .buttons
        .iter()
        .map(|b| (b.text.as_str(), &b.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("确认", &Action::run(format!("确认:{id}"))),
            ("静默 1 小时", &Action::run(format!("静默:#{id},1h"))),
            (
                "静默 今天",
                &Action::SilenceToday {
                    matcher: format!("#{id}")
                }
            ),
            (
                "重启 web-01",
                &Action::Run {
                    command: "重启:web-01".into(),
                    roles: vec!["oncall".into()]
                }
            ),
        ]
    );
    let now = chrono::Utc::now().timestamp();
    let keys = CardKeys::new(KEY);
    for b in &c.buttons {
        assert_eq!(keys.verify(&c.task_id, b, now), Ok(()));
    }
    // A day by default.
    assert!((c.expires_at - now - 86_400).abs() < 60, "{}", c.expires_at);
    // The text says it all, and how to type each button.
    assert!(
        c.text.contains("DownHost @web-01")
            && c.text
                .ends_with(&format!("可发送: 确认:{id} · 静默:#{id},1h · 重启:web-01")),
        "{}",
        c.text
    );
    assert!(
        w.engine.ran.lock().unwrap().is_empty(),
        "a button rule runs nothing"
    );

    // Resolved: text, for members too.
    post(
        &w,
        r#"{"name":"DownHost","endpoint":"web-01","severity":"critical","status":"resolved"}"#,
    )
    .await;
    let items = outbox_of(&w, 2).await;
    assert!(matches!(body(&items[1]), Body::Text { ref content } if content.contains("已恢复")));

    // A route to members and a robot: the card for members, markdown for the robot.
    post(&w, &payments("SlowCheckout", "api")).await;
    let items = outbox_of(&w, 4).await;
    let robot = items
        .iter()
        .find(|i| i.channel == "wecom:robot/team")
        .unwrap();
    let Body::Markdown { content } = body(robot) else {
        panic!("{}", robot.body)
    };
    assert!(
        content.contains("SlowCheckout")
            && content.contains("🤖 已自动执行 扩容:payments/api,+2 (#101)"),
        "{content}"
    );
    let members = items[2..]
        .iter()
        .find(|i| i.channel == "wecom:ops")
        .unwrap();
    assert!(card(members)
        .sub_title
        .contains("🤖 已自动执行 扩容:payments/api,+2 (#101)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_card_acks_the_group_and_the_desk_announces_once() {
    let w = world(
        r#"
group_wait = "1s"
group_interval = "0s"
[sources.generic]
token = "generic-token"
[default]
app = "ops"
users = ["oncall"]
"#,
    )
    .await;
    let ids = post(
        &w,
        r#"[{"name":"DiskFull","endpoint":"db-01","labels":{"team":"dba"}},{"name":"DiskFull","endpoint":"db-02","labels":{"team":"dba"}}]"#,
    )
    .await;
    let items = outbox_of(&w, 1).await;
    let c = card(&items[0]);
    assert_eq!(c.title, "🔵 2 条告警 · default");
    let ack = format!("确认:{},{}", ids[0], ids[1]);
    assert_eq!(c.buttons[0].text, "全部确认");
    assert_eq!(c.buttons[0].action, Action::run(&ack));
    assert_eq!(
        c.buttons[1].action,
        Action::run("静默:name=DiskFull&team=dba,1h")
    );
    // What the button runs, as the desk answers it: each acked, the route told once.
    let typed: Vec<String> = ack["确认:".len()..].split(',').map(String::from).collect();
    let answers = w.gateway.desk().ack_all(&typed, "zhangsan").await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(opsbot_core::Acked::Now { told, .. }) if told == &["default"])),
        "{answers:?}"
    );
    let items = outbox_of(&w, 2).await;
    assert!(
        items[1].body.contains(&format!(
            "✅ 告警 #{} DiskFull @db-01、#{} DiskFull @db-02 已由 zhangsan 确认",
            ids[0], ids[1]
        )),
        "{}",
        items[1].body
    );
    let again = w.gateway.desk().ack_all(&typed, "lisi").await;
    assert!(again
        .iter()
        .all(|a| matches!(a, Ok(opsbot_core::Acked::Already { .. }))));
    let missing = w
        .gateway
        .desk()
        .ack_all(&["999999".into(), "x".into()], "lisi")
        .await;
    assert!(matches!(
        missing[0],
        Err(opsbot_core::DeskError::NoSuchAlert(999_999))
    ));
    assert!(matches!(
        missing[1],
        Err(opsbot_core::DeskError::BadAlertId(_))
    ));
    outbox_of(&w, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_remediation_keeps_its_hourly_limit_and_runs_as_the_service_identity() {
    let w = world(CONFIG).await;
    // Four deployments alert one after another: the rule may run three times an hour.
    for (i, deployment) in ["api", "web", "cart", "pay"].iter().enumerate() {
        post(&w, &payments("SlowCheckout", deployment)).await;
        // One group at a time: a card and a robot message each.
        outbox_of(&w, 2 * (i + 1)).await;
    }
    let ran = w.engine.ran.lock().unwrap().clone();
    assert_eq!(
        ran,
        ["api", "web", "cart"]
            .iter()
            .map(|d| (
                "opsbot-auto".to_string(),
                "alerts".to_string(),
                format!("扩容:payments/{d},+2")
            ))
            .collect::<Vec<_>>()
    );
    let items = outbox_of(&w, 8).await;
    let cards: Vec<Card> = items
        .iter()
        .filter(|i| i.channel == "wecom:ops")
        .map(card)
        .collect();
    assert!(cards[2]
        .sub_title
        .ends_with("🤖 已自动执行 扩容:payments/cart,+2 (#103)"));
    let refused = &cards[3];
    assert!(
        refused
            .sub_title
            .ends_with("🤖 自动处置未执行 扩容:payments/pay,+2: 1 小时内已执行 3 次(上限 3)"),
        "{}",
        refused.sub_title
    );
    // Not run: offered to a person instead.
    let offered = refused.buttons.last().unwrap();
    assert_eq!(offered.action, Action::run("扩容:payments/pay,+2"));
    assert!(
        refused.text.contains("🤖 自动处置未执行"),
        "{}",
        refused.text
    );
    // The runs are recorded with their jobs.
    let runs = w
        .store
        .remediation_runs("scale", chrono::Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs
        .iter()
        .all(|r| r.job.is_some() && r.outcome.as_deref().unwrap().starts_with("started #")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cool_down_flapping_and_refusals_are_announced() {
    let w = world(CONFIG).await;
    // Two alerts of one deployment: the same command, once; the second cools down.
    post(&w, &payments("SlowCheckout", "api")).await;
    outbox_of(&w, 2).await;
    post(&w, &payments("ErrorRate", "api")).await;
    let items = outbox_of(&w, 4).await;
    let second = items
        .iter()
        .rev()
        .find(|i| i.channel == "wecom:ops")
        .unwrap();
    assert!(
        card(second)
            .sub_title
            .contains("🤖 自动处置未执行 扩容:payments/api,+2: 冷却中,上次执行于"),
        "{}",
        card(second).sub_title
    );
    assert_eq!(w.engine.ran.lock().unwrap().len(), 1);

    // An alert that fired and resolved three times within the hour is flapping.
    let flappy = payments("Flappy", "cart");
    let resolved = flappy.replace(r#""severity""#, r#""status":"resolved","severity""#);
    let mut expected = 4;
    for _ in 0..3 {
        post(&w, &flappy).await;
        expected += 2;
        outbox_of(&w, expected).await;
        post(&w, &resolved).await;
        expected += 2;
        outbox_of(&w, expected).await;
    }
    post(&w, &flappy).await;
    expected += 2;
    let items = outbox_of(&w, expected).await;
    let last = card(
        items
            .iter()
            .rev()
            .find(|i| i.channel == "wecom:ops")
            .unwrap(),
    );
    assert!(
        last.sub_title.contains(
            "🤖 自动处置未执行 扩容:payments/cart,+2: 告警在抖动(1 小时 0 分钟 内恢复 3 次)"
        ),
        "{}",
        last.sub_title
    );
    // The first of its firings did run; the later ones cooled down or flapped.
    assert_eq!(
        w.engine.ran.lock().unwrap().last().unwrap().2,
        "扩容:payments/cart,+2"
    );
    assert_eq!(w.engine.ran.lock().unwrap().len(), 2);

    // The engine refuses (the service identity lacks the permission): said, recorded.
    *w.engine.refuse.lock().unwrap() = Some("⛔ opsbot-auto 没有 扩容 的权限".into());
    post(&w, &payments("SlowCheckout", "pay")).await;
    expected += 2;
    let items = outbox_of(&w, expected).await;
    let refused = card(
        items
            .iter()
            .rev()
            .find(|i| i.channel == "wecom:ops")
            .unwrap(),
    );
    assert!(
        refused
            .sub_title
            .ends_with("🤖 自动处置未执行 扩容:payments/pay,+2: ⛔ opsbot-auto 没有 扩容 的权限"),
        "{}",
        refused.sub_title
    );
    let runs = w
        .store
        .remediation_runs("scale", chrono::Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        runs[0].outcome.as_deref(),
        Some("refused: ⛔ opsbot-auto 没有 扩容 的权限")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_that_cannot_fill_a_template_gets_no_half_command() {
    let w = world(CONFIG).await;
    // No deployment label: the auto rule is skipped (not run, not offered).
    post(
        &w,
        r#"{"name":"SlowCheckout","endpoint":"x","labels":{"team":"payments","namespace":"payments"}}"#,
    )
    .await;
    let items = outbox_of(&w, 2).await;
    let c = card(items.iter().find(|i| i.channel == "wecom:ops").unwrap());
    assert!(
        !c.sub_title.contains("🤖") && !c.text.contains("扩容"),
        "{c:#?}"
    );
    assert_eq!(c.buttons.len(), 3, "确认 and the two silences only");
    assert!(w.engine.ran.lock().unwrap().is_empty());
}

/// A group sent again (the store failed at the flush, another instance raced it, the
/// process died before it) tells the outcome of its first run and runs nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_announcement_does_not_run_its_remediation_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/a.db", dir.path().display()))
        .await
        .unwrap();
    let config: AlertsConfig = toml::from_str(CONFIG).unwrap();
    let settings = config.compile(&["ops"]).unwrap();
    let rule = &settings.remediations.rules()[0];
    let engine = Arc::new(Engine::default());
    let auto = Auto::new(
        Some(Remedy {
            operator: engine.clone(),
            runs: store.clone(),
        }),
        store.clone(),
        settings.remediation_user.clone(),
        settings.flap,
    );
    let alert = opsbot_store::alerts::AlertRecord {
        id: 7,
        fingerprint: "f".into(),
        source: "generic".into(),
        status: "firing".into(),
        severity: "critical".into(),
        name: "SlowCheckout".into(),
        summary: String::new(),
        endpoint: "api-pod".into(),
        metric: String::new(),
        labels: Default::default(),
        annotations: Default::default(),
        recipients: vec![],
        parse_error: None,
        payload_id: 1,
        starts_at: chrono::Utc::now(),
        ends_at: None,
        first_seen: chrono::Utc::now(),
        last_seen: chrono::Utc::now(),
        occurrences: 1,
        ack_by: None,
        ack_at: None,
    };
    let noticed = chrono::Utc::now();
    let cmd = "扩容:payments/api,+2";
    let first = auto.run(rule, cmd, &alert, noticed).await.unwrap();
    assert_eq!(first, Outcome::Started { job: Some(101) });
    // The same announcement again: the first run's outcome, nothing run.
    let again = auto.run(rule, cmd, &alert, noticed).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(engine.ran.lock().unwrap().len(), 1);
    // The same alert firing anew later is another announcement: the cool-down holds it.
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert!(matches!(
        auto.run(rule, cmd, &alert, later).await.unwrap(),
        Outcome::CoolingDown { .. }
    ));
    assert_eq!(engine.ran.lock().unwrap().len(), 1);
}
