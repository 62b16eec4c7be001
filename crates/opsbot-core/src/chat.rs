//! Chat commands a subsystem declares and answers itself, so that adding a subsystem
//! (deploys, Kubernetes, …) touches its own crate and one registration in the binary,
//! never the engine. The engine parses them (names, aliases, full-width separators,
//! the argument count), lists them in 帮助, checks the permission (the canonical name,
//! as roles grant it), asks for confirmation when the command is destructive, audits
//! every call, and hands the subsystem a [`Call`]; the subsystem answers with an
//! [`Answer`]. Its wording lives in the subsystem's own crate, beside the data it
//! words, not in the desk that reads that data.

use crate::Zone;
use async_trait::async_trait;

/// One command a subsystem answers: declared once, as a `static`, and read by the
/// parser, 帮助, the permission check, the confirmation and the configuration's role
/// validation.
#[derive(Debug, PartialEq, Eq)]
pub struct ChatCommand {
    /// The canonical (Chinese) name: the permission roles grant and the audit log shows.
    pub name: &'static str,
    /// Other spellings; English ones match case-insensitively.
    pub aliases: &'static [&'static str],
    /// How to write it, shown with every argument error: `资产:主机名`.
    pub usage: &'static str,
    /// One line for 帮助.
    pub summary: &'static str,
    /// Asks for confirmation before acting, unless the configuration says otherwise.
    pub destructive: bool,
    /// How many comma-separated arguments it takes (inclusive); the engine checks the
    /// count and that none is empty before the subsystem sees them.
    pub args: (usize, usize),
}

impl ChatCommand {
    /// Whether `word` names this command (the canonical name or an alias).
    pub fn is_named(&self, word: &str) -> bool {
        let lower = word.to_lowercase();
        lowercase_is(self.name, &lower) || self.aliases.iter().any(|a| *a == lower)
    }
}

/// Whether `name` lowercased is `lower`, without allocating: every message looks its
/// command up by name, and a lowered copy of each name passed made parsing 30 % slower.
pub fn lowercase_is(name: &str, lower: &str) -> bool {
    name.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

/// Who asks, as far as a subsystem needs to know: their id, and what they may do
/// where. Scopes are paths such as `vsphere/dc1/cluster-a/web-01` or `cmdb/host-1`;
/// role globs apply to them as to the pool's objects.
pub trait Requester: Send + Sync {
    fn user(&self) -> &str;
    /// May the caller run `command` on the object at `scope`?
    fn may_at(&self, command: &str, scope: &str) -> bool;
    /// The surface they asked through (`console`, `wecom:app/ops`, `api`, `web`): where a
    /// later message reaches them through the outbox.
    fn channel(&self) -> &str {
        ""
    }
    /// The group chat they asked in, if any.
    fn chat(&self) -> Option<&str> {
        None
    }
    /// The roles the policy gives them (an approver list names roles).
    fn roles(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Progress of long work a subsystem answered with [`Answer::Job`]: the engine records
/// each note on the job and forwards it to the asker.
pub trait JobReport: Send + Sync {
    /// The job's number (`#42`), to name it in messages sent elsewhere.
    fn job(&self) -> u64;
    fn note(&self, percent: u8, text: String);
}

/// The work of an [`Answer::Job`]: given its progress reporter, it runs to its result
/// (`Ok` = the job succeeded, with the text the asker reads; `Err` = it failed, why).
pub type JobWork = Box<
    dyn FnOnce(
            std::sync::Arc<dyn JobReport>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<String, String>> + Send>,
        > + Send,
>;

/// One permitted call of a subsystem's command.
pub struct Call<'a> {
    pub command: &'static ChatCommand,
    /// The arguments, split at commas and trimmed; their count is within the
    /// declaration's bounds and none is empty.
    pub args: &'a [String],
    pub caller: &'a dyn Requester,
    /// The zone chat shows times in (`[chat] timezone`).
    pub zone: &'a Zone,
}

/// A subsystem's answer. The engine audits it by its kind (allowed, invalid, failed,
/// accepted).
pub enum Answer {
    /// The command did what was asked; the text is the reply.
    Done(String),
    /// The request cannot be answered as written (an unknown object, one out of the
    /// caller's scope, which reads the same); the text says what to send instead.
    Invalid(String),
    /// Something the caller cannot fix failed (the store, a remote service).
    Failed(String),
    /// Long work (a build, a release): the engine starts it as a job (`已受理 #N:
    /// summary`), records and forwards its progress, and tells the asker how it ended;
    /// the job's end is audited like a VM operation's.
    Job { summary: String, work: JobWork },
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Done(t) => f.debug_tuple("Done").field(t).finish(),
            Answer::Invalid(t) => f.debug_tuple("Invalid").field(t).finish(),
            Answer::Failed(t) => f.debug_tuple("Failed").field(t).finish(),
            Answer::Job { summary, .. } => f.debug_struct("Job").field("summary", summary).finish(),
        }
    }
}

impl Answer {
    /// Long work, as an answer.
    pub fn job<F, Fut>(summary: impl Into<String>, work: F) -> Answer
    where
        F: FnOnce(std::sync::Arc<dyn JobReport>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<String, String>> + Send + 'static,
    {
        Answer::Job {
            summary: summary.into(),
            work: Box::new(move |r| Box::pin(work(r))),
        }
    }
}

/// The commands of one subsystem, registered once through
/// [`Registry::commands`](crate::Registry::commands).
#[async_trait]
pub trait ChatCommands: Send + Sync {
    /// Its declarations, in the order 帮助 lists them.
    fn commands(&self) -> &'static [ChatCommand];

    /// Checks the arguments beyond their count; `Err` says what is wrong, and the
    /// engine adds the command's usage.
    fn check(&self, _command: &ChatCommand, _args: &[String]) -> Result<(), String> {
        Ok(())
    }

    /// What a destructive call will do, for its confirmation prompt (`即将执行: …`),
    /// asked before the prompt: `Ok(None)` shows the command's text, `Err` refuses the
    /// call at once (what the subsystem can tell is impossible is not confirmed first).
    async fn plan(&self, _call: Call<'_>) -> Result<Option<String>, Answer> {
        Ok(None)
    }

    /// Answers one permitted, checked (and, when destructive, confirmed) call.
    async fn run(&self, call: Call<'_>) -> Answer;

    /// Whose call this is when several subsystems declare a command of the same name
    /// (扩容 scales a deploy project and a Kubernetes workload): asked of each set whose
    /// argument count and `check` accept the call, before the confirmation. One
    /// [`Claim::Mine`] runs there; several are asked about (the asker picks by number);
    /// with none, the first [`Claim::Shaped`] set answers (its `run` says what is
    /// unknown and suggests names), else the first set registered.
    async fn claim(&self, _call: Call<'_>) -> Claim {
        Claim::Mine(String::new())
    }

    /// Built-in commands this set also answers, for arguments [`ChatCommands::takes`]
    /// accepts (重启:ns/deploy restarts a workload, 重启:vm still reboots a VM). Any other
    /// name a set shares with a built-in command stops the engine at start-up.
    fn shares(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether `args` are written in this set's form (a shared built-in's arguments are
    /// the built-in's otherwise). Cheap and without I/O: the parser asks it.
    fn takes(&self, _command: &ChatCommand, _args: &[String]) -> bool {
        true
    }
}

/// A subsystem's answer to [`ChatCommands::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The call names one of this subsystem's objects; the text says which, for the
    /// question when another subsystem claims it too (`Kubernetes 工作负载 prod/default/web`).
    Mine(String),
    /// Written in this subsystem's form (`ns/name`), though it names nothing known.
    Shaped,
    /// Not this subsystem's.
    No,
}

/// One entry of a dynamic menu node: what the menu shows and the value a leaf's
/// command template receives when it is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub label: String,
    pub value: String,
}

/// Live data a configured menu's dynamic nodes list (`[[menu]]` `source = "workloads"`):
/// a subsystem offers its sources through [`Registry::menu_source`](crate::Registry::menu_source).
#[async_trait]
pub trait MenuSource: Send + Sync {
    /// The source names it answers (`namespaces`, `workloads`, `projects`).
    fn sources(&self) -> &'static [&'static str];

    /// The entries of `source` that `caller` may see, given the values chosen or typed
    /// so far on the menu path (`params`: `ns` → `payments`, `input` → `web`); `Err`
    /// says why the list cannot be shown (a cluster unreachable).
    async fn entries(
        &self,
        source: &str,
        params: &std::collections::BTreeMap<String, String>,
        caller: &dyn Requester,
    ) -> Result<Vec<MenuEntry>, String>;
}

/// What [`Operator::start_as`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The job doing it; `None` when the command answered at once.
    pub job: Option<i64>,
    /// The engine's answer (`已受理 #42: …`).
    pub message: String,
}

