//! Runs the commands registered subsystems declare (`opsbot_core::chat`): the engine
//! has parsed and permitted them; here they are confirmed when destructive and handed
//! to the subsystem with who asks, and the answer becomes the reply the engine audits.

use super::{failed, invalid, ok, store_down, Asker, Engine};
use crate::reply::{ReplySink, Response};
use crate::session::Choice;
use crate::session::Session;
use opsbot_core::chat::{Answer, Call, ChatCommand, ChatCommands, Claim, JobReport, Requester};
use std::sync::Arc;

/// Why no single set answers a call.
enum Unanswered {
    /// No registered set takes these arguments.
    Nobody,
    /// Several sets claim the object: `(registry place, what it names)`.
    Several(Vec<(usize, String)>),
}

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
        route: Option<usize>,
        canonical: &str,
        confirmed: bool,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Response {
        let (set, spec) = match self.answerer(asker, spec, args, route).await {
            Ok(found) => found,
            Err(Unanswered::Nobody) => {
                // Parsed from this engine's registry, which never shrinks.
                return failed(format!("{}: 尚未配置,此功能暂不可用", spec.name));
            }
            Err(Unanswered::Several(options)) => {
                return self.ask_which(sess, spec, args, canonical, options);
            }
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
                // 确认 runs it where the asker's choice sent it.
                if let Some(p) = sess.pending.as_mut() {
                    p.route = route;
                }
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

    /// The set that answers this call: the chosen one, the only one declaring the name
    /// for these arguments, or the one whose object it names (`claim`); several claims
    /// are a question for the asker.
    async fn answerer(
        &self,
        asker: &Asker<'_>,
        spec: &'static ChatCommand,
        args: &[String],
        route: Option<usize>,
    ) -> Result<(&Arc<dyn ChatCommands>, &'static ChatCommand), Unanswered> {
        let sets = self.subsystems.command_sets();
        let builtin = crate::command::spec(spec.name).is_some_and(|b| b.requires.is_none());
        let able: Vec<_> = crate::command::subsystem_specs(sets, spec.name)
            .filter(|(i, set, decl)| {
                route.is_none_or(|r| r == *i)
                    && (set.takes(decl, args) || !builtin)
                    && crate::command::subsystem_command(set.as_ref(), decl, args.to_vec()).is_ok()
            })
            .collect();
        match able.as_slice() {
            [] => return Err(Unanswered::Nobody),
            [(_, set, decl)] => return Ok((set, decl)),
            _ => {}
        }
        let mut mine = Vec::new();
        let mut shaped = None;
        for (i, set, decl) in &able {
            let call = Call {
                command: decl,
                args,
                caller: asker,
                zone: &self.settings.zone,
            };
            match set.claim(call).await {
                Claim::Mine(what) => mine.push((*i, *set, *decl, what)),
                Claim::Shaped => {
                    shaped.get_or_insert((*set, *decl));
                }
                Claim::No => {}
            }
        }
        match mine.len() {
            1 => {
                let (_, set, decl, _) = mine.remove(0);
                Ok((set, decl))
            }
            0 => {
                let (_, set, decl) = able[0];
                Ok(shaped.unwrap_or((set, decl)))
            }
            _ => Err(Unanswered::Several(
                mine.into_iter().map(|(i, _, _, what)| (i, what)).collect(),
            )),
        }
    }

    /// Asks which object a command several subsystems claimed was meant; the next
    /// message's number runs it there.
    fn ask_which(
        &self,
        sess: &mut Session,
        spec: &'static ChatCommand,
        args: &[String],
        canonical: &str,
        options: Vec<(usize, String)>,
    ) -> Response {
        let name = args.first().map(String::as_str).unwrap_or_default();
        let mut text = format!(
            "「{name}」有 {} 个同名对象,{}要操作哪一个?",
            options.len(),
            spec.name
        );
        for (n, (_, what)) in options.iter().enumerate() {
            text.push_str(&format!("\n{} {what}", n + 1));
        }
        text.push_str("\n回复序号选择,发送其他内容放弃");
        sess.choice = Some(Choice {
            text: canonical.to_string(),
            options,
        });
        invalid(text)
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
