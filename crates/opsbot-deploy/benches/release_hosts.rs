//! A release of a 20 MB artefact to 20 network-namespace hosts, 10 at a time, each
//! running a real app (`python3 -m http.server` on `current`) checked by a health
//! command: opsbot's real order path — a release order (待发布, one batch) in a SQLite
//! store, run by [`opsbot_deploy::release::run`] with its store writes, host log, prune
//! and records — against the same per-host steps called directly (connect, upload,
//! switch, health: the order's overhead is the difference), then a rollback order of
//! the 20 hosts to the first release (a re-link: the release is still there), against
//! Debian's Ansible running `tools/bench/ansible/release.yml` on the same hosts (its
//! default ssh_args, then without `-C`) and the floor (a plain `ssh host tar -xzf -` per
//! host). All of it twice in one run: OpenSSH's default key exchange, then `[deploy]
//! ssh_options = ["KexAlgorithms=^curve25519-sha256"]` (Ansible and the floor given
//! the same option). Last, the cost of one step over an open master.
//!
//! `cargo bench -p opsbot-deploy --bench release_hosts` (as root; needs sshd, python3,
//! curl, and ansible for the comparison: `apt-get install -y ansible`).
//!
//! Measured on the 2-core CI machine (release build, Debian 12's OpenSSH 9.2 and
//! ansible-core 2.14), two runs, both while other builds kept the load average at 4–12
//! (so every figure is high and noisy; ratios within a run are the fairer read):
//!
//! | 20 hosts, parallel 10            | default KEX (sntrup761) | `^curve25519-sha256` |
//! |----------------------------------|-------------------------|----------------------|
//! | release order (better of two)    | 6.77–8.87 s             | 5.79–5.97 s          |
//! | same steps called directly       | 6.27–7.97 s             | 5.12–5.68 s          |
//! | order overhead                   | +0.50–0.91 s (8–11%)    | +0.29–0.67 s (5–13%) |
//! | rollback order (re-link, health) | 2.68–3.54 s             | 1.23–1.63 s          |
//! | same re-link called directly     | 2.63–2.76 s             | 0.89–1.02 s          |
//! | floor (plain ssh + tar)          | 6.31–7.92 s             | 4.51–5.51 s          |
//! | Ansible, default ssh_args (-C)   | 40.3–44.3 s (5.0–6.0×)  | 33.7–38.4 s (5.8–6.4×) |
//! | Ansible without -C               | 33.8–38.2 s (4.3–5.0×)  | 31.8–34.7 s (5.5–5.8×) |
//!
//! (× = Ansible / the opsbot order.) The first order of a run is slower still (10.1–10.8 s
//! with the default KEX: cold sshd and page cache). Per host the connect is 0.8–1.1 s
//! with the default key exchange and 0.2–0.3 s with curve25519, so the rollback target
//! (< 2 s for 20 hosts) is met only with `ssh_options = ["KexAlgorithms=^curve25519-
//! sha256"]`. The order's own overhead per host (0.2–0.4 s) is what it does beyond the
//! direct steps, not timed apart: three more steps (read `current`, list releases,
//! prune: ~20 ms each over the master here) and its SQLite writes (host state and step,
//! log, deployed). One step over an open master: 17–23 ms.
#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed run, with its line

use futures::StreamExt;
use opsbot_core::chat::JobReport;
use opsbot_deploy::log::Discard;
use opsbot_deploy::model::OrderState;
use opsbot_deploy::remote::{self, Layout};
use opsbot_deploy::ssh::{Session, SshOptions};
use opsbot_deploy::{DeployConfig, Deploys, Project};
use opsbot_store::deploy::{BuildEnd, NewBuild, NewHostRun, NewOrder};
use opsbot_testkit::hosts::Hosts;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTS: usize = 20;
const PARALLEL: usize = 10;
const ARTEFACT_MB: usize = 20;
const HEALTH: &str = "curl -fsS -o /dev/null http://127.0.0.1:8000/index.html";
const STEP: Duration = Duration::from_secs(300);
const CURVE25519: &str = "KexAlgorithms=^curve25519-sha256";

