//! Test support: a vcsim process on a free port (killed on drop) and an independent
//! reader of it (`reader.py` over `vsoap.py`, both beside this file, never the code under
//! test). A missing vcsim or python3 skips the test visibly (`opsbot_testkit`).
#![allow(dead_code)]

use opsbot_vsphere::client::ClientConfig;
use std::io::{BufRead, BufReader};
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

/// Starts vcsim with these extra flags, or skips (`None`) when it is not installed.
pub fn vcsim(args: &[&str]) -> Option<Vcsim> {
    let bin = opsbot_testkit::vcsim()?;
    Some(Vcsim::start(&bin, args))
}

/// [`vcsim`] for a test that also reads the simulator back with [`Vcsim::read`] (python3).
pub fn vcsim_and_reader(args: &[&str]) -> Option<Vcsim> {
    let bin = opsbot_testkit::vcsim()?;
    opsbot_testkit::program("python3", opsbot_testkit::fix::PYTHON3)?;
    Some(Vcsim::start(&bin, args))
}

/// The directory of `reader.py` and `vsoap.py` (`VSOAP_DIR` for the reader).
pub fn vsoap_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common").to_string()
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
        let out = Command::new("python3")
            .arg(format!("{}/reader.py", vsoap_dir()))
            .arg(&self.full_url)
            .args(args)
            .env("VSOAP_DIR", vsoap_dir())
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
