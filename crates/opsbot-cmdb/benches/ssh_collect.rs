//! Agentless collection of 50 SSH targets (all on one loopback sshd) with at most 10
//! at a time. `cargo bench -p opsbot-cmdb --bench ssh_collect`
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "../tests/sshd/mod.rs"]
mod sshd;

use opsbot_cmdb::ssh::{self, SshSettings, SshTarget};
use std::time::{Duration, Instant};

fn main() {
    let Some(s) = sshd::Sshd::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let targets: Vec<SshTarget> = (0..50)
        .map(|i| SshTarget {
            name: format!("host-{i:02}"),
            host: "127.0.0.1".into(),
            port: s.port,
            user: s.user.clone(),
        })
        .collect();
    for concurrency in [10, 20] {
        let settings = SshSettings {
            command: "ssh".into(),
            key: s.key.clone(),
            known_hosts: s.known_hosts.clone(),
            timeout: Duration::from_secs(30),
            concurrency,
            disabled: Vec::new(),
        };
        for run in 0..3 {
            let started = Instant::now();
            let results = rt.block_on(ssh::collect_all(&settings, &targets));
            let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
            println!(
                "50 targets, concurrency {concurrency}, run {run}: {ok} ok in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
