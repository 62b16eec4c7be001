//! The operations chat, the menu and the REST API run on workloads: scale, restart,
//! rollback, rollout status, logs, events. Each reads fresh from the API server (the
//! pool may lag a watch event), reports progress through a callback while pods become
//! ready, and returns data (the final workload, read back from the API), never text.

pub mod events;
pub mod logs;
pub mod restart;
pub mod rollback;
pub mod scale;
pub mod status;

use crate::error::Error;
use crate::kube::Target;
use crate::pool::{Workload, WorkloadKind};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::Api;
use std::time::Duration;
use tokio::time::Instant;

pub use events::EventRow;
pub use logs::LogTail;
pub use scale::{ReplicaChange, ScalePlan};

/// Called with the workload each time its replicas move during an operation.
pub type Progress<'a> = &'a (dyn Fn(&Workload) + Send + Sync);

/// Why an operation did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum OpError {
    /// The API server failed or refused.
    Api(Error),
    /// Refused before anything was written.
    Refused(Refusal),
    /// Written, but the rollout did not finish within the deadline; the workload as
    /// last read.
    TimedOut {
        waited: Duration,
        last: Box<Workload>,
    },
    /// The controller reported the rollout failed (ProgressDeadlineExceeded).
    Failed {
        message: String,
        last: Box<Workload>,
    },
}

/// What an operation refuses, checked before it writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Negative(i32),
    TooMany {
        to: i32,
        max: i32,
    },
    Unchanged(i32),
    /// A template change is still rolling out.
    MidRollout {
        updated: i32,
        desired: i32,
    },
    /// spec.paused (restart and rollback refuse it, as kubectl does).
    Paused,
    /// Only Deployments keep a ReplicaSet history to roll back through.
    NotDeployment,
    NoHistory,
    NoRevision {
        wanted: i64,
        known: Vec<i64>,
    },
    AlreadyAt(i64),
    /// Other writers kept changing the object (409 after every retry).
    Conflicts(usize),
    /// The workload is gone from the API server.
    Gone,
}

impl From<Error> for OpError {
    fn from(e: Error) -> OpError {
        match e {
            Error::NotFound(_) => OpError::Refused(Refusal::Gone),
            e => OpError::Api(e),
        }
    }
}

impl From<kube::Error> for OpError {
    fn from(e: kube::Error) -> OpError {
        Error::from(e).into()
    }
}

/// How many times a write is tried again on a fresh read after a 409.
pub const CONFLICT_RETRIES: usize = 5;

/// The workload as the API server has it now.
pub async fn fetch(t: &Target) -> Result<Workload, OpError> {
    let client = t.cluster.client.clone();
    let w = match t.kind {
        WorkloadKind::Deployment => {
            let d = Api::<Deployment>::namespaced(client, &t.namespace)
                .get(&t.name)
                .await?;
            Workload::from_deployment(&d)
        }
        WorkloadKind::StatefulSet => {
            let s = Api::<StatefulSet>::namespaced(client, &t.namespace)
                .get(&t.name)
                .await?;
            Workload::from_statefulset(&s)
        }
    };
    w.ok_or(OpError::Refused(Refusal::Gone))
}

/// Reads the workload until `done` says so or the deadline passes, reporting each
/// change of its replica counts. Woken by the cluster's watches, and at least every
/// second in case they are down.
pub async fn wait_for(
    t: &Target,
    timeout: Duration,
    progress: Progress<'_>,
    done: impl Fn(&Workload) -> Result<bool, OpError>,
) -> Result<Workload, OpError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut changed = t.cluster.subscribe();
    let mut last_counts = None;
    loop {
        let w = fetch(t).await?;
        let counts = (w.current, w.ready, w.updated, w.available, w.desired);
        if last_counts != Some(counts) {
            last_counts = Some(counts);
            progress(&w);
        }
        if done(&w)? {
            return Ok(w);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(OpError::TimedOut {
                waited: timeout,
                last: Box::new(w),
            });
        }
        let tick = (deadline - now).min(Duration::from_secs(1));
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Waits until the workload's rollout completes, as `kubectl rollout status` does.
pub async fn wait_rollout(
    t: &Target,
    timeout: Duration,
    progress: Progress<'_>,
) -> Result<Workload, OpError> {
    wait_for(t, timeout, progress, |w| match w.rollout() {
        crate::pool::Rollout::Complete => Ok(true),
        crate::pool::Rollout::Failed { message } => Err(OpError::Failed {
            message,
            last: Box::new(w.clone()),
        }),
        crate::pool::Rollout::Paused => Err(OpError::Refused(Refusal::Paused)),
        _ => Ok(false),
    })
    .await
}

/// Claims the workload's next changes in the history for `source`.
pub(crate) fn claim(t: &Target, source: &str) {
    let key = crate::changes::ObjectKey {
        kind: t.kind.change_kind().into(),
        id: t.path(),
    };
    t.cluster.recorder.claim(
        &t.cluster.provider,
        key,
        source,
        t.cluster.settings.rollout_timeout,
    );
}
