//! Agentless collection against a real OpenSSH server on loopback: the facts equal a
//! local collection of the same machine; refused, hanging, unknown-key and changed-key
//! hosts fail alone with a clear reason; a mixed run stores what it could.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

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
    let ingestor = Ingestor::start(store.clone(), store.clone(), 64);
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

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// Real mounts of every kind that once made the two ways disagree: `ip netns add`
/// (which bind-mounts /run/netns onto itself and puts an nsfs mount in it), bind
/// mounts of a directory, of a file and onto a path with a space, tmpfs, overlay. They
/// are made in a private mount namespace, so neither the machine nor the tests running
/// beside this one see them; inside it, local collection, the script under `sh` and
/// the script through sshd must report the same facts.
#[test]
fn real_bind_tmpfs_overlay_and_nsfs_mounts_look_the_same_over_ssh_and_locally() {
    for program in ["unshare", "mount", "ip"] {
        if opsbot_testkit::find_program(program).is_none() {
            return opsbot_testkit::skip::<()>(
                format!("no {program} on PATH"),
                "install: apt-get install util-linux mount iproute2",
            )
            .unwrap_or_default();
        }
    }
    if !is_root() {
        return opsbot_testkit::skip::<()>(
            "making mounts and network namespaces needs root",
            opsbot_testkit::fix::ROOT,
        )
        .unwrap_or_default();
    }
    let dir = tempfile::tempdir().unwrap();
    let netns = format!("opsbot-test-{}", std::process::id());
    let setup = r#"set -e
d=$OPSBOT_TEST_MOUNTS
mkdir -p "$d/src" "$d/bind" "$d/with space" "$d/tmp" "$d/lower" "$d/upper" "$d/work" "$d/over"
: > "$d/file"; : > "$d/file-bind"; : > "$d/ns"
mount --bind "$d/src" "$d/bind"
mount --bind "$d/src" "$d/with space"
mount --bind "$d/file" "$d/file-bind"
mount -t tmpfs tmpfs "$d/tmp"
mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/over"
mount --bind /proc/self/ns/net "$d/ns"
ip netns add "$OPSBOT_TEST_NETNS"
set +e
"$@"
rc=$?
ip netns del "$OPSBOT_TEST_NETNS"
exit $rc
"#;
    let out = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            setup,
            "sh",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "inside_a_private_mount_namespace",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OPSBOT_TEST_MOUNTS", dir.path())
        .env("OPSBOT_TEST_NETNS", &netns)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 passed"), "the inner test ran: {said}");
    assert!(
        !std::path::Path::new("/run/netns").join(&netns).exists(),
        "the network namespace is cleaned up"
    );
}

/// The inside of the test above (run by it, in its private mount namespace).
#[tokio::test]
#[ignore = "run by real_bind_tmpfs_overlay_and_nsfs_mounts_look_the_same_over_ssh_and_locally"]
async fn inside_a_private_mount_namespace() {
    let d = std::env::var("OPSBOT_TEST_MOUNTS").expect("run by the test above");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    for m in [
        "/bind",
        "/with\\040space",
        "/file-bind",
        "/tmp",
        "/over",
        "/ns",
    ] {
        assert!(
            mounts.contains(&format!("{d}{m} ")),
            "{m} not mounted:\n{mounts}"
        );
    }
    assert!(mounts.contains(" /run/netns "), "{mounts}");
    let local = collect::collect(&FsSource::live(), &[], None);
    let facts = local.facts();
    // Where the temp dir's filesystem is a real one, its bind mounts are facts with a
    // size (what `df` left out).
    if facts.contains_key(&format!("fs.{d}/bind.device")) {
        for m in ["bind", "with space", "file-bind"] {
            assert!(
                facts.contains_key(&format!("fs.{d}/{m}.size_bytes")),
                "{m}: {facts:?}"
            );
        }
    }
    for m in ["tmp", "over", "ns"] {
        assert!(!facts.contains_key(&format!("fs.{d}/{m}.fstype")), "{m}");
    }

    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(ssh::script())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let snap = ssh::parse_snapshot(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let scripted = collect::collect(&snap, &[], None);
    assert_eq!(scripted.facts(), facts, "the script under sh");
    assert_eq!(scripted.problems, local.problems);

    let Some(s) = sshd::Sshd::start() else { return };
    let over_ssh = ssh::collect_one(
        &settings(&s, Duration::from_secs(20)),
        &target(&s, "here", s.port),
    )
    .await
    .unwrap();
    assert_eq!(over_ssh.facts(), facts, "the script through sshd");
}
