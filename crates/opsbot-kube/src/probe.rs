//! The real state of a workload whose job was interrupted: scale, restart, rollback and
//! rollout status write once and then wait on the pool for the rollout, which goes on in
//! the cluster whatever happens to the instance that waited. So a dead instance's wait is
//! not resumed: the sweep marks the job interrupted and, through [`RolloutProbe`], says
//! where the rollout stands (from the pool the watches keep, no API call).

use crate::chat::names;
use crate::kube::Kube;
use crate::render;
use crate::resolve::Found;
use async_trait::async_trait;
use opsbot_core::JobStateProbe;
use std::sync::Arc;

/// The commands whose jobs wait on a workload's rollout.
const WAITING: [&str; 5] = [
    names::SCALE_OUT,
    names::SCALE_IN,
    names::RESTART,
    names::ROLLBACK,
    names::ROLLOUT_STATUS,
];

pub struct RolloutProbe {
    kube: Arc<Kube>,
}

impl RolloutProbe {
    pub fn new(kube: Arc<Kube>) -> RolloutProbe {
        RolloutProbe { kube }
    }
}

#[async_trait]
impl JobStateProbe for RolloutProbe {
    async fn describe(&self, command: &str, text: &str) -> Option<String> {
        if !WAITING.contains(&command) {
            return None;
        }
        let name = workload_argument(text)?;
        // The job's asker was allowed to act on it; the sweep speaks to them alone.
        match self.kube.find_workload(name, &|_| true) {
            Found::One(t) => t.in_pool().map(|w| render::rollout_now(&t, &w)),
            _ => None,
        }
    }
}

/// The first argument of a command's text (`重启:prod/web`, `扩容：prod/web，+2`), when
/// it has this subsystem's shape (`ns/name`): the same name of a VM or a deploy
/// project is not a workload.
fn workload_argument(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once([':', '：', ' '])?;
    let first = rest
        .trim()
        .split([',', '，', ' '])
        .next()
        .unwrap_or_default()
        .trim();
    (first.contains('/') && !first.is_empty()).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::workload_argument;

    #[test]
    fn the_workload_is_the_first_argument_shaped_ns_name() {
        assert_eq!(workload_argument("重启:prod/web"), Some("prod/web"));
        assert_eq!(workload_argument("扩容：prod/web，+2"), Some("prod/web"));
        assert_eq!(
            workload_argument("回滚 c1/prod/api, 7"),
            Some("c1/prod/api")
        );
        assert_eq!(workload_argument("重启:web-04"), None, "a VM");
        assert_eq!(workload_argument("扩容:shop,+2"), None, "a deploy project");
        assert_eq!(workload_argument("重启"), None);
    }
}
