//! The command grammar: names (Chinese with English aliases), separators (ASCII or
//! full-width), argument counts and types. Parsing is pure and total: any text yields a
//! command or an error that says what is wrong and how to write it.

use opsbot_core::chat::{lowercase_is, ChatCommand, ChatCommands};
use opsbot_core::VmOperation;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// One row of the command table: everything about a command is declared here, once,
/// in its module under `engine/commands/` (names, arguments, permission, confirmation,
/// handler), and the parser, 帮助, the menu and the API's validation read it.
pub struct CommandSpec {
    /// The canonical (Chinese) name, used in roles (it is the permission), the audit
    /// log and replies.
    pub name: &'static str,
    /// English aliases and other spellings (English ones match case-insensitively).
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub summary: &'static str,
    /// A complete example, shown by `帮助:命令`.
    pub example: Option<&'static str>,
    /// Asks for confirmation before acting, unless configured otherwise.
    pub destructive: bool,
    /// Cannot be undone: chat asks for confirmation even where `[chat] confirm` leaves
    /// the command out (implies `destructive`).
    pub irreversible: bool,
    /// Shown in `帮助`; conversation helpers (确认/取消/下一页) are not.
    pub listed: bool,
    /// The subsystem it needs: until that is registered, 帮助 lists it as not configured.
    pub requires: Option<opsbot_core::Feature>,
    /// Its arguments: text split at commas into a [`Command`].
    pub(crate) parse: Parser,
    /// What runs it once permitted; `None` for the conversation helpers, which act on
    /// the session in the engine's dispatch.
    pub(crate) run: Option<crate::engine::commands::Handler>,
    /// The checks a command built from structured input (the REST API, web forms)
    /// needs beyond its types, with the messages a typed one gets ([`validate`]).
    pub(crate) check: Option<Checker>,
}

/// Checks the fields of a command built from structured input.
pub(crate) type Checker = fn(&Fields, &Command) -> Result<(), ParseError>;

/// Turns a command's arguments into the command.
pub(crate) type Parser = fn(&Args) -> Result<Command, ParseError>;

impl CommandSpec {
    pub(crate) const fn new(
        name: &'static str,
        aliases: &'static [&'static str],
        usage: &'static str,
        summary: &'static str,
        parse: Parser,
    ) -> CommandSpec {
        CommandSpec {
            name,
            aliases,
            usage,
            summary,
            example: None,
            destructive: false,
            irreversible: false,
            listed: true,
            requires: None,
            parse,
            run: None,
            check: None,
        }
    }

    pub(crate) const fn destructive(mut self) -> CommandSpec {
        self.destructive = true;
        self
    }

    pub(crate) const fn irreversible(mut self) -> CommandSpec {
        self.destructive = true;
        self.irreversible = true;
        self
    }

    pub(crate) const fn example(mut self, example: &'static str) -> CommandSpec {
        self.example = Some(example);
        self
    }

    pub(crate) const fn hidden(mut self) -> CommandSpec {
        self.listed = false;
        self
    }

    pub(crate) const fn requires(mut self, feature: opsbot_core::Feature) -> CommandSpec {
        self.requires = Some(feature);
        self
    }

    pub(crate) const fn runs(mut self, handler: crate::engine::commands::Handler) -> CommandSpec {
        self.run = Some(handler);
        self
    }

    pub(crate) const fn checks(mut self, checker: Checker) -> CommandSpec {
        self.check = Some(checker);
        self
    }
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .field("usage", &self.usage)
            .field("destructive", &self.destructive)
            .field("irreversible", &self.irreversible)
            .field("listed", &self.listed)
            .field("requires", &self.requires)
            .finish_non_exhaustive()
    }
}

pub use crate::engine::commands::{names, COMMANDS};

/// Looks up a command by canonical name or alias (English aliases case-insensitive).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    let lower = name.to_lowercase();
    COMMANDS
        .iter()
        .find(|c| lowercase_is(c.name, &lower) || c.aliases.contains(&lower.as_str()))
}

/// Maps a configured command name or alias to the canonical name (`*` stays `*`).
pub fn canonical_name(name: &str) -> Option<&'static str> {
    if name == "*" {
        return Some("*");
    }
    spec(name.trim()).map(|c| c.name)
}

