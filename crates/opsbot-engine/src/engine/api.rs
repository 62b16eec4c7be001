//! The structured entry point for the REST API and the web UI. A request names its VM
//! by `(provider, id)` and carries typed arguments; it takes the very path a typed
//! command takes (permission and scope checks, validation, jobs, audit), only without
//! a conversation: the call itself is the confirmation, and a dry run describes what
//! would happen without doing it (the web UI's confirm dialog).

use super::{Asker, Engine, Incoming, Outcome};
use crate::command::{self, Command};
use crate::pool::PoolView;
use crate::reply::{Discard, ReplySink, Response, Status};
use crate::session::Session;
use opsbot_core::{JobId, Policy, VmOperation};
use opsbot_store::StoreError;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

/// Who calls, through which surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id the policy knows (a WeCom userid, the web admin, a token's user).
    pub user: String,
    /// `api` or `web`: recorded in the audit log and on jobs.
    pub channel: String,
}

/// An operation on one VM, with typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmAction {
    PowerOn,
    PowerOff,
    Shutdown,
    Reboot,
    Ping,
    SetCpu {
        count: u32,
    },
    SetMemory {
        gb: u32,
    },
    AddDisk {
        gb: u32,
        datastore: Option<String>,
    },
    SetNetwork {
        network: String,
    },
    Rename {
        new_name: String,
    },
    /// Deletes a powered-off VM with its disks; cannot be undone.
    Delete,
}

impl VmAction {
    /// The canonical command name, as roles grant it.
    pub fn command(&self) -> &'static str {
        self.to_command(String::new()).name()
    }

    fn to_command(&self, vm: String) -> Command {
        match self.clone() {
            VmAction::Ping => Command::Ping { target: vm },
            VmAction::PowerOn => Command::Vm(VmOperation::PowerOn { vm }),
            VmAction::PowerOff => Command::Vm(VmOperation::PowerOff { vm }),
            VmAction::Shutdown => Command::Vm(VmOperation::Shutdown { vm }),
            VmAction::Reboot => Command::Vm(VmOperation::Reboot { vm }),
            VmAction::SetCpu { count } => Command::Vm(VmOperation::SetCpu { vm, count }),
            VmAction::SetMemory { gb } => Command::Vm(VmOperation::SetMemory { vm, gb }),
            VmAction::AddDisk { gb, datastore } => {
                Command::Vm(VmOperation::AddDisk { vm, gb, datastore })
            }
            VmAction::SetNetwork { network } => {
                Command::Vm(VmOperation::SetNetwork { vm, network })
            }
            VmAction::Rename { new_name } => Command::Vm(VmOperation::Rename { vm, new_name }),
            VmAction::Delete => Command::Vm(VmOperation::Delete { vm }),
        }
    }
}

/// A clone from a numbered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSpec {
    pub template: u32,
    pub name: String,
    pub ip: Ipv4Addr,
    pub cpu: Option<u32>,
    pub memory_gb: Option<u32>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Vm {
        provider: String,
        id: String,
        action: VmAction,
    },
    Clone(CloneSpec),
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Validate and describe only; nothing is started or audited.
    Plan,
    /// Start the job (audited, like every command).
    Run,
}

/// A request the engine took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acted {
    /// [`Mode::Plan`]: what would happen, and whether chat would ask to confirm it.
    Planned {
        command: &'static str,
        summary: String,
        destructive: bool,
    },
    /// [`Mode::Run`]: the job that does it.
    Started {
        command: &'static str,
        job: JobId,
        message: String,
    },
}

/// A request the engine refused; the text is the one chat would show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such VM in the pool.
    NotFound(String),
    /// Not granted by the policy (command or scope).
    Denied(String),
    /// Bad arguments, or not possible in the object's state (already off, name taken).
    Invalid(String),
    /// Allowed and valid, but not possible now (already off, provider not configured).
    Failed(String),
    /// The store does not answer; retry later.
    Unavailable(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::NotFound(m)
            | Refusal::Denied(m)
            | Refusal::Invalid(m)
            | Refusal::Failed(m)
            | Refusal::Unavailable(m) => m,
        }
    }
}

