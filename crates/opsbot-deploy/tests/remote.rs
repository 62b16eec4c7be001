//! The SSH transport and the host steps against real OpenSSH servers, each in its own
//! network namespace with its own `/srv` ([`opsbot_testkit::hosts`]): the deployed app
//! is a real `python3 -m http.server` and its health check a real request.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_deploy::log::{Collect, Discard};
use opsbot_deploy::remote::{self, Layout, StepError};
use opsbot_deploy::ssh::{Session, SshError, SshOptions};
use opsbot_deploy::transport::Artefact;
use opsbot_testkit::hosts::{Host, Hosts};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(60);

fn opts(h: &Hosts, control: &Path) -> SshOptions {
    SshOptions {
        key: Some(h.key.clone()),
        known_hosts: Some(h.known_hosts.clone()),
        connect_timeout: Duration::from_secs(5),
        ..SshOptions::new(h.user(), control)
    }
}

/// A short socket directory (sockets have a 108-byte path limit).
fn control_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("obc")
        .tempdir_in("/tmp")
        .unwrap()
}

/// `files` (path, content) packed as a `.tar.gz` in `dir`.
fn artefact(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let stage = dir.join(format!("{name}.d"));
    for (path, content) in files {
        let p = stage.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let out = dir.join(format!("{name}.tar.gz"));
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&stage)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar");
    out
}

/// The artefact at `path`, hashed as the release hashes it.
fn packed(path: &Path) -> Artefact {
    Artefact::from_file(path).unwrap()
}

/// Bytes gzip cannot shrink (xorshift), so sizes on disk are real.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[track_caller]
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve_app(host: &Host) -> u32 {
    host.spawn_bg("exec python3 -m http.server 8000 --bind 0.0.0.0 --directory /srv/app/current")
}

