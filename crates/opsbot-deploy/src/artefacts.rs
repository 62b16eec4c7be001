//! STUB until the build branch lands (signatures only).
#![allow(unused)]
use std::path::PathBuf;
pub struct ArtefactStore {
    root: PathBuf,
}
impl ArtefactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ArtefactStore { root: root.into() }
    }
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(format!("{sha256}.tar.gz"))
    }
    pub fn has(&self, sha256: &str) -> bool {
        self.path(sha256).exists()
    }
}