impl Engine {
    /// The pool read model, as the store has it now (API and web reads).
    pub async fn pool(&self) -> Result<Arc<PoolView>, StoreError> {
        self.pool.get().await
    }

    /// The permission policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().expect("policy lock").clone()
    }

    /// The zone times are shown in (`[chat] timezone`).
    pub fn zone(&self) -> opsbot_core::Zone {
        self.settings.zone
    }

    /// Whether chat asks to confirm `command` (the web UI asks in a dialog then): as
    /// `[chat] confirm` says, and always for what cannot be undone.
    pub fn confirms(&self, command: &str) -> bool {
        self.settings.confirm.contains(command)
            || command::spec(command).is_some_and(|s| s.irreversible)
    }

    /// Runs or plans a structured request; job output is recorded in the store (poll
    /// the job), not sent anywhere.
    pub async fn act(
        &self,
        caller: &Caller,
        request: Request,
        mode: Mode,
    ) -> Result<Acted, Refusal> {
        self.act_with_sink(caller, request, mode, Arc::new(Discard))
            .await
    }

    /// [`Engine::act`] with a sink for the job's progress and result.
    pub async fn act_with_sink(
        &self,
        caller: &Caller,
        request: Request,
        mode: Mode,
        sink: Arc<dyn ReplySink>,
    ) -> Result<Acted, Refusal> {
        let started = Instant::now();
        let (cmd, pinned) = match request {
            Request::Vm {
                provider,
                id,
                action,
            } => {
                let pool = self
                    .pool
                    .get()
                    .await
                    .map_err(|e| Refusal::Unavailable(super::store_down(&e).text))?;
                // A VM the caller neither sees nor may act on reads exactly as one
                // that does not exist.
                let viewer = self.viewer(caller);
                let Some(vm) = viewer.vm_for(&pool, action.command(), &provider, &id) else {
                    return Err(Refusal::NotFound(format!(
                        "找不到虚拟机 {provider}/{id}(可能已被删除,或资源池尚未同步)"
                    )));
                };
                // `provider/name` reads well in the audit log; the VM acted on is the
                // pinned one whatever the name resolves to.
                let cmd = action.to_command(format!("{}/{}", vm.provider, vm.name));
                (cmd, Some((provider, id)))
            }
            Request::Clone(c) => (
                Command::Clone {
                    template: c.template,
                    name: c.name,
                    ip: c.ip,
                    cpu: c.cpu,
                    memory_gb: c.memory_gb,
                },
                None,
            ),
            Request::Sync => (Command::Sync, None),
        };
        let name = cmd.name();
        let destructive = self.is_destructive(name);
        if let Err(e) = command::validate(&cmd) {
            return Err(Refusal::Invalid(e.to_string()));
        }
        let msg = Incoming {
            channel: caller.channel.clone(),
            user: caller.user.clone(),
            chat: None,
            text: cmd.to_string(),
            assume_yes: true,
        };
        let asker = Asker {
            msg: &msg,
            view: self.viewer(caller),
            pinned,
            dry_run: mode == Mode::Plan,
            command: None,
        };
        if mode == Mode::Plan && cmd == Command::Sync {
            // A sync starts its job without a summary step; describe it here.
            return if asker.can_run(name) {
                Ok(Acted::Planned {
                    command: name,
                    summary: "同步资源池: 从各集群读取最新清单".into(),
                    destructive,
                })
            } else {
                Err(Refusal::Denied(format!(
                    "⛔ 您({})没有权限执行「{name}」",
                    caller.user
                )))
            };
        }
        let mut session = Session::default();
        let outcome = self.run(&asker, cmd, true, &mut session, &sink).await;
        if mode == Mode::Run {
            self.audit(&msg, &outcome, started).await;
        }
        decide(name, destructive, outcome)
    }
}

/// What a registered subsystem's command did for an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// It answered at once (a list, an approval recorded).
    Done {
        command: &'static str,
        message: String,
    },
    /// It started long work.
    Started {
        command: &'static str,
        job: JobId,
        message: String,
    },
}

