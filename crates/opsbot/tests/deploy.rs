//! Deploys end to end, with the real binary and real parts: a git repository made with
//! the `git` CLI, three hosts (network namespaces, each with its own sshd and `/srv`)
//! running the deployed app as a real process (`python3 -m http.server` serving
//! `current/`), health checked over HTTP from here. Through `opsbot chat -c` as two
//! people: build, an order waiting for approval (the asker cannot approve it), a bad
//! commit that fails its canary's health check (switched back, the rest never touched,
//! the order 失败), a good release, a rollback by re-link, a second release refused while
//! one is open, and a process SIGKILLed mid-release: the next start marks the order
//! 已中断 and 继续 finishes it from the next host.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_testkit::hosts::Hosts;
use opsbot_testkit::{fix, program};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

struct World {
    dir: tempfile::TempDir,
    repo: PathBuf,
    config: PathBuf,
    hosts: Hosts,
}

fn git(repo: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// Commits the app with `index` as its page; a `healthy` app answers /health.
fn commit(repo: &Path, index: &str, healthy: bool) {
    std::fs::write(repo.join("index.html"), index).unwrap();
    let health = repo.join("health");
    if healthy {
        std::fs::write(&health, "ok\n").unwrap();
    } else if health.exists() {
        std::fs::remove_file(&health).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", index]);
}

/// The app's restart script: the server reads `current/` on every request, so after a
/// switch it serves the new release; restarting it is what a real app needs.
const RESTART: &str = r#"#!/bin/sh
ROOT=/srv/shop
[ -f "$ROOT/app.pid" ] && kill "$(cat "$ROOT/app.pid")" 2>/dev/null
setsid python3 -m http.server 8000 --bind 0.0.0.0 --directory "$ROOT/current" \
  >/dev/null 2>&1 </dev/null &
echo $! > "$ROOT/app.pid"
"#;

impl World {
    fn new() -> Option<World> {
        World::with("0s", true)
    }

    /// A world whose project pauses `pause` between batches and needs approval or not.
    fn with(pause: &str, approval: bool) -> Option<World> {
        World::configured(pause, approval, "", "")
    }

    /// Like [`World::with`], with `top` added to the configuration's start and `extra`
    /// to its end (the project's last table, or tables of its own).
    fn configured(pause: &str, approval: bool, top: &str, extra: &str) -> Option<World> {
        program("git", fix::GIT)?;
        program("python3", fix::PYTHON3)?;
        let hosts = Hosts::start(3)?;
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("restart.sh"), RESTART).unwrap();
        commit(&repo, "v1", true);
        let config = dir.path().join("opsbot.toml");
        let host_list: Vec<String> = hosts
            .addresses()
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        std::fs::write(
            &config,
            format!(
                r#"
{top}
[store]
url = "sqlite://{db}"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "dev"
commands = ["项目", "构建", "发布", "发布单", "日志", "回滚", "暂停", "继续", "终止", "重试", "告警"]
scopes = ["deploy/shop"]
[[roles]]
name = "lead"
commands = ["批准", "驳回", "发布单", "日志"]
scopes = ["deploy/*"]
[[users]]
id = "alice"
roles = ["dev", "lead"]
[[users]]
id = "bob"
roles = ["lead"]
[deploy]
data_dir = "{data}"
stale_after = "2s"
known_hosts = "{known}"
ssh_key = "{key}"
[[deploy.projects]]
name = "shop"
repo = {{ kind = "git", url = "file://{repo}", branch = "main" }}
build = ["test -f index.html"]
hosts = [{hosts}]
ssh_user = "root"
deploy_root = "/srv/shop"
keep_versions = 3
[deploy.projects.hooks]
after_host = ["sh ./restart.sh"]
before_host = ["while [ -f /srv/slow ]; do sleep 0.1; done"]
[deploy.projects.health]
http = "http://{{host}}:8000/health"
timeout = "2s"
retries = 20
interval = "250ms"
[deploy.projects.strategy]
batches = [1, "100%"]
parallelism = 2
pause = "{pause}"
[deploy.projects.approval]
required = {approval}
{extra}
"#,
                db = dir.path().join("opsbot.db").display(),
                data = dir.path().join("deploy").display(),
                known = hosts.known_hosts.display(),
                key = hosts.key.display(),
                repo = repo.display(),
                hosts = host_list.join(", "),
            ),
        )
        .unwrap();
        Some(World {
            dir,
            repo,
            config,
            hosts,
        })
    }

    fn command(&self, user: &str, text: &str) -> Command {
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
        c
    }

    /// Runs one command as `user`; its output and whether it succeeded.
    fn say(&self, user: &str, text: &str) -> (bool, String) {
        let out: Output = self.command(user, text).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The release `current` points at on host `i`.
    fn current(&self, i: usize) -> String {
        self.hosts
            .host(i)
            .run_ok("readlink /srv/shop/current")
            .trim()
            .to_string()
    }

    /// What the app on host `i` serves at `/`, asked over HTTP from here.
    fn page(&self, i: usize) -> String {
        let url = format!("http://{}:8000/index.html", self.hosts.host(i).address);
        let out = Command::new("python3")
            .args(["-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn order_number(text: &str) -> i64 {
    let at = text
        .find("发布单 #")
        .unwrap_or_else(|| panic!("no order in: {text}"));
    text[at + "发布单 #".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn build_approve_release_fail_rollback_and_resume_after_a_kill() {
    let Some(w) = World::new() else { return };

    // A build of the default branch; its change log names the commit.
    let (ok, out) = w.say("alice", "构建:shop");
    assert!(ok && out.contains("构建 #1 成功"), "{out}");
    assert!(out.contains("v1"), "the change log lists the commit: {out}");

    // The order waits for an approver; the asker is not one for her own order.
    let (ok, out) = w.say("alice", "发布:shop");
    assert!(ok && out.contains("等待审批"), "{out}");
    let first = order_number(&out);
    let (ok, out) = w.say("alice", &format!("批准:{first}"));
    assert!(!ok && out.contains("不能批准自己提交的"), "{out}");
    // A second order for the same project is refused while this one is open.
    let (ok, out) = w.say("alice", "发布:shop");
    assert!(!ok && out.contains(&format!("#{first}")), "{out}");

    let (ok, out) = w.say("bob", &format!("批准:{first}"));
    assert!(ok, "{out}");
    assert!(out.contains("成功 3 台"), "{out}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{first}"));
        assert_eq!(w.page(i), "v1");
    }
    // Approving again says who approved it.
    let (ok, out) = w.say("bob", &format!("批准:{first}"));
    assert!(!ok && out.contains("已由 bob 批准"), "{out}");

    // A bad commit: the canary fails its health check, is switched back, and the
    // second batch never starts.
    commit(&w.repo, "v2", false);
    let (ok, out) = w.say("alice", "构建:shop");
    assert!(ok && out.contains("构建 #2 成功"), "{out}");
    let (_, out) = w.say("alice", "发布:shop,2");
    let bad = order_number(&out);
    let (ok, out) = w.say("bob", &format!("批准:{bad}"));
    assert!(!ok, "{out}");
    assert!(
        out.contains("失败") && out.contains("健康检查失败"),
        "{out}"
    );
    assert!(
        out.contains("未执行 2 台"),
        "the failed host is named, the rest skipped: {out}"
    );
    for i in 0..3 {
        assert_eq!(
            w.current(i),
            format!("releases/{first}"),
            "host {i} serves the old release"
        );
        assert_eq!(w.page(i), "v1");
    }

    // A good release, then a rollback by re-link to the one before it.
    commit(&w.repo, "v3", true);
    assert!(w.say("alice", "构建:shop").0);
    let (_, out) = w.say("alice", "发布:shop,3");
    let good = order_number(&out);
    let (ok, out) = w.say("bob", &format!("批准:{good}"));
    assert!(ok, "{out}");
    for i in 0..3 {
        assert_eq!(w.page(i), "v3");
    }
    let (ok, out) = w.say("alice", "回滚:shop");
    assert!(ok, "{out}");
    assert!(out.contains(&format!("回滚到 #{first}")), "{out}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{first}"));
        assert_eq!(w.page(i), "v1");
    }
    let (_, out) = w.say("alice", &format!("发布单:{good}"));
    assert!(out.contains("已回滚"), "{out}");
    let (_, out) = w.say("alice", &format!("日志:{good},{}", w.hosts.host(1).address));
    assert!(out.contains(&format!("current → releases/{good}")), "{out}");

    // Killed mid-release: the canary's before_host hook waits for /srv/slow to go; SIGKILL
    // the process meanwhile.
    for h in &w.hosts.hosts {
        h.run_ok("touch /srv/slow");
    }
    let (_, out) = w.say("alice", "发布:shop,3");
    let killed = order_number(&out);
    let mut child = w
        .command("bob", &format!("批准:{killed}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out) = w.say("alice", &format!("发布单:{killed}"));
        if out.contains("发布中") && out.contains("before_host") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the release never reached its hook: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for h in &w.hosts.hosts {
        h.run_ok("rm -f /srv/slow");
    }
    // A start after the heartbeat went stale marks it interrupted, naming the host.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let (_, out) = w.say("alice", &format!("发布单:{killed}"));
        if out.contains("已中断") {
            break out;
        }
        assert!(Instant::now() < deadline, "never marked interrupted: {out}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(out.contains("before_host"), "{out}");
    let (ok, out) = w.say("alice", &format!("继续:{killed}"));
    assert!(ok, "{out}");
    assert!(out.contains("成功 3 台"), "{out}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{killed}"));
        assert_eq!(w.page(i), "v3");
    }

    // A rollback where one host lost the release: re-deployed there from its artefact,
    // re-linked on the others.
    let good_host = w.hosts.host(2);
    good_host.run_ok(&format!("rm -rf /srv/shop/releases/{good}"));
    let (ok, out) = w.say("alice", &format!("回滚:shop,{good}"));
    assert!(ok, "{out}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{good}"));
    }
    let (_, out) = w.say(
        "alice",
        &format!("日志:{},{}", order_number(&out), good_host.address),
    );
    assert!(out.contains(&format!("上传并解压版本 #{good}")), "{out}");
    // Neither on any host nor in the artefact store: refused before anything runs.
    std::fs::remove_dir_all(w.dir.path().join("deploy/artefacts")).unwrap();
    for h in &w.hosts.hosts {
        h.run_ok(&format!("rm -rf /srv/shop/releases/{first}"));
    }
    let (ok, out) = w.say("alice", &format!("回滚:shop,{first}"));
    assert!(
        !ok && out.contains(&format!("无法回滚到 #{first}")),
        "{out}"
    );
}

/// Seed 003's main story: a project grows by two hosts before a sales event and shrinks
/// after it. The sim provider clones the VMs (with addresses from the project's pool,
/// where network-namespace hosts stand in for the booted guests), opsbot waits for their
/// SSH, renders the upstream from a template with every host, runs the scale hooks and
/// releases the current version to the new hosts; 缩容 re-renders without the leaving
/// host, takes it out of the project and powers its VM off.
#[test]
fn scale_a_project_out_and_in() {
    let Some(hosts) = Hosts::start(3) else { return };
    program("git", fix::GIT).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("restart.sh"), RESTART).unwrap();
    commit(&repo, "v1", true);
    let upstream_src = dir.path().join("upstream.j2");
    let upstream = dir.path().join("upstream.conf");
    std::fs::write(
        &upstream_src,
        "upstream shop {\n{% for h in hosts %}  server {{ h.address }}:8000;\n{% endfor %}}\n",
    )
    .unwrap();
    let events = dir.path().join("events.log");
    let a = hosts.addresses();
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
time_scale = 0.01
[[roles]]
name = "ops"
commands = ["*"]
scopes = ["*"]
[[users]]
id = "alice"
roles = ["ops"]
[deploy]
data_dir = "{data}"
known_hosts = "{known}"
ssh_key = "{key}"
[[deploy.projects]]
name = "shop"
repo = {{ kind = "git", url = "file://{repo}" }}
hosts = ["{h0}"]
ssh_user = "root"
deploy_root = "/srv/shop"
[deploy.projects.hooks]
after_host = ["sh ./restart.sh"]
on_scale_out = ["echo out $OPSBOT_ADDED >> {events}"]
on_scale_in = ["echo in $OPSBOT_REMOVED >> {events}"]
templates = [{{ src = "{src}", dest = "{dest}" }}]
[deploy.projects.health]
http = "http://{{host}}:8000/health"
retries = 20
interval = "250ms"
[deploy.projects.scale]
template = 4
name_prefix = "shop-"
addresses = ["{h1}", "{h2}"]
ssh_wait = "30s"
"#,
            db = dir.path().join("opsbot.db").display(),
            data = dir.path().join("deploy").display(),
            known = hosts.known_hosts.display(),
            key = hosts.key.display(),
            repo = repo.display(),
            h0 = a[0],
            h1 = a[1],
            h2 = a[2],
            events = events.display(),
            src = upstream_src.display(),
            dest = upstream.display(),
        ),
    )
    .unwrap();
    let ask = |text: &str, yes: bool| -> (bool, String) {
        let mut c = Command::new(BIN);
        c.current_dir(dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        let out = c
            .args(["chat", "--config"])
            .arg(&config)
            .args(["--user", "alice"])
            .args(yes.then_some("--yes"))
            .args(["-c", text])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let say = |text: &str| ask(text, true);
    let current = |i: usize| {
        hosts
            .host(i)
            .run_ok("readlink /srv/shop/current")
            .trim()
            .to_string()
    };

    assert!(say("构建:shop").0);
    let (ok, out) = say("发布:shop");
    assert!(ok, "{out}");
    let first = order_number(&out);
    assert_eq!(current(0), format!("releases/{first}"));

    // The prompt shows the plan; what cannot be done is refused before it.
    let (_, out) = ask("扩容:shop,2", false);
    assert!(
        out.contains(&format!(
            "即将执行: 扩容 shop: 从模板 #4 克隆 2 台 shop-1({})、shop-2({})",
            a[1], a[2]
        )),
        "{out}"
    );
    assert!(out.contains(&format!("发布当前版本 #{first}")), "{out}");
    let (ok, out) = ask("扩容:shop,3", false);
    assert!(!ok && out.contains("只剩 2 个空闲地址"), "{out}");
    let (_, out) = ask("发布:shop", false);
    assert!(
        out.contains("即将执行: 发布 shop 构建 #1(") && out.contains("1 台主机"),
        "{out}"
    );

    // Out by two: cloned, joined, upstream rendered with all three, current release.
    let (ok, out) = say("扩容:shop,2");
    assert!(ok, "{out}");
    assert!(out.contains("成功 2 台"), "{out}");
    for i in 1..3 {
        assert_eq!(current(i), format!("releases/{first}"), "host {i}");
    }
    let conf = std::fs::read_to_string(&upstream).unwrap();
    for addr in &a {
        assert!(conf.contains(&format!("server {addr}:8000;")), "{conf}");
    }
    let (_, out) = say("查:shop-1");
    assert!(
        out.contains(&a[1]),
        "the clone carries its pool address: {out}"
    );
    let (_, out) = say("项目");
    assert!(out.contains("3 台已部署"), "{out}");
    // The numeric menu reaches the same commands (8 发布管理 → 0 项目列表).
    let (_, menu) = say("8-0");
    assert!(menu.contains("3 台已部署"), "{menu}");

    // In by one: the newest leaves the upstream and the project, its VM is off.
    let (ok, out) = say("缩容:shop,1");
    assert!(ok, "{out}");
    assert!(out.contains("删除:shop-2"), "{out}");
    let conf = std::fs::read_to_string(&upstream).unwrap();
    assert!(!conf.contains(&a[2]) && conf.contains(&a[1]), "{conf}");
    let (_, out) = say("查:shop-2");
    assert!(out.contains("关机"), "{out}");
    let log = std::fs::read_to_string(&events).unwrap();
    assert_eq!(log, format!("out {} {}\nin {}\n", a[1], a[2], a[2]));
    // The second confirmation deletes the VM: its prompt, then gone from the pool.
    let (_, out) = ask("删除:shop-2", false);
    assert!(
        out.contains("即将执行: 删除虚拟机 shop-2") && out.contains("不可恢复"),
        "{out}"
    );
    let (ok, out) = say("删除:shop-2");
    assert!(ok && out.contains("shop-2 已删除"), "{out}");
    let (_, out) = say("查:shop-2");
    assert!(!out.contains(&a[2]), "{out}");
    // Only hosts 扩容 added can leave: one is left.
    let (ok, out) = say("缩容:shop,2");
    assert!(!ok && out.contains("只有 1 台"), "{out}");
}

/// Approval requests and their answers reach people in WeCom: the order is asked for in
/// the console, `opsbot serve` delivers the outbox to the stand-in WeCom over real HTTP.
/// The project's notification members hear of the request and the rejection; each member
/// of the approver role is asked privately, never the asker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_requests_and_rejections_reach_wecom() {
    if program("git", fix::GIT).is_none() {
        return;
    }
    let fake = opsbot_fakes::FakeWecom::start().await.unwrap();
    fake.add_app("ww1436e0e65a779aee", "secret", 1000002);
    fake.add_users(&["alice", "bob", "carol"]);
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, "v1", true);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("opsbot.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "sqlite://{db}"
[[wecom.apps]]
name = "ops"
corp_id = "ww1436e0e65a779aee"
agent_id = 1000002
secret = "secret"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
api_base = "{api}"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "dev"
commands = ["构建", "发布", "发布单"]
scopes = ["deploy/*"]
[[roles]]
name = "lead"
commands = ["批准", "驳回", "发布单"]
scopes = ["deploy/*"]
[[users]]
id = "alice"
roles = ["dev", "lead"]
[[users]]
id = "bob"
roles = ["lead"]
[[users]]
id = "carol"
roles = ["dev"]
[deploy]
data_dir = "{data}"
[[deploy.projects]]
name = "shop"
repo = {{ kind = "git", url = "file://{repo}" }}
hosts = ["192.0.2.10"]
deploy_root = "/srv/shop"
[deploy.projects.approval]
required = true
approvers = ["lead"]
[deploy.projects.notify]
app = "ops"
users = ["carol"]
"#,
            db = dir.path().join("opsbot.db").display(),
            api = fake.base_url(),
            data = dir.path().join("deploy").display(),
            repo = repo.display(),
        ),
    )
    .unwrap();
    let say = |user: &str, text: &str| -> (bool, String) {
        let mut c = Command::new(BIN);
        c.current_dir(dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        let out = c
            .args(["chat", "--config"])
            .arg(&config)
            .args(["--user", user, "--yes", "-c", text])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert!(say("alice", "构建:shop").0);
    let (ok, out) = say("alice", "发布:shop");
    assert!(ok && out.contains("等待审批"), "{out}");
    let order = order_number(&out);
    let (ok, out) = say("bob", &format!("驳回:{order},不在发布窗口"));
    assert!(ok && out.contains("已被 bob 驳回"), "{out}");
    // A card's 驳回 button gives no reason.
    let (ok, out) = say("alice", "发布:shop");
    assert!(ok, "{out}");
    let second = order_number(&out);
    let (ok, out) = say("bob", &format!("驳回:{second}"));
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("发布单 #{second} 已被 bob 驳回")) && !out.contains("驳回:"),
        "{out}"
    );

    let mut serve = Command::new(BIN);
    serve.current_dir(dir.path()).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OPSBOT_") {
            serve.env_remove(k);
        }
    }
    let mut child = serve
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let texts = |user: &str| -> Vec<String> {
        fake.sent_to("message/send")
            .into_iter()
            .filter(|m| {
                m.body["touser"]
                    .as_str()
                    .is_some_and(|t| t.split('|').any(|u| u.eq_ignore_ascii_case(user)))
            })
            .map(|m| words(&m))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while texts("carol").len() < 2 || texts("bob").is_empty() {
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}",
            fake.sent()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let carol = texts("carol").join("\n");
    assert!(
        carol.contains(&format!("⏳ 等待审批:审批人发送「批准:{order}」")),
        "{carol}"
    );
    assert!(carol.contains("已被 bob 驳回: 不在发布窗口"), "{carol}");
    let bob = texts("bob").join("\n");
    assert!(bob.contains("等待审批"), "the approver is asked: {bob}");
    assert!(
        texts("alice").is_empty(),
        "the asker is not asked to approve her own order"
    );
    let (_, out) = say("carol", &format!("发布单:{order}"));
    assert!(
        out.contains("已驳回") && out.contains("不在发布窗口"),
        "{out}"
    );

    // The request to the approver is a card: 批准 / 驳回 in one slot, signed with the
    // cards key of the secret key, working until the order expires.
    let store = opsbot_store::connect(&format!(
        "sqlite://{}",
        dir.path().join("opsbot.db").display()
    ))
    .await
    .unwrap();
    let items = store
        .outbox_list(&opsbot_store::OutboxQuery {
            state: None,
            channel_prefix: Some("wecom:".into()),
            limit: 0,
        })
        .await
        .unwrap();
    let asked = items
        .iter()
        .find(|i| i.target.contains("\"bob\"") && i.body.contains(&format!("批准:{order}\"")))
        .unwrap_or_else(|| panic!("{items:#?}"));
    let body: opsbot_core::notice::Body = serde_json::from_str(&asked.body).unwrap();
    let opsbot_core::notice::Body::Card { card } = body else {
        panic!("not a card: {body:?}")
    };
    let buttons: Vec<(&str, &str, String)> = card
        .buttons
        .iter()
        .map(|b| {
            (
                b.text.as_str(),
                b.slot.as_str(),
                b.action.command().into_owned(),
            )
        })
        .collect();
    let (approve, reject) = (format!("批准:{order}"), format!("驳回:{order}"));
    assert_eq!(
        buttons,
        [("批准", "decide", approve), ("驳回", "decide", reject)]
    );
    let source = opsbot_auth::KeySource::from_env_or(dir.path().join("data/opsbot.key"));
    let key = opsbot_auth::secret::load(&source, store.as_ref())
        .await
        .unwrap();
    let keys = opsbot_core::card::CardKeys::new(key.derive(opsbot_auth::Purpose::Cards));
    let now = chrono::Utc::now().timestamp();
    for b in &card.buttons {
        assert_eq!(keys.verify(&card.task_id, b, now), Ok(()), "{b:?}");
    }
    assert!(
        card.expires_at > now + 3600,
        "the approval's expiry: {}",
        card.expires_at
    );
    // The people notified get it as a card too; their text names the commands.
    let told = items
        .iter()
        .find(|i| i.target.contains("\"carol\"") && i.body.contains("等待审批"))
        .unwrap();
    assert!(told.body.contains("\"type\":\"card\""), "{}", told.body);
}