/// Healthy when the app serves `version` in index.html.
fn health_for(version: &str) -> String {
    format!(
        "python3 -c 'import sys, urllib.request as u; \
         b = u.urlopen(\"http://127.0.0.1:8000/index.html\", timeout=2).read(); \
         sys.exit(0 if b.strip() == b\"{version}\" else 1)'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_switch_and_health_on_three_hosts() {
    let Some(hosts) = Hosts::start(3) else { return };
    let work = tempfile::tempdir().unwrap();
    let v1 = artefact(
        work.path(),
        "v1",
        &[("index.html", b"v1\n"), ("bin/run", b"#!/bin/sh\n")],
    );
    let v2 = artefact(work.path(), "v2", &[("index.html", b"v2\n")]);
    let control = control_dir();
    let o = opts(&hosts, control.path());
    let layout = Layout::new("/srv/app");

    let sessions: Vec<Session> =
        futures::future::try_join_all(hosts.iter().map(|h| Session::connect(&h.address, &o)))
            .await
            .unwrap();
    for s in &sessions {
        assert_eq!(remote::current(s, &layout).await.unwrap(), None);
        assert_eq!(
            remote::versions(s, &layout).await.unwrap(),
            Vec::<i64>::new()
        );
    }
    let release = |id: i64, art: PathBuf, version: &'static str| {
        let (sessions, layout) = (&sessions, &layout);
        async move {
            futures::future::try_join_all(sessions.iter().map(|s| {
                let art = art.clone();
                async move {
                    let log = Collect::default();
                    remote::upload(s, layout, id, &packed(&art), STEP, &log).await?;
                    remote::switch(s, layout, id, STEP).await?;
                    remote::health_command(
                        s,
                        layout,
                        &health_for(version),
                        Duration::from_secs(5),
                        50,
                        Duration::from_millis(100),
                        &log,
                    )
                    .await
                }
            }))
            .await
        }
    };
    // The app serves `current`, whatever it points at when a request comes; until the
    // first release it answers 404 and the health check tries again.
    for h in hosts.iter() {
        serve_app(h);
    }
    release(1, v1, "v1").await.unwrap();
    release(2, v2, "v2").await.unwrap();
    for (s, h) in sessions.iter().zip(hosts.iter()) {
        assert_eq!(remote::current(s, &layout).await.unwrap(), Some(2));
        assert_eq!(remote::versions(s, &layout).await.unwrap(), vec![1, 2]);
        assert_eq!(h.run_ok("readlink /srv/app/current"), "releases/2\n");
        assert_eq!(h.run_ok("cat /srv/app/releases/1/index.html"), "v1\n");
        assert_eq!(h.run_ok("ls -A /srv/app/releases"), "1\n2\n");
    }
    // Each host's files are its own: nothing reached this machine's /srv.
    assert!(!Path::new("/srv/app/releases/2").exists());
    // A health check that never passes fails after its retries with the command's code.
    let err = remote::health_command(
        &sessions[0],
        &layout,
        "echo unhealthy; exit 7",
        Duration::from_secs(5),
        2,
        Duration::from_millis(10),
        &Discard,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, StepError::Exit { step: "health", code: 7, tail } if tail.contains("unhealthy")),
        "{err:?}"
    );
    // Switching to a release the host does not have is refused, `current` untouched.
    let err = remote::switch(&sessions[0], &layout, 9, STEP)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StepError::Exit { step: "switch", code: 3, tail } if tail.contains("releases/9 is not on this host")),
        "{err:?}"
    );
    assert_eq!(
        remote::current(&sessions[0], &layout).await.unwrap(),
        Some(2)
    );
    // Re-uploading an existing id replaces it.
    let v2b = artefact(work.path(), "v2b", &[("index.html", b"v2b\n")]);
    remote::upload(&sessions[0], &layout, 2, &packed(&v2b), STEP, &Discard)
        .await
        .unwrap();
    assert_eq!(
        hosts.host(0).run_ok("cat /srv/app/current/index.html"),
        "v2b\n"
    );
    assert_eq!(hosts.host(0).run_ok("ls -A /srv/app/releases"), "1\n2\n");
    // A corrupt artefact fails and leaves no half release behind.
    let bad = work.path().join("bad.tar.gz");
    std::fs::write(&bad, noise(10_000, 3)).unwrap();
    let err = remote::upload(&sessions[0], &layout, 3, &packed(&bad), STEP, &Discard)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StepError::Exit { step: "upload", .. }),
        "{err:?}"
    );
    assert_eq!(hosts.host(0).run_ok("ls -A /srv/app/releases"), "1\n2\n");
}

#[tokio::test]
async fn switching_never_leaves_a_moment_without_current() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let work = tempfile::tempdir().unwrap();
    let control = control_dir();
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    let layout = Layout::new("/srv/app");
    for id in [1, 2] {
        let a = artefact(work.path(), &format!("v{id}"), &[("index.html", b"x")]);
        remote::upload(&s, &layout, id, &packed(&a), STEP, &Discard)
            .await
            .unwrap();
    }
    remote::switch(&s, &layout, 1, STEP).await.unwrap();
    h.spawn_bg(
        "n=0; while [ ! -e /srv/stop ]; do \
           [ -e /srv/app/current/index.html ] || echo \"missing at $n\" >> /srv/missing; \
           n=$((n+1)); done; echo $n > /srv/reads",
    );
    for i in 0..200 {
        remote::switch(&s, &layout, 1 + (i % 2), STEP)
            .await
            .unwrap();
    }
    h.run_ok("touch /srv/stop");
    wait_until("the reader to stop", Duration::from_secs(30), || {
        h.run("test -s /srv/reads").status.success()
    });
    let reads: u64 = h.run_ok("cat /srv/reads").trim().parse().unwrap();
    assert!(reads > 0);
    assert_eq!(h.run_ok("cat /srv/missing 2>/dev/null || true"), "");
    // No temporary link is left behind; 200 switches, one login.
    assert_eq!(h.run_ok("ls -A /srv/app"), "current\nreleases\n");
    assert_eq!(remote::current(&s, &layout).await.unwrap(), Some(2));
    assert_eq!(h.logins(), 1, "{}", h.sshd_log());
}