/// Which list a list command shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Vms,
    Hosts,
    Datastores,
    Networks,
    Clusters,
    Datacenters,
    Templates,
    /// Services (`服务`), or one service's VMs (`服务:名称`).
    Services,
    Alerts,
    /// Messages the outbox gave up on (`告警:死信`).
    DeadLetters,
    Jobs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The command list (a page of it), or one command's own help (`帮助:克隆`).
    Help {
        page: u32,
        topic: Option<String>,
    },
    Overview {
        datacenter: Option<String>,
    },
    Find {
        keyword: String,
        page: u32,
    },
    /// A list, filtered (`虚拟机:关机,集群=Cluster-Prod`) and paged.
    List {
        kind: ListKind,
        page: u32,
        filter: crate::filter::ListFilter,
    },
    Job {
        id: i64,
    },
    /// An operation on one VM, named as typed (the engine resolves the name to the
    /// VM's id before the provider sees it). Clones and pings are their own commands:
    /// a clone names a template by its number, a ping may name an address.
    Vm(VmOperation),
    Ping {
        target: String,
    },
    Clone {
        template: u32,
        name: String,
        ip: Ipv4Addr,
        cpu: Option<u32>,
        memory_gb: Option<u32>,
    },
    Sync,
    Scale {
        deployment: String,
        replicas: u32,
    },
    /// 确认:42 or, for a group, 确认:42,43 (ids as typed).
    Ack {
        ids: Vec<String>,
    },
    Silence {
        matcher: String,
        minutes: u32,
    },
    Deploy {
        project: String,
        build: Option<String>,
    },
    Rollback {
        project: String,
    },
    Approve {
        order: String,
    },
    /// A command a registered subsystem declares and answers (`opsbot_core::chat`).
    Subsystem {
        spec: &'static ChatCommand,
        args: Vec<String>,
        /// The registered set the asker chose (by its place in the registry) when
        /// several subsystems claimed the call; `None`: decided when it runs.
        route: Option<usize>,
    },
    Menu,
    Confirm,
    Cancel,
    /// `取消:#N`: stop a running job (its owner or an administrator).
    CancelJob {
        id: i64,
    },
    NextPage,
    Back,
    Exit,
}

impl Command {
    /// The canonical name of the command, as in the table.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help { .. } => names::HELP,
            Command::Overview { .. } => names::OVERVIEW,
            Command::Find { .. } => names::FIND,
            Command::List { kind, .. } => match kind {
                ListKind::Vms => names::VMS,
                ListKind::Hosts => names::HOSTS,
                ListKind::Datastores => names::DATASTORES,
                ListKind::Networks => names::NETWORKS,
                ListKind::Clusters => names::CLUSTERS,
                ListKind::Datacenters => names::DATACENTERS,
                ListKind::Templates => names::TEMPLATES,
                ListKind::Services => names::SERVICES,
                ListKind::Alerts | ListKind::DeadLetters => names::ALERTS,
                ListKind::Jobs => names::JOBS,
            },
            Command::Job { .. } => names::JOBS,
            Command::Vm(op) => match op {
                VmOperation::PowerOn { .. } => names::POWER_ON,
                VmOperation::PowerOff { .. } => names::POWER_OFF,
                VmOperation::Shutdown { .. } => names::SHUTDOWN,
                VmOperation::Reboot { .. } => names::REBOOT,
                VmOperation::SetCpu { .. } => names::CPU,
                VmOperation::SetMemory { .. } => names::MEMORY,
                VmOperation::AddDisk { .. } => names::ADD_DISK,
                VmOperation::SetNetwork { .. } => names::SET_NET,
                VmOperation::Rename { .. } => names::RENAME,
                VmOperation::Ping { .. } => names::PING,
                VmOperation::Clone { .. } => names::CLONE,
                VmOperation::Delete { .. } => names::DELETE,
            },
            Command::Ping { .. } => names::PING,
            Command::Clone { .. } => names::CLONE,
            Command::Sync => names::SYNC,
            Command::Scale { .. } => names::SCALE,
            Command::Ack { .. } | Command::Confirm => names::CONFIRM,
            Command::Silence { .. } => names::SILENCE,
            Command::Deploy { .. } => names::DEPLOY,
            Command::Rollback { .. } => names::ROLLBACK,
            Command::Approve { .. } => names::APPROVE,
            Command::Subsystem { spec, .. } => spec.name,
            Command::Menu => names::MENU,
            Command::Cancel | Command::CancelJob { .. } => names::CANCEL,
            Command::NextPage => names::NEXT_PAGE,
            Command::Back => names::BACK,
            Command::Exit => names::EXIT,
        }
    }

    /// Conversation helpers act on the session, not on resources; everyone may use them.
    pub fn is_conversational(&self) -> bool {
        matches!(
            self,
            Command::Help { .. }
                | Command::Menu
                | Command::Confirm
                | Command::Cancel
                // Everyone may ask; the handler lets only the job's owner or an
                // administrator act.
                | Command::CancelJob { .. }
                | Command::NextPage
                | Command::Back
                | Command::Exit
        )
    }
}

