//! How a subsystem (alerts, CMDB, and next deploys and Kubernetes) plugs into the chat
//! engine without the engine knowing its crate, and without its crate knowing the
//! engine: it implements [`Subsystem`], and the binary registers it once
//! (`Engine::register`). What it registers is the desk its commands are answered
//! through; the engine's command table says which commands need which [`Feature`].

use crate::{AlertDesk, AssetDesk};
use std::sync::Arc;

/// A part of opsbot whose chat commands work only once it is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// The alert gateway: 告警, 确认:id, 静默 (and the firing count in 概况).
    Alerts,
    /// The CMDB: 资产, 变更.
    Assets,
    /// Kubernetes workloads: 扩容 (not in this build).
    Kubernetes,
    /// Deploys: 发布, 回滚, 批准 (not in this build).
    Deploys,
}

/// What the registered subsystems offer the engine.
#[derive(Clone, Default)]
pub struct Registry {
    alerts: Option<Arc<dyn AlertDesk>>,
    assets: Option<Arc<dyn AssetDesk>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("alerts", &self.alerts.is_some())
            .field("assets", &self.assets.is_some())
            .finish()
    }
}

impl Registry {
    /// The alert gateway answers 告警, 确认:id and 静默 through `desk`.
    pub fn alert_desk(&mut self, desk: Arc<dyn AlertDesk>) {
        self.alerts = Some(desk);
    }

    /// The CMDB answers 资产 and 变更 through `desk`.
    pub fn asset_desk(&mut self, desk: Arc<dyn AssetDesk>) {
        self.assets = Some(desk);
    }

    pub fn alerts(&self) -> Option<&Arc<dyn AlertDesk>> {
        self.alerts.as_ref()
    }

    pub fn assets(&self) -> Option<&Arc<dyn AssetDesk>> {
        self.assets.as_ref()
    }

    /// Whether the commands that need `feature` can run.
    pub fn has(&self, feature: Feature) -> bool {
        match feature {
            Feature::Alerts => self.alerts.is_some(),
            Feature::Assets => self.assets.is_some(),
            Feature::Kubernetes | Feature::Deploys => false,
        }
    }
}

/// A subsystem: registers what its commands are answered through.
pub trait Subsystem: Send + Sync {
    fn register(self: Arc<Self>, registry: &mut Registry);
}
