//! STUB until the build branch lands (signatures only).
#![allow(unused)]
use crate::artefacts::ArtefactStore;
use crate::config::Project;
use crate::log::LogSink;
use std::path::Path;
use std::time::Duration;
pub struct BuildRequest<'a> {
    pub project: &'a Project,
    pub reference: &'a str,
    pub build_id: i64,
    pub previous_revision: Option<&'a str>,
    pub work_root: &'a Path,
    pub timeout: Duration,
}
pub struct Built {
    pub revision: String,
    pub changelog: String,
    pub artefact: String,
    pub size: u64,
}
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("stub")]
    Stub,
}
pub async fn run(
    req: &BuildRequest<'_>,
    store: &ArtefactStore,
    log: &dyn LogSink,
) -> Result<Built, BuildError> {
    Err(BuildError::Stub)
}
