//! Live data for configured menus (`[[menu]]` `source = …`): `namespaces`,
//! `workloads` (param `ns`; `input` filters by name) and `pods` (param `ns`), each only
//! what the caller may see. A value is what a command template receives: a namespace;
//! a workload's or pod's name when the node gave `ns` (seed 001's
//! `扩容:{ns}/{deploy},{input}`), else `ns/name`.

use crate::kube::Kube;
use async_trait::async_trait;
use opsbot_core::chat::{MenuEntry, MenuSource, Requester};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Visibility in menus is that of 工作负载 (the list command).
const LIST_COMMAND: &str = crate::chat::names::WORKLOADS;

/// `name` when the namespace was given, else `ns/name`.
fn qualified(given: Option<&str>, ns: &str, name: &str) -> String {
    match given {
        Some(_) => name.to_string(),
        None => format!("{ns}/{name}"),
    }
}

pub struct KubeMenu {
    kube: Arc<Kube>,
}

impl KubeMenu {
    pub fn new(kube: Arc<Kube>) -> KubeMenu {
        KubeMenu { kube }
    }
}

#[async_trait]
impl MenuSource for KubeMenu {
    fn sources(&self) -> &'static [&'static str] {
        &["namespaces", "workloads", "pods"]
    }

    async fn entries(
        &self,
        source: &str,
        params: &BTreeMap<String, String>,
        caller: &dyn Requester,
    ) -> Result<Vec<MenuEntry>, String> {
        self.kube.settled(crate::chat::FIRST_SYNC_WAIT).await;
        let visible = |s: &str| caller.may_at(LIST_COMMAND, s);
        let ns = params
            .get("ns")
            .map(String::as_str)
            .filter(|n| !n.is_empty());
        let filter = params
            .get("input")
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        let mut entries: Vec<MenuEntry> = match source {
            "namespaces" => {
                let mut names: Vec<String> = self
                    .kube
                    .namespaces(&visible)
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect();
                names.sort();
                names.dedup();
                names
                    .into_iter()
                    .map(|n| MenuEntry {
                        label: n.clone(),
                        value: n,
                    })
                    .collect()
            }
            "workloads" => self
                .kube
                .workloads(ns, &visible)
                .into_iter()
                .filter(|r| {
                    filter
                        .as_ref()
                        .is_none_or(|f| r.workload.name.to_lowercase().contains(f.as_str()))
                })
                .map(|r| {
                    let w = &r.workload;
                    MenuEntry {
                        label: format!("{} ({}/{} 就绪)", w.name, w.ready, w.desired),
                        value: qualified(ns, &w.namespace, &w.name),
                    }
                })
                .collect(),
            "pods" => self
                .kube
                .pods(ns, &visible)
                .into_iter()
                .map(|r| MenuEntry {
                    label: format!("{} ({})", r.pod.name, r.pod.phase),
                    value: qualified(ns, &r.pod.namespace, &r.pod.name),
                })
                .collect(),
            other => return Err(format!("没有菜单数据源「{other}」")),
        };
        entries.dedup_by(|a, b| a.value == b.value);
        Ok(entries)
    }
}