/// The canonical text of a command: parsing it gives the same command back.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.name();
        match self {
            Command::Overview {
                datacenter: Some(dc),
            } => write!(f, "{n}:{dc}"),
            Command::Find { keyword, page } if *page > 1 => write!(f, "{n}:{keyword},{page}"),
            Command::Find { keyword, .. } => write!(f, "{n}:{keyword}"),
            Command::List {
                kind: ListKind::DeadLetters,
                ..
            } => write!(f, "{n}:死信"),
            Command::Help {
                topic: Some(topic), ..
            } => write!(f, "{n}:{topic}"),
            Command::List { page, filter, .. } if !filter.is_empty() => {
                write!(f, "{n}:{filter}")?;
                if *page > 1 {
                    write!(f, ",{page}")?;
                }
                Ok(())
            }
            Command::List { page, .. } | Command::Help { page, .. } if *page > 1 => {
                write!(f, "{n}:{page}")
            }
            Command::Job { id } => write!(f, "{n}:{id}"),
            Command::CancelJob { id } => write!(f, "{n}:#{id}"),
            Command::Vm(op) => match op {
                VmOperation::PowerOn { vm }
                | VmOperation::PowerOff { vm }
                | VmOperation::Shutdown { vm }
                | VmOperation::Reboot { vm }
                | VmOperation::Ping { vm }
                | VmOperation::Delete { vm } => write!(f, "{n}:{vm}"),
                VmOperation::SetCpu { vm, count } => write!(f, "{n}:{vm},{count}"),
                VmOperation::SetMemory { vm, gb } => write!(f, "{n}:{vm},{gb}"),
                VmOperation::AddDisk { vm, gb, datastore } => {
                    write!(f, "{n}:{vm},{gb}")?;
                    datastore.as_ref().map_or(Ok(()), |d| write!(f, ",{d}"))
                }
                VmOperation::SetNetwork { vm, network } => write!(f, "{n}:{vm},{network}"),
                VmOperation::Rename { vm, new_name } => write!(f, "{n}:{vm},{new_name}"),
                VmOperation::Clone {
                    template, name, ip, ..
                } => {
                    write!(f, "{n}:{template},{name},{ip}")
                }
            },
            Command::Ping { target } => write!(f, "{n}:{target}"),
            Command::Clone {
                template,
                name,
                ip,
                cpu,
                memory_gb,
            } => {
                write!(f, "{n}:{template},{name},{ip}")?;
                match (cpu, memory_gb) {
                    (Some(c), Some(m)) => write!(f, ",{c},{m}"),
                    (Some(c), None) => write!(f, ",{c}"),
                    // Memory needs a CPU position before it; the template's count stays.
                    (None, Some(_)) | (None, None) => Ok(()),
                }
            }
            Command::Scale {
                deployment,
                replicas,
            } => write!(f, "{n}:{deployment},{replicas}"),
            Command::Ack { ids } => write!(f, "{n}:{}", ids.join(",")),
            Command::Silence { matcher, minutes } => write!(f, "{n}:{matcher},{minutes}m"),
            Command::Deploy { project, build } => {
                write!(f, "{n}:{project}")?;
                build.as_ref().map_or(Ok(()), |b| write!(f, ",{b}"))
            }
            Command::Rollback { project } => write!(f, "{n}:{project}"),
            Command::Approve { order } => write!(f, "{n}:{order}"),
            Command::Subsystem { args, .. } if !args.is_empty() => {
                write!(f, "{n}:{}", args.join(","))
            }
            _ => write!(f, "{n}"),
        }
    }
}

/// Why a text is not a valid command. Display gives the reply the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    Unknown {
        word: String,
        suggestion: Option<&'static str>,
    },
    Usage {
        command: &'static str,
        usage: &'static str,
        problem: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "请输入命令,发送 帮助 查看可用命令"),
            ParseError::Unknown { word, suggestion } => {
                write!(f, "未知命令「{word}」。")?;
                if let Some(s) = suggestion {
                    write!(f, "您是不是要用「{s}」?")?;
                }
                write!(f, "发送 帮助 查看可用命令,或 菜单 使用数字菜单")
            }
            ParseError::Usage {
                command,
                usage,
                problem,
            } => {
                write!(f, "{command}: {problem}\n用法: {usage}")?;
                if *command == "克隆" {
                    write!(f, "\n例: 克隆:2,工具柜管理系统,192.168.2.182")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Folds full-width ASCII forms (`：`, `，`, `１`, `Ａ`, the ideographic space) to
/// ASCII so a phone keyboard in Chinese mode types the same commands, drops a leading
/// `@mention` (group chats keep the robot's name in the text, on every surface) and
/// the sentence's end (`。` `.` `；` `;`) people type out of habit.
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '、' => ',',
            _ => c,
        })
        .collect();
    strip_mention(&folded)
        .trim_end_matches(|c: char| matches!(c, '。' | '.' | ';') || is_blank(c))
        .to_string()
}

