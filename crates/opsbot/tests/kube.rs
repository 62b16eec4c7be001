//! Kubernetes end to end through the binary's own configuration path: an opsbot.toml
//! with a `kind = "kubernetes"` provider whose kubeconfig points at the stand-in API
//! server (run by this test), and `opsbot chat -c` as a user whose role reaches
//! `k8s/**`: 工作负载, 节点, a scale confirmed with --yes and followed to its end, 重启
//! of a workload beside a VM provider (the shared name goes by the argument's form),
//! and a workload out of the user's scope reading as unknown.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_fakes::kube::FakeKube;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

struct World {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn world(fake: &FakeKube) -> World {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig, "prod-admin", &fake.admin_token());
    let config = dir.path().join("opsbot.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "sqlite://{db}"
[[providers]]
name = "sim"
kind = "sim"
[[providers]]
name = "k8s"
kind = "kubernetes"
cluster = "prod"
kubeconfig = "{kubeconfig}"
context = "prod-admin"
rollout_timeout = "30s"
[[roles]]
name = "web-ops"
commands = ["工作负载", "扩容", "缩容", "重启", "节点", "日志"]
scopes = ["k8s/prod/web/*", "k8s/prod"]
[[roles]]
name = "admin"
commands = ["*"]
scopes = ["*"]
[[users]]
id = "alice"
roles = ["web-ops"]
[[users]]
id = "root"
roles = ["admin"]
"#,
            db = dir.path().join("opsbot.db").display(),
            kubeconfig = kubeconfig.display(),
        ),
    )
    .unwrap();
    World { dir, config }
}