/// Runs a typed command as someone, through the engine's own parsing, permission
/// checks, confirmation (taken as given), jobs and audit, and waits for it to end: how a
/// subsystem does what a built-in command already does (a deploy's scale-out clones its
/// VMs with 克隆, as the person who asked for it).
#[async_trait]
pub trait Operator: Send + Sync {
    /// `Ok` with the final reply when the command (and its job) succeeded; `Err` with
    /// the reply that says why not.
    async fn run_as(&self, user: &str, channel: &str, text: &str) -> Result<String, String>;

    /// Like [`Operator::run_as`], but returns as soon as the engine answered: the job
    /// it started (if any) keeps running, its replies dropped (its record and audit
    /// say how it ended). How automatic remediation runs and is announced at once.
    async fn start_as(&self, user: &str, channel: &str, text: &str) -> Result<Started, String> {
        self.run_as(user, channel, text)
            .await
            .map(|message| Started { job: None, message })
    }

    /// The users bound to any of `roles` (to ask them for an approval).
    fn members_of(&self, _roles: &[String]) -> Vec<String> {
        Vec::new()
    }
}

/// A name checked the way object names are checked everywhere in chat: at most 80
/// characters, no control characters and none of `/ \ % " < >`.
pub fn check_name(value: &str, what: &str) -> Result<(), String> {
    if value.chars().count() > 80 {
        return Err(format!("{what}太长(最多 80 个字符)"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || matches!(c, '/' | '\\' | '%' | '"' | '<' | '>'))
    {
        return Err(format!("{what}不能包含字符 {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSET: ChatCommand = ChatCommand {
        name: "资产",
        aliases: &["asset"],
        usage: "资产:主机名",
        summary: "",
        destructive: false,
        args: (1, 1),
    };

    #[test]
    fn names_and_english_aliases_match() {
        assert!(ASSET.is_named("资产"));
        assert!(ASSET.is_named("Asset"));
        assert!(!ASSET.is_named("assets"));
    }

    #[test]
    fn names_refuse_paths_and_markup() {
        assert!(check_name("web-01", "主机名").is_ok());
        let e = check_name("a/b", "主机名").unwrap_err();
        assert_eq!(e, "主机名不能包含字符 '/'");
        assert!(check_name(&"x".repeat(81), "主机名").is_err());
    }
}
