//! What carries a release's steps to its hosts. The steps ([`crate::remote`]) are shell
//! scripts; a [`HostLink`] runs one on one host and reports its exit code and output,
//! whatever the transport: SSH ([`crate::ssh::Session`], a master connection per host)
//! or Salt ([`crate::salt::SaltLink`], `cmd.run_all` through salt-api). A project picks
//! its transport (`transport = "ssh" | "salt"`); [`Transport`] opens a link per host, so
//! the release order ([`crate::release`]) never knows which one ran it.

use crate::config::TransportKind;
use crate::deploys::Deploys;
use crate::hosts::Target;
use crate::log::LogSink;
use crate::salt::{SaltFailure, SaltTransport};
use crate::ssh::{Output, Session, SshError, SshOptions};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A build's artefact as a release puts it on a host: the `.tar.gz` here and the sha256
/// of its bytes (a transport that copies the file checks it on the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub path: PathBuf,
    pub sha256: String,
}

impl Artefact {
    /// The artefact at `path`, hashing the file (the artefact store names files by
    /// their sha256 already: [`crate::artefacts::ArtefactStore::path`]).
    pub fn from_file(path: &Path) -> std::io::Result<Artefact> {
        let mut file = std::fs::File::open(path)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
        }
        Ok(Artefact {
            path: path.to_path_buf(),
            sha256: format!("{:x}", hash.finalize()),
        })
    }
}

/// Why a script could not be run on a host, or did not finish: the transport's own
/// failure, never the script's exit code (that is in [`Output`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Salt(#[from] SaltFailure),
    /// The script outlived its time and was killed on the host.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A way to run step scripts on one host.
#[async_trait]
pub trait HostLink: Send + Sync {
    /// Runs `script` with `sh` on the host, killed there at `timeout`; every output line
    /// goes to `log`.
    async fn exec(
        &self,
        script: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError>;

    /// Runs `script` with the artefact readable at `"$A"`: `-` (its stdin, streamed by
    /// the transport) or a file the transport copied to `fetch_to` (an absolute path in
    /// the deploy root) and checked against the artefact's sha256 before the script
    /// runs; the script removes that file.
    async fn exec_with_artefact(
        &self,
        script: &str,
        artefact: &Artefact,
        fetch_to: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError>;

    /// Lets go of the host (SSH: stops the master connection; dropping does the same
    /// without waiting).
    async fn close(self: Box<Self>);
}

#[async_trait]
impl HostLink for Session {
    async fn exec(
        &self,
        script: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError> {
        Ok(Session::exec(self, script, timeout, log).await?)
    }

    async fn exec_with_artefact(
        &self,
        script: &str,
        artefact: &Artefact,
        _fetch_to: &str,
        timeout: Duration,
        log: &dyn LogSink,
    ) -> Result<Output, LinkError> {
        // The SSH channel carries the bytes with its own integrity check: streamed to
        // stdin, nothing lands on the host's disk but the unpacked release.
        let script = format!("A=-\n{script}");
        Ok(self
            .exec_with_input(&script, &artefact.path, timeout, log)
            .await?)
    }

    async fn close(self: Box<Self>) {
        Session::close(*self).await;
    }
}

/// How a project's release reaches its hosts.
#[derive(Clone)]
pub enum Transport {
    Ssh(SshOptions),
    Salt(Arc<SaltTransport>),
}

impl Transport {
    /// The transport `project` asked for; `Err` (a sentence for the order's log) when it
    /// cannot be set up (`transport = "salt"` without `[deploy.salt]`).
    pub(crate) fn for_project(
        d: &Deploys,
        project: &crate::config::Project,
    ) -> Result<Transport, String> {
        match project.transport {
            TransportKind::Ssh => Ok(Transport::Ssh(crate::release::ssh_options(d, project))),
            TransportKind::Salt => d.salt().map(Transport::Salt),
        }
    }

    /// Checks, before any host, that the transport works at all (salt-api answers and
    /// accepts opsbot's login), so an order does not fail host by host for one cause.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Transport::Ssh(_) => Ok(()),
            Transport::Salt(s) => s.check().await,
        }
    }

    /// Opens the way to host `h` (SSH logs in to its address; Salt pings the minion
    /// named `h.name`).
    pub async fn connect(&self, h: &Target) -> Result<Box<dyn HostLink>, LinkError> {
        match self {
            Transport::Ssh(opts) => Ok(Box::new(Session::connect(&h.address, opts).await?)),
            Transport::Salt(s) => Ok(Box::new(s.connect(&h.name).await?)),
        }
    }
}
