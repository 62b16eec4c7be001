//! The numeric menu tree of seed 001: static nodes, nodes generated from live pool data,
//! and nodes that ask for free input. Answers are digits (0-based, as in the seed) or a
//! whole path such as `0-1-2`. Leaves produce an ordinary command text, which then goes
//! through the same permission, confirmation and audit path as typed commands.

use crate::commands::names;
use crate::pool::{Closeness, PoolView};
use opsbot_core::{Template, Vm};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Most entries a dynamic node lists; the user narrows the search past that.
const MAX_DYNAMIC: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum MenuNode {
    Root,
    /// Asks for a VM name or IP fragment.
    VmSearch,
    /// The VMs matching `keyword`, generated from the pool.
    VmMatches {
        keyword: String,
    },
    VmActions {
        vm: String,
    },
    /// Asks for the argument of `action` on `vm`.
    VmInput {
        vm: String,
        action: VmAction,
    },
    /// The numbered templates, generated from the pool.
    Templates,
    /// Asks for `名称,IP[,CPU,内存GB]` for a clone of template `number`.
    CloneInput {
        number: u32,
    },
    /// The deploy commands (seed 003).
    Deploys,
    /// Asks for the arguments of deploy command `DEPLOY_ACTIONS[index]`.
    DeployInput {
        index: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmAction {
    Cpu,
    Memory,
    AddDisk,
    SetNet,
    Rename,
}

impl VmAction {
    fn command(self) -> &'static str {
        match self {
            VmAction::Cpu => "CPU",
            VmAction::Memory => "内存",
            VmAction::AddDisk => "加盘",
            VmAction::SetNet => "换网",
            VmAction::Rename => "改名",
        }
    }

    fn prompt(self) -> &'static str {
        match self {
            VmAction::Cpu => "请输入新的 CPU 数量",
            VmAction::Memory => "请输入新的内存大小(GiB)",
            VmAction::AddDisk => "请输入磁盘大小(GiB),可加 ,存储名",
            VmAction::SetNet => "请输入目标端口组名称或 VLAN 号",
            VmAction::Rename => "请输入新名称",
        }
    }
}

/// What answering a node leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuStep {
    /// Go one level down to this node.
    Enter(MenuNode),
    /// Run this command text; the menu stays where it is.
    Run(String),
    /// The answer does not fit the node; tell the user why.
    Invalid(String),
}

const ROOT: &[(&str, Option<&str>)] = &[
    ("资源概况", Some(names::OVERVIEW)),
    ("虚拟机操作", None),
    ("主机列表", Some(names::HOSTS)),
    ("存储列表", Some(names::DATASTORES)),
    ("网络列表", Some(names::NETWORKS)),
    ("克隆虚拟机", None),
    ("同步资源池", Some(names::SYNC)),
    ("我的任务", Some(names::JOBS)),
    ("发布管理", None),
];

/// The deploy subsystem's commands (`opsbot-deploy`), by their canonical names, and
/// what to type for those that take arguments.
const DEPLOY_ACTIONS: &[(&str, &str, Option<&str>)] = &[
    ("项目列表", "项目", None),
    ("发布单列表", "发布单", None),
    ("构建项目", "构建", Some("项目[,分支|tag|commit]")),
    ("发布项目", "发布", Some("项目[,构建号][,主机…]")),
    ("批准发布单", "批准", Some("发布单号")),
    ("驳回发布单", "驳回", Some("发布单号,原因")),
    ("回滚项目", "回滚", Some("项目[,版本]")),
    ("发布日志", "日志", Some("发布单号[,主机]")),
    ("扩容项目", "扩容", Some("项目,台数")),
    ("缩容项目", "缩容", Some("项目,台数")),
];

const VM_ACTIONS: &[(&str, Option<&str>, Option<VmAction>)] = &[
    ("详情", Some(names::FIND), None),
    ("开机", Some(names::POWER_ON), None),
    ("关机(强制)", Some(names::POWER_OFF), None),
    ("关闭系统", Some(names::SHUTDOWN), None),
    ("重启", Some(names::REBOOT), None),
    ("修改 CPU", None, Some(VmAction::Cpu)),
    ("修改内存", None, Some(VmAction::Memory)),
    ("添加磁盘", None, Some(VmAction::AddDisk)),
    ("更换网络", None, Some(VmAction::SetNet)),
    ("ping 检测", Some(names::PING), None),
    ("改名", None, Some(VmAction::Rename)),
    ("删除(不可恢复)", Some(names::DELETE), None),
];

const FOOTER: &str = "回复数字选择 · 返回 上一级 · 退出 结束";

impl MenuNode {
    /// Whether this node takes free text rather than a number.
    pub fn wants_input(&self) -> bool {
        matches!(
            self,
            MenuNode::VmSearch
                | MenuNode::VmInput { .. }
                | MenuNode::CloneInput { .. }
                | MenuNode::DeployInput { .. }
        )
    }