/// Pausing: a strategy that waits between batches stops after the canary until 继续;
/// `暂停` sent while a host is in flight lets it finish and stops before the next one; a
/// paused order resumed goes on from the hosts not done; `终止` ends an order that waits.
#[test]
fn pause_between_batches_and_on_request() {
    let Some(w) = World::with("manual", false) else {
        return;
    };
    assert!(w.say("alice", "构建:shop").0);

    // The canary, then a pause the strategy asks for.
    let (ok, out) = w.say("alice", "发布:shop");
    assert!(ok && out.contains("已暂停"), "{out}");
    let first = order_number(&out);
    assert_eq!(w.current(0), format!("releases/{first}"));
    assert!(
        w.hosts
            .host(1)
            .run("test -e /srv/shop/current")
            .status
            .code()
            != Some(0)
    );
    let (ok, out) = w.say("alice", &format!("继续:{first}"));
    assert!(ok && out.contains("成功 3 台"), "{out}");

    // 暂停 while the canary's hook runs: it finishes, the rest waits.
    w.hosts.host(0).run_ok("touch /srv/slow");
    let mut child = w
        .command("alice", "发布:shop")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        let (_, out) = w.say("alice", "发布单");
        if let Some(line) = out.lines().find(|l| l.contains("发布中")) {
            break order_number(&format!(
                "发布单 {}",
                line.split_whitespace().next().unwrap()
            ));
        }
        assert!(Instant::now() < deadline, "never started: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (ok, out) = w.say("alice", &format!("暂停:{second}"));
    assert!(ok && out.contains("将在进行中的主机完成后暂停"), "{out}");
    w.hosts.host(0).run_ok("rm -f /srv/slow");
    let status = child.wait().unwrap();
    let mut printed = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut printed).unwrap();
    assert!(status.success() && printed.contains("已暂停"), "{printed}");
    let (_, out) = w.say("alice", &format!("发布单:{second}"));
    assert!(out.contains("暂停"), "{out}");
    assert_eq!(w.current(0), format!("releases/{second}"));
    assert_eq!(
        w.current(1),
        format!("releases/{first}"),
        "no host after the pause"
    );
    let (ok, out) = w.say("alice", &format!("继续:{second}"));
    assert!(ok && out.contains("成功 3 台"), "{out}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{second}"));
    }

    // 终止 ends an order that waits between batches; its other hosts are not touched.
    let (_, out) = w.say("alice", "发布:shop");
    let third = order_number(&out);
    let (ok, out) = w.say("alice", &format!("终止:{third}"));
    assert!(ok && out.contains("已终止"), "{out}");
    let (_, out) = w.say("alice", &format!("发布单:{third}"));
    assert!(out.contains("已终止") && out.contains("未执行"), "{out}");
    assert_eq!(w.current(1), format!("releases/{second}"));
    let (ok, out) = w.say("alice", &format!("继续:{third}"));
    assert!(!ok && out.contains("不能继续"), "{out}");
}

