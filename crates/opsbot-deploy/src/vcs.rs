//! Fetching a project's code (seed 003's `getcode`) with the system `git` and `svn`
//! clients: a branch, tag or commit (git) or a revision (svn) into an empty folder, and
//! the change log since the previous build's revision.
//!
//! Every value reaches the programs as its own argument, never through a shell; a
//! reference that could be read as an option (`--upload-pack=…`) is refused first.
//! Neither client may ask for anything: `GIT_TERMINAL_PROMPT=0`, `--non-interactive`.

use crate::build::{command_for, exec, BuildError, Ran};
use crate::config::{Repo, RepoKind};
use crate::log::LogSink;
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;

/// Commits listed when there is no previous build to start from.
const FIRST_LOG: u32 = 20;
/// At most this many entries in a change log (a build after months).
const MAX_LOG: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// A full commit id (git) or a revision number (svn).
    pub revision: String,
    /// One line per change, newest first: `<id> <date> <author>: <subject>`.
    pub changelog: String,
}

/// Fetches `repo` at `reference` ("" = repo.branch / svn HEAD) into the empty dir `into`.
pub async fn fetch(
    repo: &Repo,
    reference: &str,
    into: &Path,
    previous: Option<&str>,
    log: &dyn LogSink,
    timeout: Duration,
) -> Result<Checkout, BuildError> {
    let reference = reference.trim();
    check_reference(reference)?;
    if repo.url.starts_with('-') {
        return Err(BuildError::Unreachable {
            url: redact(&repo.url),
            detail: "a URL cannot start with '-'".into(),
        });
    }
    tokio::fs::create_dir_all(into)
        .await
        .map_err(|e| BuildError::io(format!("creating {}", into.display()), e))?;
    let mut entries = tokio::fs::read_dir(into)
        .await
        .map_err(|e| BuildError::io(format!("reading {}", into.display()), e))?;
    if entries
        .next_entry()
        .await
        .map_err(|e| BuildError::io(format!("reading {}", into.display()), e))?
        .is_some()
    {
        return Err(BuildError::io(
            format!("checking out into {}", into.display()),
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the folder is not empty"),
        ));
    }
    let run = Runner {
        deadline: Instant::now() + timeout,
        budget: timeout,
        url: redact(&repo.url),
        raw_url: repo.url.clone(),
    };
    let checkout = match repo.kind {
        RepoKind::Git => git(&run, repo, reference, into, previous, log).await?,
        RepoKind::Svn => svn(&run, repo, reference, into, previous, log).await?,
    };
    log.line(&format!("revision {}", checkout.revision));
    if checkout.changelog.is_empty() {
        log.line("no changes since the previous build");
    } else {
        log.line("changes:");
        for l in checkout.changelog.lines() {
            log.line(&format!("  {l}"));
        }
    }
    Ok(checkout)
}

/// Refuses what git or svn could read as an option, a range or a peg revision, and
/// what no branch, tag, commit or revision contains.
fn check_reference(r: &str) -> Result<(), BuildError> {
    let bad = |why| {
        Err(BuildError::InvalidReference {
            reference: r.to_string(),
            why,
        })
    };
    if r.starts_with('-') {
        return bad("it would be read as an option");
    }
    if r.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("it contains blanks or control characters");
    }
    if r.contains("..") || r.contains("@{") || r.contains(['~', '^', ':', '\\', '?', '*', '[', '@'])
    {
        return bad("it contains characters of git revision syntax (.. ~ ^ : @ * ? [ \\)");
    }
    if r.starts_with('/') || r.ends_with('/') || r.ends_with(".lock") || r.contains("//") {
        return bad("it is not a valid reference name");
    }
    Ok(())
}

/// `scheme://userinfo@host/…` → `scheme://***@host/…`: a repository URL may carry a
/// password, or a token as its user name (`https://ghp_…@github.com/…`), and neither
/// may reach a log, an error or the API. The one redactor for repository URLs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_string(),
    }
}

struct Runner {
    deadline: Instant,
    budget: Duration,
    /// Redacted: for messages.
    url: String,
    raw_url: String,
}

impl Runner {
    async fn run(&self, cmd: Command, what: &str) -> Result<Ran, BuildError> {
        exec(cmd, what, None, true, self.deadline, self.budget).await
    }

