//! The `[[menu]]` configuration as written in the TOML: a tree of items, each a
//! branch, a leaf, an input node or a dynamic node. Checked and compiled into a
//! [`MenuTree`](super::MenuTree) by [`super::tree`], which names the key path of every
//! problem.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One `[[menu]]` item (and, nested, `[[menu.children]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    /// What its parent's list shows; a typed name selects it too.
    pub label: String,
    /// The heading shown in 【】 when the node is open (default: the label); may use
    /// variables: `{vm} · CPU`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text after the heading (`请选择操作`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// How the reply after an action names this place when the menu returns to it
    /// (default `【title】`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// The last line of the node's text (default: `回复数字选择 · 返回 上一级 · 退出 结束`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Fixed variables for this node and everything below it (`{ ns = "oa" }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// A branch's (or, after its value is bound, an input or dynamic node's) entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<MenuItem>,
    /// The command template a leaf (or an input or dynamic node) runs:
    /// `扩容:{ns}/{deploy},{input}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// An input node: the prompt asking for free text, bound to `var`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// A dynamic node: the live data it lists (`vms`, `templates`, or a registered
    /// menu source such as `workloads`); the chosen entry's value is bound to `var`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The variable an input or dynamic node binds (default `input` for input nodes,
    /// the source's name for dynamic ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var: Option<String>,
    /// What a dynamic node passes its source, templated (`{ ns = "{ns}" }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// A dynamic node's sentence when it has nothing to list (`资源池中没有模板`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<String>,
    /// Where the menu goes after this node's command ran: the list it was chosen
    /// from (default) or the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<After>,
}

/// Where the menu goes after a command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum After {
    /// The list the command was chosen from (for an input node, the list that held it).
    List,
    /// The top of the menu.
    Top,
}