fn main() {
    for p in ["python3", "curl", "tar"] {
        if opsbot_testkit::program(p, opsbot_testkit::fix::PYTHON3).is_none() {
            return;
        }
    }
    let started = Instant::now();
    let Some(hosts) = Hosts::start(HOSTS) else {
        return;
    };
    println!(
        "{HOSTS} network-namespace hosts started in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let work = tempfile::tempdir().unwrap();
    let artefact = make_artefact(work.path());
    println!(
        "artefact: {:.1} MB gzip'd",
        std::fs::metadata(&artefact).unwrap().len() as f64 / 1e6
    );
    for h in hosts.iter() {
        h.spawn_bg("exec python3 -m http.server 8000 --bind 0.0.0.0 --directory /srv/app/current");
    }
    let control = tempfile::Builder::new()
        .prefix("obc")
        .tempdir_in("/tmp")
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addresses = hosts.addresses();
    let layout = Layout::new("/srv/app");
    let store = rt.block_on(async {
        opsbot_store::connect(&format!(
            "sqlite://{}",
            work.path().join("opsbot.db").display()
        ))
        .await
        .unwrap()
    });
    let data = work.path().join("deploy");
    let build = rt.block_on(stored_build(&store, &data, &artefact));

    let mut raw_id = 1000;
    for (round, extra) in [
        ("default key exchange", None),
        ("KexAlgorithms=^curve25519-sha256", Some(CURVE25519)),
    ] {
        println!("--- {round} ---");
        let extra: Vec<String> = extra.into_iter().map(String::from).collect();
        // Inside the runtime: the subsystem's HTTP client is made for it.
        let d = rt.block_on(async { deploys(&hosts, store.clone(), &data, &extra, round) });
        let opts = SshOptions {
            key: Some(hosts.key.clone()),
            known_hosts: Some(hosts.known_hosts.clone()),
            extra: extra.clone(),
            ..SshOptions::new(hosts.user(), control.path())
        };

        let first = rt.block_on(order(&d, "release", build, None, &addresses));
        first.print("opsbot release order");
        raw_id += 1;
        let raw = rt.block_on(release(&addresses, &opts, &layout, raw_id, &artefact));
        raw.print("the same steps called directly");
        let second = rt.block_on(order(&d, "release", build, None, &addresses));
        second.print("opsbot release order");
        let best = first.wall.min(second.wall).as_secs_f64();
        let raw_host = raw.steps.iter().sum::<Duration>().as_secs_f64() / HOSTS as f64;
        println!(
            "order overhead: wall {:+.2} s ({:+.0}%) over the direct steps (better order); per host {:.2} s in the order vs {:.2} s direct",
            best - raw.wall.as_secs_f64(),
            (best / raw.wall.as_secs_f64() - 1.0) * 100.0,
            first.per_host.min(second.per_host).as_secs_f64(),
            raw_host
        );

        let back = rt.block_on(order(&d, "rollback", build, Some(first.id), &addresses));
        back.print("opsbot rollback order");
        let relink = rt.block_on(relink(&addresses, &opts, &layout, second.id));
        println!(
            "the same re-link called directly (connect, switch, health, parallel {PARALLEL}): {relink:.3} s; rollback order < 2 s: {}",
            if back.wall < Duration::from_secs(2) { "yes" } else { "NO" }
        );

        let floor = rt.block_on(plain_ssh_tar(&hosts, &artefact, &extra));
        println!(
            "floor, plain `ssh host tar -xzf - < artefact` per host (fresh connection each, parallel {PARALLEL}): {floor:.2} s; opsbot order / floor: {:.2}",
            best / floor
        );
        let kex = extra.iter().map(|o| format!(" -o {o}")).collect::<String>();
        for (what, args) in [
            (
                "default ssh_args, with -C",
                "-C -o ControlMaster=auto -o ControlPersist=60s",
            ),
            (
                "ssh_args without -C",
                "-o ControlMaster=auto -o ControlPersist=60s",
            ),
        ] {
            raw_id += 1;
            let args = format!("{args}{kex}");
            if let Some(secs) = ansible_release(&hosts, work.path(), raw_id, &artefact, &args) {
                println!(
                    "ansible ({what}): {HOSTS} hosts in {secs:.2} s (forks {PARALLEL}); ansible / opsbot order: {:.1}x",
                    secs / best
                );
            }
        }
    }

    // One step's cost over an open master.
    let opts = SshOptions {
        key: Some(hosts.key.clone()),
        known_hosts: Some(hosts.known_hosts.clone()),
        ..SshOptions::new(hosts.user(), control.path())
    };
    let per_step = rt.block_on(async {
        let s = Session::connect(&addresses[0], &opts).await.unwrap();
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            remote::switch(&s, &layout, raw_id, STEP).await.unwrap();
        }
        let switch = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            assert_eq!(s.exec("true", STEP, &Discard).await.unwrap().code, 0);
        }
        (switch, t.elapsed() / n)
    });
    println!(
        "one step over the master: switch {:.1} ms, empty exec {:.1} ms (mean of 200)",
        per_step.0.as_secs_f64() * 1e3,
        per_step.1.as_secs_f64() * 1e3
    );
    println!(
        "logins on host 0: {} (one per connect, whatever the steps)",
        hosts.host(0).logins()
    );
}

