//! Real hosts for deploy tests and benchmarks: each one a Linux network namespace with
//! its own address, its own OpenSSH server and its own deploy root, all on this machine.
//!
//! # How a test reaches them
//!
//! [`Hosts::start`] makes a bridge (`obh<pid>-<n>`, its name unique to this process and
//! call) with the address `10.X.Y.1/24` on the test's side, where `X.Y` is derived from
//! the process id (and skipped when already in use) so parallel test processes do not
//! collide. Host `k` (0-based) is the namespace `obh-<pid>-<n>-<k>` with `eth0` at
//! `10.X.Y.(k+2)`, joined to the bridge by a veth pair. The test process, in the root
//! namespace, connects straight to that address: `ssh -i <key> -o UserKnownHostsFile=
//! <known_hosts> root@10.X.Y.(k+2)`, with [`Hosts::key`] and [`Hosts::known_hosts`]
//! (which lists every host's key under its address: strict checking works as in
//! production).
//!
//! Each host runs `/usr/sbin/sshd -D` inside `unshare -m`, in a private mount namespace
//! where `/srv` (the deploy root's parent) is a tmpfs of its own: files written on one
//! host are not seen on another nor on this machine. [`Host::run`] executes a command in
//! that host's network and mount namespaces (`nsenter -t <sshd pid> -n -m`) to look at
//! its files, mount a tiny tmpfs, or start and stop the deployed app
//! ([`Host::spawn_bg`]).
//!
//! Dropping [`Hosts`] (also while unwinding from a failed assertion) kills every process
//! in the namespaces and deletes namespaces, veths, bridge and files. Leftovers of a test
//! process that was killed outright are deleted by the next [`Hosts::start`] (by name
//! prefix, for process ids that are gone). Needs root, `ip` (iproute2), `nsenter` and
//! `unshare` (util-linux), `sshd` and `ssh-keygen` (OpenSSH); without them the test skips.

use crate::{fix, program, skip};
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";
/// Names of everything made here start with this: leftovers are found by it.
const PREFIX: &str = "obh";
/// Each host's deploy root lives below this private tmpfs.
pub const SRV: &str = "/srv";

static STARTS: AtomicU32 = AtomicU32::new(0);

/// A set of network-namespace hosts; see the module doc.
pub struct Hosts {
    pub hosts: Vec<Host>,
    /// The client's private key (its public half is every host's authorized key).
    pub key: PathBuf,
    /// Every host's key under its address.
    pub known_hosts: PathBuf,
    /// The test side's address on the bridge (where the hosts see the test connect from).
    pub gateway: String,
    /// Keys, configurations and logs.
    pub dir: PathBuf,
    subnet: String,
    bridge: String,
    seq: u32,
}

/// One host: a network namespace with sshd; see the module doc.
pub struct Host {
    pub name: String,
    pub address: String,
    pub netns: String,
    sshd: Mutex<Child>,
    sshd_pid: u32,
    log: PathBuf,
    background: Mutex<Vec<Child>>,
}

