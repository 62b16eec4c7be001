//! The `vsphere` provider: [`opsbot_core::Provider`] for one configured vCenter.
//!
//! Construction does no I/O, so opsbot starts while a vCenter is down; the session is
//! opened on first use and dropped after a connection-level failure so the next call
//! connects afresh.

use crate::client::{ClientConfig, VimClient};
use crate::error::Error;
use crate::fingerprint::Prints;
use crate::guest::GuestSettings;
use crate::tagging::{TagCache, TagClient, TagError, VmTags};
use async_trait::async_trait;
use opsbot_core::{
    Inventory, InventoryRead, OpOutcome, Progress, Provider, ProviderError, Rejection, VmOperation,
};
use tokio::sync::Mutex;

pub struct VsphereProvider {
    name: String,
    cfg: ClientConfig,
    guest: GuestSettings,
    client: Mutex<Option<VimClient>>,
    tagging: Mutex<Tagging>,
}

/// vSphere tags across passes: the names known, the last tags read (kept when a read
/// fails, so a passing outage does not strip every VM's tags), and whether the failure
/// was already logged.
#[derive(Default)]
struct Tagging {
    client: Option<TagClient>,
    cache: TagCache,
    last: VmTags,
    warned: bool,
}

impl std::fmt::Debug for VsphereProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsphereProvider")
            .field("name", &self.name)
            .field("url", &self.cfg.url)
            .finish()
    }
}

impl VsphereProvider {
    /// A provider that connects on first use (no network here).
    pub fn new(name: &str, cfg: ClientConfig) -> Self {
        VsphereProvider {
            name: name.to_string(),
            cfg,
            guest: GuestSettings::default(),
            client: Mutex::new(None),
            tagging: Mutex::new(Tagging::default()),
        }
    }

    /// What clones get besides their IP (subnets, Windows identity).
    pub fn with_guest(mut self, guest: GuestSettings) -> Self {
        self.guest = guest;
        self
    }

    /// A provider with its session already open (fails fast when the vCenter is down).
    pub async fn connect(name: &str, cfg: ClientConfig) -> crate::error::Result<Self> {
        let p = Self::new(name, cfg);
        let c = VimClient::connect(p.cfg.clone()).await?;
        *p.client.lock().await = Some(c);
        Ok(p)
    }

    /// The session, opened if needed.
    pub async fn client(&self) -> Result<VimClient, ProviderError> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = VimClient::connect(self.cfg.clone())
            .await
            .map_err(|e| self.map_error(e))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Forgets the session after a connection-level failure.
    async fn reset_on(&self, e: &Error) {
        if e.is_unavailable() {
            *self.client.lock().await = None;
        }
    }

    /// Every VM's vSphere tags: read now, or the last ones read when the tagging service
    /// fails (a vCenter without it, 404, or one that refuses): the sync goes on, and the
    /// failure is logged once until a read works again. `fresh` forgets the tag names
    /// known, so a renamed tag or category is read again (full reads).
    async fn vm_tags(&self, soap: &VimClient, fresh: bool) -> VmTags {
        let mut guard = self.tagging.lock().await;
        let t = &mut *guard;
        if fresh {
            t.cache = TagCache::default();
        }
        let client = t.client.get_or_insert_with(|| TagClient::new(soap));
        match client.vm_tags(&mut t.cache).await {
            Ok(tags) => {
                if t.warned {
                    tracing::info!(provider = %self.name, "vSphere tags are readable again");
                }
                t.warned = false;
                t.last = tags.clone();
                tags
            }
            Err(e) => {
                if !t.warned {
                    let unsupported = matches!(e, TagError::Unsupported { .. });
                    tracing::warn!(
                        provider = %self.name,
                        error = %e,
                        unsupported,
                        "vSphere tags not read; syncing without them (custom attributes still become tags)"
                    );
                    t.warned = true;
                }
                // A session that failed may be stale: the next pass logs in again.
                t.client = None;
                t.last.clone()
            }
        }
    }

    /// The tags of the last read, for a VM an operation just read back.
    async fn last_tags(&self) -> VmTags {
        self.tagging.lock().await.last.clone()
    }

    /// Whether the last tag read failed (tests, diagnostics).
    pub async fn tags_failing(&self) -> bool {
        self.tagging.lock().await.warned
    }

    /// Client errors in the provider's terms.
    pub fn map_error(&self, e: Error) -> ProviderError {
        map_error(&self.name, e)
    }
}

/// Above this many changed VMs one full read is cheaper than reading them one batch at a
/// time after the light pass: a tenth of the estate, at least a batch.
fn delta_limit(vms: usize) -> usize {
    (vms / 10).max(500)
}

