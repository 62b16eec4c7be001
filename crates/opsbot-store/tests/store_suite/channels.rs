//! Chat-channel cases: a robot stream per message (a retry finds the first), fills only
//! while open, a hand-over and a final fill exclude each other even when racing, and
//! reply windows count what they give out across store handles.

use super::harness::Ctx;
use opsbot_store::{connect, NewStream, StreamOpened, StreamState};

fn stream(msg: &str, id: &str) -> NewStream {
    NewStream {
        channel: "wecom-bot:ops".into(),
        stream_id: id.into(),
        msg_id: msg.into(),
        asker: "张三".into(),
        chat: Some("wrkSFfCgAAxxxxxxxxxxxxxxxxxxxx".into()),
        response_url: Some(
            "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x".into(),
        ),
    }
}

pub async fn streams_open_once_per_message(ctx: Ctx) {
    let s = &ctx.store;
    let StreamOpened::New(first) = s
        .stream_open(&stream("CAIQ16HMjQYY/NGagIOA", "s1"))
        .await
        .unwrap()
    else {
        panic!("the first open is new");
    };
    assert_eq!(
        (first.state, first.content.as_str()),
        (StreamState::Open, "")
    );
    // WeCom's retry of the message, with the new stream id we would have made.
    let again = s
        .stream_open(&stream("CAIQ16HMjQYY/NGagIOA", "s2"))
        .await
        .unwrap();
    let StreamOpened::Existing(existing) = again else {
        panic!("a retry finds the first stream: {again:?}");
    };
    assert_eq!(existing.stream_id, "s1");
    assert_eq!(existing.asker, "张三");
    assert!(s.stream_get("wecom-bot:ops", "s2").await.unwrap().is_none());
    assert!(
        s.stream_get("wecom-bot:other", "s1")
            .await
            .unwrap()
            .is_none(),
        "per channel"
    );
    // The same message id on another robot is another message.
    let mut other = stream("CAIQ16HMjQYY/NGagIOA", "s3");
    other.channel = "wecom-bot:dr".into();
    assert!(matches!(
        s.stream_open(&other).await.unwrap(),
        StreamOpened::New(_)
    ));

    // Racing retries from several tasks and a second handle: exactly one is new.
    let second = connect(&ctx.url).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 {
                ctx.store.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { store.stream_open(&stream("race", &format!("r{i}"))).await })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        if matches!(t.await.unwrap().unwrap(), StreamOpened::New(_)) {
            new += 1;
        }
    }
    assert_eq!(new, 1);
}

pub async fn streams_fill_until_done_or_handed_over(ctx: Ctx) {
    let s = &ctx.store;
    s.stream_open(&stream("m1", "s1")).await.unwrap();
    assert!(s
        .stream_fill("wecom-bot:ops", "s1", "@张三 已受理 #7", Some(7), false)
        .await
        .unwrap());
    let long = "进度\n".repeat(5000);
    assert!(s
        .stream_fill("wecom-bot:ops", "s1", &long, None, false)
        .await
        .unwrap());
    let got = s.stream_get("wecom-bot:ops", "s1").await.unwrap().unwrap();
    assert_eq!(
        (got.content.as_str(), got.job_id),
        (long.as_str(), Some(7)),
        "job kept"
    );
    assert!(s
        .stream_fill("wecom-bot:ops", "s1", "✅ #7 完成", None, true)
        .await
        .unwrap());
    assert_eq!(
        s.stream_get("wecom-bot:ops", "s1")
            .await
            .unwrap()
            .unwrap()
            .state,
        StreamState::Done
    );
    assert!(
        !s.stream_fill("wecom-bot:ops", "s1", "late", None, false)
            .await
            .unwrap(),
        "done is final"
    );
    assert!(!s
        .stream_hand_over("wecom-bot:ops", "s1", "x")
        .await
        .unwrap());
    assert!(!s
        .stream_fill("wecom-bot:ops", "nope", "x", None, true)
        .await
        .unwrap());

    s.stream_open(&stream("m2", "s2")).await.unwrap();
    assert!(s
        .stream_hand_over("wecom-bot:ops", "s2", "⏳ 仍在执行")
        .await
        .unwrap());
    assert!(
        !s.stream_fill("wecom-bot:ops", "s2", "✅", None, true)
            .await
            .unwrap(),
        "handed over: the rest goes elsewhere"
    );
    let got = s.stream_get("wecom-bot:ops", "s2").await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.content.as_str()),
        (StreamState::HandedOver, "⏳ 仍在执行")
    );

    // A final fill racing a hand-over: exactly one of them wins.
    for i in 0..6 {
        let id = format!("race{i}");
        s.stream_open(&stream(&id, &id)).await.unwrap();
        let (a, b) = (ctx.store.clone(), connect(&ctx.url).await.unwrap());
        let (i1, i2) = (id.clone(), id.clone());
        let fill = tokio::spawn(async move {
            a.stream_fill("wecom-bot:ops", &i1, "done", None, true)
                .await
        });
        let over =
            tokio::spawn(async move { b.stream_hand_over("wecom-bot:ops", &i2, "over").await });
        let (fill, over) = (fill.await.unwrap().unwrap(), over.await.unwrap().unwrap());
        assert!(fill ^ over, "fill {fill} hand-over {over}");
    }
}

pub async fn streams_are_purged_by_age(ctx: Ctx) {
    let s = &ctx.store;
    s.stream_open(&stream("old", "old")).await.unwrap();
    let cut = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.stream_purge(cut).await.unwrap(), 1);
    assert!(s
        .stream_get("wecom-bot:ops", "old")
        .await
        .unwrap()
        .is_none());
    s.stream_open(&stream("new", "new")).await.unwrap();
    assert_eq!(
        s.stream_purge(chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    // A purged message id may open again (the timestamp check refuses real replays).
    assert!(matches!(
        s.stream_open(&stream("old", "old2")).await.unwrap(),
        StreamOpened::New(_)
    ));
}

pub async fn reply_windows_count_and_reopen(ctx: Ctx) {
    let s = &ctx.store;
    let (ch, user) = ("wechat:ops", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(48);
    assert!(
        !s.window_take(ch, user, long_ago, 5).await.unwrap(),
        "never opened"
    );
    assert_eq!(s.window_open(ch, user).await.unwrap(), 0);
    let other = connect(&ctx.url).await.unwrap();
    let mut taken = 0;
    for i in 0..7 {
        let store = if i % 2 == 0 { s.clone() } else { other.clone() };
        if store.window_take(ch, user, long_ago, 5).await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 5, "five per window");
    s.window_missed(ch, user).await.unwrap();
    s.window_missed(ch, user).await.unwrap();
    // The user writes again: a fresh window, and we learn what was missed.
    assert_eq!(s.window_open(ch, user).await.unwrap(), 2);
    assert_eq!(s.window_open(ch, user).await.unwrap(), 0, "reported once");
    assert!(s.window_take(ch, user, long_ago, 5).await.unwrap());
    // Opened before the cut-off: closed.
    let future = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(!s.window_take(ch, user, future, 5).await.unwrap());
    assert!(
        !s.window_take("wechat:dr", user, long_ago, 5).await.unwrap(),
        "per channel"
    );

    // Concurrent takes of the last places: never more than the limit.
    s.window_open(ch, "racer").await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = if i % 2 == 0 { s.clone() } else { other.clone() };
            tokio::spawn(async move { store.window_take("wechat:ops", "racer", long_ago, 3).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 3);
}
