//! The CMDB end to end with the real binary on both sides: `opsbot serve` on a free
//! port, `opsbot agent` reporting fixture trees to it over HTTP with agent tokens, the
//! asset seen from chat and the REST API; bad tokens, another host's identity, bad
//! bodies; the server down then up (the spool drains, nothing is lost); and a non-root
//! agent that cannot read the DMI serial.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "../../opsbot-cmdb/tests/sshd/mod.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../opsbot-cmdb/tests/fixtures")
        .join(name)
}

fn opsbot(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env("HOME", dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OPSBOT_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `cond` with a deadline.
fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Server {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn config(&self) -> PathBuf {
        self.dir.path().join("opsbot.toml")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A configuration with an administrator, a viewer without 资产, and a scoped user.
    fn new(port: u16) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("opsbot.toml"),
            format!(
                r#"
[server]
listen = "127.0.0.1:{port}"
[store]
url = "sqlite://{db}"
[[providers]]
name = "sim"
kind = "sim"
[[roles]]
name = "admin"
commands = ["*"]
[[roles]]
name = "viewer"
commands = ["概况"]
[[users]]
id = "admin"
roles = ["admin"]
[[roles]]
name = "web-team"
commands = ["资产", "changes"]
scopes = ["cmdb/web-*"]
[[users]]
id = "viewer"
roles = ["viewer"]
[[users]]
id = "web"
roles = ["web-team"]
[cmdb]
max_report_bytes = 65536
"#,
                db = dir.path().join("opsbot.db").display()
            ),
        )
        .unwrap();
        Server {
            dir,
            port,
            child: None,
        }
    }

    fn start(&mut self) {
        let child = opsbot(self.dir.path())
            .args(["serve", "--config"])
            .arg(self.config())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        wait_for("serve to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    fn token(&self, args: &[&str]) -> String {
        let o = opsbot(self.dir.path())
            .args(["token", "create", "--config"])
            .arg(self.config())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    fn chat(&self, user: &str, message: &str) -> Output {
        opsbot(self.dir.path())
            .args(["chat", "--config"])
            .arg(self.config())
            .args(["--user", user, "-c", message])
            .output()
            .unwrap()
    }

    fn agent(&self, token: &str, state: &Path, root: &Path, extra: &[&str]) -> Output {
        opsbot(self.dir.path())
            .args(["agent", "--once", "--server", &self.url(), "--state-dir"])
            .arg(state)
            .arg("--root")
            .arg(root)
            .args(extra)
            .env("OPSBOT_AGENT_TOKEN", token)
            .output()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn spooled(state: &Path) -> usize {
    std::fs::read_dir(state.join("spool"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

fn rejected_reason(state: &Path) -> String {
    std::fs::read_dir(state.join("spool/rejected"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "reason"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn agent_reports_and_the_asset_shows_in_chat_and_api_with_its_changes() {
    let mut srv = Server::new(free_port());
    srv.start();
    let token = srv.token(&["--agent"]);
    let state = srv.dir.path().join("agent-state");
    let plugins = srv.dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let plugin = plugins.join("raid.sh");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"level\": 5, \"controller\": \"PERC H740P\"}'\n",
    )
    .unwrap();
    let garbage = plugins.join("broken.sh");
    std::fs::write(&garbage, "#!/bin/sh\necho oops\n").unwrap();
    for p in [&plugin, &garbage] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let plugins_arg = plugins.display().to_string();
    let o = srv.agent(
        &token,
        &state,
        &fixture("server"),
        &["--plugins", &plugins_arg],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sent: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sent["identity"], "db-01");
    assert_eq!(sent["plugins"]["raid"]["controller"], "PERC H740P");
    assert_eq!(sent["problems"][0]["collector"], "plugin:broken");
    assert_eq!(spooled(&state), 0, "sent and removed from the spool");

    let o = srv.chat("admin", "资产:db-01");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let card = text(&o);
    for want in [
        "【资产 db-01】在线",
        "Dell Inc. PowerEdge R740",
        "SN 8XYZ123",
        "2 路 4 核 8 线程",
        "插件: raid(2 项)",
        "插件 broken 输出无效",
    ] {
        assert!(card.contains(want), "{want:?} missing from\n{card}");
    }
    let o = srv.chat("viewer", "资产:db-01");
    assert_eq!(o.status.code(), Some(3), "denied: {}", text(&o));
    // A role scoped to cmdb/web-* does not see db-01 at all.
    let o = srv.chat("web", "资产:db-01");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("没有找到资产「db-01」"), "{}", text(&o));
    let o = srv.chat("admin", "资产:db-0l");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("相近的有: db-01"), "{}", text(&o));

    // The host is renamed and gets more memory: the identity file keeps it one asset.
    let renamed = srv.dir.path().join("renamed");
    copy_tree(&fixture("server"), &renamed);
    std::fs::write(renamed.join("proc/sys/kernel/hostname"), "db-02\n").unwrap();
    let meminfo = std::fs::read_to_string(renamed.join("proc/meminfo")).unwrap();
    std::fs::write(
        renamed.join("proc/meminfo"),
        meminfo.replace("263846864", "527693728"),
    )
    .unwrap();
    let o = srv.agent(&token, &state, &renamed, &["--plugins", &plugins_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = srv.chat("admin", "变更:db-02");
    let changes = text(&o);
    assert_eq!(o.status.code(), Some(0), "{changes}");
    for want in ["改名 db-01 → db-02", "内存: 252 GiB → 503 GiB", "首次上报"] {
        assert!(changes.contains(want), "{want:?} missing from\n{changes}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let api = srv.token(&["--user", "admin"]);
        let viewer = srv.token(&["--user", "viewer"]);
        let get = |path: &str, token: Option<&str>| {
            let mut r = http.get(format!("{}{path}", srv.url()));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let r = get("/api/v1/assets/db-01", Some(&api)).await.unwrap();
        assert_eq!(r.status(), 200);
        let a: serde_json::Value = r.json().await.unwrap();
        assert_eq!(a["hostname"], "db-02");
        assert_eq!(
            a["facts"]["memory.total_bytes"],
            (527_693_728u64 * 1024).to_string()
        );
        assert_eq!(a["facts"]["plugin.raid.level"], "5");
        assert_eq!(a["report"]["disks"][0]["name"], "nvme0n1");
        let r = get("/api/v1/assets/db-02/changes", Some(&api))
            .await
            .unwrap();
        let c: serde_json::Value = r.json().await.unwrap();
        let fields: Vec<&str> = c["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"hostname") && fields.contains(&"memory.total_bytes"),
            "{fields:?}"
        );
        let list: serde_json::Value = get("/api/v1/assets", Some(&api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["assets"].as_array().unwrap().len(), 1);
        assert_eq!(get("/api/v1/assets", None).await.unwrap().status(), 401);
        assert_eq!(
            get("/api/v1/assets", Some(&token)).await.unwrap().status(),
            401,
            "an agent token is not an API token"
        );
        assert_eq!(
            get("/api/v1/assets", Some(&viewer)).await.unwrap().status(),
            403
        );
        assert_eq!(
            get("/api/v1/assets/nope", Some(&api))
                .await
                .unwrap()
                .status(),
            404
        );
    });
}

#[test]
fn bad_tokens_foreign_identities_and_bad_bodies_are_refused() {
    let mut srv = Server::new(free_port());
    srv.start();
    let root = fixture("server");

    // A token that is not one (well-formed, not signed by this server): 401, and the
    // report stays in the spool.
    let state = srv.dir.path().join("s1");
    let forged = format!("ob2.agent.0011223344556677.99999999999.{}", "A".repeat(43));
    let o = srv.agent(&forged, &state, &root, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("HTTP 401") && text(&o).contains("signature"),
        "{}",
        text(&o)
    );
    assert_eq!(spooled(&state), 1, "kept for when the token is fixed");

    // Revoked.
    let revoked = srv.token(&["--agent"]);
    let id = revoked.split('.').nth(2).unwrap().to_string();
    let o = opsbot(srv.dir.path())
        .args(["token", "revoke", "--config"])
        .arg(srv.config())
        .arg(&id)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = srv.agent(&revoked, &srv.dir.path().join("s2"), &root, &[]);
    assert!(text(&o).contains("revoked"), "{}", text(&o));

    // Expired: a one-second token, tried until its second has passed (another host,
    // as an early try may still get through and bind its host).
    let expired = srv.token(&["--agent", "--ttl", "1s"]);
    wait_for("the token to expire", Duration::from_secs(20), || {
        let o = srv.agent(
            &expired,
            &srv.dir.path().join("s3"),
            &fixture("minimal"),
            &[],
        );
        text(&o).contains("expired")
    });

    // A token pinned to another host.
    let pinned = srv.token(&["--agent", "--host", "web-07"]);
    let state = srv.dir.path().join("s4");
    let o = srv.agent(&pinned, &state, &root, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        rejected_reason(&state).contains("may only report as host web-07"),
        "{}",
        rejected_reason(&state)
    );
    assert_eq!(
        spooled(&state),
        0,
        "refused for good: set aside, not retried"
    );

    // An unpinned token binds its host; another unpinned token cannot take it over...
    let first = srv.token(&["--agent"]);
    let o = srv.agent(&first, &srv.dir.path().join("s5"), &root, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let state = srv.dir.path().join("s6");
    let o = srv.agent(&srv.token(&["--agent"]), &state, &root, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(rejected_reason(&state).contains("already reports with another agent token"));
    // ...but a token issued for exactly that host can (a reinstalled host).
    let o = srv.agent(
        &srv.token(&["--agent", "--host", "db-01"]),
        &srv.dir.path().join("s7"),
        &root,
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let token = srv.token(&["--agent"]);
        let post = |body: Vec<u8>, token: Option<&str>| {
            let mut r = http.post(format!("{}/api/v1/agent/report", srv.url())).body(body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let err = |r: reqwest::Response| async move {
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            (status, v["error"].as_str().unwrap_or("").to_string())
        };
        let (s, e) = err(post(b"{not json".to_vec(), Some(&token)).await.unwrap()).await;
        assert_eq!(s, 400);
        assert!(e.contains("not a report"), "{e}");
        let (s, e) = err(post(br#"{"schema":9,"identity":"a","hostname":"a","agent_version":"1","collected_at":"2026-01-01T00:00:00Z"}"#.to_vec(), Some(&token)).await.unwrap()).await;
        assert_eq!(s, 400);
        assert!(e.contains("schema 9"), "{e}");
        let (s, e) = err(post(vec![b' '; 100_000], Some(&token)).await.unwrap()).await;
        assert_eq!(s, 413);
        assert!(e.contains("max_report_bytes"), "{e}");
        let (s, e) = err(post(b"{}".to_vec(), None).await.unwrap()).await;
        assert_eq!(s, 401);
        assert!(e.contains("Bearer"), "{e}");
    });
    // Nothing above crashed the server.
    assert!(srv.child.as_mut().unwrap().try_wait().unwrap().is_none());
}

#[test]
fn server_down_then_up_the_spool_drains_and_nothing_is_lost() {
    let port = free_port();
    let mut srv = Server::new(port);
    // The token is made with the server stopped (it lives in the store).
    let token = srv.token(&["--agent"]);
    let state = srv.dir.path().join("agent-state");
    let mut agent = opsbot(srv.dir.path())
        .args([
            "agent",
            "--server",
            &srv.url(),
            "--interval",
            "1s",
            "--state-dir",
        ])
        .arg(&state)
        .arg("--root")
        .arg(fixture("vmware-vm"))
        .env("OPSBOT_AGENT_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "three reports to wait in the spool",
        Duration::from_secs(30),
        || spooled(&state) >= 3,
    );
    srv.start();
    wait_for("the spool to drain", Duration::from_secs(60), || {
        spooled(&state) == 0
    });
    let rejected = std::fs::read_dir(state.join("spool/rejected"))
        .unwrap()
        .count();
    assert_eq!(rejected, 0, "{}", rejected_reason(&state));
    let o = srv.chat("admin", "资产:web-01.dc0.local");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("VMware Virtual Platform"), "{}", text(&o));
    nix_term(&agent);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = agent.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nix_term(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// As a non-root user the DMI serial (mode 0400) is unreadable: reported, not fatal.
#[test]
fn a_non_root_agent_reports_what_it_cannot_read() {
    use opsbot_testkit::{fix, program, skip};
    if !nix_is_root() {
        skip::<()>("root privileges (to run the agent as nobody)", fix::ROOT);
        return;
    }
    if program("setpriv", fix::SETPRIV).is_none() {
        return;
    }
    let mut srv = Server::new(free_port());
    srv.start();
    let token = srv.token(&["--agent"]);
    let work = tempfile::Builder::new()
        .prefix("opsbot-nonroot")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = work.path().join("root");
    copy_tree(&fixture("server"), &root);
    chmod_tree(&root, 0o755, 0o644);
    std::fs::set_permissions(
        root.join("sys/class/dmi/id/product_serial"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    // The test binary's own directory is not readable by nobody: run a copy.
    let bin = work.path().join("opsbot");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = work.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["agent", "--once", "--server", &srv.url(), "--state-dir"])
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .env("OPSBOT_AGENT_TOKEN", &token)
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let sent: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        sent["problems"][0]["kind"], "denied",
        "{}",
        sent["problems"]
    );
    assert_eq!(
        sent["problems"][0]["path"],
        "/sys/class/dmi/id/product_serial"
    );
    assert_eq!(sent["board"]["sys_vendor"], "Dell Inc.");
    let card = text(&srv.chat("admin", "资产:db-01"));
    assert!(
        card.contains("无权读取 /sys/class/dmi/id/product_serial"),
        "{card}"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

fn chmod_tree(dir: &Path, dirs: u32, files: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dirs)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            chmod_tree(&e.path(), dirs, files);
        } else {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(files)).unwrap();
        }
    }
}

/// `opsbot collect` from [cmdb.ssh] against a real sshd (one good host, one refusing),
/// then `serve` collecting on its schedule.
#[test]
fn collect_over_ssh_now_and_on_schedule() {
    let Some(sshd) = sshd::Sshd::start() else {
        return;
    };
    let mut srv = Server::new(free_port());
    let base = std::fs::read_to_string(srv.config()).unwrap();
    let ssh_section = |schedule: &str, targets: &[(&str, u16)]| {
        let mut t = format!(
            "[cmdb.ssh]\nschedule = \"{schedule}\"\nuser = \"{}\"\nkey = \"{}\"\nknown_hosts = \"{}\"\ntimeout = \"5s\"\n",
            sshd.user,
            sshd.key.display(),
            sshd.known_hosts.display()
        );
        for (name, port) in targets {
            t.push_str(&format!(
                "[[cmdb.ssh.targets]]\nhost = \"127.0.0.1\"\nport = {port}\nname = \"{name}\"\n"
            ));
        }
        t
    };
    let closed = free_port();
    std::fs::write(
        srv.config(),
        format!(
            "{base}{}",
            ssh_section("0", &[("ssh-box", sshd.port), ("closed-box", closed)])
        ),
    )
    .unwrap();
    let collect = |args: &[&str]| {
        opsbot(srv.dir.path())
            .args(["collect", "--config"])
            .arg(srv.config())
            .args(args)
            .output()
            .unwrap()
    };
    let o = collect(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("ssh-box: 成功(新资产)"), "{out}");
    assert!(
        out.contains("closed-box: 失败: connection refused"),
        "{out}"
    );
    let o = collect(&["--host", "ssh-box"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("ssh-box: 成功(已更新),0 处变更"),
        "{}",
        text(&o)
    );
    let o = collect(&["--host", "nope"]);
    assert!(text(&o).contains("不在 [cmdb.ssh]"), "{}", text(&o));
    let card = text(&srv.chat("admin", "资产:ssh-box"));
    assert!(card.contains("【资产 ssh-box】在线 · SSH 采集"), "{card}");

    std::fs::write(
        srv.config(),
        format!("{base}{}", ssh_section("1h", &[("sched-box", sshd.port)])),
    )
    .unwrap();
    srv.start();
    wait_for("the scheduled collection", Duration::from_secs(60), || {
        srv.chat("admin", "资产:sched-box").status.code() == Some(0)
    });
}

/// The report the agent printed (`--once` shows what it sent), as a JSON value.
fn sent_report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// README: an unpinned token "is bound to the first host that reports with it;
/// another host using it is refused (403)". Over HTTP, with the real agent and with
/// hand-made reports; nothing is created for the other host.
#[test]
fn an_unpinned_token_speaks_only_for_the_first_host_that_reported_with_it() {
    let mut srv = Server::new(free_port());
    srv.start();
    let token = srv.token(&["--agent"]);
    let o = srv.agent(&token, &srv.dir.path().join("s1"), &fixture("server"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = sent_report(&o);
    assert_eq!(report["identity"], "db-01");

    // Another machine (the VMware fixture) with the same token: set aside, not stored.
    let state = srv.dir.path().join("s2");
    let o = srv.agent(&token, &state, &fixture("vmware-vm"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let reason = rejected_reason(&state);
    assert!(
        reason.contains("HTTP 403") && reason.contains("bound to host db-01"),
        "{reason}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let post = |body: serde_json::Value, token: &str| {
            http.post(format!("{}/api/v1/agent/report", srv.url()))
                .bearer_auth(token)
                .json(&body)
                .send()
        };
        // Hand-made: the same facts under other identities and hostnames.
        for (identity, hostname) in [("web-99", "web-99"), ("db-01-copy", "db-01"), ("x", "x")] {
            let mut other = report.clone();
            other["identity"] = identity.into();
            other["hostname"] = hostname.into();
            let r = post(other, &token).await.unwrap();
            assert_eq!(r.status(), 403, "{identity}");
            let e: serde_json::Value = r.json().await.unwrap();
            assert!(
                e["error"].as_str().unwrap().contains("bound to host db-01"),
                "{e}"
            );
        }
        // The first host keeps reporting.
        let r = post(report.clone(), &token).await.unwrap();
        assert_eq!(r.status(), 200);

        // Nothing was created for the others.
        let api = srv.token(&["--user", "admin"]);
        let list: serde_json::Value = http
            .get(format!("{}/api/v1/assets", srv.url()))
            .bearer_auth(&api)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = list["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["identity"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["db-01"]);

        // The pinned rules hold: a token issued for web-01.dc0.local reports as it, and
        // only as it; a pinned token takes its host over from an unpinned one.
        let pinned = srv.token(&["--agent", "--host", "web-01.dc0.local"]);
        let mut web = report.clone();
        web["identity"] = "web-01.dc0.local".into();
        web["hostname"] = "web-01.dc0.local".into();
        assert_eq!(post(web.clone(), &pinned).await.unwrap().status(), 200);
        assert_eq!(post(report.clone(), &pinned).await.unwrap().status(), 403);
        let db01 = srv.token(&["--agent", "--host", "db-01"]);
        assert_eq!(post(report.clone(), &db01).await.unwrap().status(), 200);
        // The unpinned token has lost db-01 and still may not report for another host.
        assert_eq!(post(report.clone(), &token).await.unwrap().status(), 403);
        assert_eq!(post(web, &token).await.unwrap().status(), 403);
    });
}

/// Sends the headers of a report and only the first `sent` bytes of a `declared`-byte
/// body, then waits (with a deadline) for the answer while holding back the rest.
fn answer_before_the_body(port: u16, auth: Option<&str>, declared: usize, sent: usize) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /api/v1/agent/report HTTP/1.1\r\nHost: localhost\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    .unwrap();
    s.write_all(&vec![b' '; sent]).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the head and the JSON body are in; the rest of the body stays unsent.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.ends_with(b"}") {
                    break;
                }
            }
            Err(e) => panic!(
                "no answer while {} of {declared} body bytes are held back: {e}; got {:?}",
                declared - sent,
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A report is refused on its headers (no, forged, wrong-kind token; a declared size
/// over the limit) while the client still holds back nearly all of its body.
#[test]
fn a_report_without_a_valid_token_is_refused_before_its_body_is_read() {
    let mut srv = Server::new(free_port());
    srv.start();
    let agent = srv.token(&["--agent"]);
    let api = srv.token(&["--user", "admin"]);
    let mut forged = agent.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let max = 65_536; // cmdb.max_report_bytes of this server
    for (auth, status) in [
        (None, "401"),
        (Some("ob2.agent.0011223344556677.99999999999.forged"), "401"),
        (Some(forged.as_str()), "401"),
        (Some(api.as_str()), "401"),
    ] {
        let answer = answer_before_the_body(srv.port, auth, max - 1, 1_000);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{auth:?}: {answer}"
        );
        // The unread body ends the connection, so no next request follows it.
        assert!(
            answer.to_lowercase().contains("\r\nconnection: close\r\n"),
            "{answer}"
        );
    }
    // A valid token, but more than the limit declared: refused unread too.
    let answer = answer_before_the_body(srv.port, Some(&agent), 100 * max, 1_000);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_report_bytes"), "{answer}");
    // The server is fine and a real report still goes through.
    let o = srv.agent(&agent, &srv.dir.path().join("s"), &fixture("server"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
