//! Runs the commands registered subsystems declare (`opsbot_core::chat`): the engine
//! has parsed and permitted them; here they are confirmed when destructive and handed
//! to the subsystem with who asks, and the answer becomes the reply the engine audits.

use super::{failed, invalid, ok, store_down, Asker, Engine};
use crate::reply::{ReplySink, Response};
use crate::session::Session;
use opsbot_core::chat::{Answer, Call, ChatCommand, JobReport, Requester};
use std::sync::Arc;

impl Requester for Asker<'_> {
    fn user(&self) -> &str {
        &self.msg.user
    }

    fn may_at(&self, command: &str, scope: &str) -> bool {
        self.allows(command, scope)
    }

    fn channel(&self) -> &str {
        &self.msg.channel
    }

    fn chat(&self) -> Option<&str> {
        self.msg.chat.as_deref()
    }

    fn roles(&self) -> Vec<String> {
        self.view.roles()
    }
}

impl Engine {
    /// `canonical` is the command's text (`Command`'s `Display`), what 确认 runs.
    #[allow(clippy::too_many_arguments)] // the dispatch's own context, passed through
    pub(super) async fn run_subsystem(
        &self,
        asker: &Asker<'_>,
        spec: &'static ChatCommand,
        args: &[String],
        canonical: &str,
        confirmed: bool,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Response {
        let Some((set, _)) =
            crate::command::subsystem_spec(self.subsystems.command_sets(), spec.name)
        else {
            // Parsed from this engine's registry, which never shrinks.
            return failed(format!("{}: 尚未配置,此功能暂不可用", spec.name));
        };
        let asks = asker.dry_run
            || (self.settings.confirm.contains(spec.name) && !confirmed && !asker.msg.assume_yes);
        if asks {
            // What the subsystem can tell before the prompt: the plan it shows, or why
            // the call is impossible (answered now rather than confirmed first).
            let call = Call {
                command: spec,
                args,
                caller: asker,
                zone: &self.settings.zone,
            };
            let summary = match set.plan(call).await {
                Ok(plan) => plan.unwrap_or_else(|| canonical.to_string()),
                Err(answer) => return self.answered(asker, sink, spec, answer).await,
            };
            if let Some(asked) =
                self.confirm_first(asker, sess, spec.name, confirmed, canonical, &summary)
            {
                return asked;
            }
        }
        let call = Call {
            command: spec,
            args,
            caller: asker,
            zone: &self.settings.zone,
        };
        let answer = set.run(call).await;
        self.answered(asker, sink, spec, answer).await
    }

    /// The reply to a subsystem's answer; long work starts as a job.
    async fn answered(
        &self,
        asker: &Asker<'_>,
        sink: &Arc<dyn ReplySink>,
        spec: &'static ChatCommand,
        answer: Answer,
    ) -> Response {
        match answer {
            Answer::Done(text) => ok(text),
            Answer::Invalid(text) => invalid(text),
            Answer::Failed(text) => failed(text),
            Answer::Job { summary, work } => {
                let started = self
                    .start_job(asker, sink, spec.name, summary, false, move |progress| {
                        let report: Arc<dyn JobReport> = Arc::new(progress);
                        work(report)
                    })
                    .await;
                started.unwrap_or_else(|e| store_down(&e))
            }
        }
    }
}