    /// The last lines of a failed program's stderr, without the URL's password.
    fn detail(&self, ran: &Ran) -> String {
        let text = String::from_utf8_lossy(&ran.stderr).replace(&self.raw_url, &self.url);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
        if tail.is_empty() {
            format!("exit code {}", ran.code)
        } else {
            tail
        }
    }
}

fn git_command(dir: Option<&Path>) -> Command {
    let mut cmd = command_for("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    // `ext::` runs commands; forbid it whatever a system config allows.
    cmd.args(["-c", "protocol.ext.allow=never"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C.UTF-8");
    // ssh:// must not stop at a host-key or password prompt either.
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    cmd
}

fn stdout_text(ran: &Ran) -> String {
    String::from_utf8_lossy(&ran.stdout).trim().to_string()
}

async fn git(
    run: &Runner,
    repo: &Repo,
    reference: &str,
    into: &Path,
    previous: Option<&str>,
    log: &dyn LogSink,
) -> Result<Checkout, BuildError> {
    let wanted = if reference.is_empty() {
        repo.branch.trim()
    } else {
        reference
    };
    if !wanted.is_empty() {
        check_reference(wanted)?;
    }
    log.line(&format!(
        "git: fetching {} from {}",
        if wanted.is_empty() {
            "the default branch"
        } else {
            wanted
        },
        run.url
    ));
    // A full clone without a working tree: branches, tags and any commit resolve
    // locally afterwards, and the change log has the history it needs.
    let mut clone = git_command(None);
    clone
        .args(["clone", "--quiet", "--no-checkout", "--"])
        .arg(&run.raw_url)
        .arg(into);
    let ran = run.run(clone, "git clone").await?;
    if ran.code != 0 {
        return Err(BuildError::Unreachable {
            url: run.url.clone(),
            detail: run.detail(&ran),
        });
    }
    let candidates: Vec<String> = if wanted.is_empty() {
        vec!["HEAD".into()]
    } else {
        let mut c = vec![
            format!("refs/remotes/origin/{wanted}"),
            format!("refs/tags/{wanted}"),
        ];
        if (4..=40).contains(&wanted.len()) && wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.push(wanted.to_string());
        }
        c
    };
    let mut sha = None;
    for c in candidates {
        let mut cmd = git_command(Some(into));
        cmd.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{c}^{{commit}}"));
        let ran = run.run(cmd, "git rev-parse").await?;
        if ran.code == 0 {
            sha = Some(stdout_text(&ran));
            break;
        }
    }
    let Some(sha) = sha else {
        return Err(BuildError::UnknownReference {
            what: if wanted.is_empty() {
                "default branch"
            } else {
                "branch, tag or commit"
            },
            reference: wanted.to_string(),
            url: run.url.clone(),
        });
    };
    let mut checkout = git_command(Some(into));
    checkout
        .args([
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
        ])
        .arg(&sha);
    let ran = run.run(checkout, "git checkout").await?;
    if ran.code != 0 {
        return Err(BuildError::io(
            format!("git checkout {sha}"),
            std::io::Error::other(run.detail(&ran)),
        ));
    }
    let changelog = git_changelog(run, into, &sha, previous).await?;
    Ok(Checkout {
        revision: sha,
        changelog,
    })
}

async fn git_changelog(
    run: &Runner,
    dir: &Path,
    sha: &str,
    previous: Option<&str>,
) -> Result<String, BuildError> {
    let log_args = |cmd: &mut Command| {
        cmd.args([
            "log",
            "--no-decorate",
            "--date=short",
            "--format=%h %ad %an: %s",
        ]);
    };
    let mut note = String::new();
    if let Some(prev) = previous.map(str::trim).filter(|p| !p.is_empty()) {
        if prev == sha {
            return Ok(String::new());
        }
        let known = if prev.bytes().all(|b| b.is_ascii_hexdigit()) && prev.len() >= 4 {
            let mut cmd = git_command(Some(dir));
            cmd.args(["cat-file", "-e", "--end-of-options"])
                .arg(format!("{prev}^{{commit}}"));
            run.run(cmd, "git cat-file").await?.code == 0
        } else {
            false
        };
        if known {
            let mut cmd = git_command(Some(dir));
            log_args(&mut cmd);
            cmd.arg(format!("--max-count={MAX_LOG}"))
                .arg("--end-of-options")
                .arg(format!("{prev}..{sha}"));
            let ran = run.run(cmd, "git log").await?;
            if ran.code == 0 {
                return Ok(stdout_text(&ran));
            }
        }
        // A rewritten history (force push) no longer holds the previous build's commit.
        note = format!("(the previous build's revision {prev} is not in this history; the last {FIRST_LOG} commits)\n");
    }
    let mut cmd = git_command(Some(dir));
    log_args(&mut cmd);
    cmd.arg(format!("--max-count={FIRST_LOG}"))
        .arg("--end-of-options")
        .arg(sha);
    let ran = run.run(cmd, "git log").await?;
    if ran.code != 0 {
        return Err(BuildError::io(
            "git log",
            std::io::Error::other(run.detail(&ran)),
        ));
    }
    Ok(format!("{note}{}", stdout_text(&ran)))
}

fn svn_command() -> Command {
    let mut cmd = command_for("svn");
    cmd.args(["--non-interactive", "--no-auth-cache"])
        .env("LC_ALL", "C.UTF-8");
    cmd
}

/// What an svn reference names: a revision of the project's path, or another path
/// (`branches/x`, `tags/1.0`) below the repository URL at its newest revision.
fn svn_target(repo: &Repo, reference: &str) -> (String, String, bool) {
    let base = repo.url.trim_end_matches('/');
    let join = |path: &str| {
        let path = path.trim_matches('/');
        if path.is_empty() {
            base.to_string()
        } else {
            format!("{base}/{path}")
        }
    };
    let digits = reference.strip_prefix('r').unwrap_or(reference);
    if reference.is_empty() || reference.eq_ignore_ascii_case("HEAD") {
        (join(&repo.branch), "HEAD".into(), false)
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        (
            join(&repo.branch),
            digits.trim_start_matches('0').to_string(),
            false,
        )
    } else {
        (join(reference), "HEAD".into(), true)
    }
}

async fn svn(
    run: &Runner,
    repo: &Repo,
    reference: &str,
    into: &Path,
    previous: Option<&str>,
    log: &dyn LogSink,
) -> Result<Checkout, BuildError> {
    let (url, rev, is_path) = svn_target(repo, reference);
    if rev.is_empty() {
        return Err(BuildError::UnknownReference {
            what: "revision",
            reference: reference.to_string(),
            url: run.url.clone(),
        });
    }
    let shown = redact(&url);
    log.line(&format!("svn: checking out {shown} at {rev}"));
    // A peg revision on every URL: the path as it was then, and an `@` in the URL is
    // never read as one.
    let mut co = svn_command();
    co.args(["checkout", "--quiet", "--"])
        .arg(format!("{url}@{rev}"))
        .arg(into);
    let ran = run.run(co, "svn checkout").await?;
    if ran.code != 0 {
        let err = String::from_utf8_lossy(&ran.stderr);
        // E160006: no such revision; E170000 / E160013: no such path.
        if err.contains("E160006") {
            return Err(BuildError::UnknownReference {
                what: "revision",
                reference: if reference.is_empty() {
                    rev
                } else {
                    reference.to_string()
                },
                url: shown,
            });
        }
        if is_path && (err.contains("E170000") || err.contains("E160013")) {
            return Err(BuildError::UnknownReference {
                what: "path",
                reference: reference.to_string(),
                url: run.url.clone(),
            });
        }
        return Err(BuildError::Unreachable {
            url: shown,
            detail: run.detail(&ran),
        });
    }
    // The revision that last changed the project's path: two builds of unchanged code
    // name the same revision.
    let mut info = svn_command();
    info.args(["info", "--show-item", "last-changed-revision", "--"])
        .arg(into);
    let ran = run.run(info, "svn info").await?;
    let revision = stdout_text(&ran);
    if ran.code != 0 || revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BuildError::io(
            "svn info",
            std::io::Error::other(run.detail(&ran)),
        ));
    }
    let new: u64 = revision.parse().unwrap_or(0);
    let prev: Option<u64> = previous.and_then(|p| p.trim().trim_start_matches('r').parse().ok());
    let mut cmd = svn_command();
    cmd.arg("log");
    match prev {
        Some(p) if p >= new => {
            return Ok(Checkout {
                revision,
                changelog: String::new(),
            })
        }
        Some(p) => cmd.args([
            "-r",
            &format!("{new}:{}", p + 1),
            "--limit",
            &MAX_LOG.to_string(),
        ]),
        None => cmd.args(["-r", &format!("{new}:1"), "--limit", &FIRST_LOG.to_string()]),
    };
    cmd.arg("--").arg(format!("{url}@{new}"));
    let ran = run.run(cmd, "svn log").await?;
    if ran.code != 0 {
        return Err(BuildError::io(
            "svn log",
            std::io::Error::other(run.detail(&ran)),
        ));
    }
    Ok(Checkout {
        revision,
        changelog: svn_log_lines(&String::from_utf8_lossy(&ran.stdout)),
    })
}

