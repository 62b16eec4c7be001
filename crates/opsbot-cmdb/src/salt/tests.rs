//! Reports from a minion's answer, over the fixture tree the agent's collectors are
//! tested on: the snapshot script runs here under `sh` as the minion would run it.

use super::*;
use crate::source::FsSource;
use crate::ssh::script_at;
use serde_json::json;

fn fixture() -> String {
    format!("{}/tests/fixtures/server", env!("CARGO_MANIFEST_DIR"))
}

/// What `cmd.run_all` of the script would answer on a minion whose `/` is the fixture.
fn run_script(root: &str) -> RunAll {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script_at(root))
        .output()
        .unwrap();
    RunAll {
        retcode: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn grains(id: &str) -> Value {
    json!({
        "id": id, "os": "Debian", "osrelease": "12", "osfullname": "Debian",
        "kernelrelease": "6.1.0-18-amd64", "cpuarch": "x86_64", "num_cpus": 4,
        "cpu_model": "Intel(R) Xeon(R)", "mem_total": 7951, "swap_total": 0,
        "roles": ["web", "db"], "saltversion": "3007.8", "os_family": "Debian",
        "ipv4": ["127.0.0.1"],
    })
}

fn keep() -> Vec<String> {
    vec!["roles".into(), "saltversion".into(), "os_family".into()]
}

#[test]
fn a_minion_reads_as_the_agent_reads_the_same_host() {
    let root = fixture();
    let agent_report = collect::collect(&FsSource::at(&root), &[], Some("web-01"));
    let salt_report = report_of(
        "web-01",
        &grains("web-01"),
        &run_script(&root),
        &[],
        &keep(),
    )
    .unwrap();
    assert_eq!(salt_report.hostname, agent_report.hostname);
    assert_eq!(salt_report.identity, "web-01");
    let (agent, salt) = (agent_report.facts(), salt_report.facts());
    let common: Vec<&String> = agent.keys().collect();
    assert!(
        ["os.", "cpu.", "memory.", "fs.", "nic.", "disk.", "board."]
            .iter()
            .all(|p| common.iter().any(|k| k.starts_with(p))),
        "the fixture covers every area: {common:?}"
    );
    for k in common {
        assert_eq!(salt.get(k), agent.get(k), "fact {k}");
    }
    // Beside them, the grains asked for.
    assert_eq!(salt["plugin.salt.roles"], "web,db");
    assert_eq!(salt["plugin.salt.saltversion"], "3007.8");
}

#[test]
fn grains_fill_what_the_files_do_not_tell() {
    let run = run_script("/nonexistent-opsbot-root");
    let r = report_of("bare", &grains("bare"), &run, &[], &[]).unwrap();
    assert_eq!(r.identity, "bare");
    let os = r.os.unwrap();
    assert_eq!(
        (os.name.as_str(), os.kernel.as_str()),
        ("Debian", "6.1.0-18-amd64")
    );
    assert_eq!(r.cpu.unwrap().threads, 4);
    assert_eq!(r.memory.unwrap().total_bytes, 7951 * 1024 * 1024);
    assert!(r.plugins.is_empty());
}

#[test]
fn malformed_or_partial_answers_are_refused_with_the_reason() {
    let run = run_script(&fixture());
    let mut g = grains("m1");
    g["num_cpus"] = json!("lots");
    let why = report_of("m1", &g, &run, &[], &[]).unwrap_err();
    assert!(why.contains("num_cpus") && why.contains("lots"), "{why}");
    let why = report_of(
        "m1",
        &json!("'grains.items' is not available."),
        &run,
        &[],
        &[],
    )
    .unwrap_err();
    assert!(why.contains("not the grains"), "{why}");
    let why = report_of("m1", &grains("m2"), &run, &[], &[]).unwrap_err();
    assert!(why.contains("not the minion id"), "{why}");
    let mut g = grains("m1");
    g["kernelrelease"] = json!({"x": 1});
    assert!(report_of("m1", &g, &run, &[], &[])
        .unwrap_err()
        .contains("kernelrelease"));
    // The script's output cut short (a minion killed mid-run, a full disk).
    let cut = RunAll {
        retcode: 1,
        stdout: run.stdout[..run.stdout.len() / 2].to_string(),
        stderr: "sh: write error".into(),
    };
    let why = report_of("m1", &grains("m1"), &cut, &[], &[]).unwrap_err();
    assert!(
        why.contains("did not finish") && why.contains("write error"),
        "{why}"
    );
    assert!(report_of("-x", &grains("-x"), &run, &[], &[]).is_err());
}
