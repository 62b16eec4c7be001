//! Agentless collection (seed 004's "ssh mode"): the server runs the system OpenSSH
//! client against each host with key authentication and strict known-hosts checking,
//! sends one shell script that prints the files the collectors read (plus `df` and
//! `ip` output), and runs the same collectors on that snapshot. Per-host timeout,
//! bounded concurrency; a host that refuses, hangs or shows a changed key fails alone.

use crate::collect::{self, REMOTE_DIRS, REMOTE_FILES};
use crate::config::SshConfig;
use crate::facts::{valid_hostname, Report};
use crate::ingest::{Ingestor, Origin, Receipt};
use crate::source::{parse_df, parse_ip_addr, ReadError, SnapshotSource, Usage};
use futures::StreamExt;
use opsbot_core::{parse_duration, Inventory, PowerState, Scope};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One host to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The asset identity.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The `ssh` program.
    pub command: String,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub timeout: Duration,
    pub concurrency: usize,
    pub disabled: Vec<String>,
}

impl SshSettings {
    pub fn from_config(c: &SshConfig) -> SshSettings {
        SshSettings {
            command: c.ssh_command.clone(),
            key: c.key.clone().unwrap_or_default().into(),
            known_hosts: c.known_hosts.clone().unwrap_or_default().into(),
            timeout: parse_duration(&c.timeout).unwrap_or(Duration::from_secs(30)),
            concurrency: c.concurrency.max(1),
            disabled: c.disabled_collectors.clone(),
        }
    }
}

/// Why a host could not be collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("connection refused (is sshd running on that port?)")]
    Refused,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the host key has CHANGED since it was added to known_hosts; refusing to connect (verify the host, then update known_hosts)")]
    HostKeyChanged,
    #[error("the host key is not in known_hosts; add it (ssh-keyscan) after verifying it")]
    HostKeyUnknown,
    #[error("key authentication refused: {0}")]
    AuthFailed(String),
    #[error("{0}")]
    Failed(String),
}

/// Marks the sections of the snapshot the script prints.
const MARK: &str = "@@opsbot:";

/// The script sent to `sh -s` on the host. Readability is tested with the shell's
/// builtins and every readable file is printed by one `head -v` (one process, not one
/// per file: forks dominate the cost of collecting many hosts). The usage of every
/// mount point comes from one `stat -f` over all of them: the same `statvfs` local
/// collection makes, so bind mounts (which `df` shows once per device, hiding
/// `/run/netns` once `ip netns add` ran, or Docker's `/etc/hostname`), tmpfs, overlay
/// and nsfs mounts read the same both ways. `df -a` stands in where `stat` cannot.
pub fn script() -> String {
    script_at("")
}