/// `svn log`'s blocks as one line each: `r3 2026-12-07 alice: first line of message`.
fn svn_log_lines(text: &str) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        // A header: `r3 | alice | 2026-12-07 09:00:00 +0000 (Mon, 07 Dec 2026) | 1 line`.
        let parts: Vec<&str> = l.split(" | ").collect();
        if parts.len() < 4
            || !parts[0].starts_with('r')
            || !parts[0][1..].bytes().all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let date = parts[2].split_whitespace().next().unwrap_or("");
        // A blank line, then the message; its first non-empty line is the subject.
        let mut subject = "";
        while let Some(m) = lines.peek() {
            if m.starts_with("----------") {
                break;
            }
            let m = lines.next().unwrap_or_default();
            if subject.is_empty() && !m.trim().is_empty() {
                subject = m.trim();
            }
        }
        out.push(format!("{} {} {}: {}", parts[0], date, parts[1], subject));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_revision_syntax_are_refused() {
        for r in [
            "--upload-pack=touch /tmp/x",
            "-r",
            "a..b",
            "HEAD~1",
            "x:y",
            "a b",
            "x@{1}",
            "u@2",
        ] {
            assert!(
                matches!(check_reference(r), Err(BuildError::InvalidReference { .. })),
                "{r}"
            );
        }
        for r in [
            "main",
            "release/2.1",
            "v1.0.3",
            "0a1b2c3d",
            "tags/1.0",
            "42",
            "",
        ] {
            assert!(check_reference(r).is_ok(), "{r}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("https://ci:tok3n@git.example/a.git"),
            "https://***@git.example/a.git"
        );
        assert_eq!(
            redact("https://ghp_tok3n@github.com/o/a.git"),
            "https://***@github.com/o/a.git"
        );
        assert_eq!(redact("/srv/git/shop"), "/srv/git/shop");
        assert_eq!(redact("svn://host/repo"), "svn://host/repo");
    }

    #[test]
    fn svn_references_name_revisions_or_paths() {
        let repo = Repo {
            kind: RepoKind::Svn,
            url: "svn://h/r/".into(),
            branch: "trunk".into(),
        };
        assert_eq!(
            svn_target(&repo, ""),
            ("svn://h/r/trunk".into(), "HEAD".into(), false)
        );
        assert_eq!(
            svn_target(&repo, "r12"),
            ("svn://h/r/trunk".into(), "12".into(), false)
        );
        assert_eq!(
            svn_target(&repo, "tags/1.0"),
            ("svn://h/r/tags/1.0".into(), "HEAD".into(), true)
        );
    }

    #[test]
    fn svn_log_becomes_one_line_per_commit() {
        let text = "------------------------------------------------------------------------\n\
r3 | alice | 2026-12-07 09:00:00 +0000 (Mon, 07 Dec 2026) | 2 lines\n\
\n\
Fix the cart\n\
and more\n\
------------------------------------------------------------------------\n\
r2 | bob | 2026-12-06 08:00:00 +0000 (Sun, 06 Dec 2026) | 1 line\n\
\n\
Add | pipes\n\
------------------------------------------------------------------------\n";
        assert_eq!(
            svn_log_lines(text),
            "r3 2026-12-07 alice: Fix the cart\nr2 2026-12-06 bob: Add | pipes"
        );
    }
}
