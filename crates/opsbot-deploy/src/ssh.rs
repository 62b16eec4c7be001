//! The transport to a release's hosts: the system OpenSSH client, one master connection
//! per host (`ssh -M -S <socket> -N`, a child process the [`Session`] owns) and every
//! step a short-lived `ssh -S <socket>` client multiplexed over it, so a step costs a
//! channel open (a few ms), not a TCP and key exchange handshake.
//!
//! Authentication is by key only (`BatchMode`, `IdentitiesOnly`) and host keys are
//! checked strictly against the configured known_hosts: an unknown or changed key is
//! refused and named, never accepted. A step's client falls back to nothing when the
//! master is gone (`ProxyCommand=false`): no silent second handshake.
//!
//! Each step's script runs as `timeout -k 5 <t> sh -c '<script>'` on the host, so a
//! step that outlives its time is killed there (its whole process group), not only
//! abandoned here; the client here is killed too, a few seconds later, should the host
//! stop answering.

use crate::log::LogSink;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// How to reach the hosts of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// The OpenSSH client program (`ssh`).
    pub command: String,
    pub user: String,
    pub port: u16,
    /// The private key; `None`: the client's default identities.
    pub key: Option<PathBuf>,
    /// `None`: the client's default (`~/.ssh/known_hosts`), still checked strictly.
    pub known_hosts: Option<PathBuf>,
    /// For the TCP connect and, plus a few seconds, the whole login.
    pub connect_timeout: Duration,
    /// Where the master sockets go. Keep it short: a socket path has at most 108 bytes.
    pub control_dir: PathBuf,
    /// More `-o Key=Value` options for the master and every step
    /// (`KexAlgorithms=^curve25519-sha256`), each checked by [`check_option`]. They come
    /// after the options opsbot fixes (OpenSSH keeps the first value it reads), so they
    /// can only add, and before opsbot's cipher preference, which they may replace.
    pub extra: Vec<String>,
}

impl SshOptions {
    /// Port 22, `ssh`, 10 s to connect, no key or known_hosts of its own.
    pub fn new(user: &str, control_dir: impl Into<PathBuf>) -> SshOptions {
        SshOptions {
            command: "ssh".into(),
            user: user.into(),
            port: 22,
            key: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(10),
            control_dir: control_dir.into(),
            extra: Vec::new(),
        }
    }

    /// Options every invocation gets, master or step, first: OpenSSH keeps the first
    /// value it reads for a key, so nothing after them can loosen them.
    fn common_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["-F".into(), "/dev/null".into()];
        if let Some(key) = &self.key {
            a.push("-i".into());
            a.push(key.display().to_string());
        }
        if let Some(kh) = &self.known_hosts {
            a.push("-o".into());
            a.push(format!("UserKnownHostsFile={}", kh.display()));
            a.push("-o".into());
            a.push("GlobalKnownHostsFile=/dev/null".into());
        }
        let secs = self.connect_timeout.as_secs().max(1);
        for o in [
            "IdentitiesOnly=yes",
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "LogLevel=ERROR",
            &format!("ConnectTimeout={secs}"),
        ] {
            a.push("-o".into());
            a.push(o.to_string());
        }
        a.push("-p".into());
        a.push(self.port.to_string());
        a.push("-l".into());
        a.push(self.user.clone());
        a
    }

    /// The configured extra options, then the defaults they may override; after the
    /// master's or step's own options, just before the address.
    fn tunable_args(&self) -> Vec<String> {
        let mut a = Vec::with_capacity(2 * self.extra.len() + 2);
        for o in &self.extra {
            a.push("-o".into());
            a.push(o.clone());
        }
        // AES-GCM first (the rest of the default list after it): with AES-NI it moved
        // 10 × 21 MB over one master in 0.78 s where ChaCha20-Poly1305, the default
        // first choice, took 1.02 s. Same strength; a configured `Ciphers` wins.
        a.push("-o".into());
        a.push("Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com".into());
        a
    }
}

