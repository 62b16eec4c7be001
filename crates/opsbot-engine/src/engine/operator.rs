//! The engine as an [`Operator`]: a subsystem runs a typed command as someone (a
//! deploy's scale-out clones its VMs with 克隆) and waits for its job, through exactly
//! the path the person's own message would take, so the permission check, the
//! validation, the job and the audit row are the engine's.

use super::{Engine, Incoming};
use crate::reply::{Discard, Reply, ReplySink, Status};
use async_trait::async_trait;
use opsbot_core::chat::{Operator, Started};
use opsbot_core::JobState;
use std::sync::{Arc, Weak};

/// Holds the engine weakly: the engine holds the subsystems that hold this.
pub struct EngineOperator(Weak<Engine>);

impl EngineOperator {
    pub fn new(engine: &Arc<Engine>) -> EngineOperator {
        EngineOperator(Arc::downgrade(engine))
    }
}

#[async_trait]
impl Operator for EngineOperator {
    async fn run_as(&self, user: &str, channel: &str, text: &str) -> Result<String, String> {
        let Some(engine) = self.0.upgrade() else {
            return Err("opsbot 正在停止".into());
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Reply>();
        let sink: Arc<dyn ReplySink> = Arc::new(tx);
        let msg = Incoming {
            channel: channel.to_string(),
            user: user.to_string(),
            chat: None,
            text: text.to_string(),
            assume_yes: true,
        };
        let response = engine.handle(msg, sink).await;
        drop(engine);
        match response.status {
            Status::Ok => Ok(response.text),
            Status::Accepted(job) => {
                while let Some(reply) = rx.recv().await {
                    if reply.job == job {
                        if let Some(state) = reply.finished {
                            return if state == JobState::Succeeded {
                                Ok(reply.text)
                            } else {
                                Err(reply.text)
                            };
                        }
                    }
                }
                Err(format!("{job} 的结果没有送达(opsbot 正在停止?)"))
            }
            _ => Err(response.text),
        }
    }

    async fn start_as(&self, user: &str, channel: &str, text: &str) -> Result<Started, String> {
        let Some(engine) = self.0.upgrade() else {
            return Err("opsbot 正在停止".into());
        };
        let msg = Incoming {
            channel: channel.to_string(),
            user: user.to_string(),
            chat: None,
            text: text.to_string(),
            assume_yes: true,
        };
        let response = engine.handle(msg, Arc::new(Discard)).await;
        match response.status {
            Status::Ok => Ok(Started {
                job: None,
                message: response.text,
            }),
            Status::Accepted(job) => Ok(Started {
                job: Some(job.0),
                message: response.text,
            }),
            _ => Err(response.text),
        }
    }

    fn members_of(&self, roles: &[String]) -> Vec<String> {
        let Some(engine) = self.0.upgrade() else {
            return Vec::new();
        };
        let policy = engine.policy();
        policy
            .user_bindings()
            .iter()
            .filter(|(_, held)| held.iter().any(|r| roles.contains(r)))
            .map(|(user, _)| user.clone())
            .collect()
    }
}
