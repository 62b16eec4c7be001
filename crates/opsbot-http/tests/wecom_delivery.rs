//! The outbox delivery worker against the fake WeCom when WeCom is slow, with a real
//! SQLite store: a send WeCom does not answer within the client's timeout (its outcome
//! unknown) is retried once, after the pause for unknown outcomes, not at once; and two
//! workers sharing the store never send one message twice, however short the
//! configured lease. Cards: a card whose first send went unanswered arrives once and
//! is kept before it is sent; a card update WeCom refuses is never tried again with
//! the same one-time code.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_channels::delivery::RetryPolicy;
use opsbot_channels::wecom::{AppConfig, Body, Settings, Target, WecomChannel};
use opsbot_core::{Policy, Role};
use opsbot_engine::{Engine, EngineSettings};
use opsbot_fakes::{FakeWecom, Fault};
use opsbot_store::{NewOutbox, OutboxItem, OutboxQuery, OutboxState, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const CORP: &str = "ww1436e0e65a779aee";
const AGENT: i64 = 1000002;

struct World {
    fake: FakeWecom,
    store: Arc<dyn Store>,
    channel: Arc<WecomChannel>,
    _dir: tempfile::TempDir,
}

async fn world(settings: Settings) -> World {
    let fake = FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret", AGENT);
    fake.add_users(&["zhangsan"]);
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}/opsbot.db", dir.path().display()))
        .await
        .unwrap();
    let sessions = opsbot_store::connect_sessions("memory", None)
        .await
        .unwrap();
    let admin = Role {
        name: "admin".into(),
        commands: vec!["*".into()],
        scopes: vec!["*".into()],
    };
    let policy = Policy::new(vec![admin], Default::default(), Default::default()).unwrap();
    let engine = Engine::new(
        store.clone(),
        sessions,
        Vec::new(),
        policy,
        EngineSettings::default(),
    )
    .await
    .unwrap();
    let app = AppConfig {
        callback: opsbot_channels::Callback::new("ops", "QDG6eK"),
        corp_id: CORP.into(),
        agent_id: AGENT,
        secret: "secret".into(),
        encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".into(),
        api_base: fake.base_url(),
    };
    let channel =
        Arc::new(WecomChannel::new(&[app], Arc::new(engine), store.clone(), settings).unwrap());
    World {
        fake,
        store,
        channel,
        _dir: dir,
    }
}

impl World {
    async fn queue_body(&self, body: &Body) -> i64 {
        let item = NewOutbox {
            channel: "wecom:ops".into(),
            target: serde_json::to_string(&Target::User {
                user: "zhangsan".into(),
            })
            .unwrap(),
            body: serde_json::to_string(body).unwrap(),
        };
        self.store.outbox_push(&item).await.unwrap()
    }

    async fn queue(&self, text: &str) -> i64 {
        let item = NewOutbox {
            channel: "wecom:ops".into(),
            target: serde_json::to_string(&Target::User {
                user: "zhangsan".into(),
            })
            .unwrap(),
            body: serde_json::to_string(&Body::Text {
                content: text.into(),
            })
            .unwrap(),
        };
        self.store.outbox_push(&item).await.unwrap()
    }