/// Keys an extra option may not set, lower-cased (OpenSSH reads keys in any case): they
/// would run local commands or load local code, loosen the host key check, expose
/// opsbot's agent, send the login elsewhere, or break the master/step multiplexing and
/// the unattended login the transport relies on; most have their own setting.
const REFUSED_OPTIONS: &[&str] = &[
    // local commands and code
    "proxycommand",
    "proxyjump",
    "localcommand",
    "permitlocalcommand",
    "knownhostscommand",
    "pkcs11provider",
    "securitykeyprovider",
    "include",
    "match",
    // host keys
    "stricthostkeychecking",
    "userknownhostsfile",
    "globalknownhostsfile",
    "updatehostkeys",
    "verifyhostkeydns",
    "hostkeyalias",
    "hostname",
    // the login: [deploy] ssh_key, projects' ssh_user / ssh_port, connect_timeout
    "identityfile",
    "identitiesonly",
    "identityagent",
    "forwardagent",
    "batchmode",
    "user",
    "port",
    "connecttimeout",
    // the transport
    "controlpath",
    "controlmaster",
    "controlpersist",
    "remotecommand",
    "requesttty",
    "sessiontype",
    "stdinnull",
    "forkafterauthentication",
    "loglevel",
];

/// Checks one extra `-o` option: `Key=Value`, an alphanumeric key that is not one of
/// the refused ones (the error names it), a value without control characters.
pub fn check_option(option: &str) -> Result<(), String> {
    let Some((key, value)) = option.split_once('=') else {
        return Err(format!("{option:?} is not Key=Value"));
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{key:?} in {option:?} is not an ssh option name"));
    }
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        return Err(format!(
            "{key}: the value is empty or holds control characters"
        ));
    }
    if REFUSED_OPTIONS.contains(&key.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{key} may not be set here: opsbot sets it itself or it would weaken host key checks or the transport"
        ));
    }
    Ok(())
}

/// Why a host could not be reached or a command not run; each names the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("{address}: connection refused on port {port} (is sshd running there?)")]
    Refused { address: String, port: u16 },
    #[error("{address}: unreachable ({detail})")]
    Unreachable { address: String, detail: String },
    #[error("{address}: no answer within {after:?}")]
    Timeout { address: String, after: Duration },
    #[error("{address}: the host key has CHANGED since it was added to known_hosts; refusing to connect (verify the host, then update known_hosts)")]
    HostKeyChanged { address: String },
    #[error(
        "{address}: the host key is not in known_hosts; add it (ssh-keyscan) after verifying it"
    )]
    HostKeyUnknown { address: String },
    #[error("{address}: key authentication refused ({detail})")]
    AuthRefused { address: String, detail: String },
    #[error("{address}: the SSH connection was lost ({detail})")]
    Disconnected { address: String, detail: String },
    #[error("{address}: {detail}")]
    Failed { address: String, detail: String },
}

/// What a command did: its exit code (-1 when killed by a signal) and its last lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    /// The last [`TAIL_LINES`] lines of stdout and stderr, as they came.
    pub tail: String,
}

/// How many lines [`Output::tail`] keeps.
pub const TAIL_LINES: usize = 20;
/// Longer lines are cut for the log (a binary file printed by mistake).
const MAX_LINE: usize = 4096;
/// The master prints this (its LocalCommand) once logged in with its socket listening.
const READY: &str = "opsbot-ssh-master-ready";
/// How much longer than a step's own time the client here waits for the host's answer.
const GRACE: Duration = Duration::from_secs(8);

static SOCKETS: AtomicU64 = AtomicU64::new(0);

/// A master connection to one host; steps run over it. Dropping it kills the master.
pub struct Session {
    address: String,
    opts: SshOptions,
    socket: PathBuf,
    master: Mutex<Option<Child>>,
    /// The master's stderr, last lines (why it died, if it does).
    master_err: Arc<Mutex<VecDeque<String>>>,
    /// Held so the master never writes to a closed pipe.
    _master_out: Option<ChildStdout>,
}