/// [`script`] reading the tree at `root` as if it were `/` (fixture trees in tests);
/// interface addresses then come from `<root>/ip-addr`, as for
/// [`FsSource::at`](crate::source::FsSource::at).
#[doc(hidden)]
pub fn script_at(root: &str) -> String {
    let mut s = format!(
        "export LC_ALL=C\nR={}\nprintf '@@opsbot:root %s\\n' \"$R\"\nset --\nfor p in",
        sh_quote(root)
    );
    for f in REMOTE_FILES {
        s.push_str(" \"$R\"");
        s.push_str(f);
    }
    s.push_str(
        r#"; do
  if [ -e "$p" ]; then
    if [ -r "$p" ]; then set -- "$@" "$p"; else printf '@@opsbot:denied %s\n' "$p"; fi
  fi
done
printf '@@opsbot:files\n'
[ $# -gt 0 ] && head -v -c 4194304 -- "$@" 2>/dev/null
printf '\n'
"#,
    );
    for d in REMOTE_DIRS {
        s.push_str(&format!(
            "printf '@@opsbot:dir {d}\\n'; ls -1 \"$R\"{d} 2>/dev/null\n"
        ));
    }
    // /proc/mounts writes a space in a path as \040: `printf %b` decodes \0NNN.
    s.push_str(
        r#"if [ -r "$R/proc/mounts" ] && stat -f -c %b / >/dev/null 2>&1; then
  printf '@@opsbot:statfs\n'
  set --
  while read -r _dev m _rest; do
    case $m in *\\*) m=$(printf '%s' "$m" | sed 's/\\\([0-7][0-7][0-7]\)/\\0\1/g'); m=$(printf '%b' "$m");; esac
    set -- "$@" "$R$m"
  done < "$R/proc/mounts"
  [ $# -gt 0 ] && stat -f -c '%b %f %a %S %n' -- "$@" 2>/dev/null
else
  printf '@@opsbot:df\n'; df -P -B1 -a 2>/dev/null || df -P -B1 2>/dev/null
fi
printf '@@opsbot:ip\n'
if [ -n "$R" ]; then cat "$R/ip-addr" 2>/dev/null; else ip -o addr show 2>/dev/null; fi
printf '@@opsbot:end\n'
"#,
    );
    s
}

/// `text` as one single-quoted shell word.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `stat -f -c '%b %f %a %S %n'` lines → usage by mount point (blocks, free blocks,
/// blocks available to users, fragment size: what `statvfs` gives local collection).
fn parse_statfs(text: &str, root: &str) -> HashMap<String, Usage> {
    text.lines()
        .filter_map(|line| {
            let mut w = line.splitn(5, ' ');
            let mut num = || w.next()?.parse::<u64>().ok();
            let (blocks, free, avail, frag) = (num()?, num()?, num()?, num()?);
            let path = w.next()?;
            let mount = match path.strip_prefix(root) {
                Some("") => "/",
                Some(m) => m,
                None => path,
            };
            let size = blocks.saturating_mul(frag);
            Some((
                mount.to_string(),
                Usage {
                    size,
                    used: size.saturating_sub(free.saturating_mul(frag)),
                    avail: avail.saturating_mul(frag),
                },
            ))
        })
        .collect()
}

/// `head -v` output → files (paths without the script's root). Each file's text is
/// followed by one newline of separation (head's before the next header, the
/// script's after the last).
fn parse_head(text: &str, root: &str, snap: &mut SnapshotSource) {
    let mut current: Option<(String, String)> = None;
    let flush = |cur: Option<(String, String)>, snap: &mut SnapshotSource| {
        if let Some((path, body)) = cur {
            let body = body.strip_suffix('\n').unwrap_or(&body).to_string();
            snap.files.insert(path, Ok(body));
        }
    };
    for line in text.split_inclusive('\n') {
        let header = line
            .strip_prefix("==> ")
            .and_then(|l| l.trim_end_matches('\n').strip_suffix(" <=="));
        match header {
            Some(path) => {
                flush(current.take(), snap);
                let path = path.strip_prefix(root).unwrap_or(path);
                current = Some((path.to_string(), String::new()));
            }
            None => {
                if let Some((_, body)) = current.as_mut() {
                    body.push_str(line);
                }
            }
        }
    }
    flush(current, snap);
}

/// The sections of the script's output, read in order.
#[derive(Default)]
struct SnapshotParser {
    snap: SnapshotSource,
    /// The tree the script read (empty: `/`), stripped from the paths it printed.
    root: String,
    statfs: Option<HashMap<String, Usage>>,
}

impl SnapshotParser {
    fn section(&mut self, kind: &str, arg: &str, text: &str) {
        match kind {
            "files" => parse_head(text, &self.root, &mut self.snap),
            "dir" => {
                let mut names: Vec<String> = text
                    .lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect();
                names.sort();
                self.snap.dirs.insert(arg.to_string(), names);
            }
            "statfs" => self.statfs = Some(parse_statfs(text, &self.root)),
            "df" => self.snap.usage = parse_df(text),
            "ip" => self.snap.addrs = parse_ip_addr(text),
            _ => {}
        }
    }
}

/// The script's output → a source the collectors read. `None` if it did not finish.
pub fn parse_snapshot(text: &str) -> Option<SnapshotSource> {
    let mut p = SnapshotParser::default();
    let mut section: Option<(String, String)> = None;
    let mut body = String::new();
    let mut ended = false;
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(MARK) {
            let rest = rest.trim_end_matches('\n');
            let (kind, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((k, a)) = section.take() {
                p.section(&k, &a, &std::mem::take(&mut body));
            }
            body.clear();
            match kind {
                "root" => p.root = arg.to_string(),
                "denied" => {
                    let path = arg.strip_prefix(p.root.as_str()).unwrap_or(arg);
                    p.snap
                        .files
                        .insert(path.to_string(), Err(ReadError::Denied));
                }
                "end" => ended = true,
                _ => section = Some((kind.to_string(), arg.to_string())),
            }
        } else if section.is_some() {
            body.push_str(line);
        }
    }
    if let Some((k, a)) = section.take() {
        p.section(&k, &a, &body);
    }
    if let Some(usage) = p.statfs {
        p.snap.usage = usage;
    }
    ended.then_some(p.snap)
}

fn classify(stderr: &str, timeout: Duration) -> SshError {
    let has = |s: &str| stderr.contains(s);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("has changed and you have requested strict checking")
    {
        SshError::HostKeyChanged
    } else if has("Host key verification failed") || has("host key is known") {
        SshError::HostKeyUnknown
    } else if has("Connection refused") {
        SshError::Refused
    } else if has("Permission denied") || has("Too many authentication failures") {
        SshError::AuthFailed(last_line(stderr))
    } else if has("timed out") {
        SshError::Timeout(timeout)
    } else {
        SshError::Failed(last_line(stderr))
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("ssh failed without a message")
        .to_string()
}

/// Collects one host.
pub async fn collect_one(settings: &SshSettings, target: &SshTarget) -> Result<Report, SshError> {
    let connect = settings.timeout.as_secs().clamp(1, 60).to_string();
    let mut child = tokio::process::Command::new(&settings.command)
        .arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(&settings.key)
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            settings.known_hosts.display()
        ))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", &format!("ConnectTimeout={connect}")])
        .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"])
        .args(["-o", "LogLevel=ERROR", "-T"])
        .args([
            "-p",
            &target.port.to_string(),
            "-l",
            &target.user,
            "--",
            &target.host,
        ])
        .arg("sh -s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SshError::Failed(format!("cannot run {}: {e}", settings.command)))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let work = async {
        let send = async {
            // A host that never answers never reads; the timeout ends that.
            let _ = stdin.write_all(script().as_bytes()).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut so = (&mut stdout).take(16 << 20);
        let mut se = (&mut stderr).take(64 << 10);
        let (_, o, _) = tokio::join!(send, so.read_to_end(&mut out), se.read_to_end(&mut err));
        let status = child.wait().await;
        (o, status, out, err)
    };
    let (read, status, out, err) = tokio::time::timeout(settings.timeout, work)
        .await
        .map_err(|_| SshError::Timeout(settings.timeout))?;
    let err = String::from_utf8_lossy(&err);
    let status = status.map_err(|e| SshError::Failed(format!("waiting for ssh: {e}")))?;
    read.map_err(|e| SshError::Failed(format!("reading from ssh: {e}")))?;
    if !status.success() {
        return Err(classify(&err, settings.timeout));
    }
    let text = String::from_utf8_lossy(&out);
    let snap = parse_snapshot(&text).ok_or_else(|| {
        SshError::Failed("the host's answer ended early (is /bin/sh a POSIX shell?)".into())
    })?;
    let disabled = settings.disabled.clone();
    let name = target.name.clone();
    tokio::task::spawn_blocking(move || collect::collect(&snap, &disabled, Some(&name)))
        .await
        .map_err(|e| SshError::Failed(format!("collector task: {e}")))
}

/// Collects every target, at most `concurrency` at a time, in the targets' order.
pub async fn collect_all(
    settings: &SshSettings,
    targets: &[SshTarget],
) -> Vec<(SshTarget, Result<Report, SshError>)> {
    let mut done: Vec<(usize, SshTarget, Result<Report, SshError>)> =
        futures::stream::iter(targets.iter().cloned().enumerate())
            .map(|(i, t)| async move {
                let r = collect_one(settings, &t).await;
                (i, t, r)
            })
            .buffer_unordered(settings.concurrency.max(1))
            .collect()
            .await;
    done.sort_by_key(|(i, _, _)| *i);
    done.into_iter().map(|(_, t, r)| (t, r)).collect()
}

/// The configured hosts plus the pool VMs the selectors pick (powered on, with a
/// guest IP and a usable name), without duplicates.
pub fn targets(cfg: &SshConfig, pool: &Inventory) -> Vec<SshTarget> {
    let mut out: Vec<SshTarget> = cfg
        .targets
        .iter()
        .map(|t| SshTarget {
            name: t
                .name
                .clone()
                .unwrap_or_else(|| t.host.clone())
                .to_lowercase(),
            host: t.host.clone(),
            port: t.port.unwrap_or(cfg.port),
            user: t.user.clone().unwrap_or_else(|| cfg.user.clone()),
        })
        .collect();
    for sel in &cfg.pool {
        let Ok(scope) = Scope::parse(&sel.matches) else {
            continue;
        };
        let folder = sel.folder.as_deref().and_then(|f| Scope::parse(f).ok());
        for vm in &pool.vms {
            if vm.template
                || vm.power != PowerState::PoweredOn
                || !scope.matches(&vm.scope_path())
                || folder.as_ref().is_some_and(|f| !f.matches(&vm.folder))
                || !sel.tags.iter().all(|t| vm.tags.contains(t))
            {
                continue;
            }
            let Some(ip) = vm.guest_ip.clone().filter(|ip| !ip.is_empty()) else {
                continue;
            };
            let Some(name) = [&vm.guest_hostname, &vm.name]
                .into_iter()
                .map(|n| n.to_lowercase())
                .find(|n| valid_hostname(n))
            else {
                continue;
            };
            if out.iter().any(|t| t.name == name || t.host == ip) {
                continue;
            }
            out.push(SshTarget {
                name,
                host: ip,
                port: sel.port.unwrap_or(cfg.port),
                user: sel.user.clone().unwrap_or_else(|| cfg.user.clone()),
            });
        }
    }
    out
}

/// One host's result of an agentless run.
#[derive(Debug)]
pub struct Collected {
    pub target: SshTarget,
    pub result: Result<Receipt, String>,
    pub elapsed: Duration,
}

/// Collects `targets` over SSH and stores the reports (`source` names the run in the
/// change history: `ssh:schedule`, `ssh:cli`).
pub async fn collect_and_store(
    settings: &SshSettings,
    targets: &[SshTarget],
    ingestor: &Ingestor,
    source: &str,
) -> Vec<Collected> {
    let results: Vec<Collected> = futures::stream::iter(targets.iter().cloned())
        .map(|t| async move {
            let started = std::time::Instant::now();
            let result = match collect_one(settings, &t).await {
                Ok(report) => ingestor
                    .submit(
                        report,
                        Origin::Agentless {
                            source: source.to_string(),
                        },
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            Collected {
                target: t,
                result,
                elapsed: started.elapsed(),
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut results = results;
    results.sort_by_key(|c| targets.iter().position(|t| t == &c.target));
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolSelector;
    use crate::source::FsSource;

    #[test]
    fn snapshot_parses_files_denials_dirs_df_and_ip() {
        let text = "@@opsbot:denied /sys/class/dmi/id/product_serial\n@@opsbot:files\n==> /proc/sys/kernel/hostname <==\nbox\n\n==> /sys/class/net/eth0/speed <==\n\n==> /etc/no-newline <==\nlast\n@@opsbot:dir /sys/class/net\neth0\nlo\n@@opsbot:df\nFilesystem 1-blocks Used Available Capacity Mounted on\n/dev/vda 100 40 60 40% /\n@@opsbot:ip\n2: eth0    inet 10.0.0.5/24 scope global eth0\n@@opsbot:end\n";
        let s = parse_snapshot(text).unwrap();
        use crate::source::Source;
        assert_eq!(s.read("/proc/sys/kernel/hostname").unwrap(), "box\n");
        assert_eq!(
            s.read("/sys/class/dmi/id/product_serial"),
            Err(ReadError::Denied)
        );
        assert_eq!(
            s.read("/sys/class/net/eth0/speed").unwrap(),
            "",
            "unreadable: empty"
        );
        assert_eq!(s.read("/etc/no-newline").unwrap(), "last");
        assert_eq!(s.read("/etc/nope"), Err(ReadError::Missing));
        assert_eq!(s.list("/sys/class/net").unwrap(), ["eth0", "lo"]);
        assert_eq!(s.usage("/").unwrap().used, 40);
        assert_eq!(s.addresses().unwrap()[0].prefix, 24);
        assert!(parse_snapshot("@@opsbot:files\n==> /x <==\ncut off").is_none());
    }

    #[test]
    fn pool_selectors_pick_running_vms_by_scope_folder_and_tags() {
        let vm = |name: &str, ip: &str, tags: &[&str], on: bool| opsbot_core::Vm {
            provider: "vc1".into(),
            id: format!("vm-{name}"),
            name: name.into(),
            uuid: String::new(),
            instance_uuid: String::new(),
            datacenter: "DC0".into(),
            cluster: "C1".into(),
            host: "esx1".into(),
            folder: "linux".into(),
            power: if on {
                PowerState::PoweredOn
            } else {
                PowerState::PoweredOff
            },
            cpu: 2,
            memory_mb: 2048,
            guest_os: String::new(),
            guest_hostname: String::new(),
            guest_ip: Some(ip.into()),
            ips: vec![ip.into()],
            tools_status: "toolsOk".into(),
            template: false,
            nics: vec![],
            disks: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let pool = Inventory {
            vms: vec![
                vm("db-01", "10.0.0.1", &["env:prod", "os:linux"], true),
                vm("db-02", "10.0.0.2", &["env:test", "os:linux"], true),
                vm("db-03", "10.0.0.3", &["env:prod", "os:linux"], false),
                vm("web-01", "10.0.0.4", &["env:prod"], true),
            ],
            ..Inventory::default()
        };
        let mut cfg = SshConfig::default();
        cfg.pool.push(PoolSelector {
            matches: "vc1/**".into(),
            folder: Some("lin*".into()),
            tags: vec!["env:prod".into(), "os:linux".into()],
            user: None,
            port: None,
        });
        let picked: Vec<String> = targets(&cfg, &pool).into_iter().map(|t| t.name).collect();
        assert_eq!(picked, ["db-01"], "tagged, running, in scope and folder");
    }

    #[test]
    fn stderr_is_classified() {
        let t = Duration::from_secs(5);
        assert_eq!(
            classify(
                "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n",
                t
            ),
            SshError::HostKeyChanged
        );
        assert_eq!(classify("No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n", t), SshError::HostKeyUnknown);
        assert_eq!(
            classify(
                "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
                t
            ),
            SshError::Refused
        );
        assert!(matches!(
            classify("root@127.0.0.1: Permission denied (publickey).\n", t),
            SshError::AuthFailed(_)
        ));
        assert_eq!(
            classify(
                "ssh: connect to host 10.0.0.1 port 22: Connection timed out\n",
                t
            ),
            SshError::Timeout(t)
        );
    }

    #[test]
    fn statfs_lines_parse_under_a_root() {
        let text = "@@opsbot:root /fx\n@@opsbot:denied /fx/etc/shadow\n@@opsbot:statfs\n\
                    100 40 30 4096 /fx\n10 10 10 4096 /fx/mnt/with space\nstat: bad line\n\
                    @@opsbot:end\n";
        let s = parse_snapshot(text).unwrap();
        use crate::source::Source;
        let root = s.usage("/").unwrap();
        assert_eq!(
            (root.size, root.used, root.avail),
            (409_600, 245_760, 122_880)
        );
        assert_eq!(s.usage("/mnt/with space").unwrap().used, 0);
        assert_eq!(s.read("/etc/shadow"), Err(ReadError::Denied));
        assert_eq!(s.usage.len(), 2);
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    async fn run_script(script: String) -> SnapshotSource {
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_snapshot(&String::from_utf8_lossy(&out.stdout)).unwrap()
    }

    /// The script, reading a fixture tree, yields exactly the facts the collectors read
    /// from it directly; the `mounts` tree has every kind of mount that once differed
    /// (bind mounts of a directory and of a file, over-mounts, a path with a space,
    /// tmpfs, overlay and nsfs).
    #[tokio::test]
    async fn the_script_reads_fixture_trees_as_collection_does() {
        for name in ["server", "vmware-vm", "minimal", "mounts"] {
            let root = fixture(name);
            let snap = run_script(script_at(root.to_str().unwrap())).await;
            let remote = collect::collect(&snap, &[], None);
            let local = collect::collect(&FsSource::at(&root), &[], None);
            assert_eq!(remote.facts(), local.facts(), "{name}");
            assert_eq!(remote.problems, local.problems, "{name}");
        }
        let facts = collect::collect(&FsSource::at(fixture("mounts")), &[], None).facts();
        let fs: Vec<&str> = facts
            .keys()
            .filter_map(|k| k.strip_prefix("fs.")?.strip_suffix(".size_bytes"))
            .collect();
        assert_eq!(
            fs,
            [
                "/",
                "/etc/hostname",
                "/mnt/with space",
                "/run/netns",
                "/srv/data",
                "/srv/export",
                "/var/lib/docker"
            ],
            "bind mounts have their size; tmpfs, nsfs and a non-root overlay are left out"
        );
        assert_eq!(facts["fs./srv/export.fstype"], "ext4", "the mount on top");
    }

    /// The script run by the local shell sees what the collectors see directly: the
    /// file lists in `collect` and the script cannot drift apart.
    #[tokio::test]
    async fn the_script_sees_what_local_collection_sees() {
        let snap = run_script(script()).await;
        let remote = collect::collect(&snap, &[], None);
        let local = collect::collect(&FsSource::live(), &[], None);
        assert_eq!(remote.facts(), local.facts());
        assert_eq!(remote.problems, local.problems);
    }
}