/// Blanks around a mention: whitespace, and U+00A0 / U+2005 which WeCom puts after it.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{a0}' || c == '\u{2005}'
}

/// The text after one leading `@name` and the blank after it (`@运维机器人 概况` →
/// `概况`); a later `@someone` stays, and a mention alone leaves nothing.
fn strip_mention(text: &str) -> &str {
    let trimmed = text.trim_matches(is_blank);
    let Some(rest) = trimmed.strip_prefix('@') else {
        return trimmed;
    };
    match rest.find(is_blank) {
        Some(end) => rest[end..].trim_matches(is_blank),
        None => "",
    }
}

/// Splits normalized text into the command word and its arguments.
fn split(text: &str) -> (String, Vec<String>) {
    let (head, rest) = match text.find(':') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        // Without a colon, "poweron web-01" reads naturally on a console.
        None => match text.char_indices().find(|(_, c)| c.is_whitespace()) {
            Some((i, c)) => (&text[..i], Some(&text[i + c.len_utf8()..])),
            None => (text, None),
        },
    };
    let args = match rest {
        Some(r) if !r.trim().is_empty() => r.split(',').map(|a| a.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    (head.trim().to_string(), args)
}

/// Whether `args` holds `min..=max` arguments, none of them empty.
fn count(args: &[String], min: usize, max: usize) -> Result<(), String> {
    let n = args.len();
    if n < min || n > max {
        let want = if min == max {
            format!("{min} 个")
        } else {
            format!("{min}–{max} 个")
        };
        return Err(format!("需要 {want}参数,收到 {n} 个"));
    }
    if let Some(i) = args.iter().position(|a| a.is_empty()) {
        return Err(format!("第 {} 个参数是空的", i + 1));
    }
    Ok(())
}

/// A command's arguments, split at commas, with the checks every parser shares.
pub(crate) struct Args {
    spec: &'static CommandSpec,
    pub(crate) args: Vec<String>,
}

impl Args {
    pub(crate) fn usage(&self, problem: impl Into<String>) -> ParseError {
        ParseError::Usage {
            command: self.spec.name,
            usage: self.spec.usage,
            problem: problem.into(),
        }
    }

    pub(crate) fn count(&self, min: usize, max: usize) -> Result<(), ParseError> {
        count(&self.args, min, max).map_err(|p| self.usage(p))
    }

    pub(crate) fn text(&self, i: usize) -> String {
        self.args[i].clone()
    }

    pub(crate) fn opt(&self, i: usize) -> Option<String> {
        self.args.get(i).cloned()
    }

    pub(crate) fn number(
        &self,
        i: usize,
        what: &str,
        min: u32,
        max: u32,
    ) -> Result<u32, ParseError> {
        // `16`, `16G`, `16GB` and `16GiB` are all 16 GiB.
        let raw = self.args[i]
            .trim_end_matches(['G', 'g', 'B', 'b', 'i', 'I'])
            .trim();
        let n: u32 = raw
            .parse()
            .map_err(|_| self.usage(format!("{what}「{}」不是整数", self.args[i])))?;
        if n < min || n > max {
            return Err(self.usage(format!("{what} {n} 超出范围({min}–{max})")));
        }
        Ok(n)
    }

    pub(crate) fn opt_number(
        &self,
        i: usize,
        what: &str,
        min: u32,
        max: u32,
    ) -> Result<Option<u32>, ParseError> {
        if i < self.args.len() {
            self.number(i, what, min, max).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn page(&self) -> Result<u32, ParseError> {
        self.count(0, 1)?;
        Ok(self.opt_number(0, "页码", 1, 100_000)?.unwrap_or(1))
    }

    pub(crate) fn name(&self, i: usize, what: &str) -> Result<String, ParseError> {
        let n = self.args[i].clone();
        opsbot_core::chat::check_name(&n, what).map_err(|p| self.usage(p))?;
        Ok(n)
    }
}

/// Allowed CPU counts, memory and disk sizes, template numbers (inclusive).
pub const CPU_RANGE: (u32, u32) = (1, 128);
pub const MEMORY_GB_RANGE: (u32, u32) = (1, 4096);
pub const DISK_GB_RANGE: (u32, u32) = (1, 65_536);
pub const TEMPLATE_RANGE: (u32, u32) = (1, 100_000);

/// Checks the arguments of a command built from structured input (the REST API, web
/// forms) with the same rules, and the same messages, as a typed one: each spec's
/// checker, declared beside it.
pub fn validate(cmd: &Command) -> Result<(), ParseError> {
    match spec(cmd.name()) {
        Some(spec) => spec
            .check
            .map_or(Ok(()), |check| check(&Fields { spec }, cmd)),
        None => Ok(()),
    }
}

/// A structured command's fields, checked as the typed argument at their position
/// would be. A name may not hold a comma either: typed, it would split the arguments.
pub(crate) struct Fields {
    spec: &'static CommandSpec,
}

impl Fields {
    fn at(&self, i: usize, value: String) -> Args {
        let mut args = vec![String::new(); i + 1];
        args[i] = value;
        Args {
            spec: self.spec,
            args,
        }
    }

    /// Typed, a port group or datastore is any text without a comma.
    pub(crate) fn text(&self, i: usize, value: &str, what: &str) -> Result<(), ParseError> {
        let a = self.at(i, value.to_string());
        if value.trim().is_empty() {
            return Err(a.usage(format!("{what}不能为空")));
        }
        if value.contains(',') {
            return Err(a.usage(format!("{what}不能包含字符 ','")));
        }
        Ok(())
    }

    pub(crate) fn name(&self, i: usize, value: &str, what: &str) -> Result<(), ParseError> {
        self.text(i, value, what)?;
        self.at(i, value.to_string()).name(i, what).map(drop)
    }

    pub(crate) fn number(
        &self,
        i: usize,
        n: u32,
        what: &str,
        (min, max): (u32, u32),
    ) -> Result<(), ParseError> {
        self.at(i, n.to_string())
            .number(i, what, min, max)
            .map(drop)
    }

    pub(crate) fn ipv4(&self, i: usize, ip: &Ipv4Addr) -> Result<(), ParseError> {
        parse_ipv4(&ip.to_string())
            .map(drop)
            .map_err(|e| self.at(i, ip.to_string()).usage(e))
    }
}

/// A VM or guest IP must be a real unicast address, written as four decimal octets.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("IP 地址「{s}」格式不正确(应为 192.168.2.182 这样的四段数字)"))?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err(format!("IP 地址 {ip} 不能分配给虚拟机"));
    }
    if ip.octets()[3] == 0 || ip.octets()[3] == 255 {
        return Err(format!("IP 地址 {ip} 是网络号或广播地址"));
    }
    Ok(ip)
}

/// Parses a duration like `30m`, `2h`, `1d`, `90` (minutes) into minutes.
pub(crate) fn parse_minutes(s: &str) -> Option<u32> {
    let s = s.trim().to_lowercase();
    let s = s
        .replace("分钟", "m")
        .replace("小时", "h")
        .replace('天', "d");
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], s[i..].trim()),
        None => (s.as_str(), "m"),
    };
    let n: u32 = num.parse().ok()?;
    let minutes = match unit {
        "m" | "min" => n,
        "h" => n.checked_mul(60)?,
        "d" => n.checked_mul(1440)?,
        _ => return None,
    };
    (1..=30 * 1440).contains(&minutes).then_some(minutes)
}

