//! Token cases: rows round-trip with their allow-lists, revocation is once-only,
//! and a use is recorded.

use super::harness::Ctx;
use chrono::{SubsecRound, Utc};
use opsbot_store::NewToken;

fn token(id: &str) -> NewToken {
    NewToken {
        token_id: id.into(),
        kind: "api".into(),
        subject: "张三".into(),
        secret_hash: "ab".repeat(32),
        allow_ips: vec!["10.0.0.0/8".into(), "::1/128".into()],
        label: "部署脚本".into(),
        expires_at: (Utc::now() + chrono::Duration::days(30)).trunc_subsecs(0),
    }
}

pub async fn tokens_round_trip_and_revoke(ctx: Ctx) {
    let store = ctx.store;
    // Kept: a second `token("aaaa")` may fall in the next second.
    let aaaa = token("aaaa");
    store.token_insert(&aaaa).await.unwrap();
    store.token_insert(&token("bbbb")).await.unwrap();
    let got = store.token_get("aaaa").await.unwrap().unwrap();
    assert_eq!(got.subject, "张三");
    assert_eq!(got.allow_ips, vec!["10.0.0.0/8", "::1/128"]);
    assert_eq!(got.expires_at, aaaa.expires_at);
    assert!(got.revoked_at.is_none() && got.last_used_at.is_none());
    assert!(store.token_get("cccc").await.unwrap().is_none());

    let listed: Vec<String> = store
        .token_list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token_id)
        .collect();
    assert_eq!(listed, ["bbbb", "aaaa"], "newest first");

    assert!(store.token_revoke("aaaa").await.unwrap());
    assert!(
        !store.token_revoke("aaaa").await.unwrap(),
        "revoked once only"
    );
    assert!(!store.token_revoke("nope").await.unwrap());
    assert!(store
        .token_get("aaaa")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(store
        .token_get("bbbb")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());

    store.token_touch("bbbb").await.unwrap();
    assert!(store
        .token_get("bbbb")
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .is_some());
}

pub async fn token_ids_are_unique(ctx: Ctx) {
    let store = ctx.store;
    store.token_insert(&token("same")).await.unwrap();
    assert!(store.token_insert(&token("same")).await.is_err());
}
