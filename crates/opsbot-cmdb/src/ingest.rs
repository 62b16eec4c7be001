//! The server side of reports: validate, check the token may speak for the host, link
//! the VM, and write. Writes go through one writer task that takes every report
//! waiting at that moment as one batch in one transaction, so under load the cost of a
//! commit is shared by many reports; each caller gets its own answer only after the
//! commit (a 2xx means stored).

use crate::facts::Report;
use crate::link::PoolIndex;
use crate::{CmdbError, Result};
use chrono::SubsecRound;
use opsbot_core::{Change, VmLink};
use opsbot_store::{AssetIngest, AssetStore, IngestOutcome, PoolStore, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Who sent a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An agent with a verified token; `subject` is the host it is pinned to (empty:
    /// any, bound by the first report).
    Agent { token_id: String, subject: String },
    /// Agentless collection by this server (`ssh:schedule`, `ssh:cli`).
    Agentless { source: String },
    /// Collection through a Salt master (`salt:schedule`, `salt:cli`).
    Salt { source: String },
}

/// What the server did with a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub asset_id: i64,
    pub identity: String,
    pub created: bool,
    pub changes: Vec<Change>,
    pub vm: Option<VmLink>,
}

struct Job {
    item: AssetIngest,
    reply: oneshot::Sender<std::result::Result<IngestOutcome, StoreError>>,
}

struct PoolState {
    index: PoolIndex,
    checked: Option<Instant>,
}

/// Cheap to clone; all clones feed one writer.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    /// Flags the hosts a collection pass found silent.
    assets: Arc<dyn AssetStore>,
    /// Read to link reports to pool VMs.
    pool_store: Arc<dyn PoolStore>,
    pool: Arc<Mutex<PoolState>>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").finish_non_exhaustive()
    }
}

/// How often the pool version is checked for new VMs to link to.
const POOL_RECHECK: Duration = Duration::from_secs(1);

/// A `StoreError` for each caller of a failed batch.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable { backend, message } => StoreError::Unavailable {
            backend: backend.clone(),
            message: message.clone(),
        },
        other => StoreError::Query {
            backend: String::new(),
            action: "writing asset reports".into(),
            message: other.to_string(),
        },
    }
}

impl Ingestor {
    /// Starts the writer into `assets`; batches hold at most `max_batch` reports.
    /// Reports are linked to the VMs of `pool`.
    pub fn start(
        assets: Arc<dyn AssetStore>,
        pool: Arc<dyn PoolStore>,
        max_batch: usize,
    ) -> Ingestor {
        let (tx, rx) = mpsc::channel::<Job>(max_batch.max(1) * 4);
        tokio::spawn(writer(assets.clone(), rx, max_batch.max(1)));
        Ingestor {
            tx,
            assets,
            pool_store: pool,
            pool: Arc::new(Mutex::new(PoolState {
                // Version -1: the first check always loads the pool.
                index: PoolIndex::build(-1, &opsbot_core::Inventory::default()),
                checked: None,
            })),
        }
    }

    /// Parses, validates and stores a report body.
    pub async fn submit_body(&self, body: &[u8], origin: Origin) -> Result<Receipt> {
        self.submit(Report::parse(body)?, origin).await
    }

    /// Flags the assets `identities` stale: a collection pass asked them and they did not
    /// answer (never a change of their facts). Returns those that were active.
    pub async fn mark_silent(&self, identities: &[String], source: &str) -> Result<Vec<String>> {
        Ok(self
            .assets
            .assets_mark_stale_named(identities, source)
            .await?)
    }

    /// Stores a report (validated again here).
    pub async fn submit(&self, mut report: Report, origin: Origin) -> Result<Receipt> {
        report.validate()?;
        let (source, change_source, token_id, pinned) = match &origin {
            Origin::Agent { token_id, subject } => {
                let subject = subject.trim().to_lowercase();
                if !subject.is_empty() && subject != report.identity {
                    return Err(CmdbError::WrongHost(format!(
                        "this agent token may only report as host {subject}, not {}",
                        report.identity
                    )));
                }
                (
                    "agent",
                    format!("agent:{token_id}"),
                    token_id.clone(),
                    !subject.is_empty(),
                )
            }
            Origin::Agentless { source } => ("ssh", source.clone(), String::new(), false),
            Origin::Salt { source } => ("salt", source.clone(), String::new(), false),
        };
        let vm = self.link(&report).await;
        let body =
            serde_json::to_string(&report).map_err(|e| CmdbError::InvalidReport(e.to_string()))?;
        let item = AssetIngest {
            identity: report.identity.clone(),
            hostname: report.hostname.clone(),
            source: source.into(),
            change_source,
            token_id,
            token_pinned: pinned,
            vm: vm.clone(),
            facts: report.facts(),
            report: body,
            seen_at: chrono::Utc::now().trunc_subsecs(6),
        };
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { item, reply })
            .await
            .map_err(|_| CmdbError::WriterGone)?;
        match answer.await.map_err(|_| CmdbError::WriterGone)?? {
            IngestOutcome::Stored {
                asset_id,
                created,
                changes,
            } => Ok(Receipt {
                asset_id,
                identity: report.identity,
                created,
                changes,
                vm,
            }),
            IngestOutcome::Refused { reason } => Err(CmdbError::WrongHost(reason)),
        }
    }

    /// The pool VM this host is, by DMI UUID or serial.
    async fn link(&self, report: &Report) -> Option<VmLink> {
        let board = report.board.as_ref()?;
        let mut st = self.pool.lock().await;
        if st.checked.is_none_or(|t| t.elapsed() >= POOL_RECHECK) {
            st.checked = Some(Instant::now());
            match self.pool_store.pool_version().await {
                Ok(v) if v != st.index.version => match self.pool_store.load_pool().await {
                    Ok(p) => st.index = PoolIndex::build(p.version, &p.inventory),
                    Err(e) => tracing::warn!(error = %e, "cannot load the pool to link assets"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the pool version"),
            }
        }
        st.index
            .find(
                board.product_uuid.as_deref(),
                board.product_serial.as_deref(),
            )
            .cloned()
    }
}

async fn writer(store: Arc<dyn AssetStore>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (items, replies): (Vec<AssetIngest>, Vec<_>) =
            jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
        match store.assets_ingest(&items).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, reports = items.len(), "could not store asset reports");
                for reply in replies {
                    let _ = reply.send(Err(copy_error(&e)));
                }
            }
        }
    }
}

/// Flags assets not seen for `stale_after` as stale (recorded in the change history).
pub async fn sweep_stale(
    store: &dyn AssetStore,
    stale_after: Duration,
    source: &str,
) -> Result<Vec<String>> {
    let before = chrono::Utc::now()
        - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    Ok(store.assets_mark_stale(before, source).await?)
}