/// The closest command name or alias, for "did you mean".
fn suggest(word: &str, sets: &[Arc<dyn ChatCommands>]) -> Option<&'static str> {
    let lower = word.to_lowercase();
    let mut best: Option<(&'static str, f64)> = None;
    let builtin = COMMANDS
        .iter()
        .filter(|c| c.listed)
        .map(|c| (c.name, c.aliases));
    let registered = sets
        .iter()
        .flat_map(|s| s.commands().iter().map(|d| (d.name, d.aliases)));
    for (name, aliases) in builtin.chain(registered) {
        for candidate in std::iter::once(name).chain(aliases.iter().copied()) {
            let candidate = candidate.to_lowercase();
            let score = strsim::normalized_damerau_levenshtein(&lower, &candidate);
            let contains = candidate.chars().count() > 1
                && (lower.contains(candidate.as_str()) || candidate.contains(lower.as_str()));
            let score = if contains { score.max(0.7) } else { score };
            // A Chinese command's first character carries its verb (重启 for 重起, 关机
            // for 关闭): on equal edit distance the one starting alike is the better
            // guess, not whichever the table lists first.
            let alike = lower.chars().next() == candidate.chars().next();
            let score = if alike { score + 0.05 } else { score };
            if score >= 0.5 && best.is_none_or(|(_, s)| score > s) {
                best = Some((name, score));
            }
        }
    }
    best.map(|(n, _)| n)
}

