//! Test support shared by opsbot's tests and benchmarks (a dev-dependency only, never part
//! of a shipped binary): what a test does when an outside program or service it needs —
//! vcsim, Alertmanager, sshd, Chromium, PostgreSQL, … — is missing.
//!
//! Such a test calls [`skip`] (or [`program`], [`vcsim`], [`alertmanager`], which call it)
//! and returns. Normally that writes exactly one line to stderr, naming the test, what is
//! missing and the one command that installs or starts it, and the test counts as passed:
//!
//! ```text
//! SKIPPED connect_reads_service_content_and_logs_in (client): no vcsim at /root/.cache/vcsim/vcsimlite (set OPSBOT_VCSIM); install: tools/vcsim/build-vcsim.sh
//! ```
//!
//! The line goes straight to the process's stderr, past libtest's output capture, so a
//! plain `cargo test` shows it. With `OPSBOT_TEST_REQUIRE_SERVICES=1` (which `.ci/run`
//! sets) the test fails with the same text instead. [`fix`] holds the commands; the
//! README's Tests section lists the same ones.

use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub mod hosts;
pub mod salt;

/// Set to `1`, a missing program or service fails the test instead of skipping it.
pub const REQUIRE_SERVICES: &str = "OPSBOT_TEST_REQUIRE_SERVICES";

/// The command that installs or starts each outside program or service, as shown in a
/// skip line (keep the README's Tests section in step).
pub mod fix {
    pub const VCSIM: &str = "install: tools/vcsim/build-vcsim.sh";
    pub const ALERTMANAGER: &str = "install: apt-get install prometheus-alertmanager";
    pub const SSHD: &str = "install: apt-get install openssh-server openssh-client";
    pub const CHROMIUM: &str = "install: apt-get install chromium chromium-driver";
    pub const PYTHON3: &str = "install: apt-get install python3";
    pub const ANSIBLE: &str = "install: apt-get install ansible";
    pub const OPENSSL: &str = "install: apt-get install openssl";
    pub const PING: &str = "install: apt-get install iputils-ping";
    pub const IP: &str = "install: apt-get install iproute2";
    pub const SETPRIV: &str = "install: apt-get install util-linux";
    pub const ROOT: &str = "run the tests as root";
    pub const PSQL: &str = "install: apt-get install postgresql-client";
    pub const REDIS_SERVER: &str = "install: apt-get install redis-server";
    pub const POSTGRES: &str = "start: apt-get install postgresql && service postgresql start \
                                (or point OPSBOT_TEST_POSTGRES_URL at a server)";
    pub const MARIADB: &str = "start: apt-get install mariadb-server && service mariadb start \
                               && mariadb -e 'CREATE DATABASE IF NOT EXISTS test' \
                               (or point OPSBOT_TEST_MYSQL_URL at a server)";
    pub const REDIS: &str = "start: apt-get install redis-server && service redis-server start \
                             (or point OPSBOT_TEST_REDIS_URL at a server)";
    pub const GIT: &str = "install: apt-get install git";
    pub const SUBVERSION: &str = "install: apt-get install subversion";
    /// Debian bookworm's own kubernetes-client is 1.20; kubectl 1.32 comes from the
    /// Kubernetes (pkgs.k8s.io) or Google Cloud SDK apt repository.
    pub const KUBECTL: &str = "install: apt-get install kubectl (from the pkgs.k8s.io v1.32 \
                               or Google Cloud SDK apt repository)";
    pub const PYTHON3_KUBERNETES: &str = "install: apt-get install python3-kubernetes";
    /// The 3007.8 wheel declares no dependencies: they are listed here (3008 does not
    /// install from the registry this project uses).
    pub const SALT: &str = "install: python3 -m venv ~/.cache/opsbot-salt/venv && \
                            ~/.cache/opsbot-salt/venv/bin/pip install salt==3007.8 tornado \
                            distro pyyaml pyzmq msgpack jinja2 looseversion packaging psutil \
                            requests cryptography pycryptodomex jmespath cherrypy";
}

/// True when a missing program or service must fail the test (CI).
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v == "1")
}

/// Skips the calling test: one line on stderr naming it, `missing` and `fix`, then `None`
/// for the test to return on. Panics instead when services are required.
#[track_caller]
pub fn skip<T>(missing: impl Display, fix: &str) -> Option<T> {
    let missing = one_line(&missing.to_string());
    let test = current_test();
    if services_required() {
        panic!("{test}: {missing}; {fix} (a failure, not a skip: {REQUIRE_SERVICES}=1)");
    }
    // Past libtest's capture (which only sees `print!`/`eprint!`), so it is seen.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {missing}; {fix}");
    None
}

/// `program` as an executable file: a path is taken as is, a bare name is looked up on
/// `PATH`. No skip: for callers that only want to know.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return is_executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// [`find_program`], or a skip naming the program and `fix`.
#[track_caller]
pub fn program(program: &str, fix: &str) -> Option<PathBuf> {
    match find_program(program) {
        Some(p) => Some(p),
        None if program.contains('/') => skip(format!("no {program}"), fix),
        None => skip(format!("no {program} on PATH"), fix),
    }
}

