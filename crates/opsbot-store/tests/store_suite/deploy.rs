//! Deploy cases: projects, builds, a release order's whole lifecycle, one winner among
//! racing transitions, an order and its hosts written together or not at all, logs
//! paged by seq, orphaned orders, and text with NUL or of any size.

use super::harness::Ctx;
use chrono::{Duration, SubsecRound, Utc};
use opsbot_store::deploy::*;
use std::sync::Arc;

const NUL: char = '\0';
const CLEANED: char = '\u{FFFD}';

fn order(project: &str, hosts: &[&str]) -> NewOrder {
    NewOrder {
        project: project.into(),
        kind: "release".into(),
        build: Some(1),
        version: None,
        state: "待发布".into(),
        user: "zhangsan".into(),
        channel: "wecom:app/ops".into(),
        chat: Some("wr-ops".into()),
        batches: 2,
        plan: r#"{"batches":[1,"100%"]}"#.into(),
        expires_at: None,
        hosts: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| NewHostRun {
                host: (*h).into(),
                address: format!("10.0.0.{}", i + 1),
                batch: i32::from(i > 0),
            })
            .collect(),
    }
}

fn claim(owner: &str) -> OrderPatch {
    OrderPatch {
        owner: Some(Some(owner.into())),
        ..OrderPatch::default()
    }
}

fn build_end(state: &str, artefact: Option<&str>) -> BuildEnd {
    BuildEnd {
        state: state.into(),
        revision: "3f2a9c1".into(),
        artefact: artefact.map(Into::into),
        artefact_size: artefact.map(|_| 20 << 20),
        changelog: "3f2a9c1 修复登录\n".into(),
        error: (state == "failed").then(|| "mvn exited with 1".into()),
    }
}

fn new_build(project: &str) -> NewBuild {
    NewBuild {
        project: project.into(),
        reference: "main".into(),
        user: "zhangsan".into(),
    }
}

