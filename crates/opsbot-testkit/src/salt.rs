//! A real Salt estate for tests: one salt-master, its salt-api (`rest_cherrypy`, plain
//! http on loopback, eauth `file`) and a few salt-minions, each its own process with its
//! own `root_dir` under one temporary directory, all on 127.0.0.1.
//!
//! Salt comes from PyPI (`salt==3007.8` in a virtualenv, see [`crate::fix::SALT`]);
//! [`SaltLab::start`] finds `salt-master`, `salt-api`, `salt-minion` and `salt` in
//! `$OPSBOT_SALT_BIN`, else `$HOME/.cache/opsbot-salt/venv/bin`, else on `PATH`, and skips
//! visibly when they are missing. Every process is started in a process group of its own
//! (salt forks workers); dropping the lab (also while unwinding from a failed assertion)
//! sends SIGTERM to each group it started, waits for it with a deadline, then SIGKILLs what
//! is left, and deletes the directory. Nothing is killed by name.

use crate::{fix, skip};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const USER: &str = "opsbot";
const PASSWORD: &str = "salt-lab-secret";
/// Minions answer test.ping 7–10 s after start on an idle machine; a loaded CI machine
/// with other tests running needs more.
const READY_DEADLINE: Duration = Duration::from_secs(180);
/// A minion takes about 5 s to act on SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

static STARTS: AtomicU32 = AtomicU32::new(0);

/// A salt-master, salt-api and minions; see the module doc.
pub struct SaltLab {
    root: PathBuf,
    bin: PathBuf,
    api_port: u16,
    master: Mutex<Option<Child>>,
    api: Mutex<Option<Child>>,
    minions: Mutex<Vec<(String, Option<Child>)>>,
}