/// Program `what` at the path in environment variable `var`, else at `default`; a skip
/// naming both when it is not there.
#[track_caller]
pub fn program_from_env(what: &str, var: &str, default: &str, fix: &str) -> Option<PathBuf> {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    match find_program(&path) {
        Some(p) => Some(p),
        None => skip(format!("no {what} at {path} (set {var})"), fix),
    }
}

/// VMware's vCenter simulator as `tools/vcsim/build-vcsim.sh` builds it: `OPSBOT_VCSIM`,
/// default `$HOME/.cache/vcsim/vcsimlite`.
#[track_caller]
pub fn vcsim() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    program_from_env(
        "vcsim",
        "OPSBOT_VCSIM",
        &format!("{home}/.cache/vcsim/vcsimlite"),
        fix::VCSIM,
    )
}

/// Prometheus Alertmanager: `OPSBOT_ALERTMANAGER`, default Debian's
/// `/usr/bin/prometheus-alertmanager`.
#[track_caller]
pub fn alertmanager() -> Option<PathBuf> {
    program_from_env(
        "Alertmanager",
        "OPSBOT_ALERTMANAGER",
        "/usr/bin/prometheus-alertmanager",
        fix::ALERTMANAGER,
    )
}

/// kubectl: `OPSBOT_KUBECTL`, default the one on `PATH`.
#[track_caller]
pub fn kubectl() -> Option<PathBuf> {
    let path = std::env::var("OPSBOT_KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    match find_program(&path) {
        Some(p) => Some(p),
        None => skip(
            format!("no kubectl ({path}; set OPSBOT_KUBECTL)"),
            fix::KUBECTL,
        ),
    }
}

/// Debian's `/usr/bin/python3` when it can import the `kubernetes` client (Debian's
/// python3-kubernetes installs for that interpreter only, not a pyenv one on `PATH`).
#[track_caller]
pub fn python_kubernetes() -> Option<PathBuf> {
    let python = Path::new("/usr/bin/python3");
    let imports = std::process::Command::new(python)
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    if imports {
        Some(python.to_path_buf())
    } else {
        skip(
            "/usr/bin/python3 cannot import kubernetes",
            fix::PYTHON3_KUBERNETES,
        )
    }
}

/// `url` with any password replaced by `***`, for skip lines and messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_string(),
    }
}

/// `name (binary)` of the running test: libtest names each test's thread after the test;
/// a benchmark's `main` gives just the binary.
fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| without_cargo_hash(&stem).to_string())
        .unwrap_or_else(|| "?".into());
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{name} ({binary})"),
        _ => binary,
    }
}

/// `client-0123456789abcdef` → `client`.
fn without_cargo_hash(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Error texts (psql's stderr, …) folded onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/15"),
            "redis://127.0.0.1:6379/15"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn cargo_hashes_are_stripped() {
        assert_eq!(without_cargo_hash("client-0123456789abcdef"), "client");
        assert_eq!(
            without_cargo_hash("store_suite-aaaaaaaaaaaaaaaa"),
            "store_suite"
        );
        assert_eq!(without_cargo_hash("opsbot-cli"), "opsbot-cli");
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        let sh = find_program("sh").expect("sh on PATH");
        assert!(sh.is_absolute());
        assert_eq!(find_program(sh.to_str().unwrap()), Some(sh));
        assert_eq!(find_program("opsbot-no-such-program"), None);
        assert_eq!(find_program("/nonexistent/opsbot"), None);
    }

    /// Runs itself as a child (so libtest captures output as in any `cargo test`): the skip
    /// line still reaches stderr, exactly once; with services required the test fails.
    #[test]
    fn a_skip_is_one_visible_line_or_a_failure_when_required() {
        const NAME: &str = "tests::a_skip_is_one_visible_line_or_a_failure_when_required";
        if std::env::var_os("OPSBOT_TESTKIT_CHILD").is_some() {
            let got: Option<()> = skip("no frobnicator\non PATH", "install: apt-get install frob");
            assert!(got.is_none());
            return;
        }
        let run = |require: &str| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--test-threads=1"])
                .env("OPSBOT_TESTKIT_CHILD", "1")
                .env(REQUIRE_SERVICES, require)
                .output()
                .unwrap()
        };
        let skipped = run("0");
        assert!(skipped.status.success(), "{skipped:?}");
        let stderr = String::from_utf8_lossy(&skipped.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("SKIPPED")).collect();
        assert_eq!(
            lines,
            [format!(
                "SKIPPED {NAME} (opsbot_testkit): no frobnicator on PATH; install: apt-get install frob"
            )],
            "{stderr}"
        );
        let required = run("1");
        assert!(!required.status.success(), "{required:?}");
        let stdout = String::from_utf8_lossy(&required.stdout);
        assert!(
            stdout.contains(": no frobnicator on PATH; install: apt-get install frob (a failure"),
            "{stdout}"
        );
    }

    #[test]
    fn one_line_folds_whitespace() {
        assert_eq!(one_line("a\nb \r\n  c"), "a b c");
    }
}
