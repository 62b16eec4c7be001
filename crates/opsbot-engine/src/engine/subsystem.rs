//! Runs the commands registered subsystems declare (`opsbot_core::chat`): the engine
//! has parsed and permitted them; here they are confirmed when destructive and handed
//! to the subsystem with who asks, and the answer becomes the reply the engine audits.

use super::{failed, invalid, ok, Asker, Engine};
use crate::format;
use crate::reply::{Response, Status};
use crate::session::{Pending, Session};
use opsbot_core::chat::{Answer, Call, ChatCommand, Requester};

impl Requester for Asker<'_> {
    fn user(&self) -> &str {
        &self.msg.user
    }

    fn may_at(&self, command: &str, scope: &str) -> bool {
        self.allows(command, scope)
    }
}

impl Engine {
    pub(super) async fn run_subsystem(
        &self,
        asker: &Asker<'_>,
        spec: &'static ChatCommand,
        args: Vec<String>,
        confirmed: bool,
        sess: &mut Session,
    ) -> Response {
        let Some((set, _)) =
            crate::command::subsystem_spec(self.subsystems.command_sets(), spec.name)
        else {
            // Parsed from this engine's registry, which never shrinks.
            return failed(format!("{}: 尚未配置,此功能暂不可用", spec.name));
        };
        let canonical = if args.is_empty() {
            spec.name.to_string()
        } else {
            format!("{}:{}", spec.name, args.join(","))
        };
        if asker.dry_run {
            return Response::new(Status::NeedsConfirmation, canonical);
        }
        if self.settings.confirm.contains(spec.name) && !confirmed && !asker.msg.assume_yes {
            sess.pending = Some(Pending {
                text: canonical.clone(),
                summary: canonical.clone(),
            });
            sess.settled = None;
            return Response::new(
                Status::NeedsConfirmation,
                format!(
                    "即将执行: {canonical}\n回复 确认 或 y 执行,取消 或 n 放弃({}内有效)",
                    format::duration(self.settings.session_ttl)
                ),
            );
        }
        let call = Call {
            command: spec,
            args: &args,
            caller: asker,
            zone: &self.settings.zone,
        };
        match set.run(call).await {
            Answer::Done(text) => ok(text),
            Answer::Invalid(text) => invalid(text),
            Answer::Failed(text) => failed(text),
        }
    }
}
