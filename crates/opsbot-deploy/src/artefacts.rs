//! The artefact store: each build's output as one `.tar.gz`, named by the sha256 of its
//! bytes (`<data_dir>/artefacts/<sha256>.tar.gz`), so equal content is kept once and a
//! release can check what it unpacks. Packing is deterministic (sorted entries, fixed
//! times, owners and modes), so the same tree always gives the same file.

use crate::build::BuildError;
use globset::{GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Every entry's modification time: 2000-01-01T00:00:00Z. Not 0, because GNU tar warns
/// "implausibly old time stamp" for 1970 on every file it unpacks.
const MTIME: u64 = 946_684_800;

/// Folders of version control systems: never part of an artefact, whatever the globs say.
const VCS_DIRS: [&str; 5] = [".git", ".svn", ".hg", ".bzr", "CVS"];

pub struct ArtefactStore {
    root: PathBuf,
}

/// 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ArtefactStore {
    /// `root` is `<data_dir>/artefacts`; it is created by the first [`pack`](Self::pack).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ArtefactStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<sha256>.tar.gz`. A string that is not a sha256 (64 lowercase hex digits)
    /// gives `<root>/invalid-sha256`, a name `pack` never writes: the path never leaves
    /// `root` and [`has`](Self::has) is false for it.
    pub fn path(&self, sha256: &str) -> PathBuf {
        if is_sha256(sha256) {
            self.root.join(format!("{sha256}.tar.gz"))
        } else {
            self.root.join("invalid-sha256")
        }
    }

    pub fn has(&self, sha256: &str) -> bool {
        is_sha256(sha256) && self.path(sha256).is_file()
    }

    /// Packs `dir` (include/exclude relative to it) into a temp file in root, hashes it,
    /// renames to its sha path (atomic; fsynced), returns (sha256, size). Deterministic:
    /// sorted entries, fixed mtimes/owners so the same tree gives the same sha.
    ///
    /// Globs follow `.gitignore` habits: a glob without `/` matches a name at any depth
    /// (`*.log`), one with `/` matches from `dir` (`lib/*.jar`, `dist/**`); a folder that
    /// matches brings (include) or drops (exclude) everything below it. `*` does not cross
    /// `/`, `**` does. Symbolic links are packed as links, never followed.
    pub async fn pack(
        &self,
        dir: &Path,
        include: &[String],
        exclude: &[String],
    ) -> Result<(String, u64), BuildError> {
        let root = self.root.clone();
        let dir = dir.to_path_buf();
        let include = globs("artefact.include", include)?;
        let exclude = globs("artefact.exclude", exclude)?;
        // Walking, compressing and hashing are blocking file work.
        tokio::task::spawn_blocking(move || {
            pack_blocking(&root, &dir, include.as_ref(), exclude.as_ref())
        })
        .await
        .map_err(|e| BuildError::io("packing the artefact", io::Error::other(e)))?
    }
}

/// `None` for no globs. A glob without `/` also matches at any depth.
fn globs(key: &str, patterns: &[String]) -> Result<Option<GlobSet>, BuildError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let trimmed = p.trim().trim_start_matches("./").trim_end_matches('/');
        let anchored = trimmed.starts_with('/');
        let trimmed = trimmed.trim_start_matches('/');
        let mut add = |g: &str| -> Result<(), BuildError> {
            let glob = globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    BuildError::io(format!("{key}: {p:?} is not a glob"), io::Error::other(e))
                })?;
            b.add(glob);
            Ok(())
        };
        add(trimmed)?;
        if !anchored && !trimmed.contains('/') {
            add(&format!("**/{trimmed}"))?;
        }
    }
    b.build().map(Some).map_err(|e| {
        BuildError::io(
            format!("{key}: the globs do not compile"),
            io::Error::other(e),
        )
    })
}

/// Whether `rel` or one of its parent folders matches.
fn matches_or_below(set: &GlobSet, rel: &Path) -> bool {
    rel.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .any(|a| set.is_match(a))
}

enum Kind {
    Dir,
    File { executable: bool, len: u64 },
    Link(PathBuf),
}

/// The entries packed, by relative path (sorted as bytes: `BTreeSet<PathBuf>` compares
/// component by component, which is stable across runs).
fn collect(
    dir: &Path,
    include: Option<&GlobSet>,
    exclude: Option<&GlobSet>,
) -> Result<Vec<(PathBuf, Kind)>, BuildError> {
    let mut files: Vec<(PathBuf, Kind)> = Vec::new();
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let read = fs::read_dir(&here)
            .map_err(|e| BuildError::io(format!("reading {}", here.display()), e))?;
        for entry in read {
            let entry =
                entry.map_err(|e| BuildError::io(format!("reading {}", here.display()), e))?;
            let name = entry.file_name();
            if VCS_DIRS.iter().any(|v| name == *v) {
                continue;
            }
            let rel = rel.join(&name);
            if exclude.is_some_and(|x| matches_or_below(x, &rel)) {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| BuildError::io(format!("reading {}", dir.join(&rel).display()), e))?;
            let ft = meta.file_type();
            let included = include.is_none_or(|i| matches_or_below(i, &rel));
            if ft.is_dir() {
                if included && include.is_none() {
                    dirs.insert(rel.clone());
                }
                stack.push(rel);
            } else if !included {
                continue;
            } else if ft.is_file() {
                let executable = meta.permissions().mode() & 0o111 != 0;
                files.push((
                    rel,
                    Kind::File {
                        executable,
                        len: meta.len(),
                    },
                ));
            } else if ft.is_symlink() {
                let target = fs::read_link(dir.join(&rel)).map_err(|e| {
                    BuildError::io(format!("reading the link {}", dir.join(&rel).display()), e)
                })?;
                files.push((rel, Kind::Link(target)));
            }
            // Sockets, FIFOs and devices are not part of an application.
        }
    }
    if files.is_empty() {
        return Err(BuildError::Empty);
    }
    // Folders holding packed entries are packed too, so they unpack with a fixed mode.
    for (rel, _) in &files {
        for a in rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            dirs.insert(a.to_path_buf());
        }
    }
    let mut all: Vec<(PathBuf, Kind)> = dirs.into_iter().map(|d| (d, Kind::Dir)).collect();
    all.extend(files);
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all)
}

