//! Each chat command against the stand-in API server: scale (absolute, relative, too
//! big, negative, 409 retried, paused, mid-rollout), restart, rollback, rollout status,
//! logs, events, nodes, names out of scope or unknown, and the claims the engine asks.

use crate::harness::{Fixture, Outcome, Who};
use opsbot_core::chat::{Call, ChatCommands, Claim};
use opsbot_core::Zone;
use opsbot_kube::pool::Rollout;
use opsbot_kube::COMMANDS;
use std::time::Duration;

fn replicas(f: &Fixture, ns: &str, name: &str) -> i64 {
    f.fake.deployment(ns, name).unwrap()["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

/// The seeded estate is in the pool, pods included, and every rollout is complete.
async fn settled(f: &Fixture) {
    f.live().await;
    f.until("every rollout is complete", |k| {
        let rows = k.workloads(None, &|_| true);
        rows.len() == 3
            && rows.iter().all(|r| r.rollout == Rollout::Complete)
            && k.pods(None, &|_| true).len() == 6
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_absolute_and_relative_reads_the_result_back() {
    let f = Fixture::start().await;
    settled(&f).await;
    let admin = Who::admin();
    let plan = f
        .plan(&admin, "扩容:payments/api,4")
        .await
        .unwrap()
        .unwrap();
    assert!(
        plan.contains("从 2 调整为 4") && plan.contains("上限 50"),
        "{plan}"
    );
    let Outcome::JobOk {
        summary,
        text,
        notes,
    } = f.run(&admin, "扩容:payments/api,4").await
    else {
        panic!("scale failed")
    };
    assert_eq!(summary, "扩缩容 prod/payments/api → 4");
    assert_eq!(text, "✅ 扩缩容完成 api: 4/4 就绪");
    assert!(!notes.is_empty());
    assert_eq!(replicas(&f, "payments", "api"), 4);
    // Relative, with the English alias and the bare name (unique among visible workloads).
    let out = f.run(&admin, "scale:web,+2").await;
    assert_eq!(out.text(), "✅ 扩缩容完成 web: 5/5 就绪", "{out:?}");
    let out = f.run(&admin, "缩容:prod/web/web,-1").await;
    assert_eq!(out.text(), "✅ 扩缩容完成 web: 4/4 就绪", "{out:?}");
    let out = f.run(&admin, "缩容:k8s/prod/payments/db,0").await;
    assert_eq!(out.text(), "✅ 扩缩容完成 db: 0/0 就绪", "{out:?}");
    // The scale went through the scale subresource.
    assert!(f
        .fake
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.path.ends_with("/deployments/api/scale")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_refuses_negative_and_too_many_before_confirmation() {
    let f = Fixture::with(
        crate::harness::seed,
        "max_replicas = 10\n[[scale_limits]]\nscope = \"prod/payments/*\"\nmax_replicas = 3",
        None,
    )
    .await;
    settled(&f).await;
    let admin = Who::admin();
    let refused = |r: Result<Option<String>, opsbot_core::Answer>| match r {
        Err(opsbot_core::Answer::Invalid(t)) => t,
        other => panic!("not refused: {other:?}"),
    };
    let t = refused(f.plan(&admin, "扩容:payments/api,4").await);
    assert!(t.contains("超过了 prod/payments/api 允许的上限 3"), "{t}");
    let t = refused(f.plan(&admin, "扩容:web/web,11").await);
    assert!(t.contains("上限 10"), "{t}");
    let t = refused(f.plan(&admin, "缩容:web/web,-5").await);
    assert!(t.contains("不能为负数"), "{t}");
    let t = refused(f.plan(&admin, "扩容:web/web,3").await);
    assert!(t.contains("已是 3 个副本"), "{t}");
    assert!(COMMANDS.iter().any(|c| c.name == "扩容" && c.destructive));
    // A count that is not one is refused by check, with what to write.
    let e = f
        .commands
        .check(&COMMANDS[1], &["web/web".into(), "lots".into()])
        .unwrap_err();
    assert!(e.contains("应是数字"), "{e}");
    assert_eq!(replicas(&f, "web", "web"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_retried_on_a_fresh_read() {
    let f = Fixture::start().await;
    settled(&f).await;
    f.fake.inject_conflicts(2);
    let out = f.run(&Who::admin(), "扩容:web/web,4").await;
    assert_eq!(out.text(), "✅ 扩缩容完成 web: 4/4 就绪", "{out:?}");
    let puts = f
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/deployments/web/scale"))
        .count();
    assert_eq!(puts, 3);
    // Conflicting every time: said, not retried forever.
    f.fake.inject_conflicts(100);
    let out = f.run(&Who::admin(), "扩容:web/web,5").await;
    assert!(
        matches!(out, Outcome::JobErr { .. }) && out.text().contains("409"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_mid_rollout_are_said_clearly() {
    let f = Fixture::start().await;
    settled(&f).await;
    let admin = Who::admin();
    f.fake.set_paused("web", "web", true);
    f.until("web is paused in the pool", |_| {
        f.workload("web", "web").is_some_and(|w| w.paused)
    })
    .await;
    let plan = f.plan(&admin, "扩容:web/web,4").await.unwrap().unwrap();
    assert!(plan.contains("已暂停发布"), "{plan}");
    let Err(opsbot_core::Answer::Invalid(t)) = f.plan(&admin, "重启:web/web").await else {
        panic!("restart of a paused deployment was not refused")
    };
    assert!(t.contains("已暂停发布 (paused)"), "{t}");
    let Err(opsbot_core::Answer::Invalid(t)) = f.plan(&admin, "回滚:web/web").await else {
        panic!("rollback of a paused deployment was not refused")
    };
    assert!(t.contains("已暂停"), "{t}");
    f.fake.set_paused("web", "web", false);
    // A rollout that never completes: scaling waits for it to finish first.
    f.fake.set_pod_ready_delay(Duration::MAX);
    f.fake
        .set_image("payments", "api", "registry.local/api:2.0");
    f.until("api is mid-rollout", |_| {
        f.workload("payments", "api")
            .is_some_and(|w| w.mid_rollout())
    })
    .await;
    let Err(opsbot_core::Answer::Invalid(t)) = f.plan(&admin, "扩容:payments/api,3").await else {
        panic!("scale mid-rollout was not refused")
    };
    assert!(
        t.contains("正在发布中") && t.contains("发布状态:payments/api"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rolls_a_new_template_out() {
    let f = Fixture::start().await;
    settled(&f).await;
    let out = f.run(&Who::admin(), "restart:web/web").await;
    assert_eq!(out.text(), "✅ 滚动重启完成 web: 3/3 就绪", "{out:?}");
    let d = f.fake.deployment("web", "web").unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    f.until("the pool has revision 2", |_| {
        f.workload("web", "web")
            .is_some_and(|w| w.revision.as_deref() == Some("2"))
    })
    .await;
    // 重启 is shared with the VM reboot: only `ns/name` is this subsystem's.
    assert!(f.commands.takes(&COMMANDS[3], &["web/web".into()]));
    assert!(!f.commands.takes(&COMMANDS[3], &["web-01".into()]));
    assert_eq!(f.commands.shares(), ["重启"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_the_previous_and_to_a_named_revision() {
    let f = Fixture::start().await;
    settled(&f).await;
    let admin = Who::admin();
    for v in ["2.0", "3.0"] {
        f.fake
            .set_image("web", "web", &format!("registry.local/web:{v}"));
        f.until("the new image rolled out", |_| {
            f.workload("web", "web")
                .is_some_and(|w| w.images[0].ends_with(v) && w.rollout() == Rollout::Complete)
        })
        .await;
    }
    let plan = f.plan(&admin, "回滚:web/web").await.unwrap().unwrap();
    assert!(
        plan.contains("从版本 3回滚到版本 2") && plan.contains("web:2.0"),
        "{plan}"
    );
    let out = f.run(&admin, "回滚:web/web").await;
    assert_eq!(
        out.text(),
        "✅ 已回滚到版本 2 的模板 web: 3/3 就绪",
        "{out:?}"
    );
    let image = |f: &Fixture| {
        f.fake.deployment("web", "web").unwrap()["spec"]["template"]["spec"]["containers"][0]
            ["image"]
            .clone()
    };
    assert_eq!(image(&f), "registry.local/web:2.0");
    let out = f.run(&admin, "rollback:web/web,1").await;
    assert!(out.text().starts_with("✅ 已回滚到版本 1"), "{out:?}");
    assert_eq!(image(&f), "registry.local/web:1.0");
    let Err(opsbot_core::Answer::Invalid(t)) = f.plan(&admin, "回滚:web/web,9").await else {
        panic!("an unknown revision was not refused")
    };
    assert!(t.contains("没有版本 9"), "{t}");
    let Err(opsbot_core::Answer::Invalid(t)) = f.plan(&admin, "回滚:payments/db").await else {
        panic!("a statefulset rollback was not refused")
    };
    assert!(t.contains("只支持 Deployment"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_waits_and_times_out_on_a_rollout_that_never_completes() {
    let f = Fixture::with(crate::harness::seed, "rollout_timeout = \"1s\"", None).await;
    settled(&f).await;
    let out = f.run(&Who::admin(), "发布状态:web/web").await;
    assert_eq!(out.text(), "✅ 发布完成 web: 3/3 就绪", "{out:?}");
    f.fake.set_pod_ready_delay(Duration::MAX);
    f.fake.set_image("web", "web", "registry.local/web:9.9");
    let out = f.run(&Who::admin(), "rollout-status:web/web").await;
    let Outcome::JobErr { text, notes, .. } = &out else {
        panic!("did not time out: {out:?}")
    };
    assert!(
        text.starts_with("⏱ 等待 1 秒后仍未完成") && text.contains("发布状态:web/web"),
        "{text}"
    );
    assert!(!notes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_capped_for_a_phone() {
    let f = Fixture::with(crate::harness::seed, "log_bytes = 400", None).await;
    settled(&f).await;
    let admin = Who::admin();
    let out = f.run(&admin, "日志:payments/api,3").await;
    let Outcome::Done(text) = &out else {
        panic!("{out:?}")
    };
    assert!(
        text.starts_with("Pod payments/api-") && text.contains("最后 3 行"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
    // The byte cap keeps the newest lines and says the rest was left out.
    let out = f.run(&admin, "logs:payments/api").await;
    assert!(
        out.text().contains("较早的行已省略") && out.text().len() < 600,
        "{out:?}"
    );
    // A pod by its own name.
    let pod = f.kube.pods(Some("web"), &|_| true)[0].pod.name.clone();
    let out = f.run(&admin, &format!("日志:web/{pod},2")).await;
    assert!(
        out.text().starts_with(&format!("Pod web/{pod} 最后 2 行")),
        "{out:?}"
    );
    let line_request = f
        .fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/log"))
        .unwrap();
    assert!(
        line_request.query.contains("tailLines="),
        "{}",
        line_request.query
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_newest_first_and_nodes() {
    let f = Fixture::start().await;
    settled(&f).await;
    let admin = Who::admin();
    let out = f.run(&admin, "事件:web").await;
    assert!(out.text().starts_with("web 最近的事件"), "{out:?}");
    let out = f.run(&admin, "events:web/web").await;
    assert!(
        out.text().contains("Deployment/web ScalingReplicaSet"),
        "{out:?}"
    );
    let out = f.run(&admin, "节点").await;
    assert!(out.text().starts_with("节点(共 2 个,2 个就绪)"), "{out:?}");
    assert!(
        out.text().contains("node-1 ✓ 就绪 · CPU 8 · 内存 32Gi"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_out_of_scope_read_as_unknown_and_close_ones_are_suggested() {
    let f = Fixture::start().await;
    settled(&f).await;
    let admin = Who::admin();
    let out = f.run(&admin, "扩容:payments/apj,3").await;
    assert_eq!(
        out.text(),
        "没有找到工作负载「payments/apj」;相近的有: payments/api",
        "{out:?}"
    );
    let web_only = Who::under("k8s/prod/web/");
    let out = f.run(&web_only, "工作负载").await;
    assert!(
        out.text().contains("web 3/3") && !out.text().contains("api"),
        "{out:?}"
    );
    let out = f.run(&web_only, "扩容:payments/api,3").await;
    assert_eq!(out.text(), "没有找到工作负载「payments/api」", "{out:?}");
    let out = f.run(&admin, "工作负载:payments").await;
    assert!(
        out.text().contains("【k8s/prod/payments】") && out.text().contains("db (sts) 1/1"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_tell_workloads_from_other_subsystems_objects() {
    let f = Fixture::start().await;
    settled(&f).await;
    let admin = Who::admin();
    let zone = Zone::parse("UTC").unwrap();
    let claim = |args: Vec<String>, i: usize| {
        let commands = &f.commands;
        let admin = &admin;
        let zone = &zone;
        async move {
            commands
                .claim(Call {
                    command: &COMMANDS[i],
                    args: &args,
                    caller: admin,
                    zone,
                })
                .await
        }
    };
    assert_eq!(
        claim(vec!["payments/api".into(), "3".into()], 1).await,
        Claim::Mine("Kubernetes 工作负载 prod/payments/api".into())
    );
    assert_eq!(
        claim(vec!["payments/nope".into(), "3".into()], 1).await,
        Claim::Shaped
    );
    assert_eq!(
        claim(vec!["myproject".into(), "3".into()], 1).await,
        Claim::No
    );
    assert_eq!(
        claim(vec!["web".into(), "3".into()], 1).await,
        Claim::Mine("Kubernetes 工作负载 prod/web/web".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_sources_list_what_the_caller_may_see() {
    use opsbot_core::chat::MenuSource;
    use std::collections::BTreeMap;
    let f = Fixture::start().await;
    settled(&f).await;
    let menu = opsbot_kube::KubeMenu::new(f.kube.clone());
    assert_eq!(menu.sources(), ["namespaces", "workloads", "pods"]);
    let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let values = |entries: Vec<opsbot_core::chat::MenuEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.value).collect()
    };
    let admin = Who::admin();
    let ns = menu
        .entries("namespaces", &params(&[]), &admin)
        .await
        .unwrap();
    assert_eq!(values(ns), ["payments", "web"]);
    let w = menu
        .entries("workloads", &params(&[("ns", "payments")]), &admin)
        .await
        .unwrap();
    assert_eq!(w[0].label, "api (2/2 就绪)");
    // Within a namespace the template gets the name (`扩容:{ns}/{deploy},{input}`).
    assert_eq!(values(w), ["api", "db"]);
    let w = menu
        .entries("workloads", &params(&[("input", "D")]), &admin)
        .await
        .unwrap();
    assert_eq!(values(w), ["payments/db"]);
    let pods = menu
        .entries("pods", &params(&[("ns", "web")]), &admin)
        .await
        .unwrap();
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p.value.starts_with("web-")));
    let web_only = Who::under("k8s/prod/web/");
    let ns = menu
        .entries("namespaces", &params(&[]), &web_only)
        .await
        .unwrap();
    assert_eq!(values(ns), ["web"]);
    let w = menu
        .entries("workloads", &params(&[("ns", "payments")]), &web_only)
        .await
        .unwrap();
    assert!(w.is_empty());
    assert!(menu.entries("vms", &params(&[]), &admin).await.is_err());
}

/// A job interrupted while it waited on a rollout (its instance died) is described by
/// the pool's view of the workload; what is not a waiting workload job is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rollout_wait_reads_the_workloads_real_state() {
    use opsbot_core::JobStateProbe;
    let f = Fixture::start().await;
    settled(&f).await;
    let probe = opsbot_kube::RolloutProbe::new(f.kube.clone());
    let line = probe.describe("重启", "重启:web/web").await.unwrap();
    assert!(
        line.starts_with("prod/web/web 当前 3/3 就绪,已更新 3"),
        "{line}"
    );
    assert!(line.ends_with("发布已完成"), "{line}");
    let line = probe
        .describe("扩容", "扩容：payments/api，+2")
        .await
        .unwrap();
    assert!(
        line.starts_with("prod/payments/api 当前 2/2 就绪"),
        "{line}"
    );
    assert_eq!(probe.describe("重启", "重启:web-01").await, None, "a VM");
    assert_eq!(probe.describe("日志", "日志:web/web").await, None);
    assert_eq!(probe.describe("重启", "重启:web/nope").await, None);
}