/// Parses one message into a command of the built-in table.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    parse_in(text, &[])
}

/// Parses one message into a command of the built-in table or of a registered
/// subsystem's (`sets`); a subsystem's command replaces a planned one of the same name.
pub fn parse_in(text: &str, sets: &[Arc<dyn ChatCommands>]) -> Result<Command, ParseError> {
    let text = normalize(text);
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let (word, args) = split(&text);
    let args = match parse_subsystem(sets, &word, args) {
        Ok(parsed) => return parsed,
        Err(args) => args,
    };
    let spec = spec(&word).ok_or_else(|| ParseError::Unknown {
        word: word.chars().take(20).collect(),
        suggestion: suggest(&word, sets),
    })?;
    let spaced = spaced_args(&args);
    match (spec.parse)(&Args { spec, args }) {
        // `cpu web-04 4`, `加盘 web-02 10`: blanks between the arguments instead of
        // commas, read that way only when the text has no comma and the comma reading
        // failed (so a search for `web 01` stays one keyword).
        Err(first) => match spaced {
            Some(args) => (spec.parse)(&Args { spec, args }).map_err(|_| first),
            None => Err(first),
        },
        ok => ok,
    }
}

/// A registered subsystem's command with `args`, checked as typed ones are: their
/// count, none empty, then the subsystem's own checks; the error carries the usage.
pub(crate) fn subsystem_command(
    set: &dyn ChatCommands,
    decl: &'static ChatCommand,
    args: Vec<String>,
) -> Result<Command, ParseError> {
    let usage = |problem: String| ParseError::Usage {
        command: decl.name,
        usage: decl.usage,
        problem,
    };
    count(&args, decl.args.0, decl.args.1).map_err(usage)?;
    set.check(decl, &args).map_err(usage)?;
    Ok(Command::Subsystem {
        spec: decl,
        args,
        route: None,
    })
}

