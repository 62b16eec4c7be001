//! Resource-pool sync: reads each provider's inventory and writes it to the store.
//!
//! A provider that can tell changes (vSphere: a light pass over the properties the pool
//! is built from, printed per VM) is given the change token of the last sync it applied;
//! when it answers "unchanged", nothing is read in full and nothing is written, and when
//! it answers with a delta, only the VMs it names are written.
//! The token is kept in the store beside the pool it describes, so it holds across
//! processes (`opsbot sync` twice, several instances) and is written only after the pool
//! accepted the inventory: a failed write is followed by a full read. A token older than
//! [`FULL_SYNC_EVERY`] is not offered, so every provider is read in full at least that
//! often, which bounds how long a change the fingerprint cannot see stays unseen.
//!
//! A sync run under a lease (`opsbot serve`'s scheduled sync) is fenced: run inside
//! [`fenced`], its pool writes present the lease and the store refuses them once the
//! lease changed hands, so an instance frozen mid-sync cannot write an older view of
//! the estate over the one its successor wrote. A sync outside [`fenced`] (同步, the
//! start-up sync, `opsbot sync`) writes unfenced, as before.

use crate::jobs::JobProgress;
use chrono::{DateTime, Utc};
use opsbot_core::{InventoryRead, Provider};
use opsbot_store::{Lease, PoolStore, StateStore, SyncReport};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

tokio::task_local! {
    /// The lease the syncs of this task run under (see [`fenced`]).
    static FENCE: Lease;
}

/// Runs `work` (a sync through the engine, as `Engine::sync_provider`) with its pool
/// writes fenced by `lease`: a write after the lease changed hands is refused and the
/// sync fails saying so. The fence reaches the syncer through the task, so the engine's
/// sync entry points need no parameter for it.
pub async fn fenced<F: Future>(lease: Lease, work: F) -> F::Output {
    FENCE.scope(lease, work).await
}

/// Why a fenced sync wrote nothing.
fn fenced_out(provider: &str, lease: &Lease) -> String {
    format!(
        "租约 {} 已由其他实例接管,{provider} 本次同步的结果未写入",
        lease.name
    )
}

/// The longest a pool goes without a full read of its provider.
pub const FULL_SYNC_EVERY: Duration = Duration::from_secs(3600);

/// What the store keeps per provider after a full sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Applied {
    token: String,
    at: DateTime<Utc>,
    report: SyncReport,
}

fn state_key(provider: &str) -> String {
    format!("sync:{provider}")
}

pub struct Syncer {
    pool: Arc<dyn PoolStore>,
    /// Where each provider's sync token is kept.
    state: Arc<dyn StateStore>,
    full_every: Duration,
    /// One sync per engine at a time: the scheduled sync, `同步` and startup must not read
    /// and apply the same provider concurrently.
    running: tokio::sync::Mutex<()>,
}

impl Syncer {
    pub fn new(pool: Arc<dyn PoolStore>, state: Arc<dyn StateStore>, full_every: Duration) -> Self {
        Syncer {
            pool,
            state,
            full_every,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Syncs `providers` in order; the first failure ends the run with a message naming
    /// the provider.
    pub async fn run(
        &self,
        providers: &[Arc<dyn Provider>],
        source: &str,
        progress: Option<&JobProgress>,
    ) -> Result<Vec<SyncReport>, String> {
        let _running = self.running.lock().await;
        let mut reports = Vec::new();
        let total = providers.len().max(1);
        for (i, p) in providers.iter().enumerate() {
            if let Some(pr) = progress {
                pr.note((i * 100 / total) as u8, format!("正在同步 {}", p.name()));
            }
            let started = std::time::Instant::now();
            let result = self
                .one(p.as_ref(), source)
                .await
                .map_err(|e| format!("同步 {} 失败: {e}", p.name()));
            crate::metrics::sync_finished(p.name(), result.is_ok(), started.elapsed());
            reports.push(result?);
        }
        Ok(reports)
    }

    async fn one(&self, p: &dyn Provider, source: &str) -> Result<SyncReport, String> {
        let last = self.last(p.name()).await;
        let read = p
            .inventory_since(last.as_ref().map(|a| a.token.as_str()))
            .await
            .map_err(|e| crate::render::provider::error(&e))?;
        match read {
            InventoryRead::Unchanged => match last {
                Some(applied) => Ok(SyncReport {
                    added: 0,
                    updated: 0,
                    removed: 0,
                    unchanged: true,
                    ..applied.report
                }),
                // Only a token we passed can be unchanged; a provider that says so
                // unasked is broken, and the pool must not be left unsynced.
                None => Err(format!(
                    "provider {} answered 'unchanged' to a full sync",
                    p.name()
                )),
            },
            InventoryRead::Delta {
                vms,
                removed,
                token,
            } => {
                let report = match FENCE.try_with(Lease::clone).ok() {
                    Some(lease) => self
                        .pool
                        .apply_vm_delta_fenced(p.name(), &vms, &removed, source, &lease)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| fenced_out(p.name(), &lease))?,
                    None => self
                        .pool
                        .apply_vm_delta(p.name(), &vms, &removed, source)
                        .await
                        .map_err(|e| e.to_string())?,
                };
                self.remember(p.name(), token, &report).await;
                Ok(report)
            }
            InventoryRead::Full { inventory, token } => {
                let report = match FENCE.try_with(Lease::clone).ok() {
                    Some(lease) => self
                        .pool
                        .apply_inventory_fenced(p.name(), &inventory, source, &lease)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| fenced_out(p.name(), &lease))?,
                    None => self
                        .pool
                        .apply_inventory(p.name(), &inventory, source)
                        .await
                        .map_err(|e| e.to_string())?,
                };
                if let Some(token) = token {
                    self.remember(p.name(), token, &report).await;
                }
                Ok(report)
            }
        }
    }

