//! Builds against real repositories made here with the `git` CLI (over `file://` and a
//! `git daemon`) and `svnadmin` + `svnserve`, real build commands (`sh`), and the real
//! artefact store: references, change logs, failures, timeouts, packing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_deploy::artefacts::ArtefactStore;
use opsbot_deploy::build::{run, BuildError, BuildRequest, Built};
use opsbot_deploy::config::Project;
use opsbot_deploy::log::Collect;
use opsbot_testkit::{fix, program};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/build/app");

// ---- helpers --------------------------------------------------------------------------

/// Runs a program to set a test up; its stdout, trimmed. Panics with its stderr.
fn cmd(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            // Keeps the mode: build.sh and bin/run.sh stay executable.
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A git repository with a work tree, holding the fixture project.
struct GitRepo {
    dir: PathBuf,
}

impl GitRepo {
    fn new(parent: &Path, name: &str) -> GitRepo {
        let dir = parent.join(name);
        copy_tree(Path::new(FIXTURE), &dir);
        cmd(&dir, "git", &["init", "-q", "-b", "main"]);
        cmd(&dir, "git", &["add", "-A"]);
        cmd(&dir, "git", &["commit", "-q", "-m", "first"]);
        GitRepo { dir }
    }

    /// Writes VERSION, commits with `message`, returns the commit id.
    fn commit(&self, version: &str, message: &str) -> String {
        std::fs::write(self.dir.join("VERSION"), format!("{version}\n")).unwrap();
        cmd(&self.dir, "git", &["commit", "-q", "-am", message]);
        self.head()
    }

    fn head(&self) -> String {
        cmd(&self.dir, "git", &["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}

fn project(kind: &str, url: &str, branch: &str, build: &[&str], artefact: &str) -> Project {
    let text = format!(
        "name = \"shop\"\ndeploy_root = \"/srv/shop\"\nrepo = {{ kind = \"{kind}\", url = \"{url}\", branch = \"{branch}\" }}\nbuild = {}\n{artefact}",
        serde_json::to_string(build).unwrap()
    );
    let p: Project = toml::from_str(&text).unwrap();
    p.validate("project").unwrap();
    p
}

/// The fixture's build, packing `dist/`.
fn shop(kind: &str, url: &str, branch: &str) -> Project {
    project(
        kind,
        url,
        branch,
        &["./build.sh"],
        "[artefact]\npath = \"dist\"\n",
    )
}

struct Bench {
    tmp: TempDir,
    store: ArtefactStore,
}

impl Bench {
    fn new() -> Bench {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtefactStore::new(tmp.path().join("data/artefacts"));
        Bench { tmp, store }
    }

    fn work_root(&self) -> PathBuf {
        self.tmp.path().join("data/work")
    }

    async fn build(
        &self,
        p: &Project,
        reference: &str,
        id: i64,
        previous: Option<&str>,
        timeout: Duration,
    ) -> (Result<Built, BuildError>, Vec<String>) {
        let log = Collect::default();
        let work_root = self.work_root();
        let req = BuildRequest {
            project: p,
            reference,
            build_id: id,
            previous_revision: previous,
            work_root: &work_root,
            timeout,
        };
        let r = run(&req, &self.store, &log).await;
        assert!(
            !work_root.join(format!("shop-{id}")).exists(),
            "the work directory of build {id} is removed"
        );
        (r, log.lines())
    }

    async fn ok(&self, p: &Project, reference: &str, id: i64, previous: Option<&str>) -> Built {
        let (r, log) = self
            .build(p, reference, id, previous, Duration::from_secs(120))
            .await;
        r.unwrap_or_else(|e| panic!("build {reference:?}: {e}\n{}", log.join("\n")))
    }

    async fn err(&self, p: &Project, reference: &str) -> BuildError {
        let (r, _) = self
            .build(p, reference, 99, None, Duration::from_secs(120))
            .await;
        match r {
            Ok(b) => panic!("build {reference:?} succeeded: {b:?}"),
            Err(e) => e,
        }
    }

    /// The stored files (`*.tar.gz`) and anything else left in the store's folder.
    fn stored(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.store.root())
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// The artefact's entries: path → (mode, content of a file).
fn entries(store: &ArtefactStore, sha: &str) -> BTreeMap<String, (u32, String)> {
    let f = std::fs::File::open(store.path(sha)).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mode = e.header().mode().unwrap();
        let mut text = String::new();
        if e.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        }
        out.insert(path, (mode, text));
    }
    out
}

fn file(store: &ArtefactStore, sha: &str, path: &str) -> String {
    entries(store, sha)
        .remove(path)
        .unwrap_or_else(|| panic!("{path} is not in the artefact"))
        .1
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server started by the test, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` and waits (up to 15 s) until it accepts on `port`.
fn serve(program: &str, args: &[String], port: u16) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("{program} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{program} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn have_git() -> bool {
    program("git", fix::GIT).is_some()
}

fn have_svn() -> bool {
    ["svn", "svnadmin", "svnserve"]
        .iter()
        .all(|p| program(p, fix::SUBVERSION).is_some())
}

/// Whether process `pid` is gone (or a zombie waiting for its reaper).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_dead(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dead(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} outlived its build"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- git ------------------------------------------------------------------------------

#[tokio::test]
async fn git_builds_a_branch_a_tag_and_a_commit() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let c1 = repo.head();
    cmd(&repo.dir, "git", &["tag", "-a", "v1", "-m", "release 1"]);
    let c2 = repo.commit("2", "second");
    cmd(&repo.dir, "git", &["checkout", "-q", "-b", "feature"]);
    let c3 = repo.commit("3", "on a branch");
    cmd(&repo.dir, "git", &["checkout", "-q", "main"]);
    let p = shop("git", &repo.url(), "main");

    let main = b.ok(&p, "", 1, None).await;
    assert_eq!(main.revision, c2);
    assert_eq!(file(&b.store, &main.artefact, "VERSION"), "2\n");
    assert_eq!(
        file(&b.store, &main.artefact, "BUILD_INFO"),
        format!("shop {c2} 1\n")
    );
    assert_eq!(
        main.size,
        std::fs::metadata(b.store.path(&main.artefact))
            .unwrap()
            .len()
    );

    let tag = b.ok(&p, "v1", 2, None).await;
    assert_eq!(tag.revision, c1, "an annotated tag names its commit");
    assert_eq!(file(&b.store, &tag.artefact, "VERSION"), "1\n");

    let commit = b.ok(&p, &c1[..10], 3, None).await;
    assert_eq!(commit.revision, c1, "an abbreviated commit id");
    let branch = b.ok(&p, "feature", 4, None).await;
    assert_eq!(branch.revision, c3);
    assert_eq!(file(&b.store, &branch.artefact, "VERSION"), "3\n");
}

#[tokio::test]
async fn the_changelog_lists_exactly_the_commits_since_the_previous_build() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let p = shop("git", &repo.url(), "main");
    let first = b.ok(&p, "", 1, None).await;
    assert_eq!(first.changelog.lines().count(), 1, "{}", first.changelog);
    assert!(
        first.changelog.contains("Alice: first"),
        "{}",
        first.changelog
    );

    repo.commit("2", "second");
    repo.commit("3", "third");
    let next = b.ok(&p, "", 2, Some(&first.revision)).await;
    let lines: Vec<&str> = next.changelog.lines().collect();
    assert_eq!(lines.len(), 2, "{}", next.changelog);
    assert!(
        lines[0].ends_with("Alice: third") && lines[1].ends_with("Alice: second"),
        "{lines:?}"
    );

    let again = b.ok(&p, "", 3, Some(&next.revision)).await;
    assert_eq!(again.changelog, "", "nothing new");

    // A previous revision the history no longer holds (a force push): the recent log.
    let lost = b.ok(&p, "", 4, Some(&"0".repeat(40))).await;
    assert!(
        lost.changelog.contains("not in this history"),
        "{}",
        lost.changelog
    );
    assert!(lost.changelog.contains("third") && lost.changelog.contains("first"));
}

#[tokio::test]
async fn git_daemon_serves_builds_and_unknown_branches_are_named() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let head = repo.commit("2", "second");
    let port = free_port();
    let _daemon = serve(
        "git",
        &[
            "daemon".into(),
            "--reuseaddr".into(),
            format!("--base-path={}", b.tmp.path().display()),
            "--export-all".into(),
            "--listen=127.0.0.1".into(),
            format!("--port={port}"),
            b.tmp.path().display().to_string(),
        ],
        port,
    );
    let p = shop("git", &format!("git://127.0.0.1:{port}/shop"), "main");
    let built = b.ok(&p, "", 1, None).await;
    assert_eq!(built.revision, head);
    assert_eq!(file(&b.store, &built.artefact, "VERSION"), "2\n");

    let e = b.err(&p, "no-such-branch").await;
    assert!(
        matches!(&e, BuildError::UnknownReference { reference, .. } if reference == "no-such-branch"),
        "{e:?}"
    );
    assert!(e.to_string().contains("no-such-branch"), "{e}");

    let e = b
        .err(
            &shop(
                "git",
                &format!("git://127.0.0.1:{port}/nothing-here"),
                "main",
            ),
            "",
        )
        .await;
    assert!(matches!(e, BuildError::Unreachable { .. }), "{e:?}");
}

#[tokio::test]
async fn unknown_references_and_unreachable_repositories_say_which() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let p = shop("git", &repo.url(), "main");
    for r in ["no-such-branch", "deadbeefdeadbeef", "v9"] {
        let e = b.err(&p, r).await;
        assert!(
            matches!(&e, BuildError::UnknownReference { reference, .. } if reference == r),
            "{r}: {e:?}"
        );
        assert!(e.to_string().contains(r), "{e}");
    }
    let e = b.err(&shop("git", &repo.url(), "gone"), "").await;
    assert!(
        e.to_string().contains("\"gone\""),
        "a wrong default branch is named: {e}"
    );

    std::fs::create_dir_all(b.tmp.path().join("plain")).unwrap();
    let closed = free_port();
    for url in [
        format!("file://{}/nowhere", b.tmp.path().display()),
        format!("file://{}/plain", b.tmp.path().display()),
        format!("git://127.0.0.1:{closed}/shop"),
    ] {
        let e = b.err(&shop("git", &url, "main"), "").await;
        assert!(matches!(&e, BuildError::Unreachable { .. }), "{url}: {e:?}");
        assert!(e.to_string().contains(&url), "{e}");
    }
}

#[tokio::test]
async fn hostile_references_are_refused_before_any_program_sees_them() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let pwned = b.tmp.path().join("pwned");
    let p = shop("git", &repo.url(), "main");
    for r in [
        format!("--upload-pack=touch {}", pwned.display()),
        "--upload-pack=sh".into(),
        "-c".into(),
        "main..HEAD".into(),
        "HEAD@{1}".into(),
    ] {
        let e = b.err(&p, &r).await;
        assert!(
            matches!(&e, BuildError::InvalidReference { .. }),
            "{r}: {e:?}"
        );
    }
    assert!(!pwned.exists(), "no program ran the hostile reference");
    assert!(b.stored().is_empty());
}

// ---- build commands -------------------------------------------------------------------

#[tokio::test]
async fn a_failing_command_stops_the_build_with_its_command_and_code() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let failing = "echo to-stdout; echo to-stderr >&2; exit 3";
    // Lines end at \n, \r\n or \r (progress output), and the last one needs no end.
    let printf = r"printf 'one\r\ntwo\rthree\n\nfive'";
    let p = project(
        "git",
        &repo.url(),
        "main",
        &["echo step one", printf, failing, "echo never"],
        "",
    );
    let (r, log) = b.build(&p, "", 7, None, Duration::from_secs(120)).await;
    match r {
        Err(BuildError::CommandFailed { command, code }) => {
            assert_eq!(command, failing);
            assert_eq!(code, 3);
        }
        other => panic!("{other:?}"),
    }
    for l in ["step one", "to-stdout", "to-stderr", "exit code 3"] {
        assert!(log.iter().any(|x| x == l), "{l:?} in {log:#?}");
    }
    assert!(
        !log.iter().any(|x| x == "never"),
        "later commands do not run"
    );
    assert!(b.stored().is_empty(), "a failed build stores nothing");
}

#[tokio::test]
async fn a_timeout_kills_the_commands_whole_process_group() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let pidfile = b.tmp.path().join("sleep.pid");
    let p = project(
        "git",
        &repo.url(),
        "main",
        &[&format!(
            "sleep 999 & echo $! > {}; wait",
            pidfile.display()
        )],
        "",
    );
    let (r, log) = b.build(&p, "", 1, None, Duration::from_secs(4)).await;
    assert!(matches!(&r, Err(BuildError::Timeout { .. })), "{r:?}");
    assert!(log.iter().any(|l| l.starts_with("stopped:")), "{log:#?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_dead(pid);
}

#[tokio::test]
async fn what_a_command_leaves_running_is_stopped_when_it_ends() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let pidfile = b.tmp.path().join("daemon.pid");
    // The background sleep keeps the output pipe open: the build must not wait for it.
    let p = project(
        "git",
        &repo.url(),
        "main",
        &[
            &format!("sleep 999 & echo $! > {}", pidfile.display()),
            "echo done",
        ],
        "",
    );
    let (r, log) = b.build(&p, "", 1, None, Duration::from_secs(600)).await;
    r.unwrap();
    assert!(log.iter().any(|l| l == "done"), "{log:#?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_dead(pid);
}

// ---- packing --------------------------------------------------------------------------

#[tokio::test]
async fn include_and_exclude_are_honoured_and_vcs_folders_never_packed() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let p = project(
        "git",
        &repo.url(),
        "main",
        &["./build.sh"],
        "[artefact]\npath = \".\"\ninclude = [\"dist\", \"bin/*.sh\"]\nexclude = [\"*.log\"]\n",
    );
    let built = b.ok(&p, "", 1, None).await;
    let e = entries(&b.store, &built.artefact);
    let names: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin/run.sh",
            "dist",
            "dist/BUILD_INFO",
            "dist/VERSION",
            "dist/app.js",
            "dist/index.html"
        ]
    );
    assert_eq!(e["bin/run.sh"].0, 0o755, "the executable bit is kept");
    assert_eq!(e["dist/app.js"].0, 0o644);

    // Everything, the checkout's .git included, minus one folder.
    let all = project(
        "git",
        &repo.url(),
        "main",
        &[],
        "[artefact]\nexclude = [\"logs\"]\n",
    );
    let built = b.ok(&all, "", 2, None).await;
    let e = entries(&b.store, &built.artefact);
    assert!(
        e.contains_key("build.sh") && e.contains_key("src/app.js"),
        "{e:?}"
    );
    assert!(
        !e.keys()
            .any(|k| k.starts_with(".git") || k.starts_with("logs")),
        "{e:?}"
    );

    let none = project(
        "git",
        &repo.url(),
        "main",
        &[],
        "[artefact]\ninclude = [\"nothing/**\"]\n",
    );
    let (r, _) = b.build(&none, "", 3, None, Duration::from_secs(120)).await;
    assert!(matches!(r, Err(BuildError::Empty)), "{r:?}");

    // artefact.path through a link out of the checkout, or missing after the build.
    let out = project(
        "git",
        &repo.url(),
        "main",
        &["ln -s / out"],
        "[artefact]\npath = \"out\"\n",
    );
    let (r, _) = b.build(&out, "", 4, None, Duration::from_secs(120)).await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("outside the checkout"), "{e}");
    let missing = project(
        "git",
        &repo.url(),
        "main",
        &[],
        "[artefact]\npath = \"dist\"\n",
    );
    let (r, _) = b
        .build(&missing, "", 5, None, Duration::from_secs(120))
        .await;
    let e = r.unwrap_err();
    assert!(e.to_string().contains("artefact.path \"dist\""), "{e}");
}

#[tokio::test]
async fn the_same_tree_gives_the_same_file_once() {
    if !have_git() {
        return;
    }
    let b = Bench::new();
    let repo = GitRepo::new(b.tmp.path(), "shop");
    let p = shop("git", &repo.url(), "main");
    // BUILD_INFO holds the build id: pack only what does not.
    let p = Project {
        artefact: opsbot_deploy::config::Artefact {
            path: "dist".into(),
            include: vec![],
            exclude: vec!["BUILD_INFO".into()],
        },
        ..p
    };
    let one = b.ok(&p, "", 1, None).await;
    let two = b.ok(&p, "", 2, None).await;
    assert_eq!(one.artefact, two.artefact);
    assert_eq!(
        b.stored(),
        [format!("{}.tar.gz", one.artefact)],
        "one file, no temp files"
    );
    assert!(b.store.has(&one.artefact));

    // Times and owners do not count; content does.
    let dir = b.tmp.path().join("tree");
    copy_tree(Path::new(FIXTURE), &dir);
    let (a, _) = b.store.pack(&dir, &[], &[]).await.unwrap();
    cmd(&dir, "touch", &["-d", "2001-02-03", "README.md", "src"]);
    let (same, _) = b.store.pack(&dir, &[], &[]).await.unwrap();
    assert_eq!(a, same);
    std::fs::write(dir.join("README.md"), "changed").unwrap();
    let (other, _) = b.store.pack(&dir, &[], &[]).await.unwrap();
    assert_ne!(a, other);
    assert_eq!(b.stored().len(), 3);

    // Long names and links come back as they were; a crashed pack's leftover goes.
    let deep = format!("{}/{}", "d".repeat(80), "f".repeat(90));
    std::fs::create_dir_all(dir.join("d".repeat(80))).unwrap();
    std::fs::write(dir.join(&deep), "deep").unwrap();
    std::os::unix::fs::symlink("src/index.html", dir.join("index.html")).unwrap();
    let leftover = b.store.root().join(".pack-1-0000000000000000.tmp");
    std::fs::write(&leftover, "half").unwrap();
    cmd(
        b.tmp.path(),
        "touch",
        &["-d", "3 days ago", leftover.to_str().unwrap()],
    );
    let (sha, _) = b.store.pack(&dir, &[], &[]).await.unwrap();
    assert_eq!(file(&b.store, &sha, &deep), "deep");
    let f = std::fs::File::open(b.store.path(&sha)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let link = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap() == Path::new("index.html"))
        .expect("the link is packed");
    assert!(link.header().entry_type().is_symlink());
    assert_eq!(
        link.link_name().unwrap().unwrap(),
        Path::new("src/index.html")
    );
    assert!(!leftover.exists(), "a day-old temporary file is swept");
}

// ---- svn ------------------------------------------------------------------------------

/// An svn repository `<tmp>/svn/shop` with the fixture under `trunk/` in r1, VERSION 2
/// in r2 and 3 in r3 (committed over `file://`), and a working copy for more commits.
fn svn_repo(tmp: &Path) -> (PathBuf, PathBuf) {
    let root = tmp.join("svn");
    std::fs::create_dir_all(&root).unwrap();
    cmd(&root, "svnadmin", &["create", "shop"]);
    let url = format!("file://{}/shop", root.display());
    cmd(
        tmp,
        "svn",
        &[
            "import",
            "-q",
            "--non-interactive",
            "-m",
            "first",
            FIXTURE,
            &format!("{url}/trunk"),
        ],
    );
    let wc = tmp.join("wc");
    cmd(
        tmp,
        "svn",
        &[
            "checkout",
            "-q",
            "--non-interactive",
            &format!("{url}/trunk"),
            wc.to_str().unwrap(),
        ],
    );
    for (v, m) in [("2", "second"), ("3", "third")] {
        std::fs::write(wc.join("VERSION"), format!("{v}\n")).unwrap();
        cmd(&wc, "svn", &["commit", "-q", "--non-interactive", "-m", m]);
    }
    (root, wc)
}

#[tokio::test]
async fn svn_builds_revisions_with_their_changelog() {
    if !have_svn() {
        return;
    }
    let b = Bench::new();
    let (root, _wc) = svn_repo(b.tmp.path());
    let port = free_port();
    let _svnserve = serve(
        "svnserve",
        &[
            "-d".into(),
            "--foreground".into(),
            "-r".into(),
            root.display().to_string(),
            "--listen-host".into(),
            "127.0.0.1".into(),
            "--listen-port".into(),
            port.to_string(),
        ],
        port,
    );
    let url = format!("svn://127.0.0.1:{port}/shop");
    let p = shop("svn", &url, "trunk");

    let head = b.ok(&p, "", 1, None).await;
    assert_eq!(head.revision, "3");
    assert_eq!(file(&b.store, &head.artefact, "VERSION"), "3\n");
    let lines: Vec<&str> = head.changelog.lines().collect();
    assert_eq!(lines.len(), 3, "{}", head.changelog);
    assert!(
        lines[0].starts_with("r3 ") && lines[0].ends_with(": third"),
        "{lines:?}"
    );

    let old = b.ok(&p, "1", 2, None).await;
    assert_eq!(old.revision, "1");
    assert_eq!(file(&b.store, &old.artefact, "VERSION"), "1\n");
    assert_eq!(file(&b.store, &old.artefact, "BUILD_INFO"), "shop 1 2\n");

    let since = b.ok(&p, "r3", 3, Some("1")).await;
    let lines: Vec<&str> = since.changelog.lines().collect();
    assert_eq!(lines.len(), 2, "{}", since.changelog);
    assert!(
        lines[0].starts_with("r3 ") && lines[1].starts_with("r2 "),
        "{lines:?}"
    );

    // No .svn in an artefact of the whole checkout.
    let all = project("svn", &url, "trunk", &[], "");
    let built = b.ok(&all, "", 4, None).await;
    let e = entries(&b.store, &built.artefact);
    assert!(
        e.contains_key("build.sh") && e.contains_key("bin/run.sh"),
        "{e:?}"
    );
    assert!(!e.keys().any(|k| k.contains(".svn")), "{e:?}");

    let e = b.err(&p, "99").await;
    assert!(
        matches!(&e, BuildError::UnknownReference { what: "revision", reference, .. } if reference == "99"),
        "{e:?}"
    );
    let e = b.err(&p, "branches/nope").await;
    assert!(
        matches!(&e, BuildError::UnknownReference { what: "path", .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("branches/nope"), "{e}");
    let e = b.err(&p, "-rHEAD").await;
    assert!(matches!(&e, BuildError::InvalidReference { .. }), "{e:?}");

    let closed = free_port();
    let e = b
        .err(
            &shop("svn", &format!("svn://127.0.0.1:{closed}/shop"), "trunk"),
            "",
        )
        .await;
    assert!(matches!(&e, BuildError::Unreachable { .. }), "{e:?}");
}