/// Progress notes go nowhere: the order's state and hosts are read from the store.
struct Quiet;

impl JobReport for Quiet {
    fn job(&self) -> u64 {
        0
    }
    fn note(&self, _percent: u8, _text: String) {}
}

/// The deploy subsystem as opsbot builds it, with one project of the 20 hosts.
fn deploys(
    hosts: &Hosts,
    store: Arc<dyn opsbot_store::Store>,
    data: &Path,
    extra: &[String],
    owner: &str,
) -> Arc<Deploys> {
    let list = hosts
        .addresses()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let project: Project = toml::from_str(&format!(
        r#"name = "bench"
deploy_root = "/srv/app"
ssh_user = "{user}"
hosts = [{list}]
# every order's release stays on the hosts, so the rollback is a re-link
keep_versions = 50
repo = {{ kind = "git", url = "file:///nowhere" }}
[health]
command = "{HEALTH}"
retries = 20
interval = "200ms"
[strategy]
parallelism = {PARALLEL}
"#,
        user = hosts.user()
    ))
    .unwrap();
    let cfg = DeployConfig {
        data_dir: data.display().to_string(),
        ssh_key: Some(hosts.key.display().to_string()),
        known_hosts: Some(hosts.known_hosts.display().to_string()),
        ssh_options: extra.to_vec(),
        projects: vec![project],
        ..DeployConfig::default()
    };
    cfg.validate().unwrap();
    Deploys::new(
        cfg,
        store,
        format!("bench {owner}"),
        opsbot_core::Zone::parse("UTC").unwrap(),
    )
}

/// A succeeded build whose artefact is `artefact`, in the store and the artefact store.
async fn stored_build(store: &Arc<dyn opsbot_store::Store>, data: &Path, artefact: &Path) -> i64 {
    let bytes = std::fs::read(artefact).unwrap();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = opsbot_deploy::artefacts::ArtefactStore::new(data.join("artefacts")).path(&sha);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(artefact, &path).unwrap();
    let id = store
        .build_create(
            &NewBuild {
                project: "bench".into(),
                reference: "main".into(),
                user: "bench".into(),
            },
            "bench",
        )
        .await
        .unwrap();
    let ended = store
        .build_finish(
            id,
            &BuildEnd {
                state: "succeeded".into(),
                revision: "0123456".into(),
                artefact: Some(sha),
                artefact_size: Some(bytes.len() as i64),
                changelog: String::new(),
                error: None,
            },
        )
        .await
        .unwrap();
    assert!(ended);
    id
}

/// One order as opsbot runs it.
struct OrderRun {
    id: i64,
    kind: &'static str,
    wall: Duration,
    /// Mean of the hosts' started → finished in the store.
    per_host: Duration,
}

impl OrderRun {
    fn print(&self, what: &str) {
        println!(
            "{what} #{} ({}): {HOSTS} hosts in {:.3} s (parallel {PARALLEL}); per host {:.3} s",
            self.id,
            self.kind,
            self.wall.as_secs_f64(),
            self.per_host.as_secs_f64()
        );
    }
}