/// Unreachable/login/timeout/TLS → Unavailable (naming the vCenter); faults → Rejected with
/// the fault kind and message; the rest → Unavailable.
pub fn map_error(provider: &str, e: Error) -> ProviderError {
    match e {
        Error::Fault { kind, message } if kind == "ManagedObjectNotFound" => {
            Rejection::ObjectGone { detail: message }.into()
        }
        Error::Fault { kind, message } => Rejection::ClusterFault {
            detail: (message != kind).then_some(message),
            fault: kind,
        }
        .into(),
        Error::FencedOut { .. } => ProviderError::FencedOut,
        other => ProviderError::unavailable(provider, other),
    }
}

#[async_trait]
impl Provider for VsphereProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "vsphere"
    }

    async fn inventory(&self) -> Result<Inventory, ProviderError> {
        let client = self.client().await?;
        let (read, tags) = tokio::join!(
            crate::inventory::fetch(&client, &self.name),
            self.vm_tags(&client, true)
        );
        match read {
            Ok(mut inv) => {
                for vm in &mut inv.vms {
                    crate::tagging::merge(vm, &tags);
                }
                Ok(inv)
            }
            Err(e) => {
                self.reset_on(&e).await;
                Err(self.map_error(e))
            }
        }
    }

    /// A light pass first when there is a token to compare with: unchanged, or only the
    /// VMs whose prints moved read in full; a full read (which leaves the next token)
    /// when there is no token, the non-VM objects moved, or too many VMs did.
    async fn inventory_since(&self, since: Option<&str>) -> Result<InventoryRead, ProviderError> {
        let client = self.client().await?;
        let read = async {
            if let Some(old) = since.and_then(Prints::parse) {
                let (light, tags) = tokio::join!(
                    crate::inventory::light_pass(&client, &self.name),
                    self.vm_tags(&client, false)
                );
                let mut light = light?;
                // vSphere tags are part of each VM's print: a tag attached reads it again.
                let now = light.prints.with_tags(&tags);
                let delta = now.delta_from(&old);
                if now.base == old.base {
                    if delta.is_empty() {
                        return Ok(InventoryRead::Unchanged);
                    }
                    if delta.changed.len() <= delta_limit(now.vms.len()) {
                        let (mut vms, gone) =
                            light.read_vms(&client, &self.name, &delta.changed).await?;
                        for vm in &mut vms {
                            crate::tagging::merge(vm, &tags);
                        }
                        let mut removed = delta.removed;
                        removed.extend(gone);
                        return Ok(InventoryRead::Delta {
                            vms,
                            removed,
                            token: light.prints.with_tags(&tags).token(),
                        });
                    }
                }
            }
            let (read, tags) = tokio::join!(
                crate::inventory::fetch_with_prints(&client, &self.name),
                self.vm_tags(&client, true)
            );
            let (mut inventory, prints) = read?;
            for vm in &mut inventory.vms {
                crate::tagging::merge(vm, &tags);
            }
            Ok(InventoryRead::Full {
                inventory,
                token: Some(prints.with_tags(&tags).token()),
            })
        };
        match read.await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.reset_on(&e).await;
                Err(self.map_error(e))
            }
        }
    }

    /// A clone's copy (CloneVM_Task) is what vCenter lets a user cancel, and the only
    /// operation here long enough to want it; the others are quick reconfigurations.
    fn can_cancel(&self, op: &VmOperation) -> bool {
        matches!(op, VmOperation::Clone { .. })
    }

    async fn execute(
        &self,
        op: &VmOperation,
        progress: &dyn Progress,
    ) -> Result<OpOutcome, ProviderError> {
        let client = self.client().await?;
        let mut result = crate::ops::execute(&client, &self.name, &self.guest, op, progress).await;
        if let Err(ProviderError::Unavailable { .. }) = &result {
            *self.client.lock().await = None;
        }
        // The VM read back carries its vSphere tags as the last sync saw them.
        if let Ok(OpOutcome { vm: Some(vm), .. }) = &mut result {
            crate::tagging::merge(vm, &self.last_tags().await);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_rejections_and_outages_are_unavailable() {
        let r = map_error(
            "vc1",
            Error::Fault {
                kind: "InvalidPowerState".into(),
                message: "requestedState=poweredOff, existingState=poweredOff".into(),
            },
        );
        assert!(
            opsbot_engine::render::provider::error(&r).starts_with("InvalidPowerState"),
            "{r}"
        );
        assert!(matches!(r, ProviderError::Rejected(_)));
        let u = map_error(
            "vc1",
            Error::Unreachable {
                url: "https://vc1/sdk".into(),
                message: "connection refused".into(),
            },
        );
        let text = opsbot_engine::render::provider::error(&u);
        assert!(
            text.contains("vc1") && text.contains("https://vc1/sdk"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn construction_does_no_io() {
        let p = VsphereProvider::new(
            "vc1",
            ClientConfig::new("https://127.0.0.1:1/sdk", "u", "p"),
        );
        assert_eq!(p.kind(), "vsphere");
        assert_eq!(p.name(), "vc1");
    }
}