/// A process that is killed when the test ends, however it ends.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const CORP: &str = "ww1436e0e65a779aee";

/// A WeCom app at `api` and an alert gateway taking Alertmanager's webhook, for
/// [`World::configured`]'s `top`.
fn wecom_and_alerts(api: &str) -> String {
    format!(
        r#"
[[wecom.apps]]
name = "ops"
corp_id = "{CORP}"
agent_id = 1000002
secret = "secret"
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
api_base = "{api}"
[alerts]
group_wait = "1s"
group_interval = "2s"
[alerts.sources.alertmanager]
token = "am-secret-token"
[alerts.default]
app = "ops"
users = ["carol"]
"#
    )
}

/// The project's notification targets and its canary watch, for `extra`.
const CANARY: &str = r#"
[deploy.projects.notify]
app = "ops"
users = ["carol"]
[deploy.projects.canary]
watch = "2s"
alerts = "service={{project}}&severity=critical"
rollback = true
"#;

impl World {
    /// Sets the canary's `watch` and `rollback` (each chat command reads the file anew).
    fn canary(&self, watch: &str, rollback: bool) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("watch = ") {
                    format!("watch = \"{watch}\"")
                } else if l.starts_with("rollback = ") {
                    format!("rollback = {rollback}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&self.config, text.join("\n")).unwrap();
    }

    /// `opsbot serve` on the world's configuration, once /healthz answers.
    async fn serve(&self) -> (Proc, u16) {
        let port = free_port();
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        let child = c
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let child = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{port}/healthz");
        while reqwest::get(&url).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "serve never answered: {}",
                std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (child, port)
    }

    /// The store the commands write, opened from here.
    async fn store(&self) -> std::sync::Arc<dyn opsbot_store::Store> {
        opsbot_store::connect(&format!(
            "sqlite://{}",
            self.dir.path().join("opsbot.db").display()
        ))
        .await
        .unwrap()
    }

    /// Waits for a spawned command to end (within `secs`); whether it succeeded, and
    /// what it printed.
    fn finished(&self, mut child: std::process::Child, secs: u64) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the command did not end within {secs}s");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut out = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
        (status.success(), out)
    }