/// The subsystem command `word` names with `args`, or the arguments back when the
/// built-in table answers it. Several sets may declare one name (扩容 scales deploy
/// projects and Kubernetes workloads): those whose form the arguments are written in
/// (`takes`) are tried in registration order, the first that accepts them gives the
/// command (which set runs it is decided at run time, by their claims), else the first
/// one's error. A built-in command a set shares (重启) keeps arguments no set takes.
pub(crate) fn parse_subsystem(
    sets: &[Arc<dyn ChatCommands>],
    word: &str,
    args: Vec<String>,
) -> Result<Result<Command, ParseError>, Vec<String>> {
    let declaring: Vec<_> = subsystem_specs(sets, word).collect();
    if declaring.is_empty() {
        return Err(args);
    }
    let builtin = spec(word).is_some_and(|b| b.requires.is_none());
    let taking: Vec<_> = declaring
        .iter()
        .filter(|(_, set, decl)| set.takes(decl, &args))
        .collect();
    let tried = match (taking.is_empty(), builtin) {
        (true, true) => return Err(args),
        (true, false) => declaring.iter().collect(),
        (false, _) => taking,
    };
    let mut first = None;
    for (_, set, decl) in tried {
        match subsystem_command(set.as_ref(), decl, args.clone()) {
            Ok(cmd) => return Ok(Ok(cmd)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Ok(Err(first.expect("at least one set declares the word")))
}

/// Every registered set declaring `word`, with its place in the registry.
pub(crate) fn subsystem_specs<'a, 'w>(
    sets: &'a [Arc<dyn ChatCommands>],
    word: &'w str,
) -> impl Iterator<Item = (usize, &'a Arc<dyn ChatCommands>, &'static ChatCommand)> + 'w
where
    'a: 'w,
{
    sets.iter().enumerate().filter_map(move |(i, set)| {
        set.commands()
            .iter()
            .find(|d| d.is_named(word))
            .map(|d| (i, set, d))
    })
}

/// The single argument split at blanks, when there is one argument holding blanks.
fn spaced_args(args: &[String]) -> Option<Vec<String>> {
    match args {
        [one] if one.contains(char::is_whitespace) => {
            Some(one.split_whitespace().map(str::to_string).collect())
        }
        _ => None,
    }
}

/// The registered subsystem command named `word`, with the set that answers it.
pub(crate) fn subsystem_spec<'a>(
    sets: &'a [Arc<dyn ChatCommands>],
    word: &str,
) -> Option<(&'a Arc<dyn ChatCommands>, &'static ChatCommand)> {
    subsystem_specs(sets, word)
        .next()
        .map(|(_, set, decl)| (set, decl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_clone_example_parses_verbatim() {
        assert_eq!(
            parse("克隆:2,工具柜管理系统,192.168.2.182").unwrap(),
            Command::Clone {
                template: 2,
                name: "工具柜管理系统".into(),
                ip: "192.168.2.182".parse().unwrap(),
                cpu: None,
                memory_gb: None
            }
        );
    }

    #[test]
    fn full_width_separators_and_spaces() {
        assert_eq!(
            parse(" 克隆：2，工具柜管理系统， 192.168.2.182 ,4,8 ").unwrap(),
            Command::Clone {
                template: 2,
                name: "工具柜管理系统".into(),
                ip: "192.168.2.182".parse().unwrap(),
                cpu: Some(4),
                memory_gb: Some(8)
            }
        );
        assert_eq!(
            parse("ＣＰＵ：web-01，４").unwrap(),
            Command::Vm(VmOperation::SetCpu {
                vm: "web-01".into(),
                count: 4
            })
        );
    }

    #[test]
    fn english_aliases_case_insensitive() {
        assert_eq!(
            parse("PowerOn:web-01").unwrap(),
            Command::Vm(VmOperation::PowerOn {
                vm: "web-01".into()
            })
        );
        assert_eq!(
            parse("poweroff web-01").unwrap(),
            Command::Vm(VmOperation::PowerOff {
                vm: "web-01".into()
            })
        );
        assert_eq!(
            parse("mem:db,16GB").unwrap(),
            Command::Vm(VmOperation::SetMemory {
                vm: "db".into(),
                gb: 16
            })
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse("克隆:2,工具柜管理系统,192.168.2.999")
            .unwrap_err()
            .to_string();
        assert!(e.contains("192.168.2.999") && e.contains("用法"), "{e}");
        let e = parse("CPU:web-01,999").unwrap_err().to_string();
        assert!(e.contains("超出范围"), "{e}");
        let e = parse("CPU:web-01").unwrap_err().to_string();
        assert!(e.contains("需要 2 个参数,收到 1 个"), "{e}");
        let e = parse("关机:").unwrap_err().to_string();
        assert!(e.contains("收到 0 个"), "{e}");
    }

    #[test]
    fn unknown_command_suggests_the_closest() {
        assert_eq!(
            parse("poweron2:x").unwrap_err(),
            ParseError::Unknown {
                word: "poweron2".into(),
                suggestion: Some("开机")
            }
        );
        match parse("概括").unwrap_err() {
            ParseError::Unknown { suggestion, .. } => assert_eq!(suggestion, Some("概况")),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn mentions_sentence_ends_and_blanks_between_arguments() {
        assert_eq!(normalize("@运维机器人 概况"), "概况");
        assert_eq!(normalize("@Bot\u{2005}查:web @lisi"), "查:web @lisi");
        assert_eq!(normalize("@运维机器人"), "");
        assert_eq!(normalize("概况。"), "概况");
        assert_eq!(normalize("查:web-01；"), "查:web-01");
        assert_eq!(normalize("开机:web-01. "), "开机:web-01");
        assert_eq!(
            parse("cpu web-04 4").unwrap(),
            Command::Vm(VmOperation::SetCpu {
                vm: "web-04".into(),
                count: 4
            })
        );
        assert_eq!(
            parse("加盘:web-02 10").unwrap(),
            Command::Vm(VmOperation::AddDisk {
                vm: "web-02".into(),
                gb: 10,
                datastore: None
            })
        );
        // One argument with a blank stays one when that parses (a search keyword).
        assert_eq!(
            parse("查:web 01").unwrap(),
            Command::Find {
                keyword: "web 01".into(),
                page: 1
            }
        );
        // A failed blank reading reports the comma reading's problem.
        let e = parse("CPU:web-01 x").unwrap_err().to_string();
        assert!(e.contains("需要 2 个参数"), "{e}");
    }

    #[test]
    fn the_words_people_use_are_aliases() {
        let vm = || "web-01".to_string();
        assert_eq!(
            parse("启动:web-01").unwrap(),
            Command::Vm(VmOperation::PowerOn { vm: vm() })
        );
        assert_eq!(
            parse("开启:web-01").unwrap(),
            Command::Vm(VmOperation::PowerOn { vm: vm() })
        );
        assert_eq!(
            parse("停机:web-01").unwrap(),
            Command::Vm(VmOperation::PowerOff { vm: vm() })
        );
        for w in ["删除:web-01", "delete web-01", "Destroy:web-01"] {
            let cmd = parse(w).unwrap();
            assert_eq!(cmd, Command::Vm(VmOperation::Delete { vm: vm() }), "{w}");
            assert_eq!(cmd.to_string(), "删除:web-01");
        }
        for w in ["详情:web-01", "状态:web-01"] {
            assert_eq!(
                parse(w).unwrap(),
                Command::Find {
                    keyword: vm(),
                    page: 1
                }
            );
        }
        let suggestion = |w: &str| match parse(w).unwrap_err() {
            ParseError::Unknown { suggestion, .. } => suggestion,
            e => panic!("{e:?}"),
        };
        assert_eq!(suggestion("重起"), Some("重启"));
        assert_eq!(suggestion("关鸡"), Some("关机"));
        assert_eq!(suggestion("主鸡"), Some("主机"));
    }

    #[test]
    fn help_takes_a_page_or_a_command() {
        assert_eq!(
            parse("帮助:2").unwrap(),
            Command::Help {
                page: 2,
                topic: None
            }
        );
        let topic = parse("帮助:克隆").unwrap();
        assert_eq!(
            topic,
            Command::Help {
                page: 1,
                topic: Some("克隆".into())
            }
        );
        assert_eq!(parse(&topic.to_string()).unwrap(), topic);
        let find = parse("查:10.10,2").unwrap();
        assert_eq!(
            find,
            Command::Find {
                keyword: "10.10".into(),
                page: 2
            }
        );
        assert_eq!(find.to_string(), "查:10.10,2");
    }

    #[test]
    fn multibyte_whitespace_separates_too() {
        // U+2006 (six-per-em space) is three bytes long; found by the property test.
        assert_eq!(
            parse("poweron\u{2006}web-01").unwrap(),
            Command::Vm(VmOperation::PowerOn {
                vm: "web-01".into()
            })
        );
    }

    #[test]
    fn confirm_without_args_is_confirmation_with_args_is_ack() {
        assert_eq!(parse("确认").unwrap(), Command::Confirm);
        assert_eq!(parse("y").unwrap(), Command::Confirm);
        assert_eq!(
            parse("确认:42").unwrap(),
            Command::Ack {
                ids: vec!["42".into()]
            }
        );
        let group = parse("确认:42,#43").unwrap();
        assert_eq!(
            group,
            Command::Ack {
                ids: vec!["42".into(), "#43".into()]
            }
        );
        assert_eq!(group.to_string(), "确认:42,#43");
        let too_many: Vec<String> = (0..=opsbot_core::alerts::MAX_ACK_IDS)
            .map(|i| i.to_string())
            .collect();
        assert!(parse(&format!("确认:{}", too_many.join(","))).is_err());
    }

    #[test]
    fn silence_durations() {
        assert_eq!(
            parse("静默:web-*,2h").unwrap(),
            Command::Silence {
                matcher: "web-*".into(),
                minutes: 120
            }
        );
        assert!(parse("静默:web-*,forever").is_err());
    }

    #[test]
    fn alerts_pages_and_dead_letters() {
        assert_eq!(
            parse("告警:2").unwrap(),
            Command::List {
                kind: ListKind::Alerts,
                page: 2,
                filter: Default::default(),
            }
        );
        let dead = parse("告警：死信").unwrap();
        assert_eq!(
            dead,
            Command::List {
                kind: ListKind::DeadLetters,
                page: 1,
                filter: Default::default(),
            }
        );
        assert_eq!(dead.to_string(), "告警:死信");
        assert_eq!(parse(&dead.to_string()).unwrap(), dead);
        assert!(parse("告警:活信").is_err());
    }

    #[test]
    fn every_table_entry_parses_by_name_and_alias() {
        for c in COMMANDS {
            for word in std::iter::once(c.name).chain(c.aliases.iter().copied()) {
                // Either parses, or complains about arguments, never "unknown".
                if let Err(ParseError::Unknown { .. }) = parse(word) {
                    panic!("{word} is unknown");
                }
            }
        }
    }

    #[test]
    fn bad_ips_are_refused() {
        for ip in [
            "1.2.3",
            "256.1.1.1",
            "0.0.0.0",
            "127.0.0.1",
            "10.0.0.255",
            "224.0.0.1",
            "01.2.3.4x",
        ] {
            assert!(parse_ipv4(ip).is_err(), "{ip}");
        }
    }
}
