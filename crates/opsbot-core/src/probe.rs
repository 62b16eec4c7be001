//! What a job's target looks like now, for a job that cannot say it itself: a job whose
//! instance died is marked interrupted by another instance's sweep, which knows only the
//! job's command and text. A subsystem that can tell the real state of what such a job
//! was changing (a Kubernetes rollout: pods ready, revision) implements
//! [`JobStateProbe`]; the sweep adds its line to the interrupted job's message, so the
//! asker reads where the work stood instead of "check the target yourself".

use async_trait::async_trait;

#[async_trait]
pub trait JobStateProbe: Send + Sync {
    /// One line on the current state of the object a job was acting on, from the job's
    /// canonical `command` name and the `text` that started it; `None` when this probe
    /// does not know the command or cannot find the object. Cheap (from what the
    /// subsystem keeps in memory, no remote call) and quiet: the sweep asks it for
    /// every interrupted job, and may ask several probes.
    async fn describe(&self, command: &str, text: &str) -> Option<String>;
}