impl Hosts {
    /// Starts `n` hosts (at most 250), or skips (`None`) when not root or a program is
    /// missing. Panics when something present fails (that is a broken machine, not a skip).
    #[track_caller]
    pub fn start(n: usize) -> Option<Hosts> {
        assert!(
            (1..=250).contains(&n),
            "Hosts::start: 1 to 250 hosts, not {n}"
        );
        if !is_root() {
            return skip("not root (network namespaces need it)", fix::ROOT);
        }
        program("ip", fix::IP)?;
        program("nsenter", fix::SETPRIV)?;
        program("unshare", fix::SETPRIV)?;
        program(SSHD, fix::SSHD)?;
        program("ssh-keygen", fix::SSHD)?;
        remove_leftovers();

        let pid = std::process::id();
        let seq = STARTS.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/{PREFIX}-{pid}-{seq}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("hosts directory");
        // sshd insists on its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let _ = std::fs::create_dir_all(SRV);
        let subnet = free_subnet(pid, seq);
        // Link names have 15 bytes at most: `obh` + pid (hex, ≤ 6) + `-` + 2 + `_` + 2.
        let bridge = format!("{PREFIX}{pid:x}-{:x}", seq & 0xff);
        let mut hosts = Hosts {
            hosts: Vec::new(),
            key: dir.join("id"),
            known_hosts: dir.join("known_hosts"),
            gateway: format!("{subnet}.1"),
            dir: dir.clone(),
            subnet: subnet.clone(),
            bridge: bridge.clone(),
            seq,
        };
        // From here on, a panic drops `hosts`, which deletes whatever exists so far.
        keygen(&hosts.key);
        std::fs::copy(hosts.key.with_extension("pub"), dir.join("authorized_keys"))
            .expect("authorized_keys");
        std::fs::write(dir.join("empty"), "").expect("empty file");

        let netns: Vec<String> = (0..n)
            .map(|k| format!("{PREFIX}-{pid}-{seq}-{k}"))
            .collect();
        let mut batch = format!(
            "link add {bridge} type bridge\nlink set {bridge} up\naddr add {subnet}.1/24 dev {bridge}\n"
        );
        for (k, ns) in netns.iter().enumerate() {
            let veth = format!("{bridge}_{k:x}");
            batch.push_str(&format!(
                "netns add {ns}\nlink add {veth} type veth peer name eth0 netns {ns}\n\
                 link set {veth} master {bridge} up\n"
            ));
        }
        // The bridge first, so Drop knows there is something to delete.
        ip_batch(None, &batch);

        let started: Vec<Host> = std::thread::scope(|scope| {
            let jobs: Vec<_> = netns
                .iter()
                .enumerate()
                .map(|(k, ns)| {
                    let (dir, subnet) = (&dir, &subnet);
                    scope.spawn(move || start_host(dir, subnet, k, ns))
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join())
                .collect::<Vec<_>>()
                .into_iter()
                .filter_map(Result::ok)
                .collect()
        });
        let failed = started.len() < n;
        hosts.hosts = started;
        assert!(!failed, "some hosts did not start (see the panics above)");

        let mut known = String::new();
        for (k, h) in hosts.hosts.iter().enumerate() {
            let key =
                std::fs::read_to_string(dir.join(format!("{k}/host_key.pub"))).expect("host key");
            let mut w = key.split_whitespace();
            let (kind, key) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            known.push_str(&format!("{} {kind} {key}\n", h.address));
        }
        std::fs::write(&hosts.known_hosts, known).expect("known_hosts");
        Some(hosts)
    }

    /// Host `i` (0-based).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Host> {
        self.hosts.iter()
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The user the hosts accept.
    pub fn user(&self) -> &'static str {
        "root"
    }

    /// An address on the hosts' bridge where nothing answers (not even ARP).
    pub fn unused_address(&self) -> String {
        format!("{}.254", self.subnet)
    }

