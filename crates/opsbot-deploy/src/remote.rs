//! STUB until the hosts branch lands (signatures only).
#![allow(unused, clippy::unimplemented)]
use crate::log::LogSink;
use crate::ssh::{Session, SshError};
use std::path::Path;
use std::time::Duration;

pub struct Layout {
    pub root: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Ssh(SshError),
    #[error("{step}: exit {code}: {tail}")]
    Exit {
        step: &'static str,
        code: i32,
        tail: String,
    },
}

pub async fn upload(
    s: &Session,
    l: &Layout,
    id: i64,
    artefact: &Path,
    timeout: Duration,
    log: &dyn LogSink,
) -> Result<(), StepError> {
    unimplemented!()
}
pub async fn current(s: &Session, l: &Layout) -> Result<Option<i64>, StepError> {
    unimplemented!()
}
pub async fn versions(s: &Session, l: &Layout) -> Result<Vec<i64>, StepError> {
    unimplemented!()
}
pub async fn switch(s: &Session, l: &Layout, id: i64, timeout: Duration) -> Result<(), StepError> {
    unimplemented!()
}
#[allow(clippy::too_many_arguments)]
pub async fn hook(
    s: &Session,
    l: &Layout,
    id: i64,
    step: &'static str,
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    log: &dyn LogSink,
) -> Result<(), StepError> {
    unimplemented!()
}
pub async fn health_command(
    s: &Session,
    l: &Layout,
    command: &str,
    timeout: Duration,
    retries: u32,
    interval: Duration,
    log: &dyn LogSink,
) -> Result<(), StepError> {
    unimplemented!()
}
pub async fn prune(
    s: &Session,
    l: &Layout,
    keep: u32,
    protect: &[i64],
    log: &dyn LogSink,
) -> Result<Vec<i64>, StepError> {
    unimplemented!()
}
