//! What the engine reports to `/metrics`: jobs started and finished, and pool sync
//! durations. Recorded through the `metrics` facade; the HTTP crate installs the
//! Prometheus recorder (without one, these calls cost next to nothing).

use std::time::Duration;

pub(crate) fn job_started(command: &'static str) {
    metrics::counter!("opsbot_jobs_started_total", "command" => command).increment(1);
    metrics::gauge!("opsbot_jobs_running").increment(1.0);
}

pub(crate) fn job_finished(command: &str, state: &'static str, took: Duration) {
    metrics::counter!(
        "opsbot_jobs_finished_total",
        "command" => command.to_string(),
        "state" => state
    )
    .increment(1);
    metrics::histogram!("opsbot_job_duration_seconds", "command" => command.to_string())
        .record(took.as_secs_f64());
    metrics::gauge!("opsbot_jobs_running").decrement(1.0);
}

pub(crate) fn sync_finished(provider: &str, ok: bool, took: Duration) {
    metrics::histogram!(
        "opsbot_sync_duration_seconds",
        "provider" => provider.to_string(),
        "result" => if ok { "ok" } else { "failed" }
    )
    .record(took.as_secs_f64());
}
