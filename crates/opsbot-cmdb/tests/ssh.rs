//! Agentless collection against a real OpenSSH server on loopback: the facts equal a
//! local collection of the same machine; refused, hanging, unknown-key and changed-key
//! hosts fail alone with a clear reason; a mixed run stores what it could.

#[path = "sshd/mod.rs"]
mod sshd;

use opsbot_cmdb::collect;
use opsbot_cmdb::ingest::Ingestor;
use opsbot_cmdb::source::FsSource;
use opsbot_cmdb::ssh::{self, SshError, SshSettings, SshTarget};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn settings(s: &sshd::Sshd, timeout: Duration) -> SshSettings {
    SshSettings {
        command: "ssh".into(),
        key: s.key.clone(),
        known_hosts: s.known_hosts.clone(),
        timeout,
        concurrency: 4,
        disabled: Vec::new(),
    }
}

fn target(s: &sshd::Sshd, name: &str, port: u16) -> SshTarget {
    SshTarget {
        name: name.into(),
        host: "127.0.0.1".into(),
        port,
        user: s.user.clone(),
    }
}

/// A host that accepts connections and then says nothing.
fn silent_host() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && held.len() < 8 {
            match l.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, h)
}

#[tokio::test]
async fn collects_the_same_facts_as_the_agent_would() {
    let Some(s) = sshd::Sshd::start() else { return };
    let report = ssh::collect_one(
        &settings(&s, Duration::from_secs(20)),
        &target(&s, "Loopback-Host", s.port),
    )
    .await
    .unwrap();
    assert_eq!(report.identity, "loopback-host");
    let local = collect::collect(&FsSource::live(), &[], None);
    assert_eq!(report.hostname, local.hostname);
    assert_eq!(report.facts(), local.facts());
}

#[tokio::test]
async fn refused_hanging_unknown_and_changed_keys_fail_clearly() {
    let Some(s) = sshd::Sshd::start() else { return };
    let set = settings(&s, Duration::from_secs(3));
    let closed = sshd::free_port();
    let e = ssh::collect_one(&set, &target(&s, "closed", closed))
        .await
        .unwrap_err();
    assert_eq!(e, SshError::Refused);

    let (silent, _h) = silent_host();
    let started = Instant::now();
    let e = ssh::collect_one(&set, &target(&s, "silent", silent))
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::Timeout(_)), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the per-host timeout held"
    );

    // known_hosts lists another key for this host: a man in the middle, or a rebuild.
    let other = s.dir.path().join("other_host_key");
    sshd::keygen(&other);
    let changed = s.dir.path().join("known_hosts_changed");
    std::fs::write(
        &changed,
        sshd::known_hosts_line(s.port, &other.with_extension("pub")),
    )
    .unwrap();
    let mut set2 = set.clone();
    set2.known_hosts = changed;
    let e = ssh::collect_one(&set2, &target(&s, "changed", s.port))
        .await
        .unwrap_err();
    assert_eq!(e, SshError::HostKeyChanged, "{e}");
    assert!(e.to_string().contains("CHANGED"));

    let empty = s.dir.path().join("known_hosts_empty");
    std::fs::write(&empty, "").unwrap();
    set2.known_hosts = empty;
    let e = ssh::collect_one(&set2, &target(&s, "unknown", s.port))
        .await
        .unwrap_err();
    assert_eq!(e, SshError::HostKeyUnknown, "{e}");

    let mut set3 = set.clone();
    let stranger = s.dir.path().join("stranger_key");
    sshd::keygen(&stranger);
    set3.key = stranger;
    let e = ssh::collect_one(&set3, &target(&s, "stranger", s.port))
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::AuthFailed(_)), "{e:?}");
}

#[tokio::test]
async fn a_mixed_run_stores_the_good_hosts_and_reports_the_rest() {
    let Some(s) = sshd::Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = opsbot_store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let ingestor = Ingestor::start(store.clone(), 64);
    let (silent, _h) = silent_host();
    let targets = vec![
        target(&s, "good-1", s.port),
        target(&s, "closed", sshd::free_port()),
        target(&s, "silent", silent),
        target(&s, "good-2", s.port),
    ];
    let results = ssh::collect_and_store(
        &settings(&s, Duration::from_secs(3)),
        &targets,
        &ingestor,
        "ssh:test",
    )
    .await;
    let names: Vec<&str> = results.iter().map(|c| c.target.name.as_str()).collect();
    assert_eq!(
        names,
        ["good-1", "closed", "silent", "good-2"],
        "in the targets' order"
    );
    assert!(results[0].result.as_ref().unwrap().created);
    assert!(results[1].result.as_ref().unwrap_err().contains("refused"));
    assert!(results[2]
        .result
        .as_ref()
        .unwrap_err()
        .contains("no answer"));
    assert!(results[3].result.is_ok());
    let a = store.asset_find("good-2").await.unwrap().unwrap();
    assert_eq!(a.source, "ssh");
    assert!(store.asset_find("closed").await.unwrap().is_none());
    // A second run changes nothing on an unchanged host.
    let again = ssh::collect_and_store(
        &settings(&s, Duration::from_secs(10)),
        &targets[..1],
        &ingestor,
        "ssh:test",
    )
    .await;
    let r = again[0].result.as_ref().unwrap();
    assert!(!r.created);
    assert!(r.changes.is_empty(), "{:?}", r.changes);
}
