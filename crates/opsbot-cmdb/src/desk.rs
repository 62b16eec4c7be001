//! The asset desk: what `资产:主机名` and `变更:主机名` show, read from the store and
//! handed to the chat engine as data (`crate::render` words it, `crate::chat` answers 资产 and 变更).

use crate::facts::Report;
use async_trait::async_trait;
use opsbot_core::asset::{Collected, CHANGE_KIND, CHANGE_PROVIDER};
use opsbot_core::{Asset, AssetCard, AssetDesk, AssetLookup, Change, DeskError, Facts};
use opsbot_store::{AssetQuery, AssetStore, ChangeLog, ChangeQuery};
use std::sync::Arc;
use std::time::Duration;

pub struct StoreDesk {
    store: Arc<dyn AssetStore>,
    /// Where the assets' changes are (the change history they share with the pool).
    changes: Arc<dyn ChangeLog>,
    stale_after: Duration,
}

impl StoreDesk {
    pub fn new(
        store: Arc<dyn AssetStore>,
        changes: Arc<dyn ChangeLog>,
        stale_after: Duration,
    ) -> StoreDesk {
        StoreDesk {
            store,
            changes,
            stale_after,
        }
    }
}

fn store_err(e: opsbot_store::StoreError) -> DeskError {
    DeskError::Unavailable(e.to_string())
}

#[async_trait]
impl AssetDesk for StoreDesk {
    async fn find(
        &self,
        name: &str,
        visible: &(dyn for<'a> Fn(&'a Asset) -> bool + Send + Sync),
    ) -> Result<AssetLookup, DeskError> {
        if let Some(a) = self.store.asset_find(name).await.map_err(store_err)? {
            if visible(&a) {
                return Ok(AssetLookup::Found(Box::new(a)));
            }
        }
        let key = name.trim().to_lowercase();
        let all = self
            .store
            .asset_list(&AssetQuery::default())
            .await
            .map_err(store_err)?;
        let mut scored: Vec<(f64, String)> = all
            .into_iter()
            .filter(|a| visible(a))
            .map(|a| {
                let s = strsim::jaro_winkler(&key, &a.hostname)
                    .max(strsim::jaro_winkler(&key, &a.identity));
                let s = if a.hostname.contains(&key) {
                    s.max(0.9)
                } else {
                    s
                };
                (s, a.hostname)
            })
            .filter(|(s, _)| *s >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(AssetLookup::NotFound {
            similar: scored.into_iter().take(5).map(|(_, n)| n).collect(),
        })
    }

    async fn card(&self, asset: &Asset) -> Result<AssetCard, DeskError> {
        let facts = self.store.asset_facts(asset.id).await.map_err(store_err)?;
        let report = self
            .store
            .asset_report(asset.id)
            .await
            .map_err(store_err)?
            .and_then(|r| serde_json::from_str::<Report>(&r).ok());
        Ok(card(
            asset.clone(),
            facts,
            report.as_ref(),
            self.stale_after,
        ))
    }

    async fn changes(&self, asset: &Asset, limit: u64) -> Result<Vec<Change>, DeskError> {
        self.changes
            .changes(&ChangeQuery {
                provider: Some(CHANGE_PROVIDER.into()),
                object_kind: Some(CHANGE_KIND.into()),
                object_id: Some(asset.identity.clone()),
                limit,
                offset: 0,
            })
            .await
            .map_err(store_err)
    }
}

/// The CMDB as a chat subsystem: its own commands, 资产 and 变更, read this desk.
impl opsbot_core::Subsystem for StoreDesk {
    fn register(self: Arc<Self>, registry: &mut opsbot_core::Registry) {
        registry.commands(Arc::new(crate::chat::AssetCommands::new(self)));
    }
}

/// What the card shows of a stored asset and its latest report.
pub fn card(
    asset: Asset,
    facts: Facts,
    report: Option<&Report>,
    stale_after: Duration,
) -> AssetCard {
    AssetCard {
        asset,
        facts,
        collected: report.map(|r| Collected {
            disks: r.disks.clone(),
            filesystems: r.filesystems.clone(),
            nics: r.nics.clone(),
            plugins: r.plugins.keys().cloned().collect(),
            uptime_secs: r.uptime_secs,
            problems: r.problems.clone(),
        }),
        stale_after,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect;
    use crate::source::FsSource;
    use opsbot_core::AssetStatus;

    /// The card carries the latest report's lists as collected (`crate::render`
    /// snapshot-tests their wording from the same fixture).
    #[test]
    fn the_card_carries_the_reports_lists() {
        let root =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/server");
        let r = collect::collect(&FsSource::at(root), &[], None);
        let at = chrono::Utc::now();
        let asset = Asset {
            id: 1,
            identity: "db-01".into(),
            hostname: r.hostname.clone(),
            source: "agent".into(),
            status: AssetStatus::Active,
            token_id: "t1".into(),
            vm: None,
            first_seen: at,
            last_seen: at,
        };
        let c = card(asset, r.facts(), Some(&r), Duration::from_secs(86_400));
        let got = c.collected.expect("from the report");
        let names = |v: Vec<&str>| v.join(",");
        assert_eq!(
            names(got.disks.iter().map(|d| d.name.as_str()).collect()),
            "nvme0n1,sda"
        );
        assert_eq!(got.disks[0].size_bytes, 3_750_748_848 * 512);
        assert_eq!(
            names(got.filesystems.iter().map(|f| f.mount.as_str()).collect()),
            "/,/var/lib/mysql,/boot/efi,/mnt/backup disk"
        );
        assert_eq!(
            names(got.nics.iter().map(|n| n.name.as_str()).collect()),
            "eth0,eth1"
        );
        assert_eq!(got.nics[0].speed_mbps, Some(10_000));
        assert_eq!(got.nics[1].state, "down");
        assert_eq!(got.uptime_secs, Some(1_049_000));
        assert_eq!(
            c.facts.get("memory.total_bytes").map(String::as_str),
            Some("270179188736")
        );
        assert_eq!(
            c.facts.get("board.product_serial").map(String::as_str),
            Some("8XYZ123")
        );
        assert_eq!(c.stale_after, Duration::from_secs(86_400));
        assert!(card(c.asset, Facts::new(), None, c.stale_after)
            .collected
            .is_none());
    }
}