    /// The last applied token, if it is recent enough to stand in for a full read.
    async fn last(&self, provider: &str) -> Option<Applied> {
        let raw = match self.state.get_state(&state_key(provider)).await {
            Ok(raw) => raw?,
            Err(e) => {
                tracing::warn!(provider, error = %e, "cannot read the sync token; reading everything");
                return None;
            }
        };
        let applied: Applied = serde_json::from_str(&raw).ok()?;
        let age = (Utc::now() - applied.at).to_std().unwrap_or(Duration::MAX);
        (age < self.full_every).then_some(applied)
    }

    /// Keeps the token; failing to is harmless (the next sync reads everything).
    async fn remember(&self, provider: &str, token: String, report: &SyncReport) {
        let applied = Applied {
            token,
            at: Utc::now(),
            report: report.clone(),
        };
        let Ok(json) = serde_json::to_string(&applied) else {
            return;
        };
        if let Err(e) = self.state.put_state(&state_key(provider), &json).await {
            tracing::warn!(provider, error = %e, "cannot keep the sync token; the next sync reads everything");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use opsbot_core::{Datacenter, Inventory, OpOutcome, Progress, ProviderError, VmOperation};
    use opsbot_store::Store;
    use std::sync::Mutex;

    /// A provider whose inventory and change token the test sets; it records the token
    /// each read was offered.
    struct Scripted {
        token: Mutex<String>,
        offered: Mutex<Vec<Option<String>>>,
    }

    impl Scripted {
        fn new(token: &str) -> Arc<Self> {
            Arc::new(Scripted {
                token: Mutex::new(token.into()),
                offered: Mutex::new(Vec::new()),
            })
        }
        fn offered(&self) -> Vec<Option<String>> {
            self.offered.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Provider for Scripted {
        fn name(&self) -> &str {
            "vc1"
        }
        fn kind(&self) -> &'static str {
            "scripted"
        }
        async fn inventory(&self) -> Result<Inventory, ProviderError> {
            let token = self.token.lock().unwrap().clone();
            Ok(Inventory {
                datacenters: vec![Datacenter {
                    provider: "vc1".into(),
                    id: "datacenter-1".into(),
                    name: format!("DC-{token}"),
                }],
                ..Inventory::default()
            })
        }
        async fn inventory_since(
            &self,
            since: Option<&str>,
        ) -> Result<InventoryRead, ProviderError> {
            self.offered.lock().unwrap().push(since.map(str::to_string));
            let token = self.token.lock().unwrap().clone();
            if since == Some(token.as_str()) {
                return Ok(InventoryRead::Unchanged);
            }
            Ok(InventoryRead::Full {
                inventory: self.inventory().await?,
                token: Some(token),
            })
        }
        async fn execute(
            &self,
            _: &VmOperation,
            _: &dyn Progress,
        ) -> Result<OpOutcome, ProviderError> {
            Err(ProviderError::Unsupported("scripted"))
        }
    }

    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        (opsbot_store::connect(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn unchanged_writes_nothing_and_the_token_outlives_the_syncer() {
        let (store, _dir) = store().await;
        let p = Scripted::new("a");
        let providers: Vec<Arc<dyn Provider>> = vec![p.clone()];
        let first = Syncer::new(store.clone(), store.clone(), FULL_SYNC_EVERY)
            .run(&providers, "sync:test", None)
            .await
            .unwrap();
        assert_eq!((first[0].added, first[0].unchanged), (1, false));
        let version = store.pool_version().await.unwrap();

        // A new syncer (another process) offers the stored token; nothing is written.
        let again = Syncer::new(store.clone(), store.clone(), FULL_SYNC_EVERY);
        let second = again.run(&providers, "sync:test", None).await.unwrap();
        assert!(second[0].unchanged);
        assert_eq!(second[0].datacenters, 1, "the counts of the last sync");
        assert_eq!(store.pool_version().await.unwrap(), version);
        assert_eq!(p.offered(), vec![None, Some("a".into())]);

        // The provider moves: a full read, applied, and its token kept.
        *p.token.lock().unwrap() = "b".into();
        let third = again.run(&providers, "sync:test", None).await.unwrap();
        assert_eq!((third[0].updated, third[0].unchanged), (1, false));
        assert!(store.pool_version().await.unwrap() > version);
        again.run(&providers, "sync:test", None).await.unwrap();
        assert_eq!(p.offered().last().unwrap().as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn a_fenced_sync_writes_only_while_its_lease_holds() {
        let (store, _dir) = store().await;
        let p = Scripted::new("a");
        let providers: Vec<Arc<dyn Provider>> = vec![p.clone()];
        let lease = "schedule:sync:vc1";
        let hour = Duration::from_secs(3600);
        let held = store.lease_take(lease, "me", hour).await.unwrap().unwrap();
        let syncer = Syncer::new(store.clone(), store.clone(), FULL_SYNC_EVERY);
        let first = fenced(held.clone(), syncer.run(&providers, "sync:schedule", None))
            .await
            .unwrap();
        assert_eq!(first[0].added, 1);

        // Another instance takes the lease over; this one's next sync writes nothing
        // and keeps no token (the next sync reads everything again).
        store.lease_release(lease, "me").await.unwrap();
        store
            .lease_take(lease, "other", hour)
            .await
            .unwrap()
            .unwrap();
        *p.token.lock().unwrap() = "b".into();
        let version = store.pool_version().await.unwrap();
        let err = fenced(held, syncer.run(&providers, "sync:schedule", None))
            .await
            .unwrap_err();
        assert!(err.contains("其他实例接管"), "{err}");
        assert_eq!(store.pool_version().await.unwrap(), version);
        let pool = store.load_pool().await.unwrap();
        assert_eq!(pool.inventory.datacenters[0].name, "DC-a");

        // Unfenced (同步 by hand), the same sync goes through.
        let manual = syncer.run(&providers, "sync:manual", None).await.unwrap();
        assert_eq!(manual[0].updated, 1);
        assert_eq!(p.offered(), vec![None, Some("a".into()), Some("a".into())]);
    }

    #[tokio::test]
    async fn an_old_token_is_not_offered() {
        let (store, _dir) = store().await;
        let p = Scripted::new("a");
        let providers: Vec<Arc<dyn Provider>> = vec![p.clone()];
        let syncer = Syncer::new(store.clone(), store.clone(), Duration::ZERO);
        syncer.run(&providers, "sync:test", None).await.unwrap();
        let report = syncer.run(&providers, "sync:test", None).await.unwrap();
        assert!(!report[0].unchanged);
        assert_eq!(p.offered(), vec![None, None]);
    }

    #[tokio::test]
    async fn a_provider_claiming_unchanged_unasked_is_an_error() {
        struct Liar;
        #[async_trait]
        impl Provider for Liar {
            fn name(&self) -> &str {
                "vc9"
            }
            fn kind(&self) -> &'static str {
                "liar"
            }
            async fn inventory(&self) -> Result<Inventory, ProviderError> {
                Ok(Inventory::default())
            }
            async fn inventory_since(
                &self,
                _: Option<&str>,
            ) -> Result<InventoryRead, ProviderError> {
                Ok(InventoryRead::Unchanged)
            }
            async fn execute(
                &self,
                _: &VmOperation,
                _: &dyn Progress,
            ) -> Result<OpOutcome, ProviderError> {
                Err(ProviderError::Unsupported("liar"))
            }
        }
        let (store, _dir) = store().await;
        let err = Syncer::new(store.clone(), store, FULL_SYNC_EVERY)
            .run(&[Arc::new(Liar) as Arc<dyn Provider>], "sync:test", None)
            .await
            .unwrap_err();
        assert!(err.contains("vc9"), "{err}");
    }
}