    /// The addresses, in host order.
    pub fn addresses(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.address.clone()).collect()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for h in &self.hosts {
            h.kill_all();
        }
        let mut batch = String::new();
        for h in &self.hosts {
            batch.push_str(&format!("netns del {}\n", h.netns));
        }
        // Namespaces of hosts that failed to start, too: their names are known.
        let pid = std::process::id();
        for ns in netns_list() {
            if ns.starts_with(&format!("{PREFIX}-{pid}-{}-", self.seq))
                && !self.hosts.iter().any(|h| h.netns == ns)
            {
                kill_netns_pids(&ns);
                batch.push_str(&format!("netns del {ns}\n"));
            }
        }
        // Deleting a namespace deletes its veth end and so the pair.
        batch.push_str(&format!("link del {}\n", self.bridge));
        let _ = Command::new("ip")
            .args(["-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().expect("piped").write_all(batch.as_bytes())?;
                c.wait()
            });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Host {
    /// Runs `cmd` with `sh -c` in this host's network and mount namespaces, as root.
    pub fn run(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.sshd_pid.to_string(),
                "-n",
                "-m",
                "--",
                "sh",
                "-c",
                cmd,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("running nsenter")
    }

    /// [`run`](Host::run) that must succeed; its stdout.
    #[track_caller]
    pub fn run_ok(&self, cmd: &str) -> String {
        let out = self.run(cmd);
        assert!(
            out.status.success(),
            "{} on {}: {:?}\nstdout: {}\nstderr: {}",
            cmd,
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `cmd` (`sh -c`) in the background in this host's namespaces, in a process
    /// group of its own; returns that group's id for [`stop_bg`](Host::stop_bg). Killed
    /// at drop in any case.
    pub fn spawn_bg(&self, cmd: &str) -> u32 {
        use std::os::unix::process::CommandExt as _;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log.with_file_name("background.log"))
            .expect("background log");
        let child = Command::new("nsenter")
            .args([
                "-t",
                &self.sshd_pid.to_string(),
                "-n",
                "-m",
                "--",
                "sh",
                "-c",
                cmd,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("running nsenter");
        let id = child.id();
        self.background.lock().expect("lock").push(child);
        id
    }

    /// Kills the process group [`spawn_bg`](Host::spawn_bg) started, and waits for its leader.
    pub fn stop_bg(&self, group: u32) {
        kill(&[format!("-{group}")]);
        let mut bg = self.background.lock().expect("lock");
        if let Some(i) = bg.iter().position(|c| c.id() == group) {
            let mut c = bg.remove(i);
            let _ = c.wait();
        }
    }

    /// sshd's log (its stderr, `LogLevel VERBOSE`).
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many SSH connections logged in so far: one per handshake, however many
    /// commands they carried.
    pub fn logins(&self) -> usize {
        self.sshd_log().matches("Accepted publickey").count()
    }

    /// The pid of the host's sshd (its namespaces are the host's).
    pub fn pid(&self) -> u32 {
        self.sshd_pid
    }

    fn kill_all(&self) {
        for c in self.background.lock().expect("lock").iter() {
            kill(&[format!("-{}", c.id())]);
        }
        kill_netns_pids(&self.netns);
        let _ = self.sshd.lock().expect("lock").wait();
        for mut c in self.background.lock().expect("lock").drain(..) {
            let _ = c.wait();
        }
    }
}

/// Configures and starts host `k` in namespace `ns`; returns once its sshd accepts
/// connections.
fn start_host(dir: &Path, subnet: &str, k: usize, ns: &str) -> Host {
    let hd = dir.join(k.to_string());
    std::fs::create_dir_all(&hd).expect("host directory");
    let host_key = hd.join("host_key");
    keygen(&host_key);
    let address = format!("{subnet}.{}", k + 2);
    let config = hd.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress {address}:22\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile none\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             MaxStartups 200:30:400\nMaxSessions 200\nLogLevel VERBOSE\nUseDNS no\n",
            hk = host_key.display(),
            ak = dir.join("authorized_keys").display()
        ),
    )
    .expect("sshd_config");
    ip_batch(
        Some(ns),
        &format!("link set lo up\nlink set eth0 up\naddr add {address}/24 dev eth0\n"),
    );
    let log = hd.join("sshd.log");
    let log_file = std::fs::File::create(&log).expect("sshd log");
    // A private /srv per host. The machine's /root/.bashrc is hidden behind an empty
    // file: Debian's bash reads it for every command sshd runs, and a developer's
    // (pyenv init here: ~250 ms) would make each remote step look that slow. A real
    // server's root has no such thing.
    let script = format!(
        "mount -t tmpfs -o size=512m,mode=755 {PREFIX}-srv {SRV} && \
         {{ [ ! -f /root/.bashrc ] || mount --bind {empty} /root/.bashrc; }} && \
         exec {SSHD} -D -e -f {config}",
        empty = dir.join("empty").display(),
        config = config.display()
    );
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .args([
            "--",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("starting sshd");
    // nsenter, unshare and sh each exec the next: the child's pid is sshd's.
    let sshd_pid = child.id();
    let host = Host {
        name: format!("h{k}"),
        address: address.clone(),
        netns: ns.to_string(),
        sshd: Mutex::new(child),
        sshd_pid,
        log: log.clone(),
        background: Mutex::new(Vec::new()),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: std::net::SocketAddr = format!("{address}:22").parse().expect("address");
    while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
        let exited = host.sshd.lock().expect("lock").try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "sshd of host {k} ({address}) did not start ({exited:?}): {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    host
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// A fresh ed25519 key pair without a passphrase at `path` (and `path.pub`).
pub fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "opsbot-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("running ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip [-n ns] -batch -` on `commands`; panics with ip's stderr on failure.
fn ip_batch(ns: Option<&str>, commands: &str) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ip");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(commands.as_bytes())
        .expect("writing to ip");
    let out = child.wait_with_output().expect("waiting for ip");
    assert!(
        out.status.success(),
        "ip -batch failed: {}\n{commands}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `10.X.Y` for this start: derived from the pid so parallel test processes differ,
/// moved on while an interface of this machine already has an address in it.
fn free_subnet(pid: u32, seq: u32) -> String {
    let used = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    const SPAN: u32 = 50 * 256;
    let start = (pid.wrapping_mul(16).wrapping_add(seq)) % SPAN;
    (0..SPAN)
        .map(|i| (start + i) % SPAN)
        .map(|v| format!("10.{}.{}", 200 + v / 256, v % 256))
        .find(|s| !used.contains(&format!(" {s}.")))
        .expect("a free 10.x.y.0/24")
}

fn netns_list() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn kill_netns_pids(ns: &str) {
    let pids: Vec<String> = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    kill(&pids);
}

fn kill(targets: &[String]) {
    if targets.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(targets)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes namespaces, links and directories made by test processes that are gone.
fn remove_leftovers() {
    let mut batch = String::new();
    for ns in netns_list() {
        let pid = ns
            .strip_prefix(&format!("{PREFIX}-"))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            kill_netns_pids(&ns);
            batch.push_str(&format!("netns del {ns}\n"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for line in links.lines() {
        // `7: obh1f2e-0: <BROADCAST,...`, or `8: obh1f2e-0_3@if2: ...` for a veth.
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| u32::from_str_radix(p, 16).ok());
        if pid.is_some_and(|p| !alive(p)) {
            batch.push_str(&format!("link del {name}\n"));
        }
    }
    if !batch.is_empty() {
        let _ = Command::new("ip")
            .args(["-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().expect("piped").write_all(batch.as_bytes())?;
                c.wait()
            });
    }
    if let Ok(entries) = std::fs::read_dir("/tmp") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(&format!("{PREFIX}-"))
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !alive(p)) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twenty hosts start in parallel, each reachable with its own files; drop leaves
    /// nothing behind.
    #[test]
    fn twenty_hosts_each_with_their_own_files_and_nothing_left_after() {
        let started = Instant::now();
        let Some(hosts) = Hosts::start(20) else {
            return;
        };
        eprintln!("20 hosts started in {:?}", started.elapsed());
        for h in hosts.iter() {
            h.run_ok(&format!("echo {} > {SRV}/me", h.name));
        }
        for h in hosts.iter() {
            assert_eq!(h.run_ok(&format!("cat {SRV}/me")).trim(), h.name);
            assert!(h.run_ok("ip -o -4 addr show eth0").contains(&h.address));
        }
        assert!(
            !Path::new(SRV).join("me").exists(),
            "a host wrote to this machine's /srv"
        );
        let known = std::fs::read_to_string(&hosts.known_hosts).expect("known_hosts");
        assert_eq!(known.lines().count(), 20);
        let (netns, bridge, dir) = (
            hosts.host(0).netns.clone(),
            hosts.bridge.clone(),
            hosts.dir.clone(),
        );
        let app = hosts.host(0).spawn_bg("exec sleep 600");
        assert!(Path::new(&format!("/proc/{app}")).exists());
        drop(hosts);
        assert!(!netns_list().contains(&netns));
        assert!(!Command::new("ip")
            .args(["link", "show", &bridge])
            .output()
            .expect("ip")
            .status
            .success());
        assert!(!dir.exists());
        assert!(!alive(app));
    }

    /// A test process killed outright leaves namespaces, links and sshd processes
    /// behind; the next start removes them.
    #[test]
    fn leftovers_of_a_killed_test_process_are_removed_at_the_next_start() {
        const NAME: &str =
            "hosts::tests::leftovers_of_a_killed_test_process_are_removed_at_the_next_start";
        if std::env::var_os("OPSBOT_HOSTS_CHILD").is_some() {
            let Some(hosts) = Hosts::start(2) else { return };
            // Past libtest's capture, which only sees `print!`.
            let mut out = std::io::stdout().lock();
            writeln!(out, "started {}", hosts.host(0).pid()).expect("stdout");
            out.flush().expect("flush");
            std::mem::forget(hosts);
            std::thread::sleep(Duration::from_secs(600));
            return;
        }
        if !is_root() || crate::find_program(SSHD).is_none() {
            let _: Option<()> = skip("not root or no sshd", fix::SSHD);
            return;
        }
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("OPSBOT_HOSTS_CHILD", "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("child");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut sshd = None;
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut out, &mut line).expect("read") > 0 {
            // libtest's `test <name> ... ` comes first on the line.
            if let Some((_, pid)) = line.trim().split_once("started ") {
                sshd = pid.parse::<u32>().ok();
                break;
            }
            line.clear();
        }
        let sshd = sshd.expect("the child started its hosts");
        let child_pid = child.id();
        child.kill().expect("kill");
        child.wait().expect("wait");
        let prefix = format!("{PREFIX}-{child_pid}-");
        assert!(netns_list().iter().any(|n| n.starts_with(&prefix)));
        assert!(alive(sshd));
        let Some(_hosts) = Hosts::start(1) else {
            return;
        };
        assert!(!netns_list().iter().any(|n| n.starts_with(&prefix)));
        let links = Command::new("ip")
            .args(["-o", "link"])
            .output()
            .expect("ip");
        assert!(
            !String::from_utf8_lossy(&links.stdout).contains(&format!("{PREFIX}{child_pid:x}-"))
        );
        assert!(!Path::new(&format!("/tmp/{PREFIX}-{child_pid}-0")).exists());
        // Killed; gone once its parent (init) reaps it.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(format!("/proc/{sshd}/stat"))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(Instant::now() < deadline, "sshd {sshd} still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
