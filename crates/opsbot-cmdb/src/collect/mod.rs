//! The built-in collectors. Each reads a few files through a [`Source`] and fills its
//! part of the report; a file it cannot read becomes a [`Problem`], never a failure,
//! so a non-root agent still reports everything it can.

mod hardware;
mod network;
mod storage;
mod system;

use crate::facts::{Problem, ProblemKind, Report, SCHEMA_VERSION};
use crate::source::{ReadError, Source};
use std::time::Instant;

/// The built-in collectors, by the names `cmdb.disabled_collectors` and `opsbot agent
/// --disable` use. The hostname is always collected.
pub const COLLECTORS: &[&str] = &[
    "os",
    "cpu",
    "memory",
    "disks",
    "filesystems",
    "nics",
    "board",
    "uptime",
];

/// Every file the collectors may read, as shell globs: what an SSH collection fetches
/// (see `ssh::script`). Kept beside the collectors so the two cannot drift apart; a
/// test compares an SSH-style snapshot of this machine with reading it directly.
pub const REMOTE_FILES: &[&str] = &[
    "/etc/os-release",
    "/usr/lib/os-release",
    "/proc/sys/kernel/hostname",
    "/etc/hostname",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/arch",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/uptime",
    "/proc/mounts",
    "/sys/class/dmi/id/sys_vendor",
    "/sys/class/dmi/id/product_name",
    "/sys/class/dmi/id/product_serial",
    "/sys/class/dmi/id/product_uuid",
    "/sys/class/dmi/id/board_vendor",
    "/sys/class/dmi/id/board_name",
    "/sys/class/dmi/id/board_serial",
    "/sys/class/dmi/id/bios_version",
    "/sys/block/*/size",
    "/sys/block/*/removable",
    "/sys/block/*/serial",
    "/sys/block/*/queue/rotational",
    "/sys/block/*/device/model",
    "/sys/block/*/device/serial",
    "/sys/class/net/*/address",
    "/sys/class/net/*/mtu",
    "/sys/class/net/*/operstate",
    "/sys/class/net/*/speed",
];

/// Directories whose listings the collectors need.
pub const REMOTE_DIRS: &[&str] = &["/sys/block", "/sys/class/net"];

/// Reads files for one collector and notes what it could not read.
pub(crate) struct Reader<'a> {
    pub src: &'a dyn Source,
    pub problems: Vec<Problem>,
}

impl Reader<'_> {
    /// A file's trimmed text; `None` when absent or empty. A denied or failed read is
    /// recorded as a problem of `collector`.
    pub fn text(&mut self, collector: &str, path: &str) -> Option<String> {
        match self.src.read(path) {
            Ok(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Err(ReadError::Missing) => None,
            Err(ReadError::Denied) => {
                self.problems.push(Problem::new(
                    collector,
                    ProblemKind::Denied,
                    Some(path),
                    "permission denied (run the agent as root to read it)".into(),
                ));
                None
            }
            Err(ReadError::Other(m)) => {
                self.problems.push(Problem::new(
                    collector,
                    ProblemKind::Unreadable,
                    Some(path),
                    m,
                ));
                None
            }
        }
    }

    /// A file whose read may fail for ordinary reasons (a down link has no speed).
    pub fn quiet(&self, path: &str) -> Option<String> {
        self.src
            .read(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn list(&mut self, collector: &str, dir: &str) -> Vec<String> {
        match self.src.list(dir) {
            Ok(v) => v,
            Err(ReadError::Missing) => Vec::new(),
            Err(e) => {
                let kind = if e == ReadError::Denied {
                    ProblemKind::Denied
                } else {
                    ProblemKind::Unreadable
                };
                self.problems.push(Problem::new(
                    collector,
                    kind,
                    Some(dir),
                    format!("cannot list: {e:?}"),
                ));
                Vec::new()
            }
        }
    }
}

/// Runs the enabled built-in collectors against `src` and returns a report with
/// `identity` (default: the hostname collected). Plug-in output is added by the caller.
pub fn collect(src: &dyn Source, disabled: &[String], identity: Option<&str>) -> Report {
    let started = Instant::now();
    let on = |name: &str| !disabled.iter().any(|d| d == name);
    let mut r = Reader {
        src,
        problems: Vec::new(),
    };
    let hostname = system::hostname(&mut r).unwrap_or_else(|| "localhost".into());
    let mut report = Report {
        schema: SCHEMA_VERSION,
        identity: identity.unwrap_or(&hostname).to_lowercase(),
        hostname: hostname.to_lowercase(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        collected_at: chrono::Utc::now(),
        collection_ms: 0,
        os: on("os").then(|| system::os(&mut r)),
        cpu: on("cpu").then(|| hardware::cpu(&mut r)).flatten(),
        memory: on("memory").then(|| hardware::memory(&mut r)).flatten(),
        disks: if on("disks") {
            storage::disks(&mut r)
        } else {
            Vec::new()
        },
        filesystems: if on("filesystems") {
            storage::filesystems(&mut r)
        } else {
            Vec::new()
        },
        nics: if on("nics") {
            network::nics(&mut r)
        } else {
            Vec::new()
        },
        board: on("board").then(|| hardware::board(&mut r)).flatten(),
        uptime_secs: on("uptime").then(|| system::uptime(&mut r)).flatten(),
        plugins: Default::default(),
        problems: Vec::new(),
    };
    report.problems = r.problems;
    report.collection_ms = started.elapsed().as_millis() as u64;
    report
}

#[cfg(test)]
mod tests;