/// The directory holding salt's programs, if they are installed.
pub fn salt_bin() -> Option<PathBuf> {
    let has = |dir: &Path| {
        ["salt-master", "salt-api", "salt-minion", "salt"]
            .iter()
            .all(|p| crate::find_program(&dir.join(p).to_string_lossy()).is_some())
    };
    if let Ok(dir) = std::env::var("OPSBOT_SALT_BIN") {
        return has(Path::new(&dir)).then(|| PathBuf::from(dir));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = PathBuf::from(format!("{home}/.cache/opsbot-salt/venv/bin"));
    if has(&venv) {
        return Some(venv);
    }
    crate::find_program("salt-master").and_then(|p| {
        let dir = p.parent()?.to_path_buf();
        has(&dir).then_some(dir)
    })
}

impl SaltLab {
    /// Starts a master, salt-api and `minions` (ids), and waits until every minion answers
    /// `test.ping`. `None` after a visible skip when salt is not installed; panics when
    /// something present fails to start (a broken machine, not a skip).
    #[track_caller]
    pub fn start(test: &str, minions: &[&str]) -> Option<SaltLab> {
        let Some(bin) = salt_bin() else {
            return skip(
                "no salt-master/salt-api/salt-minion (set OPSBOT_SALT_BIN to their directory)",
                fix::SALT,
            );
        };
        let seq = STARTS.fetch_add(1, Ordering::Relaxed);
        // Short: salt's IPC sockets live below it and a socket path has ~100 bytes.
        let root = std::env::temp_dir().join(format!("osl-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("master/srv/salt")).expect("salt lab dir");
        let (publish_port, ret_port, api_port) = (free_port(), free_port(), free_port());
        let user = current_user();
        std::fs::write(root.join("eauth.txt"), format!("{USER}:{PASSWORD}\n")).expect("eauth");
        let m = root.join("master");
        std::fs::write(
            m.join("master"),
            format!(
                "# salt lab of test {test}\n\
                 root_dir: '{m}'\n\
                 user: {user}\n\
                 interface: 127.0.0.1\n\
                 publish_port: {publish_port}\n\
                 ret_port: {ret_port}\n\
                 auto_accept: True\n\
                 worker_threads: 3\n\
                 gather_job_timeout: 5\n\
                 log_file: '{m}/master.log'\n\
                 log_level_logfile: info\n\
                 api_logfile: '{m}/api.log'\n\
                 api_pidfile: '{m}/api.pid'\n\
                 file_roots:\n  base:\n    - '{m}/srv/salt'\n\
                 netapi_enable_clients: [local, local_async, local_batch, runner, wheel]\n\
                 rest_cherrypy:\n  host: 127.0.0.1\n  port: {api_port}\n  disable_ssl: True\n\
                 external_auth:\n  file:\n    ^filename: '{eauth}'\n    ^filetype: text\n    \
                 {USER}:\n      - '.*'\n      - '@runner'\n      - '@wheel'\n      - '@jobs'\n",
                m = m.display(),
                eauth = root.join("eauth.txt").display(),
            ),
        )
        .expect("master config");
        let mut lab = SaltLab {
            root: root.clone(),
            bin,
            api_port,
            master: Mutex::new(None),
            api: Mutex::new(None),
            minions: Mutex::new(Vec::new()),
        };
        *lab.master.get_mut().expect("lock") = Some(lab.spawn("salt-master", &m, "master"));
        *lab.api.get_mut().expect("lock") = Some(lab.spawn("salt-api", &m, "api"));
        for id in minions {
            let dir = lab.minion_root(id);
            std::fs::create_dir_all(&dir).expect("minion dir");
            std::fs::write(
                dir.join("minion"),
                format!(
                    "id: {id}\n\
                     root_dir: '{d}'\n\
                     user: {user}\n\
                     master: 127.0.0.1\n\
                     master_port: {ret_port}\n\
                     publish_port: {publish_port}\n\
                     acceptance_wait_time: 1\n\
                     enable_fqdns_grains: False\n\
                     log_file: '{d}/minion.log'\n",
                    d = dir.display(),
                ),
            )
            .expect("minion config");
            let child = lab.spawn("salt-minion", &dir, "minion");
            lab.minions
                .get_mut()
                .expect("lock")
                .push((id.to_string(), Some(child)));
        }
        lab.wait_ready(minions);
        Some(lab)
    }

    /// `http://127.0.0.1:PORT`, salt-api's base URL.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The eauth `file` user allowed everything.
    pub fn user(&self) -> &str {
        USER
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// The minion's `root_dir` (its config file is `minion` in it, its log `minion.log`).
    pub fn minion_root(&self, id: &str) -> PathBuf {
        self.root.join("minions").join(id)
    }

    /// The master's `file_roots` base (`salt://` paths, `_grains/`, `_modules/`).
    pub fn file_root(&self) -> PathBuf {
        self.root.join("master/srv/salt")
    }

    /// The master's configuration directory (for `salt -c`).
    pub fn master_dir(&self) -> PathBuf {
        self.root.join("master")
    }

    /// Runs the `salt` command line against this master with `args` (e.g. `["web1",
    /// "grains.setval", "role", "web"]`); its stdout, panicking on failure.
    pub fn salt(&self, args: &[&str]) -> String {
        let out = Command::new(self.bin.join("salt"))
            .arg("-c")
            .arg(self.master_dir())
            .args(args)
            .output()
            .expect("run salt");
        assert!(
            out.status.success(),
            "salt {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM to the minion's process group, and waits until it has exited (SIGKILL after
    /// a deadline): afterwards the master lists it as `false`.
    pub fn stop_minion(&self, id: &str) {
        let child = {
            let mut minions = self.minions.lock().unwrap_or_else(|e| e.into_inner());
            minions
                .iter_mut()
                .find(|(m, _)| m == id)
                .and_then(|(_, c)| c.take())
        };
        if let Some(child) = child {
            stop_all(vec![child]);
        }
    }

    /// Waits until every minion answers test.ping and salt-api accepts connections.
    fn wait_ready(&self, minions: &[&str]) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let api_up = TcpStream::connect(("127.0.0.1", self.api_port)).is_ok();
            let answered = self.pinged();
            if api_up && minions.iter().all(|m| answered.iter().any(|a| a == m)) {
                return;
            }
            self.assert_alive();
            if Instant::now() > deadline {
                panic!(
                    "salt lab {}: after {READY_DEADLINE:?} salt-api up: {api_up}, minions \
                     answering: {answered:?} of {minions:?}; logs in {}",
                    self.root.display(),
                    self.root.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The minions answering test.ping now.
    fn pinged(&self) -> Vec<String> {
        let Ok(out) = Command::new(self.bin.join("salt"))
            .arg("-c")
            .arg(self.master_dir())
            .args(["*", "test.ping", "--out=json", "--static", "-t", "3"])
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        // `{"id": true, ...}`: the ids answering true, read without a JSON parser.
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(',')
            .filter(|kv| kv.trim_end().trim_end_matches('}').trim().ends_with("true"))
            .filter_map(|kv| kv.split('"').nth(1).map(str::to_string))
            .collect()
    }

    /// Panics when the master or salt-api exited (its log says why).
    fn assert_alive(&self) {
        for (what, child, log) in [
            ("salt-master", &self.master, "master/master.out"),
            ("salt-api", &self.api, "master/api.out"),
        ] {
            let mut guard = child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = guard.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let out = std::fs::read_to_string(self.root.join(log)).unwrap_or_default();
                    panic!("{what} exited ({status}) while the salt lab started:\n{out}");
                }
            }
        }
    }

    fn spawn(&self, program: &str, config_dir: &Path, out_name: &str) -> Child {
        let out = std::fs::File::create(config_dir.join(format!("{out_name}.out")))
            .expect("process output file");
        let err = out.try_clone().expect("dup output file");
        Command::new(self.bin.join(program))
            .arg("-c")
            .arg(config_dir)
            .args(["-l", "warning"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own group: salt forks workers, and the group is what Drop stops.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
    }
}

impl Drop for SaltLab {
    fn drop(&mut self) {
        let mut children = Vec::new();
        for (_, c) in self.minions.get_mut().unwrap_or_else(|e| e.into_inner()) {
            children.extend(c.take());
        }
        children.extend(self.api.get_mut().unwrap_or_else(|e| e.into_inner()).take());
        children.extend(
            self.master
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        stop_all(children);
        if std::env::var_os("OPSBOT_SALT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// SIGTERM to each child's process group, wait for them together, SIGKILL the groups of
/// those still running at the deadline (and what their workers left in the group).
fn stop_all(mut children: Vec<Child>) {
    for c in &children {
        signal_group(c.id(), "TERM");
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    while Instant::now() < deadline {
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        if children.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for mut c in children {
        signal_group(c.id(), "KILL");
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}