#[tokio::test]
async fn prune_keeps_the_newest_and_never_current_or_protected() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let work = tempfile::tempdir().unwrap();
    let control = control_dir();
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    let layout = Layout::new("/srv/app");
    let a = artefact(work.path(), "a", &[("index.html", b"a")]);
    for id in 1..=6 {
        remote::upload(&s, &layout, id, &packed(&a), STEP, &Discard)
            .await
            .unwrap();
    }
    remote::switch(&s, &layout, 2, STEP).await.unwrap();
    let log = Collect::default();
    assert_eq!(
        remote::prune(&s, &layout, 3, &[], &log).await.unwrap(),
        vec![1, 3]
    );
    assert_eq!(
        remote::versions(&s, &layout).await.unwrap(),
        vec![2, 4, 5, 6]
    );
    assert_eq!(log.lines(), ["removing releases 1 3"]);
    assert_eq!(
        remote::prune(&s, &layout, 1, &[4], &Discard).await.unwrap(),
        vec![5]
    );
    assert_eq!(remote::versions(&s, &layout).await.unwrap(), vec![2, 4, 6]);
    assert_eq!(
        remote::prune(&s, &layout, 5, &[], &Discard).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(h.run_ok("readlink /srv/app/current"), "releases/2\n");
}

#[tokio::test]
async fn unknown_changed_and_unauthorised_keys_are_refused_and_named() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let work = tempfile::tempdir().unwrap();
    let control = control_dir();
    let stranger = work.path().join("stranger");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let pubkey = std::fs::read_to_string(stranger.with_extension("pub")).unwrap();
    let mut w = pubkey.split_whitespace();
    let changed = work.path().join("changed");
    std::fs::write(
        &changed,
        format!(
            "{} {} {}\n",
            h.address,
            w.next().unwrap(),
            w.next().unwrap()
        ),
    )
    .unwrap();
    let empty = work.path().join("empty");
    std::fs::write(&empty, "").unwrap();

    let base = opts(&hosts, control.path());
    let with_known = |kh: &Path| SshOptions {
        known_hosts: Some(kh.to_path_buf()),
        ..base.clone()
    };
    let err = Session::connect(&h.address, &with_known(&changed))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        SshError::HostKeyChanged {
            address: h.address.clone()
        }
    );
    assert!(err.to_string().contains(&h.address) && err.to_string().contains("CHANGED"));
    let err = Session::connect(&h.address, &with_known(&empty))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        SshError::HostKeyUnknown {
            address: h.address.clone()
        }
    );
    let wrong_key = SshOptions {
        key: Some(stranger.clone()),
        ..base.clone()
    };
    let err = Session::connect(&h.address, &wrong_key)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, SshError::AuthRefused { address, .. } if *address == h.address),
        "{err:?}"
    );
    assert_eq!(h.logins(), 0);
    // No socket is left behind by failed logins.
    assert_eq!(std::fs::read_dir(control.path()).unwrap().count(), 0);
}

/// `[deploy] ssh_options` reach the client: curve25519 preferred still logs in and runs
/// steps, and a key exchange the server does not offer fails the login, named.
#[tokio::test]
async fn extra_ssh_options_reach_the_client() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let control = control_dir();
    let classic = SshOptions {
        extra: vec!["KexAlgorithms=^curve25519-sha256".into()],
        ..opts(&hosts, control.path())
    };
    let s = Session::connect(&h.address, &classic).await.unwrap();
    let out = s.exec("echo step-ran", STEP, &Discard).await.unwrap();
    assert_eq!((out.code, out.tail.trim()), (0, "step-ran"));
    s.close().await;
    let unoffered = SshOptions {
        extra: vec!["KexAlgorithms=diffie-hellman-group1-sha1".into()],
        ..opts(&hosts, control.path())
    };
    // OpenSSH says why only at LogLevel INFO (the transport runs ERROR): the login
    // fails, named, and no login reaches the host.
    let err = Session::connect(&h.address, &unoffered)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().starts_with(&h.address), "{err}");
    assert_eq!(h.logins(), 1);
}