pub async fn deploy_projects_crud(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.project_get("商城").await.unwrap(), None);
    s.project_put("商城", r#"{"repository":"git"}"#, "zhangsan")
        .await
        .unwrap();
    s.project_put("api", "{}", "lisi").await.unwrap();
    let first = s.project_get("商城").await.unwrap().unwrap();
    assert_eq!(first.definition, r#"{"repository":"git"}"#);
    assert_eq!(first.created_by, "zhangsan");
    assert_eq!(first.created_at, first.updated_at);

    // Replacing keeps who created it and when.
    s.project_put("商城", r#"{"repository":"svn"}"#, "lisi")
        .await
        .unwrap();
    let second = s.project_get("商城").await.unwrap().unwrap();
    assert_eq!(second.definition, r#"{"repository":"svn"}"#);
    assert_eq!(
        (second.created_by.as_str(), second.created_at),
        ("zhangsan", first.created_at)
    );
    assert!(second.updated_at >= first.updated_at);

    let names: Vec<String> = s
        .project_list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"商城".to_string()) && names.contains(&"api".to_string()));

    assert!(s.project_delete("api").await.unwrap());
    assert!(!s.project_delete("api").await.unwrap(), "already gone");
    assert_eq!(s.project_get("api").await.unwrap(), None);
    assert_eq!(s.project_list().await.unwrap().len(), 1);
}

pub async fn deploy_builds_finish_once_and_are_interrupted(ctx: Ctx) {
    let s = &ctx.store;
    let b1 = s.build_create(&new_build("shop"), "node-a").await.unwrap();
    let running = s.build_get(b1).await.unwrap().unwrap();
    assert_eq!(running.state, "running");
    assert_eq!(running.owner.as_deref(), Some("node-a"));
    assert_eq!((running.revision.as_str(), running.finished_at), ("", None));
    assert_eq!(
        s.build_latest("shop").await.unwrap(),
        None,
        "none succeeded"
    );

    let sha = "a".repeat(64);
    assert!(s
        .build_finish(b1, &build_end("succeeded", Some(&sha)))
        .await
        .unwrap());
    assert!(
        !s.build_finish(b1, &build_end("failed", None))
            .await
            .unwrap(),
        "a build ends once"
    );
    let done = s.build_get(b1).await.unwrap().unwrap();
    assert_eq!(done.state, "succeeded");
    assert_eq!(done.artefact.as_deref(), Some(sha.as_str()));
    assert_eq!(done.artefact_size, Some(20 << 20));
    assert_eq!(done.changelog, "3f2a9c1 修复登录\n");
    assert_eq!(done.owner, None);
    assert!(done.finished_at.is_some());

    let b2 = s.build_create(&new_build("shop"), "node-a").await.unwrap();
    s.build_finish(b2, &build_end("failed", None))
        .await
        .unwrap();
    let b3 = s.build_create(&new_build("other"), "node-b").await.unwrap();
    assert_eq!(
        s.build_latest("shop").await.unwrap().unwrap().id,
        b1,
        "the newest succeeded, not the newest"
    );
    let failed = s.build_get(b2).await.unwrap().unwrap();
    assert_eq!(failed.error.as_deref(), Some("mvn exited with 1"));

    let ids = |v: Vec<BuildRecord>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(ids(s.build_list(None, 0).await.unwrap()), [b3, b2, b1]);
    assert_eq!(ids(s.build_list(Some("shop"), 0).await.unwrap()), [b2, b1]);
    assert_eq!(ids(s.build_list(None, 2).await.unwrap()), [b3, b2]);

    // Only running builds started before the cut are interrupted, and only once.
    let before_all = running.created_at - Duration::hours(1);
    assert!(s.builds_interrupt(before_all).await.unwrap().is_empty());
    let interrupted = s
        .builds_interrupt(Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(ids(interrupted.clone()), [b3]);
    assert_eq!(interrupted[0].state, "interrupted");
    assert_eq!(interrupted[0].owner, None);
    assert!(interrupted[0].finished_at.is_some());
    assert!(s
        .builds_interrupt(Utc::now() + Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());
    assert!(
        !s.build_finish(b3, &build_end("succeeded", Some(&sha)))
            .await
            .unwrap(),
        "an interrupted build is not revived by a late end"
    );
}

pub async fn deploy_order_lifecycle(ctx: Ctx) {
    let s = &ctx.store;
    let mut new = order("shop", &["web-01", "web-02", "web-03"]);
    new.state = "待审批".into();
    let expires = Utc::now().trunc_subsecs(6) + Duration::hours(1);
    new.expires_at = Some(expires);
    let id = s.order_create(&new).await.unwrap();
    let o = s.order_get(id).await.unwrap().unwrap();
    assert_eq!(
        (o.state.as_str(), o.kind.as_str(), o.batch, o.batches),
        ("待审批", "release", 0, 2)
    );
    assert_eq!(o.expires_at, Some(expires));
    assert_eq!(
        (o.owner.clone(), o.heartbeat_at, o.finished_at),
        (None, None, None)
    );
    assert_eq!(o.chat.as_deref(), Some("wr-ops"));
    assert_eq!(o.plan, new.plan);

    let hosts = s.host_runs(id).await.unwrap();
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0].host, "web-01");
    assert_eq!(hosts.iter().map(|h| h.batch).collect::<Vec<_>>(), [0, 1, 1]);
    assert!(hosts
        .iter()
        .all(|h| h.state == "pending" && h.step.is_empty()));

    // Approval: a transition from the wrong state is refused and changes nothing.
    let approve = OrderPatch {
        approver: Some("lisi".into()),
        ..OrderPatch::default()
    };
    assert!(!s
        .order_transition(id, &["待发布"], "发布中", &claim("node-a"))
        .await
        .unwrap());
    assert!(s
        .order_transition(id, &["待审批"], "待发布", &approve)
        .await
        .unwrap());
    assert!(
        !s.order_transition(id, &["待审批"], "已驳回", &OrderPatch::default())
            .await
            .unwrap(),
        "approved already"
    );
    let o2 = s.order_get(id).await.unwrap().unwrap();
    assert_eq!(o2.state, "待发布");
    assert_eq!(o2.approver.as_deref(), Some("lisi"));
    assert!(o2.updated_at >= o.updated_at);
    assert_eq!(o2.created_at, o.created_at);

    // Claimed by an instance: owner and heartbeat set, version set once known.
    let start = OrderPatch {
        version: Some(id),
        ..claim("node-a")
    };
    assert!(s
        .order_transition(id, &["待发布", "暂停"], "发布中", &start)
        .await
        .unwrap());
    let o3 = s.order_get(id).await.unwrap().unwrap();
    assert_eq!(o3.owner.as_deref(), Some("node-a"));
    assert!(o3.heartbeat_at.is_some());
    assert_eq!(o3.version, Some(id));
    assert_eq!(o3.approver.as_deref(), Some("lisi"), "left as it was");

    // Progress by the holder only.
    let next_batch = OrderPatch {
        batch: Some(1),
        plan: Some(r#"{"canary":{"outcome":"watching"}}"#.into()),
        ..OrderPatch::default()
    };
    assert!(!s.order_update(id, "node-b", &next_batch).await.unwrap());
    assert!(s.order_update(id, "node-a", &next_batch).await.unwrap());
    let o4 = s.order_get(id).await.unwrap().unwrap();
    assert_eq!((o4.batch, o4.state.as_str()), (1, "发布中"));
    // The plan is what the runner remembers across a restart (a canary watch).
    assert_eq!(o4.plan, r#"{"canary":{"outcome":"watching"}}"#);

    // A host's steps.
    s.host_update(
        id,
        "web-01",
        &HostPatch {
            state: Some("running".into()),
            step: Some("upload".into()),
            started: true,
            ..HostPatch::default()
        },
    )
    .await
    .unwrap();
    let h = &s.host_runs(id).await.unwrap()[0];
    assert_eq!((h.state.as_str(), h.step.as_str()), ("running", "upload"));
    assert!(h.started_at.is_some() && h.finished_at.is_none());
    s.host_update(
        id,
        "web-01",
        &HostPatch {
            state: Some("failed".into()),
            step: Some("health".into()),
            exit_code: Some(Some(7)),
            previous_version: Some(Some(41)),
            error: Some(Some("健康检查失败: HTTP 502".into())),
            finished: true,
            ..HostPatch::default()
        },
    )
    .await
    .unwrap();
    s.host_update(id, "web-01", &HostPatch::default())
        .await
        .unwrap();
    let h = s.host_runs(id).await.unwrap().remove(0);
    assert_eq!(h.state, "failed");
    assert_eq!(h.exit_code, Some(7));
    assert_eq!(h.previous_version, Some(41));
    assert_eq!(h.error.as_deref(), Some("健康检查失败: HTTP 502"));
    assert!(h.finished_at.is_some());
    // Retried: restarted clears the end, and options can be cleared.
    s.host_update(
        id,
        "web-01",
        &HostPatch {
            state: Some("running".into()),
            exit_code: Some(None),
            error: Some(None),
            started: true,
            ..HostPatch::default()
        },
    )
    .await
    .unwrap();
    let h = s.host_runs(id).await.unwrap().remove(0);
    assert_eq!((h.exit_code, h.error, h.finished_at), (None, None, None));
    assert_eq!(h.previous_version, Some(41), "left as it was");
    let others = s.host_runs(id).await.unwrap();
    assert!(
        others[1..].iter().all(|h| h.state == "pending"),
        "one host only"
    );

    s.deployed_set("shop", "web-01", id, 1).await.unwrap();
    s.deployed_set("shop", "web-02", id, 1).await.unwrap();
    s.deployed_set("shop", "web-01", id + 100, 2).await.unwrap();
    s.deployed_set("other", "web-01", 5, 5).await.unwrap();
    let runs = s.deployed("shop").await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|d| (d.host.as_str(), d.version, d.build))
            .collect::<Vec<_>>(),
        [("web-01", id + 100, 2), ("web-02", id, 1)],
        "upserted per (project, host)"
    );

    // The end: the owner let go, finished_at set.
    let end = OrderPatch {
        owner: Some(None),
        reason: Some("1 台失败".into()),
        finished: true,
        ..OrderPatch::default()
    };
    assert!(s
        .order_transition(id, &["发布中", "暂停"], "部分失败", &end)
        .await
        .unwrap());
    let last = s.order_get(id).await.unwrap().unwrap();
    assert_eq!(last.state, "部分失败");
    assert_eq!((last.owner, last.heartbeat_at), (None, None));
    assert_eq!(last.reason.as_deref(), Some("1 台失败"));
    assert!(last.finished_at.is_some());
    assert!(!s.order_update(id, "node-a", &next_batch).await.unwrap());
    assert!(!s
        .order_transition(id, &[], "失败", &OrderPatch::default())
        .await
        .unwrap());

    // Listing and the busy check.
    let busy = ["待审批", "待发布", "发布中", "暂停"];
    assert_eq!(s.order_active("shop", &busy).await.unwrap(), None);
    let a = s.order_create(&order("shop", &["web-01"])).await.unwrap();
    let b = s.order_create(&order("shop", &["web-02"])).await.unwrap();
    let c = s.order_create(&order("api", &["api-01"])).await.unwrap();
    assert_eq!(s.order_active("shop", &busy).await.unwrap().unwrap().id, b);
    assert_eq!(s.order_active("shop", &[]).await.unwrap(), None);
    let list = |q: OrderQuery| async move {
        s.order_list(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(list(OrderQuery::default()).await, [c, b, a, id]);
    assert_eq!(
        list(OrderQuery {
            project: Some("shop".into()),
            ..OrderQuery::default()
        })
        .await,
        [b, a, id]
    );
    assert_eq!(
        list(OrderQuery {
            states: vec!["部分失败".into(), "成功".into()],
            ..OrderQuery::default()
        })
        .await,
        [id]
    );
    assert_eq!(
        list(OrderQuery {
            before: Some(c),
            limit: 2,
            ..OrderQuery::default()
        })
        .await,
        [b, a]
    );

    // Hosts added by scaling out.
    let added = Utc::now();
    let host = |name: &str, address: &str| ProjectHost {
        project: "shop".into(),
        host: name.into(),
        address: address.into(),
        order: a,
        added_at: added,
    };
    s.project_host_add(&host("web-04", "10.0.0.4"))
        .await
        .unwrap();
    s.project_host_add(&host("web-05", "10.0.0.5"))
        .await
        .unwrap();
    s.project_host_add(&host("web-04", "10.0.0.44"))
        .await
        .unwrap();
    let hosts = s.project_hosts("shop").await.unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(
        hosts[0].address, "10.0.0.44",
        "added again: the new address"
    );
    assert_eq!(hosts[0].added_at, added.trunc_subsecs(6));
    assert!(s.project_hosts("api").await.unwrap().is_empty());
    assert!(s.project_host_remove("shop", "web-04").await.unwrap());
    assert!(!s.project_host_remove("shop", "web-04").await.unwrap());
    assert_eq!(s.project_hosts("shop").await.unwrap()[0].host, "web-05");
}

/// Two instances (two connection pools) race to start the same order: exactly one
/// wins, and the order is held by the winner.
pub async fn deploy_racing_transitions_have_one_winner(ctx: Ctx) {
    let other = opsbot_store::connect(&ctx.url).await.unwrap();
    let stores = [ctx.store.clone(), other];
    for round in 0..5 {
        let id = ctx
            .store
            .order_create(&order("shop", &["web-01"]))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = Arc::clone(&stores[i % 2]);
            tasks.push(tokio::spawn(async move {
                let owner = format!("node-{i}");
                let won = s
                    .order_transition(id, &["待发布"], "发布中", &claim(&owner))
                    .await
                    .unwrap();
                won.then_some(owner)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let o = ctx.store.order_get(id).await.unwrap().unwrap();
        assert_eq!(o.state, "发布中");
        assert_eq!(o.owner, winners.pop());
    }
}

/// An order whose hosts cannot be written (the same host twice) leaves no order behind.
pub async fn deploy_order_and_hosts_are_written_together(ctx: Ctx) {
    let s = &ctx.store;
    let err = s
        .order_create(&order("shop", &["web-01", "web-02", "web-01"]))
        .await;
    assert!(err.is_err(), "a host twice in one order is refused");
    assert!(s
        .order_list(&OrderQuery::default())
        .await
        .unwrap()
        .is_empty());

    // Many hosts (more than one multi-row insert) all land.
    let names: Vec<String> = (0..1200).map(|i| format!("vm-{i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = s.order_create(&order("shop", &refs)).await.unwrap();
    let hosts = s.host_runs(id).await.unwrap();
    assert_eq!(hosts.len(), 1200);
    assert!(hosts.iter().all(|h| h.order == id));
    assert_eq!(hosts[0].host, "vm-0000", "batch 0 first");
    assert!(s.host_runs(id + 1).await.unwrap().is_empty());
}

pub async fn deploy_logs_page_by_seq(ctx: Ctx) {
    let s = &ctx.store;
    let order_id = 7;
    let mut seqs = Vec::new();
    for (of, text) in [
        (LogOf::Order(order_id, Some("")), "开始发布\n"),
        (LogOf::Order(order_id, Some("web-01")), "upload ok\n"),
        (LogOf::Order(order_id, Some("web-02")), "upload ok\n"),
        (LogOf::Build(3), "mvn -q package\n"),
        (LogOf::Order(order_id, Some("web-01")), "switch ok\n"),
        (LogOf::Order(order_id, None), "第 1 批完成\n"),
        (LogOf::Order(8, Some("web-01")), "another order\n"),
        (LogOf::Order(order_id, Some("web-01")), "health ok\n"),
    ] {
        seqs.push(s.log_append(of, text).await.unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );

    let texts = |chunks: &[LogChunk]| chunks.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
    let web01 = s
        .log_read(LogOf::Order(order_id, Some("web-01")), 0, 0)
        .await
        .unwrap();
    assert_eq!(texts(&web01), ["upload ok\n", "switch ok\n", "health ok\n"]);
    assert!(web01
        .iter()
        .all(|c| c.order == order_id && c.build == 0 && c.host == "web-01"));

    let own = s
        .log_read(LogOf::Order(order_id, Some("")), 0, 0)
        .await
        .unwrap();
    assert_eq!(
        texts(&own),
        ["开始发布\n", "第 1 批完成\n"],
        "None appends as the order's own"
    );

    let build = s.log_read(LogOf::Build(3), 0, 0).await.unwrap();
    assert_eq!(texts(&build), ["mvn -q package\n"]);
    assert_eq!(
        (build[0].order, build[0].build, build[0].seq),
        (0, 3, seqs[3])
    );

    // The whole order, paged two at a time, resuming after the last seq seen.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = s
            .log_read(LogOf::Order(order_id, None), after, 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last.seq;
        all.extend(page);
    }
    assert_eq!(
        all.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [seqs[0], seqs[1], seqs[2], seqs[4], seqs[5], seqs[7]]
    );
    assert!(s
        .log_read(LogOf::Order(order_id, None), seqs[7], 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn deploy_text_with_nul_and_huge_logs(ctx: Ctx) {
    let s = &ctx.store;
    // NUL in every kind of text column comes back cleaned.
    s.project_put(&format!("p{NUL}"), &format!("{{\"a\":\"b{NUL}\"}}"), "u")
        .await
        .unwrap();
    let p = s.project_get(&format!("p{NUL}")).await.unwrap().unwrap();
    assert_eq!(p.name, format!("p{CLEANED}"));
    assert_eq!(p.definition, format!("{{\"a\":\"b{CLEANED}\"}}"));

    let mut new = order("shop", &["web-01"]);
    new.plan = "计划".repeat(200_000); // 1.2 MB of JSON-ish text
    let id = s.order_create(&new).await.unwrap();
    assert_eq!(s.order_get(id).await.unwrap().unwrap().plan, new.plan);

    let seq = s
        .log_append(LogOf::Order(id, Some("web-01")), &format!("a{NUL}b\n"))
        .await
        .unwrap();
    let chunk = s
        .log_read(LogOf::Order(id, Some("web-01")), seq - 1, 1)
        .await
        .unwrap();
    assert_eq!(chunk[0].text, format!("a{CLEANED}b\n"));

    // 300 KiB of output with NULs and multi-byte text: chunks of at most 64 KiB that
    // join to the (cleaned) text, and the returned seq is the last chunk's.
    let line = format!("编译 [INFO] {NUL} Building jar: target/app.jar\n");
    let huge = line.repeat(300 * 1024 / line.len() + 1);
    let last = s.log_append(LogOf::Build(9), &huge).await.unwrap();
    let chunks = s.log_read(LogOf::Build(9), 0, 0).await.unwrap();
    assert!(chunks.len() >= 5, "split into {} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.text.len() <= 64 * 1024));
    assert_eq!(chunks.last().unwrap().seq, last);
    let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(joined, huge.replace(NUL, &CLEANED.to_string()));

    // Errors of builds and hosts keep long text too.
    let b = s.build_create(&new_build("shop"), "node-a").await.unwrap();
    let mut end = build_end("failed", None);
    end.error = Some(format!("exit 1{NUL}"));
    end.changelog = "提交\n".repeat(30_000);
    assert!(s.build_finish(b, &end).await.unwrap());
    let got = s.build_get(b).await.unwrap().unwrap();
    assert_eq!(got.error, Some(format!("exit 1{CLEANED}")));
    assert_eq!(got.changelog, end.changelog);
}

pub async fn deploy_orphans_are_found_by_owner_or_stale_heartbeat(ctx: Ctx) {
    let s = &ctx.store;
    let running = ["发布中", "暂停"];
    let mk = || async { s.order_create(&order("shop", &["web-01"])).await.unwrap() };
    let (mine, theirs, paused, waiting, done) =
        (mk().await, mk().await, mk().await, mk().await, mk().await);
    for (id, owner) in [
        (mine, "me"),
        (theirs, "other"),
        (paused, "other"),
        (done, "me"),
    ] {
        assert!(s
            .order_transition(id, &["待发布"], "发布中", &claim(owner))
            .await
            .unwrap());
    }
    assert!(s
        .order_transition(paused, &["发布中"], "暂停", &OrderPatch::default())
        .await
        .unwrap());
    assert!(s
        .order_transition(done, &["发布中"], "成功", &OrderPatch::default())
        .await
        .unwrap());
    let ids = |v: Vec<OrderRecord>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();

    // Nothing is stale yet: only this instance's own orders (it is starting again),
    // and only in the states asked about.
    let an_hour_ago = Utc::now() - Duration::hours(1);
    assert_eq!(
        ids(s
            .orders_orphaned(&running, "me", an_hour_ago)
            .await
            .unwrap()),
        [mine]
    );
    assert_eq!(
        ids(s
            .orders_orphaned(&running, "other", an_hour_ago)
            .await
            .unwrap()),
        [theirs, paused]
    );
    assert!(s
        .orders_orphaned(&running, "third", an_hour_ago)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .orders_orphaned(&[], "me", an_hour_ago)
        .await
        .unwrap()
        .is_empty());

    // Every heartbeat older than the cut: all held orders in those states, but never
    // one nobody holds (待发布) or one that ended.
    let later = Utc::now() + Duration::minutes(1);
    assert_eq!(
        ids(s.orders_orphaned(&running, "third", later).await.unwrap()),
        [mine, theirs, paused]
    );
    assert!(!ids(s.orders_orphaned(&running, "third", later).await.unwrap()).contains(&waiting));

    // A heartbeat moves the holder's orders past a cut between the two beats.
    let before = s
        .order_get(theirs)
        .await
        .unwrap()
        .unwrap()
        .heartbeat_at
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        s.order_heartbeat("other").await.unwrap();
        let beat = s
            .order_get(theirs)
            .await
            .unwrap()
            .unwrap()
            .heartbeat_at
            .unwrap();
        if beat > before {
            // Cut between the old beat and the new one: mine (not refreshed) is stale,
            // theirs are not.
            let cut = beat;
            let stale = ids(s.orders_orphaned(&running, "third", cut).await.unwrap());
            assert_eq!(stale, [mine]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the heartbeat never moved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        s.order_get(done).await.unwrap().unwrap().state,
        "成功",
        "finding orphans moves nothing"
    );
}

/// Hosts of one order append in parallel while a reader follows the whole order's log
/// by seq (what a live log stream does): it sees every chunk exactly once, so no chunk
/// commits after a higher seq of the same order was already readable.
pub async fn deploy_a_following_reader_misses_no_chunk(ctx: Ctx) {
    const HOSTS: usize = 4;
    const LINES: usize = 60;
    let id = ctx
        .store
        .order_create(&order("shop", &["web-01", "web-02", "web-03", "web-04"]))
        .await
        .unwrap();
    let other = opsbot_store::connect(&ctx.url).await.unwrap();
    let stores = [ctx.store.clone(), other];
    let mut writers = Vec::new();
    for h in 0..HOSTS {
        let s = Arc::clone(&stores[h % 2]);
        writers.push(tokio::spawn(async move {
            let host = format!("web-0{}", h + 1);
            for line in 0..LINES {
                s.log_append(LogOf::Order(id, Some(&host)), &format!("{host} {line}\n"))
                    .await
                    .unwrap();
            }
        }));
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let page = ctx
            .store
            .log_read(LogOf::Order(id, None), after, 0)
            .await
            .unwrap();
        if let Some(last) = page.last() {
            after = last.seq;
        }
        let empty = page.is_empty();
        seen.extend(page.into_iter().map(|c| c.text));
        // Writers finished before this read began: it saw everything there is.
        if done && empty {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), HOSTS * LINES, "chunks missed by the follower");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len());
}

/// What a run writes needs its instance to hold the order: once another instance
/// interrupted it (and took it over), the first one's host and order writes are refused
/// and change nothing.
pub async fn deploy_run_writes_need_the_order_held(ctx: Ctx) {
    let s = &ctx.store;
    let id = s.order_create(&order("shop", &["web-01"])).await.unwrap();
    assert!(s
        .order_transition(id, &["待发布"], "发布中", &claim("node-a"))
        .await
        .unwrap());
    let running = HostPatch {
        state: Some("running".into()),
        step: Some("upload".into()),
        ..HostPatch::default()
    };
    assert!(!s
        .host_update_held(id, "node-b", "web-01", &running)
        .await
        .unwrap());
    assert_eq!(s.host_runs(id).await.unwrap()[0].state, "pending");
    assert!(s
        .host_update_held(id, "node-a", "web-01", &running)
        .await
        .unwrap());

    // node-b finds node-a dead: interrupted (held by node-a, as the orphan named it),
    // then resumed by node-b.
    let gone = OrderPatch {
        owner: Some(None),
        ..OrderPatch::default()
    };
    assert!(!s
        .order_transition_held(id, "node-b", &["发布中"], "已中断", &gone)
        .await
        .unwrap());
    assert!(s
        .order_transition_held(id, "node-a", &["发布中"], "已中断", &gone)
        .await
        .unwrap());
    assert!(s
        .order_transition(id, &["已中断"], "发布中", &claim("node-b"))
        .await
        .unwrap());

    // node-a wakes: nothing it writes lands.
    let done = HostPatch {
        state: Some("succeeded".into()),
        step: Some("done".into()),
        ..HostPatch::default()
    };
    assert!(!s
        .host_update_held(id, "node-a", "web-01", &done)
        .await
        .unwrap());
    let finished = OrderPatch {
        owner: Some(None),
        finished: true,
        ..OrderPatch::default()
    };
    assert!(!s
        .order_transition_held(id, "node-a", &["发布中"], "成功", &finished)
        .await
        .unwrap());
    let o = s.order_get(id).await.unwrap().unwrap();
    assert_eq!(
        (o.state.as_str(), o.owner.as_deref()),
        ("发布中", Some("node-b"))
    );
    let h = s.host_runs(id).await.unwrap().remove(0);
    assert_eq!((h.state.as_str(), h.step.as_str()), ("running", "upload"));
    assert!(s
        .host_update_held(id, "node-b", "web-01", &done)
        .await
        .unwrap());
    assert!(s
        .order_transition_held(id, "node-b", &["发布中"], "成功", &finished)
        .await
        .unwrap());
}