    /// The text shown for this node, generated from live data where it is dynamic.
    pub fn render(&self, pool: &PoolView, visible: &dyn Fn(&Vm) -> bool) -> String {
        let mut out = String::new();
        match self {
            MenuNode::Root => {
                out.push_str("【运维菜单】");
                for (i, (label, _)) in ROOT.iter().enumerate() {
                    let _ = write!(out, "\n{i} {label}");
                }
                let _ = write!(out, "\n{FOOTER}");
            }
            MenuNode::VmSearch => {
                out.push_str(
                    "【虚拟机操作】请输入虚拟机名称或 IP(支持模糊匹配)\n返回 上一级 · 退出 结束",
                );
            }
            MenuNode::VmMatches { keyword } => {
                let hits = matches(pool, keyword, visible);
                let _ = write!(out, "【匹配「{keyword}」的虚拟机】");
                for (i, (closeness, vm)) in hits.iter().take(MAX_DYNAMIC).enumerate() {
                    let mark = if closeness.is_exact() { "★ " } else { "" };
                    let _ = write!(out, "\n{i} {mark}{}", crate::format::vm_line(vm));
                }
                if hits.len() > MAX_DYNAMIC {
                    let _ = write!(
                        out,
                        "\n…另有 {} 个,请返回并输入更精确的关键字",
                        hits.len() - MAX_DYNAMIC
                    );
                }
                let _ = write!(out, "\n{FOOTER}");
            }
            MenuNode::VmActions { vm } => {
                let _ = write!(out, "【{vm}】请选择操作");
                for (i, (label, _, _)) in VM_ACTIONS.iter().enumerate() {
                    let _ = write!(out, "\n{i} {label}");
                }
                let _ = write!(out, "\n{FOOTER}");
            }
            MenuNode::VmInput { vm, action } => {
                let _ = write!(
                    out,
                    "【{vm} · {}】{}\n返回 上一级 · 退出 结束",
                    action.command(),
                    action.prompt()
                );
            }
            MenuNode::Templates => {
                out.push_str("【克隆虚拟机】请选择模板");
                let templates = templates(pool, visible);
                // The template's own number is the choice, as in 克隆:编号,…: one
                // numbering per list.
                for t in templates.iter().take(MAX_DYNAMIC) {
                    let _ = write!(out, "\n{} {} {}", t.number, t.name, t.guest_os);
                }
                if templates.is_empty() {
                    out.push_str("\n(资源池中没有模板)");
                }
                let _ = write!(out, "\n回复模板编号选择 · 返回 上一级 · 退出 结束");
            }
            MenuNode::CloneInput { number } => {
                let _ = write!(
                    out,
                    "【克隆 · 模板 {number}】请输入 名称,IP[,CPU,内存GiB]\n例: 工具柜管理系统,192.168.2.182\n返回 上一级 · 退出 结束"
                );
            }
            MenuNode::Deploys => {
                out.push_str("【发布管理】请选择");
                for (i, (label, _, _)) in DEPLOY_ACTIONS.iter().enumerate() {
                    let _ = write!(out, "\n{i} {label}");
                }
                let _ = write!(out, "\n{FOOTER}");
            }
            MenuNode::DeployInput { index } => {
                let (label, _, input) = DEPLOY_ACTIONS[*index % DEPLOY_ACTIONS.len()];
                let _ = write!(
                    out,
                    "【{label}】请输入 {}\n返回 上一级 · 退出 结束",
                    input.unwrap_or("")
                );
            }
        }
        out
    }