#[tokio::test]
async fn unreachable_and_closed_addresses_fail_fast_and_named() {
    let Some(hosts) = Hosts::start(1) else { return };
    let control = control_dir();
    let o = SshOptions {
        connect_timeout: Duration::from_secs(2),
        ..opts(&hosts, control.path())
    };
    let nowhere = hosts.unused_address();
    let err = Session::connect(&nowhere, &o).await.err().unwrap();
    assert!(
        matches!(&err, SshError::Unreachable { address, .. } | SshError::Timeout { address, .. } if *address == nowhere),
        "{err:?}"
    );
    let closed = SshOptions {
        port: 2222,
        ..o.clone()
    };
    let err = Session::connect(&hosts.host(0).address, &closed)
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        SshError::Refused {
            address: hosts.host(0).address.clone(),
            port: 2222
        }
    );
    assert!(err.to_string().contains(&hosts.host(0).address));
    let err = Session::connect("-oProxyCommand=x", &o)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SshError::Failed { .. }), "{err:?}");
}

#[tokio::test]
async fn a_full_disk_is_named_and_leaves_nothing_behind() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    h.run_ok("mkdir -p /srv/tiny && mount -t tmpfs -o size=1m opsbot-tiny /srv/tiny");
    let work = tempfile::tempdir().unwrap();
    let big = artefact(work.path(), "big", &[("blob", &noise(3 << 20, 7))]);
    let control = control_dir();
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    let layout = Layout::new("/srv/tiny/app");
    let err = remote::upload(&s, &layout, 1, &packed(&big), STEP, &Discard)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StepError::DiskFull { tail } if tail.contains("No space left on device")),
        "{err:?}"
    );
    assert_eq!(h.run_ok("ls -A /srv/tiny/app/releases"), "");
    // The space is back: a small release fits.
    let small = artefact(work.path(), "small", &[("index.html", b"ok")]);
    remote::upload(&s, &layout, 2, &packed(&small), STEP, &Discard)
        .await
        .unwrap();
    assert_eq!(remote::versions(&s, &layout).await.unwrap(), vec![2]);
}

