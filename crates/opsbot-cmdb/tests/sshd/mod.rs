//! A real OpenSSH server for tests and benchmarks: Debian's `sshd` on a free loopback
//! port with its own host key, client key, authorized_keys and config in a temp dir,
//! and a known_hosts file that trusts exactly its host key.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub user: String,
    child: Child,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use opsbot_testkit::hosts::keygen;

/// `[127.0.0.1]:port <type> <key>` for the public key file `pubkey`.
pub fn known_hosts_line(port: u16, pubkey: &Path) -> String {
    let text = std::fs::read_to_string(pubkey).unwrap();
    let mut w = text.split_whitespace();
    format!(
        "[127.0.0.1]:{port} {} {}\n",
        w.next().unwrap(),
        w.next().unwrap()
    )
}

impl Sshd {
    /// Starts sshd, or skips (`None`) when it or the OpenSSH client is not installed.
    pub fn start() -> Option<Sshd> {
        use opsbot_testkit::{fix, program};
        for needed in [SSHD, "ssh", "ssh-keygen"] {
            program(needed, fix::SSHD)?;
        }
        // sshd insists on its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let host_key = dir.path().join("host_key");
        let key = dir.path().join("client_key");
        keygen(&host_key);
        keygen(&key);
        std::fs::copy(
            key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 MaxStartups 200:30:400\nMaxSessions 200\nLogLevel ERROR\n",
                hk = host_key.display(),
                ak = dir.path().join("authorized_keys").display()
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting sshd");
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(
            &known_hosts,
            known_hosts_line(port, &host_key.with_extension("pub")),
        )
        .unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Sshd {
            dir,
            port,
            key,
            known_hosts,
            user,
            child,
        })
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
