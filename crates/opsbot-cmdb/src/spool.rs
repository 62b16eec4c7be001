//! The agent's spool: every report is written here (atomically, fsynced) before it is
//! sent, and removed only once the server has stored it, so no report is lost while
//! the server is away or the agent restarts. Reports the server refuses for good are
//! moved to `rejected/` with the reason beside them.

use crate::{CmdbError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file and a rename, fsynced, so a
/// crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| CmdbError::state(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| CmdbError::state(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CmdbError::state(path, e))?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    /// At most this many reports wait; beyond it the oldest (a superseded snapshot of
    /// the same host) is dropped with a warning.
    max: usize,
}

impl Spool {
    pub fn open(dir: impl Into<PathBuf>, max: usize) -> Result<Spool> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("rejected")).map_err(|e| CmdbError::state(&dir, e))?;
        Ok(Spool {
            dir,
            max: max.max(1),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a report; returns its file.
    pub fn push(&self, report: &[u8]) -> Result<PathBuf> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = self
            .dir
            .join(format!("{nanos:024}-{:08x}.json", rand::random::<u32>()));
        write_atomic(&path, report)?;
        let pending = self.pending()?;
        if pending.len() > self.max {
            for old in &pending[..pending.len() - self.max] {
                tracing::warn!(file = %old.display(), max = self.max, "spool full: dropping the oldest report");
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(path)
    }

    /// Waiting reports, oldest first.
    pub fn pending(&self) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| CmdbError::state(&self.dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        Ok(files)
    }

    pub fn read(&self, file: &Path) -> Result<Vec<u8>> {
        std::fs::read(file).map_err(|e| CmdbError::state(file, e))
    }

    /// The server stored it.
    pub fn done(&self, file: &Path) -> Result<()> {
        std::fs::remove_file(file).map_err(|e| CmdbError::state(file, e))
    }

    /// The server refused it for good: kept under `rejected/` with `reason`.
    pub fn reject(&self, file: &Path, reason: &str) -> Result<PathBuf> {
        let name = file.file_name().unwrap_or_default();
        let dest = self.dir.join("rejected").join(name);
        std::fs::rename(file, &dest).map_err(|e| CmdbError::state(file, e))?;
        write_atomic(&dest.with_extension("reason"), reason.as_bytes())?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pending_done_reject_and_cap() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), 3).unwrap();
        let a = spool.push(b"a").unwrap();
        let b = spool.push(b"b").unwrap();
        assert_eq!(spool.pending().unwrap(), [a.clone(), b.clone()]);
        assert_eq!(spool.read(&a).unwrap(), b"a");
        spool.done(&a).unwrap();
        let r = spool.reject(&b, "400: bad").unwrap();
        assert!(spool.pending().unwrap().is_empty());
        assert_eq!(
            std::fs::read_to_string(r.with_extension("reason")).unwrap(),
            "400: bad"
        );
        for x in [b"1", b"2", b"3", b"4"] {
            spool.push(x).unwrap();
        }
        let left: Vec<Vec<u8>> = spool
            .pending()
            .unwrap()
            .iter()
            .map(|p| spool.read(p).unwrap())
            .collect();
        assert_eq!(
            left,
            [b"2".to_vec(), b"3".to_vec(), b"4".to_vec()],
            "oldest dropped"
        );
    }

    #[test]
    fn a_spool_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        Spool::open(dir.path(), 10).unwrap().push(b"kept").unwrap();
        let again = Spool::open(dir.path(), 10).unwrap();
        let p = again.pending().unwrap();
        assert_eq!(again.read(&p[0]).unwrap(), b"kept");
    }
}
