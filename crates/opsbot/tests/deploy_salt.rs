//! A Salt project end to end through the real binary (`opsbot chat -c`): `[deploy.salt]`
//! read from the configuration file, the project's hosts found by its salt target on a
//! real salt-master with two minions, a build from a git repository, releases that reach
//! the minions through salt-api (the same `releases/<id>` + `current` layout, hooks and
//! health check as over SSH), the host's log, and a rollback by re-link.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_testkit::salt::SaltLab;
use opsbot_testkit::{fix, program};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_opsbot");
const MINIONS: [&str; 2] = ["m1", "m2"];

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

fn commit(repo: &Path, index: &str) {
    std::fs::write(repo.join("index.html"), format!("{index}\n")).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", index]);
}

struct World {
    dir: tempfile::TempDir,
    config: PathBuf,
    repo: PathBuf,
}

impl World {
    fn new(lab: &SaltLab) -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        commit(&repo, "v1");
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
[[roles]]
name = "dev"
commands = ["项目", "构建", "发布", "发布单", "日志", "回滚"]
scopes = ["deploy/app"]
[[users]]
id = "alice"
roles = ["dev"]
[deploy]
data_dir = "{data}"
connect_timeout = "5s"
[deploy.salt]
file_root = "{file_root}"
[deploy.salt.api]
url = "{url}"
eauth = "file"
username = "{user}"
password = "{password}"
[[deploy.projects]]
name = "app"
transport = "salt"
salt_target = {{ glob = "m*" }}
repo = {{ kind = "git", url = "file://{repo}", branch = "main" }}
build = ["test -f index.html"]
deploy_root = "{roots}/{{host}}/app"
[deploy.projects.hooks]
after_host = ["echo \"$OPSBOT_HOST\" > served-by"]
[deploy.projects.health]
command = "grep -q v index.html"
"#,
                db = dir.path().join("opsbot.db").display(),
                data = dir.path().join("deploy").display(),
                url = lab.api_url(),
                user = lab.user(),
                password = lab.password(),
                file_root = lab.file_root().display(),
                repo = repo.display(),
                roots = dir.path().join("hosts").display(),
            ),
        )
        .unwrap();
        World { dir, config, repo }
    }

    fn say(&self, text: &str) -> (bool, String) {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("OPSBOT_") {
                c.env_remove(k);
            }
        }
        let out = c
            .args(["chat", "--config"])
            .arg(&self.config)
            .args(["--user", "alice", "--yes", "-c", text])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn root(&self, minion: &str) -> PathBuf {
        self.dir.path().join("hosts").join(minion).join("app")
    }

    fn current(&self, minion: &str) -> String {
        std::fs::read_link(self.root(minion).join("current"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn page(&self, minion: &str) -> String {
        std::fs::read_to_string(self.root(minion).join("current/index.html"))
            .unwrap_or_default()
            .trim()
            .to_string()
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
fn build_release_and_roll_back_through_salt() {
    if program("git", fix::GIT).is_none() {
        return;
    }
    let Some(lab) = SaltLab::start("deploy_salt_bin", &MINIONS) else {
        return;
    };
    let w = World::new(&lab);
    let (ok, out) = w.say("项目");
    assert!(ok && out.contains("经 Salt 发布"), "{out}");

    let (ok, out) = w.say("构建:app");
    assert!(ok && out.contains("构建 #1 成功"), "{out}");
    let (ok, out) = w.say("发布:app");
    assert!(ok, "{out}");
    assert!(out.contains("成功 2 台"), "{out}");
    let first = order_number(&out);
    for m in MINIONS {
        assert_eq!(w.current(m), format!("releases/{first}"), "{m}");
        assert_eq!(w.page(m), "v1");
        let hook = w.root(m).join(format!("releases/{first}/served-by"));
        assert_eq!(std::fs::read_to_string(hook).unwrap().trim(), m);
    }
    let (_, out) = w.say(&format!("日志:{first},m1"));
    assert!(
        out.contains("cp.get_file") && out.contains(&format!("current → releases/{first}")),
        "{out}"
    );

    commit(&w.repo, "v2");
    assert!(w.say("构建:app").0);
    let (ok, out) = w.say("发布:app,2");
    assert!(ok && out.contains("成功 2 台"), "{out}");
    for m in MINIONS {
        assert_eq!(w.page(m), "v2", "{m}");
    }

    let (ok, out) = w.say("回滚:app");
    assert!(ok, "{out}");
    assert!(out.contains(&format!("回滚到 #{first}")), "{out}");
    for m in MINIONS {
        assert_eq!(w.current(m), format!("releases/{first}"), "{m}");
        assert_eq!(w.page(m), "v1");
    }
}