    /// Answers this node with `answer` (a number, or free text for input nodes).
    pub fn answer(&self, answer: &str, pool: &PoolView, visible: &dyn Fn(&Vm) -> bool) -> MenuStep {
        let answer = answer.trim();
        if self.wants_input() {
            if answer.is_empty() {
                return MenuStep::Invalid("输入不能为空".into());
            }
            return match self {
                MenuNode::VmSearch => {
                    if matches(pool, answer, visible).is_empty() {
                        MenuStep::Invalid(format!("没有匹配「{answer}」的虚拟机,请重新输入"))
                    } else {
                        MenuStep::Enter(MenuNode::VmMatches {
                            keyword: answer.to_string(),
                        })
                    }
                }
                MenuNode::VmInput { vm, action } => {
                    MenuStep::Run(format!("{}:{vm},{answer}", action.command()))
                }
                MenuNode::CloneInput { number } => {
                    MenuStep::Run(format!("{}:{number},{answer}", names::CLONE))
                }
                MenuNode::DeployInput { index } => {
                    let (_, cmd, _) = DEPLOY_ACTIONS[*index % DEPLOY_ACTIONS.len()];
                    MenuStep::Run(format!("{cmd}:{answer}"))
                }
                _ => unreachable!("only input nodes reach here"),
            };
        }
        let Ok(choice) = answer.parse::<usize>() else {
            return MenuStep::Invalid(format!("请回复菜单中的数字,「{answer}」不是数字"));
        };
        let out_of_range = |n: usize| {
            MenuStep::Invalid(format!(
                "没有选项 {choice},请回复 0–{}",
                n.saturating_sub(1)
            ))
        };
        match self {
            MenuNode::Root => match ROOT.get(choice) {
                Some((_, Some(cmd))) => MenuStep::Run((*cmd).to_string()),
                Some(_) if choice == 1 => MenuStep::Enter(MenuNode::VmSearch),
                Some(("发布管理", _)) => MenuStep::Enter(MenuNode::Deploys),
                Some(_) => MenuStep::Enter(MenuNode::Templates),
                None => out_of_range(ROOT.len()),
            },
            MenuNode::Deploys => match DEPLOY_ACTIONS.get(choice) {
                Some((_, cmd, None)) => MenuStep::Run((*cmd).to_string()),
                Some(_) => MenuStep::Enter(MenuNode::DeployInput { index: choice }),
                None => out_of_range(DEPLOY_ACTIONS.len()),
            },
            MenuNode::VmMatches { keyword } => {
                let hits = matches(pool, keyword, visible);
                let shown = hits.len().min(MAX_DYNAMIC);
                match hits.get(choice).filter(|_| choice < shown) {
                    Some((_, vm)) => MenuStep::Enter(MenuNode::VmActions {
                        vm: vm.name.clone(),
                    }),
                    None => out_of_range(shown),
                }
            }
            MenuNode::VmActions { vm } => match VM_ACTIONS.get(choice) {
                Some((_, Some(cmd), _)) => MenuStep::Run(format!("{cmd}:{vm}")),
                Some((_, None, Some(action))) => MenuStep::Enter(MenuNode::VmInput {
                    vm: vm.clone(),
                    action: *action,
                }),
                _ => out_of_range(VM_ACTIONS.len()),
            },
            MenuNode::Templates => {
                let templates = templates(pool, visible);
                let shown = &templates[..templates.len().min(MAX_DYNAMIC)];
                match shown.iter().find(|t| t.number as usize == choice) {
                    Some(t) => MenuStep::Enter(MenuNode::CloneInput { number: t.number }),
                    None if shown.is_empty() => {
                        MenuStep::Invalid("资源池中没有模板,请 返回 上一级".into())
                    }
                    None => {
                        let numbers: Vec<String> =
                            shown.iter().map(|t| t.number.to_string()).collect();
                        MenuStep::Invalid(format!(
                            "没有编号为 {choice} 的模板,请回复: {}",
                            numbers.join("、")
                        ))
                    }
                }
            }
            _ => unreachable!("input nodes handled above"),
        }
    }
}

/// Where the menu stands after a leaf answered at `node` ran, as the stack it keeps:
/// a VM's action (direct or after its input) returns to that VM's action list, a clone
/// to the top menu, a top-menu entry stays at the top. Never deeper than the list the
/// user chose from, so the next digit is read against a list the reply names.
pub fn after_leaf(stack: &mut Vec<MenuNode>, node: &MenuNode) {
    match node {
        MenuNode::VmActions { .. } => {}
        MenuNode::VmInput { .. } | MenuNode::DeployInput { .. } => {
            stack.pop();
        }
        MenuNode::Deploys => {}
        _ => stack.truncate(1),
    }
}

impl MenuNode {
    /// The place this node is, as the reply after an action names it.
    pub fn place(&self) -> String {
        match self {
            MenuNode::Root => "【运维菜单】".into(),
            MenuNode::VmActions { vm } => format!("【{vm}】的操作列表"),
            MenuNode::VmSearch | MenuNode::VmMatches { .. } => "【虚拟机操作】".into(),
            MenuNode::VmInput { vm, action } => format!("【{vm} · {}】", action.command()),
            MenuNode::Templates => "【克隆虚拟机】模板列表".into(),
            MenuNode::CloneInput { number } => format!("【克隆 · 模板 {number}】"),
            MenuNode::Deploys => "【发布管理】".into(),
            MenuNode::DeployInput { index } => {
                format!("【{}】", DEPLOY_ACTIONS[*index % DEPLOY_ACTIONS.len()].0)
            }
        }
    }

    /// The line after an action's reply: where the menu is and what a digit does now.
    pub fn where_note(&self) -> String {
        format!(
            "↩ 菜单已回到{}:回复数字继续 · 返回 上一级 · 退出 结束",
            self.place()
        )
    }
}

/// The templates whose VM the user may see (all of them, in number order).
fn templates<'a>(pool: &'a PoolView, visible: &dyn Fn(&Vm) -> bool) -> Vec<&'a Template> {
    pool.templates
        .iter()
        .filter(|t| pool.vm_by_id(&t.provider, &t.vm_id).is_none_or(visible))
        .collect()
}

/// VMs (not templates) the user may see that match `keyword`, closest first (the
/// ranking 查 uses): an exact name is 0, never behind `dr-web-01`.
fn matches<'a>(
    pool: &'a PoolView,
    keyword: &str,
    visible: &dyn Fn(&Vm) -> bool,
) -> Vec<(Closeness, &'a Vm)> {
    pool.search_ranked(keyword, |v| !v.template && visible(v))
}

/// Whether a text is a menu path: digits, or digits joined by `-` (`0-1-2`).
pub fn is_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}