    /// The order `发布单` lists as running, once there is one.
    fn running_order(&self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, out) = self.say("alice", "发布单");
            if let Some(line) = out.lines().find(|l| l.contains("发布中")) {
                return order_number(&format!(
                    "发布单 {}",
                    line.split_whitespace().next().unwrap()
                ));
            }
            assert!(Instant::now() < deadline, "never started: {out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A real Prometheus Alertmanager that posts to opsbot on `port`; returns once ready.
async fn alertmanager(bin: &Path, dir: &Path, port: u16) -> (Proc, u16) {
    let am_port = free_port();
    let am_dir = dir.join("am");
    std::fs::create_dir_all(am_dir.join("data")).unwrap();
    std::fs::write(
        am_dir.join("am.yml"),
        format!(
            r#"
route:
  receiver: opsbot
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: opsbot
    webhook_configs:
      - url: 'http://127.0.0.1:{port}/alerts/alertmanager'
        send_resolved: true
        http_config:
          authorization:
            credentials: am-secret-token
"#
        ),
    )
    .unwrap();
    let am = Proc(
        Command::new(bin)
            .arg(format!("--config.file={}", am_dir.join("am.yml").display()))
            .arg(format!("--storage.path={}", am_dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(am_dir.join("am.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = format!("http://127.0.0.1:{am_port}/-/ready");
    while !reqwest::get(&ready)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "Alertmanager never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (am, am_port)
}

/// Fires a critical alert about the shop service in Alertmanager, starting now.
async fn fire(am_port: u16, name: &str) {
    let alerts = serde_json::json!([{
        "labels": {"alertname": name, "service": "shop", "severity": "critical"},
        "annotations": {"summary": format!("{name} on the shop")},
        "startsAt": chrono::Utc::now().to_rfc3339(),
    }]);
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{am_port}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

/// The words of a WeCom message: a text's content, or what a template card shows
/// (titles, rows, buttons).
fn words(m: &opsbot_fakes::RecordedMessage) -> String {
    let b = &m.body;
    match b["msgtype"].as_str() {
        Some("template_card") => {
            let c = &b["template_card"];
            let mut parts = vec![
                c["main_title"]["title"].as_str().unwrap_or("").to_string(),
                c["main_title"]["desc"].as_str().unwrap_or("").to_string(),
                c["sub_title_text"].as_str().unwrap_or("").to_string(),
            ];
            for row in c["horizontal_content_list"]
                .as_array()
                .into_iter()
                .flatten()
            {
                parts.push(format!(
                    "{}: {}",
                    row["keyname"].as_str().unwrap_or(""),
                    row["value"].as_str().unwrap_or("")
                ));
            }
            for button in c["button_list"].as_array().into_iter().flatten() {
                parts.push(button["text"].as_str().unwrap_or("").to_string());
            }
            parts.join("\n")
        }
        Some(kind) => b[kind]["content"].as_str().unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// Waits for a message to `user` whose words hold every one of `want`.
async fn told(fake: &opsbot_fakes::FakeWecom, user: &str, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let to_user: Vec<String> = fake
            .sent_to("message/send")
            .iter()
            .filter(|m| {
                m.body["touser"]
                    .as_str()
                    .is_some_and(|t| t.split('|').any(|u| u.eq_ignore_ascii_case(user)))
            })
            .map(words)
            .collect();
        if let Some(w) = to_user.iter().find(|w| want.iter().all(|x| w.contains(x))) {
            return w.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{user} was never told {want:?}; got {to_user:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seed 003's canary with the alert gateway: three hosts released in batches [1, rest]
/// with `[projects.canary]`. A quiet window lets the release go on; a critical alert
/// about the service, posted to a real Prometheus Alertmanager during the watch and
/// delivered by it to `opsbot serve`, rolls the canary back to the old build (the
/// other two hosts never get the new one; the order reads 已回滚; the audit log names
/// the service identity; the project's people are told which alert did it). With
/// `rollback = false` the same kind of alert pauses the order instead; an alert that was
/// already firing before the canary does not count; 继续 releases the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_rolled_back_by_a_real_alertmanager_alert() {
    let Some(am_bin) = opsbot_testkit::alertmanager() else {
        return;
    };
    let fake = opsbot_fakes::FakeWecom::start().await.unwrap();
    fake.add_app(CORP, "secret", 1000002);
    fake.add_users(&["alice", "carol"]);
    let Some(w) = World::configured("0s", false, &wecom_and_alerts(&fake.base_url()), CANARY)
    else {
        return;
    };
    let (_serve, port) = w.serve().await;
    let (_am, am_port) = alertmanager(&am_bin, w.dir.path(), port).await;

    // A quiet window: the release goes on to every host.
    assert!(w.say("alice", "构建:shop").0);
    let (ok, out) = w.say("alice", "发布:shop");
    assert!(ok && out.contains("成功 3 台"), "{out}");
    let first = order_number(&out);
    told(
        &fake,
        "carol",
        &[&format!("发布单 #{first} 金丝雀观察 2s 内没有匹配")],
    )
    .await;

    // The canary of a new build, then a critical alert about the service.
    commit(&w.repo, "v2", true);
    let (ok, out) = w.say("alice", "构建:shop");
    assert!(ok && out.contains("构建 #2 成功"), "{out}");
    w.canary("300s", true);
    let child = w
        .command("alice", "发布:shop,2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let second = w.running_order();
    told(
        &fake,
        "carol",
        &[
            &format!("发布单 #{second} 批次 1/2 完成"),
            "金丝雀观察 300s",
        ],
    )
    .await;
    assert_eq!(w.current(0), format!("releases/{second}"));
    fire(am_port, "ShopErrors").await;
    let (ok, out) = w.finished(child, 120);
    assert!(!ok, "a rolled-back release is not a success: {out}");
    let (_, listed) = w.say("alice", "告警");
    let alert: String = listed
        .split('#')
        .nth(1)
        .unwrap_or_else(|| panic!("no alert in {listed}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(
        out.contains("已自动回滚")
            && out.contains("ShopErrors")
            && out.contains(&format!("#{alert})")),
        "{out}"
    );
    // The canary is back on the old build; the others never saw the new one.
    assert_eq!(w.current(0), format!("releases/{first}"));
    assert_eq!(w.page(0), "v1");
    for i in 1..3 {
        assert_eq!(w.current(i), format!("releases/{first}"), "host {i}");
        assert_ne!(
            w.hosts
                .host(i)
                .run(&format!("test -e /srv/shop/releases/{second}"))
                .status
                .code(),
            Some(0),
            "host {i} was never touched"
        );
    }
    let (_, detail) = w.say("alice", &format!("发布单:{second}"));
    assert!(
        detail.contains("已回滚") && detail.contains("ShopErrors") && detail.contains("未执行"),
        "{detail}"
    );
    told(
        &fake,
        "carol",
        &[
            &format!("发布单 #{second}"),
            "已自动回滚",
            "ShopErrors",
            &format!("#{alert})"),
        ],
    )
    .await;
    // Audited as the service identity, not as the person who asked for the release.
    let store = w.store().await;
    let audit = store
        .audit_log(&opsbot_store::AuditQuery {
            user: Some("opsbot".into()),
            limit: 10,
            ..opsbot_store::AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].command.as_deref(), Some("回滚"));
    assert_eq!(audit[0].result, opsbot_core::AuditResult::Ok);
    assert!(
        audit[0].text.contains(&format!("发布单 #{second}")),
        "{:?}",
        audit[0]
    );

    // rollback = false: a new alert pauses the order; ShopErrors, firing since before
    // this canary, does not count.
    w.canary("300s", false);
    let child = w
        .command("alice", "发布:shop,2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let third = w.running_order();
    told(
        &fake,
        "carol",
        &[&format!("发布单 #{third} 批次 1/2 完成"), "暂停发布"],
    )
    .await;
    fire(am_port, "ShopLatency").await;
    let (ok, out) = w.finished(child, 120);
    assert!(
        ok && out.contains("已暂停") && out.contains("ShopLatency"),
        "{out}"
    );
    assert!(!out.contains("ShopErrors"), "{out}");
    assert_eq!(w.current(0), format!("releases/{third}"));
    for i in 1..3 {
        assert_eq!(w.current(i), format!("releases/{first}"), "host {i}");
    }
    let (_, detail) = w.say("alice", &format!("发布单:{third}"));
    assert!(
        detail.contains("暂停") && detail.contains("ShopLatency"),
        "{detail}"
    );
    told(
        &fake,
        "carol",
        &[&format!("发布单 #{third}"), "ShopLatency", "继续"],
    )
    .await;
    // A person decides: 继续 releases the rest, without watching again.
    let (ok, out) = w.say("alice", &format!("继续:{third}"));
    assert!(ok && out.contains("成功 3 台"), "{out}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{third}"));
        assert_eq!(w.page(i), "v2");
    }
}

/// The watch survives the process running the order: killed during the watch, the
/// order is marked 已中断 like any other; 继续 resumes the watch (for what is left of it)
/// before the next batch rather than skipping it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_watch_resumes_after_a_restart() {
    let extra = CANARY.replace("watch = \"2s\"", "watch = \"8s\"");
    let Some(w) = World::configured("0s", false, "", &extra.replace("app = \"ops\"\n", "")) else {
        return;
    };
    assert!(w.say("alice", "构建:shop").0);
    let child = w
        .command("alice", "发布:shop")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Proc(child);
    let order = w.running_order();
    let store = w.store().await;
    let log = || async {
        store
            .log_read(opsbot_store::deploy::LogOf::Order(order, Some("")), 0, 500)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.text)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log().await.contains("金丝雀观察 8s") {
        assert!(
            Instant::now() < deadline,
            "the watch never began: {}",
            log().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(child); // SIGKILL during the watch
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out) = w.say("alice", &format!("发布单:{order}"));
        if out.contains("已中断") {
            break;
        }
        assert!(Instant::now() < deadline, "never marked interrupted: {out}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(w.current(0), format!("releases/{order}"));
    let (ok, out) = w.say("alice", &format!("继续:{order}"));
    assert!(ok && out.contains("成功 3 台"), "{out}");
    let text = log().await;
    let resumed = text
        .find("恢复金丝雀观察")
        .unwrap_or_else(|| panic!("{text}"));
    let quiet = text.find("没有匹配").unwrap_or_else(|| panic!("{text}"));
    assert!(resumed < quiet, "the watch ended after it resumed: {text}");
    for i in 0..3 {
        assert_eq!(w.current(i), format!("releases/{order}"));
    }
}
