//! STUB until the hosts branch lands (signatures only).
#![allow(unused)]
use crate::log::LogSink;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct SshOptions {
    pub command: String,
    pub user: String,
    pub port: u16,
    pub key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub control_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("{0}")]
    Failed(String),
}

pub struct Session;

pub struct Output {
    pub code: i32,
    pub tail: String,
}

impl Session {
    pub async fn connect(_address: &str, _opts: &SshOptions) -> Result<Session, SshError> {
        Err(SshError::Failed("stub".into()))
    }
    pub async fn close(self) {}
}