impl Session {
    /// Logs in to `address` and keeps the connection for the session's steps.
    pub async fn connect(address: &str, opts: &SshOptions) -> Result<Session, SshError> {
        let failed = |detail: String| SshError::Failed {
            address: address.to_string(),
            detail,
        };
        if address.is_empty() || address.starts_with('-') || address.contains(char::is_whitespace) {
            return Err(failed(format!("{address:?} is not a host address")));
        }
        create_private_dir(&opts.control_dir).map_err(|e| {
            failed(format!(
                "cannot create the socket directory {}: {e}",
                opts.control_dir.display()
            ))
        })?;
        let socket = opts.control_dir.join(format!(
            "{}-{}.sock",
            std::process::id(),
            SOCKETS.fetch_add(1, Ordering::Relaxed)
        ));
        if socket.as_os_str().len() > 100 {
            return Err(failed(format!(
                "socket path {} is too long (at most 100 bytes): choose a shorter control_dir",
                socket.display()
            )));
        }
        let _ = std::fs::remove_file(&socket);
        let mut child = Command::new(&opts.command)
            .args(opts.common_args())
            .args(["-M", "-N", "-T", "-S"])
            .arg(&socket)
            .args(["-o", "ControlPersist=no"])
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=4",
            ])
            .args(["-o", "PermitLocalCommand=yes"])
            .arg("-o")
            .arg(format!("LocalCommand=echo {READY}"))
            .args(opts.tunable_args())
            .arg("--")
            .arg(address)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("cannot run {}: {e}", opts.command)))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let stderr = child.stderr.take().expect("piped");
        let master_err = Arc::new(Mutex::new(VecDeque::new()));
        let drain = tokio::spawn(keep_tail(stderr, master_err.clone()));

        let login = opts.connect_timeout + Duration::from_secs(5);
        let ready = tokio::time::timeout(login, async {
            let mut line = String::new();
            loop {
                line.clear();
                match stdout.read_line(&mut line).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) if line.trim_end() == READY => return true,
                    Ok(_) => {}
                }
            }
        })
        .await;
        match ready {
            Ok(true) => Ok(Session {
                address: address.to_string(),
                opts: opts.clone(),
                socket,
                master: Mutex::new(Some(child)),
                master_err,
                _master_out: Some(stdout.into_inner()),
            }),
            Ok(false) => {
                // The master exited: its stderr says why, once it is all read.
                let _ = child.wait().await;
                let _ = drain.await;
                let _ = std::fs::remove_file(&socket);
                let text = tail_text(&master_err);
                Err(classify(address, opts, &text))
            }
            Err(_) => {
                let _ = child.kill().await;
                let _ = std::fs::remove_file(&socket);
                Err(SshError::Timeout {
                    address: address.to_string(),
                    after: login,
                })
            }
        }
    }

    /// The host this session reaches.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs `script` with `sh -c` on the host (passed as the remote command, quoted, so
    /// stdin stays free for data); every output line goes to `log` as it comes. Killed
    /// at `timeout`: `Err(SshError::Timeout)`.
    pub async fn exec(
        &self,
        script: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, SshError> {
        self.run(script, None, timeout, log).await
    }

    /// [`exec`](Session::exec) with the local file `input` streamed to the script's stdin.
    pub async fn exec_with_input(
        &self,
        script: &str,
        input: &Path,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, SshError> {
        self.run(script, Some(input), timeout, log).await
    }

    /// Stops the master connection (Drop does the same without waiting).
    pub async fn close(self) {
        let child = self.master.lock().expect("master lock").take();
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
        // Drop removes the socket.
    }

    async fn run(
        &self,
        script: &str,
        input: Option<&Path>,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, SshError> {
        self.check_master()?;
        let file = match input {
            Some(path) => Some(
                tokio::fs::File::open(path)
                    .await
                    .map_err(|e| self.failed(format!("cannot read {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let remote = format!(
            "timeout -k 5 {:.3} sh -c {}",
            timeout.as_secs_f64(),
            shell_quote(script)
        );
        let mut child = Command::new(&self.opts.command)
            .args(self.opts.common_args())
            .arg("-S")
            .arg(&self.socket)
            .args(["-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-T"])
            .args(self.opts.tunable_args())
            .arg("--")
            .arg(&self.address)
            .arg(remote)
            .stdin(if file.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.failed(format!("cannot run {}: {e}", self.opts.command)))?;
        let started = Instant::now();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let tail = Mutex::new(VecDeque::with_capacity(TAIL_LINES + 1));
        let feed = async {
            if let (Some(mut stdin), Some(file)) = (stdin, file) {
                let mut reader = BufReader::with_capacity(256 << 10, file);
                // A write error means the host stopped reading (its command failed): the
                // exit code and output say why.
                let _ = tokio::io::copy_buf(&mut reader, &mut stdin).await;
                let _ = stdin.shutdown().await;
            }
        };
        let work = async {
            tokio::join!(feed, pump(stdout, log, &tail), pump(stderr, log, &tail));
            child.wait().await
        };
        let status = match tokio::time::timeout(timeout + GRACE, work).await {
            Ok(status) => status.map_err(|e| self.failed(format!("waiting for ssh: {e}")))?,
            Err(_) => {
                // Dropping the client kills it; the host's `timeout` has killed the script.
                return Err(SshError::Timeout {
                    address: self.address.clone(),
                    after: timeout,
                });
            }
        };
        let code = status.code().unwrap_or(-1);
        let tail = tail.into_inner().expect("tail lock");
        let tail: String = tail.into_iter().collect::<Vec<_>>().join("\n");
        if (code == 124 || code == 137) && started.elapsed() >= timeout {
            return Err(SshError::Timeout {
                address: self.address.clone(),
                after: timeout,
            });
        }
        if code == 255 {
            self.check_master()?;
            if let Some(e) = ssh_failure(&self.address, &self.opts, &tail) {
                return Err(e);
            }
        }
        Ok(Output { code, tail })
    }

    /// `Err(Disconnected)` once the master has exited.
    fn check_master(&self) -> Result<(), SshError> {
        let mut master = self.master.lock().expect("master lock");
        let exited = match master.as_mut() {
            None => Some("the session was closed".to_string()),
            Some(child) => match child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => {
                    let why = tail_text(&self.master_err);
                    Some(if why.is_empty() {
                        format!("the master ssh exited: {status}")
                    } else {
                        last_line(&why)
                    })
                }
                Err(e) => Some(format!("the master ssh: {e}")),
            },
        };
        match exited {
            None => Ok(()),
            Some(detail) => Err(SshError::Disconnected {
                address: self.address.clone(),
                detail,
            }),
        }
    }

    fn failed(&self, detail: String) -> SshError {
        SshError::Failed {
            address: self.address.clone(),
            detail,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut child) = self.master.lock().expect("master lock").take() {
            // SIGKILL now; tokio reaps it in the background.
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `text` as one single-quoted shell word: safe for any value in a remote command line.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Reads lines from `from` to `log` and the shared tail.
async fn pump(from: impl AsyncRead + Unpin, log: &dyn LogSink, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let mut line = line.trim_end_matches(['\n', '\r']).to_string();
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        log.line(&line);
        let mut t = tail.lock().expect("tail lock");
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

/// Keeps the last lines of `from` in `into` until it closes.
async fn keep_tail(from: impl AsyncRead + Unpin, into: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut t = into.lock().expect("tail lock");
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let t = tail.lock().expect("tail lock");
    t.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The failure the client's stderr `text` describes, for a login that did not happen.
fn classify(address: &str, opts: &SshOptions, text: &str) -> SshError {
    ssh_failure(address, opts, text).unwrap_or_else(|| SshError::Failed {
        address: address.to_string(),
        detail: if text.trim().is_empty() {
            "ssh exited without a message".to_string()
        } else {
            last_line(text)
        },
    })
}

/// A known ssh failure in `text`, if any (a step's exit 255 may be the script's own).
fn ssh_failure(address: &str, opts: &SshOptions, text: &str) -> Option<SshError> {
    let has = |s: &str| text.contains(s);
    let address = address.to_string();
    Some(
        if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || has("has changed and you have requested strict checking")
        {
            SshError::HostKeyChanged { address }
        } else if has("Host key verification failed") || has("host key is known") {
            SshError::HostKeyUnknown { address }
        } else if has("Connection refused") {
            SshError::Refused {
                address,
                port: opts.port,
            }
        } else if has("No route to host")
            || has("Network is unreachable")
            || has("Could not resolve hostname")
            || has("Name or service not known")
        {
            SshError::Unreachable {
                address,
                detail: last_line(text),
            }
        } else if has("Permission denied") || has("Too many authentication failures") {
            SshError::AuthRefused {
                address,
                detail: last_line(text),
            }
        } else if has("timed out") {
            SshError::Timeout {
                address,
                after: opts.connect_timeout,
            }
        } else if has("Control socket connect") || has("mux_client_") {
            SshError::Disconnected {
                address,
                detail: last_line(text),
            }
        } else {
            return None;
        },
    )
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("ssh failed without a message")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile values come back from `sh` exactly as they went in.
    #[test]
    fn quoted_values_survive_the_shell_unchanged() {
        for hostile in [
            "",
            "plain",
            "it's",
            "'",
            "''",
            "$(touch /tmp/opsbot-pwned)",
            "`id`",
            "a\nb\n",
            "\\'\\",
            "; rm -rf / #",
            "\"$HOME\" ${PATH} $1 * ?",
            "- -n -e",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(hostile)))
                .output()
                .expect("sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), hostile, "{hostile:?}");
        }
        assert!(!Path::new("/tmp/opsbot-pwned").exists());
    }

    #[test]
    fn extra_options_are_checked_and_refusals_name_the_key() {
        for ok in [
            "KexAlgorithms=^curve25519-sha256",
            "Ciphers=chacha20-poly1305@openssh.com",
            "ServerAliveInterval=5",
            "SetEnv=LANG=C",
        ] {
            assert_eq!(check_option(ok), Ok(()), "{ok}");
        }
        for (bad, named) in [
            ("ProxyCommand=nc %h %p", "ProxyCommand"),
            ("proxycommand=nc %h %p", "proxycommand"),
            ("LocalCommand=id", "LocalCommand"),
            ("PermitLocalCommand=yes", "PermitLocalCommand"),
            ("StrictHostKeyChecking=no", "StrictHostKeyChecking"),
            ("UserKnownHostsFile=/dev/null", "UserKnownHostsFile"),
            ("ControlPath=/tmp/x", "ControlPath"),
            ("ControlMaster=auto", "ControlMaster"),
            ("Kex Algorithms=x", "Kex Algorithms"),
            ("-oProxyCommand=x", "-oProxyCommand"),
            ("KexAlgorithms", "KexAlgorithms"),
            ("KexAlgorithms=", "KexAlgorithms"),
            ("KexAlgorithms=a\nProxyCommand=b", "KexAlgorithms"),
        ] {
            let e = check_option(bad).unwrap_err();
            assert!(e.contains(named), "{bad:?}: {e}");
        }
    }

    /// Extras come after every option opsbot fixes, so even one that slipped past
    /// [`check_option`] could not replace them (OpenSSH keeps the first value).
    #[test]
    fn extras_follow_the_fixed_options() {
        let o = SshOptions {
            extra: vec!["KexAlgorithms=^curve25519-sha256".into()],
            ..SshOptions::new("deploy", "/tmp/x")
        };
        let fixed = o.common_args();
        assert!(fixed.iter().any(|a| a == "StrictHostKeyChecking=yes"));
        assert!(!fixed.iter().any(|a| a.starts_with("KexAlgorithms")));
        let tail = o.tunable_args();
        assert_eq!(tail[..2], ["-o", "KexAlgorithms=^curve25519-sha256"]);
        assert!(tail.last().unwrap().starts_with("Ciphers="));
    }

    #[test]
    fn client_messages_are_classified_and_name_the_host() {
        let o = SshOptions::new("deploy", "/tmp/x");
        let c = |t: &str| classify("10.0.0.5", &o, t);
        assert_eq!(
            c("@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed."),
            SshError::HostKeyChanged { address: "10.0.0.5".into() }
        );
        assert_eq!(
            c("No ED25519 host key is known for 10.0.0.5 and you have requested strict checking.\nHost key verification failed."),
            SshError::HostKeyUnknown { address: "10.0.0.5".into() }
        );
        assert_eq!(
            c("ssh: connect to host 10.0.0.5 port 22: Connection refused"),
            SshError::Refused {
                address: "10.0.0.5".into(),
                port: 22
            }
        );
        assert!(matches!(
            c("ssh: connect to host 10.0.0.5 port 22: No route to host"),
            SshError::Unreachable { .. }
        ));
        assert!(matches!(
            c("root@10.0.0.5: Permission denied (publickey)."),
            SshError::AuthRefused { .. }
        ));
        assert!(matches!(
            c("ssh: connect to host 10.0.0.5 port 22: Connection timed out"),
            SshError::Timeout { .. }
        ));
        let e = c("kex_exchange_identification: read: Connection reset by peer");
        assert!(e.to_string().starts_with("10.0.0.5: kex_exchange"), "{e}");
        assert!(SshError::HostKeyChanged {
            address: "h1".into()
        }
        .to_string()
        .contains("CHANGED"));
    }
}
