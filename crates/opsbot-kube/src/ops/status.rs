//! Rollout status: follows a workload until its rollout completes or the deadline
//! passes, as `kubectl rollout status --timeout` does.

use super::{wait_rollout, OpError, Progress};
use crate::kube::Target;
use crate::pool::Workload;
use std::time::Duration;

/// Waits up to `timeout` (the cluster's rollout timeout when `None`).
pub async fn rollout_status(
    t: &Target,
    timeout: Option<Duration>,
    progress: Progress<'_>,
) -> Result<Workload, OpError> {
    let timeout = timeout.unwrap_or(t.cluster.settings.rollout_timeout);
    wait_rollout(t, timeout, progress).await
}
