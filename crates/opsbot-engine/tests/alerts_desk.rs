//! The engine's side of the alert gateway, with a desk that records what it is asked:
//! 告警 pages through the desk, 确认:id and 静默 reach it only when permitted, 概况 shows
//! the firing count, 帮助 offers the alert commands, and everything is audited.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use async_trait::async_trait;
use chrono::TimeZone;
use common::{harness, policy, role};
use opsbot_core::{
    Acked, AlertDesk, AlertRef, AuditResult, DeadLetter, DeskError, DeskPage, FiringAlert,
    Recipient, Registry, Silence, Silenced, Subsystem,
};
use opsbot_engine::Status;
use opsbot_store::AuditQuery;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Desk {
    asked: Mutex<Vec<String>>,
}

#[async_trait]
impl AlertDesk for Desk {
    async fn firing(&self, offset: u64, limit: u64) -> Result<DeskPage<FiringAlert>, DeskError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("firing {offset} {limit}"));
        let total = 23u64;
        let rows = (offset..total.min(offset + limit))
            .map(|i| FiringAlert {
                id: 100 + i as i64,
                name: "HighCPU".into(),
                severity: String::new(),
                endpoint: format!("web-{i:02}"),
                since: at(),
                acked_by: None,
                unparsed: false,
            })
            .collect();
        Ok(DeskPage { total, rows })
    }

    async fn firing_count(&self) -> Result<u64, DeskError> {
        Ok(23)
    }

    async fn ack(&self, id: &str, user: &str) -> Result<Acked, DeskError> {
        self.asked.lock().unwrap().push(format!("ack {id} {user}"));
        match id {
            "404" => Err(DeskError::NoSuchAlert(404)),
            "500" => Err(DeskError::Unavailable("database is down".into())),
            _ => Ok(Acked::Now {
                alert: AlertRef {
                    id: id.parse().unwrap(),
                    name: "HighCPU".into(),
                    endpoint: String::new(),
                },
                recovered: false,
                told: Vec::new(),
            }),
        }
    }

    async fn silence(&self, matcher: &str, minutes: u32, user: &str) -> Result<Silence, DeskError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("silence {matcher} {minutes} {user}"));
        Ok(Silence {
            what: Silenced::Matching(matcher.to_string()),
            minutes,
            until: at(),
            covered: 0,
        })
    }

    async fn dead_letters(&self, limit: u64) -> Result<DeskPage<DeadLetter>, DeskError> {
        self.asked.lock().unwrap().push(format!("dead {limit}"));
        Ok(DeskPage {
            total: 1,
            rows: vec![DeadLetter {
                id: 7,
                at: at(),
                app: "ops".into(),
                to: Recipient::User("ghost".into()),
                error: "errcode 81013".into(),
            }],
        })
    }
}

fn at() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::FixedOffset::east_opt(0)
        .unwrap()
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .unwrap()
}

impl Subsystem for Desk {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.alert_desk(self);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_commands_reach_the_desk_when_permitted() {
    let p = policy(
        vec![
            role("oncall", &["告警", "确认", "静默", "概况"], &["*"]),
            role("viewer", &["告警"], &["*"]),
        ],
        &[("zhangsan", &["oncall"]), ("lisi", &["viewer"])],
        &[],
    );
    let mut h = harness(p).await;
    let desk = Arc::new(Desk::default());
    h.engine = h.engine.register(desk.clone());

    let r = h.say("zhangsan", "告警").await;
    assert_eq!(r.status, Status::Ok);
    assert!(
        r.text
            .starts_with("【正在发生的告警】共 23 个,第 1/3 页\n1. #100 🔵 HighCPU @web-00"),
        "{}",
        r.text
    );
    assert!(r.text.ends_with("发送 下一页 查看更多"), "{}", r.text);
    let r = h.say("zhangsan", "下一页").await;
    assert!(
        r.text.contains("\n11. #110 🔵 HighCPU @web-10"),
        "{}",
        r.text
    );
    let r = h.say("zhangsan", "告警:9").await;
    assert!(
        r.text.contains("第 3/3 页") && r.text.contains("23. #122"),
        "past the end: the last page: {}",
        r.text
    );

    assert_eq!(
        h.say("zhangsan", "确认:42").await.text,
        "✅ 已确认告警 #42 HighCPU,已通知: (无路由)"
    );
    let r = h.say("zhangsan", "确认:404").await;
    assert_eq!(r.status, Status::Invalid);
    let r = h.say("zhangsan", "确认:500").await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.text.contains("告警网关暂不可用"), "{}", r.text);
    // A group at once (the 确认 button of a group's card): a line each; done when any
    // was, refused when none was.
    let r = h.say("zhangsan", "确认:42,43，404").await;
    assert_eq!(r.status, Status::Ok);
    assert_eq!(
        r.text,
        "✅ 已确认告警 #42 HighCPU,已通知: (无路由)\n✅ 已确认告警 #43 HighCPU,已通知: (无路由)\n没有编号为 #404 的告警,发送 告警 查看正在发生的告警"
    );
    assert_eq!(
        h.say("zhangsan", "确认:404,404").await.status,
        Status::Invalid
    );
    assert_eq!(
        h.say("zhangsan", "确认:404,500").await.status,
        Status::Failed
    );
    let r = h.say("zhangsan", "静默：web-*，2h").await;
    assert_eq!(
        r.text,
        "🔕 已静默「web-*」2 小时 0 分钟,至 01-02 03:04:05;当前匹配 0 条正在发生的告警。期间的告警照常记录,只是不通知"
    );
    let r = h.say("zhangsan", "告警:死信").await;
    assert!(
        r.text.contains("共 1 个") && r.text.contains("81013"),
        "{}",
        r.text
    );
    let r = h.say("zhangsan", "概况").await;
    assert!(
        r.text.ends_with("告警: 🔥 23 条正在发生(发送 告警 查看)"),
        "{}",
        r.text
    );
    let r = h.say("zhangsan", "帮助").await;
    assert!(
        r.text.contains("静默:匹配,时长") && !r.text.contains("未配置: 扩容、告警"),
        "{}",
        r.text
    );

    // lisi may list but not acknowledge or silence: the desk never hears of it.
    let r = h.say("lisi", "确认:43").await;
    assert_eq!(r.status, Status::Denied);
    let r = h.say("lisi", "静默:db-*,1h").await;
    assert_eq!(r.status, Status::Denied);
    let asked = desk.asked.lock().unwrap().clone();
    assert!(asked.contains(&"ack 42 zhangsan".to_string()), "{asked:?}");
    assert!(
        asked.contains(&"silence web-* 120 zhangsan".to_string()),
        "{asked:?}"
    );
    assert!(!asked.iter().any(|a| a.contains("lisi")), "{asked:?}");

    let audit = h
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let denied: Vec<_> = audit
        .iter()
        .filter(|e| e.user == "lisi" && e.result == AuditResult::Denied)
        .collect();
    assert_eq!(denied.len(), 2);
    assert!(audit.iter().any(|e| e.text == "确认:42"
        && e.command.as_deref() == Some("确认")
        && e.result == AuditResult::Ok));
}
