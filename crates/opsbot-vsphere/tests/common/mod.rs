//! Test support: a vcsim process on a free port (killed on drop) and an independent
//! reader of it (`reader.py` over the shared `vsoap.py`, never the code under test).
#![allow(dead_code)]

use opsbot_vsphere::client::ClientConfig;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running simulator.
pub struct Vcsim {
    child: Child,
    /// `http(s)://127.0.0.1:PORT/sdk`, without user info.
    pub url: String,
    /// The URL as vcsim printed it (with `user:pass@`), for the Python reader.
    pub full_url: String,
}

fn binary() -> PathBuf {
    std::env::var_os("OPSBOT_VCSIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/vcsim/vcsimlite"))
}

/// Starts vcsim with these extra flags, or returns None ("skipping") when the binary is
/// missing, unless `OPSBOT_TEST_REQUIRE_SERVICES=1`, which makes that a failure.
pub fn vcsim(args: &[&str]) -> Option<Vcsim> {
    let bin = binary();
    if !bin.exists() {
        if std::env::var("OPSBOT_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!(
                "vcsim not found at {} (set OPSBOT_VCSIM) and OPSBOT_TEST_REQUIRE_SERVICES=1",
                bin.display()
            );
        }
        eprintln!("skipping: vcsim not found at {}", bin.display());
        return None;
    }
    Some(Vcsim::start(&bin, args))
}

impl Vcsim {
    pub fn start(bin: &std::path::Path, args: &[&str]) -> Vcsim {
        let mut child = Command::new(bin)
            .arg("-l")
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vcsim");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read vcsim URL");
        let full_url = line.trim().to_string();
        assert!(full_url.contains("/sdk"), "vcsim printed {full_url:?}");
        let mut url = reqwest::Url::parse(&full_url).unwrap();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let url = url.to_string();
        // Wait until it accepts connections.
        let addr = format!(
            "{}:{}",
            reqwest::Url::parse(&url).unwrap().host_str().unwrap(),
            reqwest::Url::parse(&url).unwrap().port().unwrap()
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "vcsim did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Vcsim {
            child,
            url,
            full_url,
        }
    }

    /// A config for this simulator (user/pass; insecure TLS for `-tls`).
    pub fn config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(self.url.clone(), "user", "pass");
        cfg.insecure_tls = self.url.starts_with("https");
        cfg.timeout = Duration::from_secs(60);
        cfg
    }

    /// Runs the independent Python reader and parses its JSON.
    pub fn read(&self, args: &[&str]) -> serde_json::Value {
        let manifest = env!("CARGO_MANIFEST_DIR");
        let vsoap_dir = format!("{manifest}/../../../shared/vsphere");
        let out = Command::new("python3")
            .arg(format!("{manifest}/tests/common/reader.py"))
            .arg(&self.full_url)
            .args(args)
            .env("VSOAP_DIR", vsoap_dir)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "reader.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("reader.py JSON")
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDK URL on a loopback port nobody listens on (bound, then freed).
pub fn closed_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/sdk")
}
