//! How a subsystem (alerts, CMDB, and next deploys and Kubernetes) plugs into the chat
//! engine without the engine knowing its crate, and without its crate knowing the
//! engine: it implements [`Subsystem`], and the binary registers it once
//! (`Engine::register`). What it registers is either its own chat commands
//! ([`ChatCommands`](crate::chat::ChatCommands): the way for a new subsystem, which
//! then touches no other crate), or a desk the engine's own commands read (the alert
//! gateway, whose 确认 shares its name with the conversation's confirmation and whose
//! firing count 概况 shows); the engine's command table says which of its commands
//! need which [`Feature`].

use crate::chat::{ChatCommands, MenuSource};
use crate::AlertDesk;
use std::sync::Arc;

/// A part of opsbot whose chat commands work only once it is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// The alert gateway: 告警, 确认:id, 静默 (and the firing count in 概况).
    Alerts,
    /// Kubernetes workloads: 扩容 (not in this build).
    Kubernetes,
    /// Deploys' planned commands; the deploy subsystem (`opsbot-deploy`) replaces them
    /// with its own, so nothing requires this once it is registered.
    Deploys,
}

/// What the registered subsystems offer the engine.
#[derive(Clone, Default)]
pub struct Registry {
    alerts: Option<Arc<dyn AlertDesk>>,
    commands: Vec<Arc<dyn ChatCommands>>,
    menu_sources: Vec<Arc<dyn MenuSource>>,
    probes: Vec<Arc<dyn crate::JobStateProbe>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("alerts", &self.alerts.is_some())
            .field(
                "commands",
                &self
                    .commands
                    .iter()
                    .flat_map(|c| c.commands().iter().map(|d| d.name))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Registry {
    /// The alert gateway answers 告警, 确认:id and 静默 through `desk`.
    pub fn alert_desk(&mut self, desk: Arc<dyn AlertDesk>) {
        self.alerts = Some(desk);
    }

    /// A subsystem's own chat commands (the CMDB's 资产 and 变更, …).
    pub fn commands(&mut self, commands: Arc<dyn ChatCommands>) {
        self.commands.push(commands);
    }

    /// Live data for the configured menu's dynamic nodes.
    pub fn menu_source(&mut self, source: Arc<dyn MenuSource>) {
        self.menu_sources.push(source);
    }

    /// Tells the state of what an interrupted job of this subsystem was changing.
    pub fn job_probe(&mut self, probe: Arc<dyn crate::JobStateProbe>) {
        self.probes.push(probe);
    }

    /// The registered job-state probes, in registration order.
    pub fn job_probes(&self) -> &[Arc<dyn crate::JobStateProbe>] {
        &self.probes
    }

    /// The registered menu source answering `name`.
    pub fn menu_source_named(&self, name: &str) -> Option<&Arc<dyn MenuSource>> {
        self.menu_sources
            .iter()
            .find(|s| s.sources().contains(&name))
    }

    pub fn alerts(&self) -> Option<&Arc<dyn AlertDesk>> {
        self.alerts.as_ref()
    }

    /// The registered command sets, in registration order.
    pub fn command_sets(&self) -> &[Arc<dyn ChatCommands>] {
        &self.commands
    }

    /// Whether the commands that need `feature` can run.
    pub fn has(&self, feature: Feature) -> bool {
        match feature {
            Feature::Alerts => self.alerts.is_some(),
            Feature::Kubernetes | Feature::Deploys => false,
        }
    }
}

/// A subsystem: registers its chat commands, or the desk the engine's commands read.
pub trait Subsystem: Send + Sync {
    fn register(self: Arc<Self>, registry: &mut Registry);
}