/// Creates an order of `kind` (one batch of `addresses`, 待发布) and runs it to its end;
/// every host must then run the order's release.
async fn order(
    d: &Arc<Deploys>,
    kind: &'static str,
    build: i64,
    version: Option<i64>,
    addresses: &[String],
) -> OrderRun {
    let id = d
        .store()
        .order_create(&NewOrder {
            project: "bench".into(),
            kind: kind.into(),
            build: Some(build),
            version,
            state: OrderState::Ready.as_str().into(),
            user: "bench".into(),
            channel: "console".into(),
            chat: None,
            batches: 1,
            plan: "{}".into(),
            expires_at: None,
            hosts: addresses
                .iter()
                .map(|a| NewHostRun {
                    host: a.clone(),
                    address: a.clone(),
                    batch: 0,
                })
                .collect(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    let ended = opsbot_deploy::release::run(d.clone(), id, Arc::new(Quiet)).await;
    let wall = started.elapsed();
    if let Err(e) = ended {
        panic!("order #{id} ({kind}) did not succeed: {e}");
    }
    let runs = d.store().host_runs(id).await.unwrap();
    assert_eq!(runs.len(), HOSTS);
    let mut total = Duration::ZERO;
    for r in &runs {
        assert_eq!(r.state, "succeeded", "{r:?}");
        total += (r.finished_at.unwrap() - r.started_at.unwrap())
            .to_std()
            .unwrap();
    }
    let deployed = d.store().deployed("bench").await.unwrap();
    let version = version.unwrap_or(id);
    assert!(
        deployed.iter().all(|x| x.version == version),
        "{deployed:?}"
    );
    OrderRun {
        id,
        kind,
        wall,
        per_host: total / HOSTS as u32,
    }
}

/// Connect, switch back to `version` and check health on every host, `PARALLEL` at a
/// time: the rollback order's work without the order.
async fn relink(addresses: &[String], opts: &SshOptions, layout: &Layout, version: i64) -> f64 {
    let started = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(addresses)
        .map(|a| async move {
            let s = Session::connect(a, opts).await.map_err(|e| e.to_string())?;
            remote::switch(&s, layout, version, STEP)
                .await
                .map_err(|e| e.to_string())?;
            remote::health_command(
                &s,
                layout,
                HEALTH,
                Duration::from_secs(5),
                20,
                Duration::from_millis(200),
                &Discard,
            )
            .await
            .map_err(|e| e.to_string())?;
            s.close().await;
            Ok(())
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for r in &results {
        r.as_ref().unwrap();
    }
    started.elapsed().as_secs_f64()
}

/// Timings of one opsbot release.
struct Run {
    wall: Duration,
    failed: usize,
    /// Sums over hosts: connect, upload, switch, health.
    steps: [Duration; 4],
}

impl Run {
    fn print(&self, what: &str) {
        let n = HOSTS as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
        println!(
            "{what}: {HOSTS} hosts in {:.2} s (parallel {PARALLEL}), {} failed; per host: connect {:.0} ms, upload {:.0} ms, switch {:.1} ms, health {:.0} ms",
            self.wall.as_secs_f64(),
            self.failed,
            ms(self.steps[0]),
            ms(self.steps[1]),
            ms(self.steps[2]),
            ms(self.steps[3]),
        );
    }
}

/// Connect, upload, switch and health-check every host, `PARALLEL` at a time.
async fn release(
    addresses: &[String],
    opts: &SshOptions,
    layout: &Layout,
    id: i64,
    artefact: &Path,
) -> Run {
    let artefact = &opsbot_deploy::transport::Artefact::from_file(artefact).unwrap();
    let started = Instant::now();
    let results: Vec<Result<[Duration; 4], String>> = futures::stream::iter(addresses)
        .map(|a| async move {
            let mut t = Instant::now();
            let mut lap = || {
                let d = t.elapsed();
                t = Instant::now();
                d
            };
            let s = Session::connect(a, opts).await.map_err(|e| e.to_string())?;
            let connect = lap();
            remote::upload(&s, layout, id, artefact, STEP, &Discard)
                .await
                .map_err(|e| e.to_string())?;
            let upload = lap();
            remote::switch(&s, layout, id, STEP)
                .await
                .map_err(|e| e.to_string())?;
            let switch = lap();
            remote::health_command(
                &s,
                layout,
                HEALTH,
                Duration::from_secs(5),
                20,
                Duration::from_millis(200),
                &Discard,
            )
            .await
            .map_err(|e| e.to_string())?;
            let health = lap();
            s.close().await;
            Ok([connect, upload, switch, health])
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut steps = [Duration::ZERO; 4];
    let mut failed = 0;
    for r in &results {
        match r {
            Ok(d) => {
                for (sum, d) in steps.iter_mut().zip(d) {
                    *sum += *d;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("release {id}: {e}");
            }
        }
    }
    Run {
        wall,
        failed,
        steps,
    }
}

/// 20 files of 1 MiB that gzip cannot shrink (xorshift from a fixed seed), `.tar.gz`'d,
/// plus the page the health check asks for.
fn make_artefact(dir: &Path) -> PathBuf {
    let stage = dir.join("build");
    std::fs::create_dir_all(stage.join("lib")).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..ARTEFACT_MB {
        let bytes: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(stage.join(format!("lib/part-{i:02}.jar")), bytes).unwrap();
    }
    std::fs::write(stage.join("index.html"), "ok\n").unwrap();
    let out = dir.join("app.tar.gz");
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&stage)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar -czf");
    out
}

/// Runs the playbook on every host; its wall time, or `None` (with the reason) when
/// Ansible is missing or fails.
fn ansible_release(
    hosts: &Hosts,
    work: &Path,
    id: i64,
    artefact: &Path,
    ssh_args: &str,
) -> Option<f64> {
    opsbot_testkit::program("ansible-playbook", opsbot_testkit::fix::ANSIBLE)?;
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench/ansible");
    let template = std::fs::read_to_string(tools.join("inventory.ini.tmpl")).unwrap();
    let inventory = work.join("inventory.ini");
    std::fs::write(
        &inventory,
        template
            .replace("{hosts}", &hosts.addresses().join("\n"))
            .replace("{key}", &hosts.key.display().to_string())
            .replace("{known_hosts}", &hosts.known_hosts.display().to_string()),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new("ansible-playbook")
        .env("ANSIBLE_SSH_ARGS", ssh_args)
        .arg("-i")
        .arg(&inventory)
        .arg(tools.join("release.yml"))
        .arg("-e")
        .arg(format!("release_id={id}"))
        .arg("-e")
        .arg(format!("artefact={}", artefact.display()))
        .env("ANSIBLE_CONFIG", tools.join("ansible.cfg"))
        .env("ANSIBLE_LOCAL_TEMP", work.join("ansible-local"))
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!(
            "ansible-playbook failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    for h in hosts.iter() {
        assert_eq!(
            h.run_ok("readlink /srv/app/current"),
            format!("releases/{id}\n"),
            "ansible did not release {id} to {}:\n{}",
            h.address,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Some(secs)
}

/// The work without opsbot: each host's artefact piped into `tar` by a plain `ssh`
/// (fresh connection, the client's default algorithms plus `extra`), `PARALLEL` at a
/// time.
async fn plain_ssh_tar(hosts: &Hosts, artefact: &Path, extra: &[String]) -> f64 {
    let started = Instant::now();
    let results: Vec<bool> = futures::stream::iter(hosts.addresses())
        .map(|a| async move {
            let input = std::fs::File::open(artefact).unwrap();
            tokio::process::Command::new("ssh")
                .args(["-F", "/dev/null", "-i"])
                .arg(&hosts.key)
                .arg("-o")
                .arg(format!(
                    "UserKnownHostsFile={}",
                    hosts.known_hosts.display()
                ))
                .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
                .args(extra.iter().flat_map(|o| ["-o", o.as_str()]))
                .args(["-l", hosts.user(), &a])
                .arg("rm -rf /srv/floor && mkdir -p /srv/floor && tar -xzf - -C /srv/floor")
                .stdin(input)
                .status()
                .await
                .unwrap()
                .success()
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    assert!(results.iter().all(|ok| *ok), "plain ssh + tar failed");
    started.elapsed().as_secs_f64()
}