/// Writes through to the file while hashing and counting.
struct Hashing {
    file: File,
    hash: Sha256,
    size: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Removes the temporary file unless it was renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

fn header(kind: &Kind) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    // Empty owner names: whoever unpacks owns the files.
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    match kind {
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        }
        Kind::File { executable, len } => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(if *executable { 0o755 } else { 0o644 });
            h.set_size(*len);
        }
        Kind::Link(_) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
        }
    }
    h
}

/// Temporary files older than this are leftovers of a pack that crashed mid-way.
const STALE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes leftover temporary files; a pack running now is younger than [`STALE`].
fn sweep_stale(root: &Path) {
    let Ok(dir) = fs::read_dir(root) else { return };
    for e in dir.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(".pack-")
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE);
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn pack_blocking(
    root: &Path,
    dir: &Path,
    include: Option<&GlobSet>,
    exclude: Option<&GlobSet>,
) -> Result<(String, u64), BuildError> {
    if !dir.is_dir() {
        return Err(BuildError::io(
            format!("packing {}", dir.display()),
            io::Error::new(io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    let entries = collect(dir, include, exclude)?;
    fs::create_dir_all(root)
        .map_err(|e| BuildError::io(format!("creating {}", root.display()), e))?;
    sweep_stale(root);
    let tmp_path = root.join(format!(
        ".pack-{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp_path)
        .map_err(|e| BuildError::io(format!("creating {}", tmp_path.display()), e))?;
    let mut tmp = TempFile(Some(tmp_path.clone()));
    let writing = |e: io::Error| BuildError::io(format!("writing {}", tmp_path.display()), e);
    let sink = Hashing {
        file,
        hash: Sha256::new(),
        size: 0,
    };
    // The gzip header carries no name and mtime 0: only the entries decide the bytes.
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(sink, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    for (rel, kind) in &entries {
        let mut h = header(kind);
        match kind {
            Kind::Dir => tar.append_data(&mut h, rel, io::empty()).map_err(writing)?,
            Kind::Link(target) => tar.append_link(&mut h, rel, target).map_err(writing)?,
            Kind::File { len, .. } => {
                let full = dir.join(rel);
                let f = File::open(&full)
                    .map_err(|e| BuildError::io(format!("reading {}", full.display()), e))?;
                // Exactly the size in the header, even if the file grows meanwhile.
                tar.append_data(&mut h, rel, io::Read::take(f, *len))
                    .map_err(writing)?;
            }
        }
    }
    let gz = tar.into_inner().map_err(writing)?;
    let mut sink = gz.finish().map_err(writing)?;
    sink.flush().map_err(writing)?;
    sink.file.sync_all().map_err(writing)?;
    let sha: String = sink
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let size = sink.size;
    let dest = root.join(format!("{sha}.tar.gz"));
    if dest.is_file() {
        // Stored already: the same bytes by the same name; the temp file goes.
        return Ok((sha, size));
    }
    fs::rename(&tmp_path, &dest)
        .map_err(|e| BuildError::io(format!("storing {}", dest.display()), e))?;
    tmp.0 = None;
    // The rename is durable once the folder is.
    File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| BuildError::io(format!("syncing {}", root.display()), e))?;
    Ok((sha, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_names_map_to_files() {
        let s = ArtefactStore::new("/data/artefacts");
        let sha = "a".repeat(64);
        assert_eq!(
            s.path(&sha),
            Path::new("/data/artefacts").join(format!("{sha}.tar.gz"))
        );
        assert_eq!(
            s.path("../../etc/passwd"),
            Path::new("/data/artefacts/invalid-sha256")
        );
        assert_eq!(
            s.path(&"A".repeat(64)),
            Path::new("/data/artefacts/invalid-sha256")
        );
        assert!(!s.has("../x"));
    }

    #[test]
    fn globs_without_a_slash_match_at_any_depth() {
        let set = globs(
            "k",
            &["*.log".into(), "/top.txt".into(), "lib/*.jar".into()],
        )
        .unwrap()
        .unwrap();
        assert!(matches_or_below(&set, Path::new("a/b/c.log")));
        assert!(matches_or_below(&set, Path::new("top.txt")));
        assert!(!matches_or_below(&set, Path::new("a/top.txt")));
        assert!(matches_or_below(&set, Path::new("lib/x.jar")));
        assert!(!matches_or_below(&set, Path::new("lib/sub/x.jar")));
        let dirs = globs("k", &["dist".into()]).unwrap().unwrap();
        assert!(matches_or_below(&dirs, Path::new("dist/js/app.js")));
    }
}