impl World {
    /// Runs one command as `user` with `opsbot chat -c … --yes`, off the runtime that
    /// serves the fake.
    async fn say(&self, user: &str, text: &str) -> (bool, String) {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        c.args(["chat", "--config"])
            .arg(&self.config)
            .args(["--user", user, "--yes", "-c", text]);
        let out = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_from_the_configuration_through_chat() {
    let fake = FakeKube::start().await;
    fake.set_pod_ready_delay(Duration::from_millis(50));
    fake.add_node("node-1", true, "8", "32Gi");
    fake.add_namespace("web");
    fake.add_namespace("payments");
    fake.add_deployment("web", "web", 2, "registry.local/web:1.0");
    fake.add_deployment("payments", "api", 2, "registry.local/api:1.0");
    let w = world(&fake);

    let (ok, out) = w.say("alice", "工作负载").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("【k8s/prod/web】") && out.contains("web 2/2 就绪"),
        "{out}"
    );
    assert!(!out.contains("api"), "out of scope shown: {out}");

    let (ok, out) = w.say("alice", "节点").await;
    assert!(ok && out.contains("node-1 ✓ 就绪"), "{out}");

    let (ok, out) = w.say("alice", "扩容:web/web,3").await;
    assert!(ok, "{out}");
    assert!(out.contains("扩缩容完成 web: 3/3 就绪"), "{out}");
    assert_eq!(
        fake.deployment("web", "web").unwrap()["spec"]["replicas"],
        3
    );

    // 重启 of ns/name is the workload's; the VM reboot keeps its own form.
    let (ok, out) = w.say("alice", "重启:web/web").await;
    assert!(ok && out.contains("滚动重启完成 web: 3/3 就绪"), "{out}");

    let (ok, out) = w.say("alice", "扩容:payments/api,3").await;
    assert!(
        !ok && out.contains("没有找到工作负载「payments/api」"),
        "{out}"
    );

    let (ok, out) = w.say("root", "工作负载:payments").await;
    assert!(ok && out.contains("api 2/2 就绪"), "{out}");

    // What the scale did is in the change history, as alice's.
    let store = opsbot_store::connect(&format!(
        "sqlite://{}",
        w.dir.path().join("opsbot.db").display()
    ))
    .await
    .unwrap();
    let changes = store
        .changes(&opsbot_store::ChangeQuery {
            provider: Some("k8s".into()),
            object_id: Some("prod/web/web".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        changes.iter().any(|c| c.field == "replicas"
            && c.new_value.as_deref() == Some("3")
            && c.source == "chat:alice"),
        "{changes:#?}"
    );
}

/// Seed 001 from configuration only: examples/menu-seed-001.toml's 事业部 → 功能 → 操作
/// menu, its 工作负载 listed live from the cluster, and the whole path typed as one
/// message scaling oa/web-api to 3 pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_menu_scales_a_deployment_by_path() {
    let fake = FakeKube::start().await;
    fake.set_pod_ready_delay(Duration::from_millis(50));
    fake.add_node("node-1", true, "8", "32Gi");
    fake.add_namespace("oa");
    fake.add_namespace("shop");
    fake.add_deployment("oa", "web-api", 1, "registry.local/oa-web:1.0");
    fake.add_deployment("oa", "worker", 1, "registry.local/oa-worker:1.0");
    let w = world(&fake);
    let menu = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/menu-seed-001.toml"),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(&w.config).unwrap();
    config.push_str(&menu);
    std::fs::write(&w.config, config).unwrap();

    let (ok, out) = w.say("root", "1-OA系统-0").await;
    assert!(ok, "{out}");
    assert!(
        out.contains("web-api (1/1 就绪)") && out.contains("worker (1/1 就绪)"),
        "{out}"
    );
    let (ok, out) = w.say("root", "1-OA系统-0-web-api-0-3").await;
    assert!(ok, "{out}");
    assert!(out.contains("扩缩容完成 web-api: 3/3 就绪"), "{out}");
    assert_eq!(
        fake.deployment("oa", "web-api").unwrap()["spec"]["replicas"],
        3
    );
}

impl World {
    /// One conversation as `user` on the console: the lines typed in order, with --yes.
    async fn converse(&self, user: &str, lines: &[&str]) -> String {
        use std::io::Write;
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        c.args(["chat", "--config"])
            .arg(&self.config)
            .args(["--user", user, "--yes"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            for line in &lines {
                writeln!(stdin, "{line}").unwrap();
            }
            drop(stdin);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// Without a `[[menu]]`, a configured cluster adds 容器管理 to the built-in menu:
/// namespace → workload → action, chosen by number or by name, each leaf an ordinary
/// command (here a scale by +1 and the rollout status after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_menu_gains_container_management() {
    let fake = FakeKube::start().await;
    fake.set_pod_ready_delay(Duration::from_millis(50));
    fake.add_node("node-1", true, "8", "32Gi");
    fake.add_namespace("web");
    fake.add_namespace("payments");
    fake.add_deployment("web", "web", 2, "registry.local/web:1.0");
    let w = world(&fake);

    let out = w
        .converse("root", &["菜单", "9", "2", "web", "web", "0", "+1", "3"])
        .await;
    assert!(out.contains("9 容器管理"), "{out}");
    assert!(
        out.contains("0 工作负载列表") && out.contains("2 操作工作负载"),
        "{out}"
    );
    assert!(
        out.contains("payments") && out.contains("web (2/2 就绪)"),
        "{out}"
    );
    assert!(out.contains("扩容(增加 POD 数)"), "{out}");
    assert!(out.contains("扩缩容完成 web: 3/3 就绪"), "{out}");
    assert_eq!(
        fake.deployment("web", "web").unwrap()["spec"]["replicas"],
        3
    );
    // After the leaf the menu is back at the workload's actions: 3 is 发布状态.
    assert!(out.contains("发布状态"), "{out}");

    // The same in one message, as a path.
    let out = w.converse("root", &["9-2-web-web-0-+2"]).await;
    assert!(out.contains("扩缩容完成 web: 5/5 就绪"), "{out}");
    assert_eq!(
        fake.deployment("web", "web").unwrap()["spec"]["replicas"],
        5
    );
}
