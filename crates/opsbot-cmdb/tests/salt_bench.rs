//! Benchmark, run by hand (ignored by `cargo test`): collect 10 minions through Salt and
//! the same 10 "hosts" over SSH (a loopback sshd, as `benches/ssh_collect.rs`) in the same
//! run, with the wall time and opsbot's CPU (this process plus the `ssh` clients it ran)
//! per asset:
//!
//! `cargo test -p opsbot-cmdb --test salt_bench -- --ignored --nocapture`
//!
//! A debug build: opsbot's own CPU figures are upper bounds (a release build parses
//! faster); the wall times are dominated by salt and ssh.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "sshd/mod.rs"]
mod sshd;

use opsbot_cmdb::config::SaltConfig;
use opsbot_cmdb::salt::{self, MinionOutcome, SaltSettings};
use opsbot_cmdb::ssh::{self, SshSettings, SshTarget};
use opsbot_testkit::salt::SaltLab;
use serde_json::json;
use std::time::{Duration, Instant};

/// User + system CPU of this process and its waited-for children, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) in its parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14–17 of the line, 12–15 after the name.
    let ticks: u64 = f[11] + f[12] + f[13] + f[14];
    ticks as f64 / 100.0
}

#[test]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
fn ten_minions_through_salt_and_ten_hosts_over_ssh() {
    const N: usize = 10;
    let ids: Vec<String> = (0..N).map(|i| format!("bench-{i:02}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let started = Instant::now();
    let Some(lab) = SaltLab::start("salt_bench", &id_refs) else {
        return;
    };
    println!(
        "salt lab with {N} minions ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let Some(sshd) = sshd::Sshd::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = SaltConfig {
        api: Some(
            serde_json::from_value(json!({
                "url": lab.api_url(), "username": lab.user(), "password": lab.password(),
            }))
            .unwrap(),
        ),
        timeout: "30s".into(),
        ..SaltConfig::default()
    };
    let s = SaltSettings::from_config(&cfg).unwrap().unwrap();
    let ssh_settings = SshSettings {
        command: "ssh".into(),
        key: sshd.key.clone(),
        known_hosts: sshd.known_hosts.clone(),
        timeout: Duration::from_secs(30),
        concurrency: 10,
        disabled: Vec::new(),
    };
    let targets: Vec<SshTarget> = ids
        .iter()
        .map(|id| SshTarget {
            name: id.clone(),
            host: "127.0.0.1".into(),
            port: sshd.port,
            user: sshd.user.clone(),
        })
        .collect();
    for run in 0..3 {
        let (cpu, t) = (cpu_seconds(), Instant::now());
        let got = rt.block_on(salt::collect(&s)).unwrap();
        let (wall, used) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let ok = got
            .iter()
            .filter(|r| matches!(r.outcome, MinionOutcome::Collected(_)))
            .count();
        println!(
            "salt run {run}: {ok}/{N} minions in {wall:.2} s; opsbot CPU {:.1} ms per asset",
            used * 1000.0 / N as f64
        );
        let (cpu, t) = (cpu_seconds(), Instant::now());
        let got = rt.block_on(ssh::collect_all(&ssh_settings, &targets));
        let (wall, used) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let ok = got.iter().filter(|(_, r)| r.is_ok()).count();
        println!(
            "ssh  run {run}: {ok}/{N} hosts   in {wall:.2} s; opsbot CPU {:.1} ms per asset (with the ssh clients)",
            used * 1000.0 / N as f64
        );
    }
}