#[tokio::test]
async fn a_hook_past_its_time_is_killed_on_the_host() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let control = control_dir();
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    let layout = Layout::new("/srv/app");
    let err = remote::hook(
        &s,
        &layout,
        1,
        "before_host",
        "echo $$ > /srv/hook.pid; sleep 300 & echo $! > /srv/child.pid; wait; touch /srv/late",
        &[],
        Duration::from_secs(1),
        &Discard,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        StepError::Timeout {
            step: "before_host"
        }
    );
    let pid = h.run_ok("cat /srv/hook.pid").trim().to_string();
    wait_until("the hook to die", Duration::from_secs(20), || {
        !h.run(&format!("kill -0 {pid}")).status.success()
    });
    assert!(!h.run("test -e /srv/late").status.success());
    // Its child (`sleep 300`) went with it: nothing of the hook runs on. (By its pid:
    // the hosts share this machine's process table.)
    let child = h.run_ok("cat /srv/child.pid").trim().to_string();
    wait_until("the hook's child to die", Duration::from_secs(20), || {
        // Gone, or a zombie nobody reaps here (this machine's pid 1 does not).
        let stat = h.run(&format!("ps -o stat= -p {child}"));
        let stat = String::from_utf8_lossy(&stat.stdout);
        stat.trim().is_empty() || stat.trim_start().starts_with('Z')
    });
    // The session goes on.
    let out = s.exec("echo still here", STEP, &Discard).await.unwrap();
    assert_eq!((out.code, out.tail.as_str()), (0, "still here"));
    let err = s
        .exec("sleep 300", Duration::from_secs(1), &Discard)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn hostile_values_reach_the_hook_as_plain_text() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let control = control_dir();
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    let hostile = [
        "it's",
        "$(touch /srv/pwned)",
        "`touch /srv/pwned2`",
        "a\nb\n; touch /srv/pwned3",
        "\"; touch /srv/pwned4; \"",
        "\\' -- $HOME *",
    ];
    let env: Vec<(String, String)> = hostile
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("OPSBOT_V{i}"), v.to_string()))
        .collect();
    let root = "/srv/it's $(touch /srv/pwned5) a\nroot";
    let layout = Layout::new(root);
    let log = Collect::default();
    remote::hook(
        &s,
        &layout,
        1,
        "before_host",
        "for i in 0 1 2 3 4 5; do eval \"printf %s \\\"\\$OPSBOT_V$i\\\"\" > /srv/v$i; done; pwd",
        &env,
        STEP,
        &log,
    )
    .await
    .unwrap();
    for (i, v) in hostile.iter().enumerate() {
        assert_eq!(h.run_ok(&format!("cat /srv/v{i}")), *v, "value {i}");
    }
    assert_eq!(log.lines(), ["/srv/it's $(touch /srv/pwned5) a", "root"]);
    assert_eq!(h.run_ok("ls /srv | grep pwned || true"), "");
    // A hostile variable name is refused before anything runs.
    let bad = [("A=1; touch /srv/pwned6; B".to_string(), "x".to_string())];
    let err = remote::hook(&s, &layout, 1, "before_host", "true", &bad, STEP, &Discard)
        .await
        .unwrap_err();
    assert!(matches!(err, StepError::Invalid(_)), "{err:?}");
    // The hostile root works as a layout like any other.
    let work = tempfile::tempdir().unwrap();
    let a = artefact(work.path(), "a", &[("index.html", b"a")]);
    remote::upload(&s, &layout, 1, &packed(&a), STEP, &Discard)
        .await
        .unwrap();
    remote::switch(&s, &layout, 1, STEP).await.unwrap();
    assert_eq!(remote::current(&s, &layout).await.unwrap(), Some(1));
    assert_eq!(h.run_ok("ls /srv | grep pwned || true"), "");
}

#[tokio::test]
async fn many_steps_share_one_login_and_output_streams_line_by_line() {
    let Some(hosts) = Hosts::start(1) else { return };
    let h = hosts.host(0);
    let control = control_dir();
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    let log = Collect::default();
    let out = s
        .exec(
            "echo one; echo two >&2; printf 'no newline'; exit 3",
            STEP,
            &log,
        )
        .await
        .unwrap();
    assert_eq!(out.code, 3);
    let mut lines = log.lines();
    lines.sort();
    assert_eq!(lines, ["no newline", "one", "two"]);
    let out = s.exec("seq 1 100", STEP, &Discard).await.unwrap();
    let want: Vec<String> = (81..=100).map(|i| i.to_string()).collect();
    assert_eq!(out.tail, want.join("\n"));

    let steps = 200;
    let started = Instant::now();
    for _ in 0..steps {
        assert_eq!(s.exec("true", STEP, &Discard).await.unwrap().code, 0);
    }
    let per_step = started.elapsed() / steps;
    eprintln!("one exec over the master: {per_step:?} (mean of {steps})");
    assert_eq!(h.logins(), 1, "{}", h.sshd_log());

    // Closing stops the master: the host sees the connection go.
    s.close().await;
    wait_until("the connection to close", Duration::from_secs(20), || {
        h.run_ok("ss -Htn state established '( sport = :22 )'")
            .trim()
            .is_empty()
    });
    assert_eq!(std::fs::read_dir(control.path()).unwrap().count(), 0);
    // Dropping a session does the same.
    let s = Session::connect(&h.address, &opts(&hosts, control.path()))
        .await
        .unwrap();
    drop(s);
    wait_until(
        "the dropped session's connection to close",
        Duration::from_secs(20),
        || {
            h.run_ok("ss -Htn state established '( sport = :22 )'")
                .trim()
                .is_empty()
        },
    );
    assert_eq!(h.logins(), 2);
}
