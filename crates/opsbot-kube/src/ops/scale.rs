//! Scaling through the `scale` subresource: the target checked against the scope's
//! maximum, written with the resourceVersion just read (a 409 means another writer
//! came first: read again and retry), then followed until the pods are ready.

use super::{claim, fetch, wait_for, OpError, Progress, Refusal, CONFLICT_RETRIES};
use crate::error::Error;
use crate::kube::Target;
use crate::pool::{Workload, WorkloadKind};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::PostParams;
use kube::Api;

/// What a scale asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaChange {
    /// `5`: exactly this many.
    To(i32),
    /// `+2`, `-1`: this many more or fewer than now.
    By(i32),
}

impl ReplicaChange {
    /// `5`, `+2`, `-1`.
    pub fn parse(text: &str) -> Result<ReplicaChange, String> {
        let t = text.trim();
        let (relative, digits) = match t.as_bytes().first() {
            Some(b'+') | Some(b'-') => (true, &t[1..]),
            _ => (false, t),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("副本数「{t}」应是数字,如 5、+2、-1"));
        }
        let n: i32 = digits.parse().map_err(|_| format!("副本数「{t}」太大"))?;
        Ok(match (relative, t.starts_with('-')) {
            (false, _) => ReplicaChange::To(n),
            (true, true) => ReplicaChange::By(-n),
            (true, false) => ReplicaChange::By(n),
        })
    }

    pub fn target(self, now: i32) -> i32 {
        match self {
            ReplicaChange::To(n) => n,
            ReplicaChange::By(d) => now.saturating_add(d),
        }
    }
}

/// What a scale will do, shown before it is confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePlan {
    pub from: i32,
    pub to: i32,
    pub max: i32,
    /// A paused Deployment still scales; its template changes wait.
    pub paused: bool,
}

/// Checks a scale against `w` as it is: negative, above the maximum, unchanged,
/// mid-rollout.
pub fn check(t: &Target, w: &Workload, change: ReplicaChange) -> Result<ScalePlan, Refusal> {
    let to = change.target(w.desired);
    let max = t.cluster.settings.max_replicas_at(&t.path());
    if to < 0 {
        return Err(Refusal::Negative(to));
    }
    if to > max {
        return Err(Refusal::TooMany { to, max });
    }
    if to == w.desired {
        return Err(Refusal::Unchanged(to));
    }
    if w.mid_rollout() {
        return Err(Refusal::MidRollout {
            updated: w.updated,
            desired: w.desired,
        });
    }
    Ok(ScalePlan {
        from: w.desired,
        to,
        max,
        paused: w.paused,
    })
}

/// The plan from the pool (for the confirmation prompt: no API call).
pub fn plan(t: &Target, change: ReplicaChange) -> Result<ScalePlan, OpError> {
    let w = t.in_pool().ok_or(OpError::Refused(Refusal::Gone))?;
    check(t, &w, change).map_err(OpError::Refused)
}

/// Scales and waits until the new replica count is ready (within the cluster's
/// rollout timeout); `source` is who asked, for the change history.
pub async fn scale(
    t: &Target,
    change: ReplicaChange,
    source: &str,
    progress: Progress<'_>,
) -> Result<Workload, OpError> {
    let mut conflicts = 0;
    let to = loop {
        let w = fetch(t).await?;
        let plan = check(t, &w, change).map_err(OpError::Refused)?;
        claim(t, source);
        match write_scale(t, plan.to).await {
            Ok(()) => break plan.to,
            Err(Error::Conflict(_)) if conflicts < CONFLICT_RETRIES => {
                conflicts += 1;
                tracing::debug!(target = %t.scope(), conflicts, "scale conflicted (409), reading again");
            }
            Err(Error::Conflict(_)) => {
                return Err(OpError::Refused(Refusal::Conflicts(conflicts + 1)))
            }
            Err(e) => return Err(e.into()),
        }
    };
    wait_for(t, t.cluster.settings.rollout_timeout, progress, |w| {
        Ok(w.observed_generation >= w.generation
            && w.ready == to
            && w.current == to
            && w.desired == to)
    })
    .await
}

/// One PUT of the scale subresource with the resourceVersion of a fresh GET of it.
async fn write_scale(t: &Target, to: i32) -> Result<(), Error> {
    let client = t.cluster.client.clone();
    let pp = PostParams::default();
    match t.kind {
        WorkloadKind::Deployment => {
            let api = Api::<Deployment>::namespaced(client, &t.namespace);
            let mut s = api.get_scale(&t.name).await?;
            s.spec.get_or_insert_with(Default::default).replicas = Some(to);
            api.replace_scale(&t.name, &pp, &s).await?;
        }
        WorkloadKind::StatefulSet => {
            let api = Api::<StatefulSet>::namespaced(client, &t.namespace);
            let mut s = api.get_scale(&t.name).await?;
            s.spec.get_or_insert_with(Default::default).replicas = Some(to);
            api.replace_scale(&t.name, &pp, &s).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_absolute_and_relative() {
        assert_eq!(ReplicaChange::parse("5"), Ok(ReplicaChange::To(5)));
        assert_eq!(ReplicaChange::parse("+2"), Ok(ReplicaChange::By(2)));
        assert_eq!(ReplicaChange::parse("-1"), Ok(ReplicaChange::By(-1)));
        assert!(ReplicaChange::parse("five").is_err());
        assert!(ReplicaChange::parse("+").is_err());
        assert!(ReplicaChange::parse("99999999999").is_err());
        assert_eq!(ReplicaChange::By(-5).target(3), -2);
    }
}