impl Engine {
    /// Runs a registered subsystem's command (`批准`, `发布`, …) for an API or web
    /// caller: the same parsing of its arguments, permission check, answer and audit as
    /// the typed `name:args`; the call itself is the confirmation.
    pub async fn run_command(
        &self,
        caller: &Caller,
        name: &str,
        args: Vec<String>,
        sink: Arc<dyn ReplySink>,
    ) -> Result<Ran, Refusal> {
        let started = Instant::now();
        // The same checks as the typed `name:args`, with the same words.
        let args: Vec<String> = args.into_iter().map(|a| a.trim().to_string()).collect();
        let cmd = match command::parse_subsystem(self.subsystems.command_sets(), name, args) {
            Ok(parsed) => parsed.map_err(|e| Refusal::Invalid(e.to_string()))?,
            Err(_) => return Err(Refusal::NotFound(format!("没有命令「{name}」"))),
        };
        let msg = Incoming {
            channel: caller.channel.clone(),
            user: caller.user.clone(),
            chat: None,
            text: cmd.to_string(),
            assume_yes: true,
        };
        let asker = Asker {
            msg: &msg,
            view: self.viewer(caller),
            pinned: None,
            dry_run: false,
            command: None,
        };
        let command = cmd.name();
        let mut session = Session::default();
        let outcome = self.run(&asker, cmd, true, &mut session, &sink).await;
        self.audit(&msg, &outcome, started).await;
        let Response { status, text, .. } = outcome.response;
        match status {
            Status::Ok => Ok(Ran::Done {
                command,
                message: text,
            }),
            Status::Accepted(job) => Ok(Ran::Started {
                command,
                job,
                message: text,
            }),
            Status::Denied => Err(Refusal::Denied(text)),
            Status::Invalid => Err(Refusal::Invalid(text)),
            Status::Failed if text.starts_with(super::STORE_DOWN) => {
                Err(Refusal::Unavailable(text))
            }
            Status::Failed | Status::NeedsConfirmation => Err(Refusal::Failed(text)),
        }
    }
}

impl Engine {
    /// Cancels job `id` for `caller` (`POST /api/v1/jobs/{id}/cancel`): the same rules
    /// and answers as `取消:#N` in chat, audited the same way.
    pub async fn cancel_job(&self, caller: &Caller, id: JobId) -> Result<String, Refusal> {
        let started = Instant::now();
        let cmd = Command::CancelJob { id: id.0 };
        let msg = Incoming {
            channel: caller.channel.clone(),
            user: caller.user.clone(),
            chat: None,
            text: cmd.to_string(),
            assume_yes: true,
        };
        let viewer = self.viewer(caller);
        let response = match super::commands::jobs::cancel_job(self, &viewer, id).await {
            Ok(r) => r,
            Err(e) => super::store_down(&e),
        };
        let outcome = Outcome {
            response,
            command: Some(cmd.name()),
            cancelled: false,
            ran: None,
        };
        self.audit(&msg, &outcome, started).await;
        let Response { status, text, .. } = outcome.response;
        match status {
            Status::Ok => Ok(text),
            Status::Denied => Err(Refusal::Denied(text)),
            Status::Invalid => Err(Refusal::NotFound(text)),
            Status::Failed if text.starts_with(super::STORE_DOWN) => {
                Err(Refusal::Unavailable(text))
            }
            _ => Err(Refusal::Failed(text)),
        }
    }
}

fn decide(name: &'static str, destructive: bool, outcome: Outcome) -> Result<Acted, Refusal> {
    let Response { status, text, .. } = outcome.response;
    match status {
        Status::Accepted(job) => Ok(Acted::Started {
            command: name,
            job,
            message: text,
        }),
        Status::NeedsConfirmation => Ok(Acted::Planned {
            command: name,
            summary: text,
            destructive,
        }),
        Status::Denied => Err(Refusal::Denied(text)),
        Status::Invalid if text.starts_with("找不到虚拟机") => Err(Refusal::NotFound(text)),
        Status::Invalid => Err(Refusal::Invalid(text)),
        Status::Failed if text.starts_with(super::STORE_DOWN) => Err(Refusal::Unavailable(text)),
        Status::Failed => Err(Refusal::Failed(text)),
        // Every structured request is a job or a plan; anything else is a bug here.
        Status::Ok => Err(Refusal::Failed(format!("「{name}」没有启动任务: {text}"))),
    }
}