    /// Starts a delivery worker; stopping it (and awaiting the handle) lets its sends in
    /// flight finish first.
    fn worker(&self, owner: &str) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (stop, rx) = watch::channel(false);
        let worker = self.channel.delivery(owner, &[]).unwrap();
        (stop, tokio::spawn(worker.run(rx)))
    }

    async fn item(&self, id: i64) -> OutboxItem {
        self.store
            .outbox_list(&OutboxQuery::default())
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.id == id)
            .unwrap()
    }

    /// Waits until item `id` satisfies `done`.
    async fn item_until(
        &self,
        id: i64,
        what: &str,
        done: impl Fn(&OutboxItem) -> bool,
    ) -> OutboxItem {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let item = self.item(id).await;
            if done(&item) {
                return item;
            }
            assert!(Instant::now() < deadline, "{what}: {item:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn settings(api_timeout: Duration, retry: RetryPolicy) -> Settings {
    Settings {
        api_timeout,
        retry,
        member_limit_per_minute: None,
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_wecom_leaves_unanswered_is_retried_once_after_the_pause_not_at_once() {
    let pause = Duration::from_millis(1500);
    let w = world(settings(
        Duration::from_millis(300),
        RetryPolicy {
            delays: vec![Duration::from_millis(50)],
            poll: Duration::from_millis(20),
            unsure_pause: pause,
            ..RetryPolicy::default()
        },
    ))
    .await;
    // WeCom takes a second to answer the first send: longer than the client waits.
    w.fake
        .push_fault("message/send", Fault::Delay(Duration::from_secs(1)));
    let id = w.queue("慢慢来").await;
    let (stop, worker) = w.worker("worker-a");

    let failed = w
        .item_until(id, "the first attempt never failed", |i| i.attempts == 1)
        .await;
    assert_eq!(failed.state, OutboxState::Pending);
    let error = failed.last_error.clone().unwrap();
    assert!(
        error.contains("no answer") && error.contains("outcome unknown"),
        "{error}"
    );
    // Scheduled after the pause for an unknown outcome, not the 50 ms of a plain retry.
    let wait = failed.next_attempt_at - failed.updated_at;
    assert!(
        wait >= chrono::Duration::from_std(pause).unwrap() - chrono::Duration::milliseconds(50),
        "retried after {wait:?}"
    );
    w.item_until(id, "the retry never went out", |i| {
        i.state == OutboxState::Sent
    })
    .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(
        w.fake.request_count("message/send"),
        2,
        "the timed-out send and one retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_send_one_message_twice_even_with_a_short_lease() {
    // A lease shorter than WeCom's answer takes: the worker must hold it for the whole
    // send (and its timeout), or the other one takes the message meanwhile.
    let w = world(settings(
        Duration::from_secs(2),
        RetryPolicy {
            delays: vec![Duration::from_millis(50)],
            poll: Duration::from_millis(20),
            lease: Duration::from_millis(300),
            ..RetryPolicy::default()
        },
    ))
    .await;
    w.fake
        .push_fault("message/send", Fault::Delay(Duration::from_secs(1)));
    let id = w.queue("只发一次").await;
    let (stop_a, a) = w.worker("worker-a");
    w.item_until(id, "worker a never claimed it", |i| i.claim.is_some())
        .await;
    let (stop_b, b) = w.worker("worker-b");
    let sent = w
        .item_until(id, "never sent", |i| i.state == OutboxState::Sent)
        .await;
    assert_eq!(sent.attempts, 0, "sent at the first attempt");
    // Both stop once what they have in flight is done: nothing is still on its way.
    stop_a.send(true).unwrap();
    stop_b.send(true).unwrap();
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(w.fake.request_count("message/send"), 1);
    let delivered = w
        .fake
        .sent_to("message/send")
        .iter()
        .filter(|m| m.body.to_string().contains("只发一次"))
        .count();
    assert_eq!(delivered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_whole_is_split_to_the_limit_before_it_is_sent() {
    // The alert gateway queues its messages whole, as neutral notices; the channel
    // splits them to WeCom's 2048 bytes, and each part is an outbox item of its own.
    let w = world(settings(
        Duration::from_secs(5),
        RetryPolicy {
            poll: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
    ))
    .await;
    let line = "🔥 告警 DiskFull @db-01 磁盘使用率 95%\n";
    let text = line.repeat(120);
    let expected = opsbot_wecom::split::split_message(&text, 2048);
    assert!(expected.len() > 1);
    let id = w.queue(&text).await;
    let (stop, worker) = w.worker("worker-a");
    w.item_until(id, "never split", |i| i.state == OutboxState::Sent)
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.fake.sent_to("message/send").len() < expected.len() {
        assert!(Instant::now() < deadline, "the parts never all went out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    let mut sent: Vec<String> = w
        .fake
        .sent_to("message/send")
        .iter()
        .map(|m| m.body["text"]["content"].as_str().unwrap().to_string())
        .collect();
    let mut want = expected.clone();
    sent.sort();
    want.sort();
    assert_eq!(sent, want, "every part once, nothing else");
    let items = w.store.outbox_list(&OutboxQuery::default()).await.unwrap();
    assert_eq!(items.len(), 1 + expected.len());
    assert!(items.iter().all(|i| i.state == OutboxState::Sent));
}

/// A card with one button, as a producer queues it.
fn card() -> opsbot_core::Card {
    let keys = opsbot_core::CardKeys::new([3; 32]);
    let task_id = opsbot_core::card::task_id("t");
    let expires_at = chrono::Utc::now().timestamp() + 3600;
    let button = keys.for_card(&task_id, expires_at).button(
        "确认",
        opsbot_core::Style::Primary,
        "ack",
        "al1",
        opsbot_core::Action::run("确认:1"),
    );
    opsbot_core::Card {
        task_id,
        source: "opsbot 告警".into(),
        title: "[P1] HighCPU web-01".into(),
        desc: String::new(),
        sub_title: String::new(),
        fields: vec![],
        selection: None,
        buttons: vec![button],
        text: "[P1] HighCPU web-01;发送 确认:1 确认".into(),
        markdown: false,
        expires_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_whose_send_went_unanswered_arrives_once() {
    let w = world(settings(
        Duration::from_millis(300),
        RetryPolicy {
            delays: vec![Duration::from_millis(50)],
            poll: Duration::from_millis(20),
            unsure_pause: Duration::ZERO,
            ..RetryPolicy::default()
        },
    ))
    .await;
    w.fake
        .push_fault("message/send", Fault::Delay(Duration::from_secs(1)));
    let card = card();
    let id = w.queue_body(&Body::Card { card: card.clone() }).await;
    let (stop, worker) = w.worker("worker-a");
    let sent = w
        .item_until(id, "the card never went out", |i| {
            i.state == OutboxState::Sent
        })
        .await;
    assert!(
        sent.attempts >= 1,
        "the first attempt went unanswered: {sent:?}"
    );
    stop.send(true).unwrap();
    worker.await.unwrap();
    // Kept before the first attempt; on WeCom's side once (a task id is never
    // accepted twice: a retry of a send that did arrive counts as sent).
    let kept = w.store.card_get(&card.task_id).await.unwrap().unwrap();
    assert_eq!(kept.channel, "wecom:ops");
    assert_eq!(w.fake.cards_sent().len(), 1);
    assert_eq!(
        w.fake.cards_sent()[0].task_id.as_deref(),
        Some(card.task_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_card_update_is_dead_lettered_at_once() {
    let w = world(settings(
        Duration::from_secs(5),
        RetryPolicy {
            delays: vec![Duration::from_millis(50)],
            poll: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
    ))
    .await;
    let id = w
        .queue_body(&Body::CardUpdate {
            code: "rc-never-issued".into(),
            card: card(),
        })
        .await;
    let (stop, worker) = w.worker("worker-a");
    let dead = w
        .item_until(id, "never dead-lettered", |i| i.state == OutboxState::Dead)
        .await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(dead.attempts, 1, "one attempt: {dead:?}");
    assert!(dead.last_error.unwrap().contains("40058"));
    assert_eq!(w.fake.request_count("message/update_template_card"), 1);
}
