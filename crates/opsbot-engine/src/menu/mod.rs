//! The numeric menu tree of seed 001, configured rather than coded (`[[menu]]`, with
//! [`MenuTree::builtin`] as the default): static branches, leaves that run a command
//! template, input nodes that bind what is typed, and dynamic nodes listing live data
//! (the pool's VMs and templates, or a subsystem's registered `MenuSource`). Answers
//! are digits (0-based, as in the seed), names, or a whole path such as `0-1-2` or
//! `1-OA系统-0-0`. Leaves produce an ordinary command text, which then goes through the
//! same parsing, permission, confirmation and audit path as typed commands.
//!
//! The conversation keeps a stack of [`Frame`]s in the session (Redis included): each
//! names its node by child indexes and label, so a stack that no longer fits a changed
//! configuration is noticed and reset rather than misread.

pub mod config;
mod path;
mod render;
pub mod template;
pub mod tree;

pub use config::{After, MenuItem};
pub use path::{answer, give_input, Stuck, Walked};
pub use render::{place, render, where_note};
pub use template::Vars;
pub use tree::{command_word, Kind, MenuError, MenuTree, Next, Node};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};

/// Most entries a dynamic node lists; the user narrows the search past that.
pub const MAX_DYNAMIC: usize = 20;

/// The last line of a list.
pub const FOOTER: &str = "回复数字选择 · 返回 上一级 · 退出 结束";
/// The last line of an input node.
pub const INPUT_FOOTER: &str = "返回 上一级 · 退出 结束";

/// One open level of the menu, as the session keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Strict, so a stack another version wrote is not misread as frames of defaults.
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// Child indexes from the root to the node (empty: the top menu).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<u16>,
    /// The node's label when the frame was opened: a configuration changed since
    /// shows as a mismatch.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// An input or dynamic node whose value is bound: the frame lists its children.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chosen: bool,
    /// Everything bound here and above: fixed vars, inputs, chosen entries.
    #[serde(default, skip_serializing_if = "Vars::is_empty")]
    pub vars: Vars,
}

impl Frame {
    /// The top menu.
    pub fn root() -> Frame {
        Frame {
            at: Vec::new(),
            label: String::new(),
            chosen: false,
            vars: Vars::new(),
        }
    }
}

/// A fresh stack: the top menu.
pub fn root_stack() -> Vec<Frame> {
    vec![Frame::root()]
}

/// What a frame shows.
#[derive(Debug, Clone, Copy)]
pub enum View<'t> {
    /// A branch's children, or a bound node's.
    List(&'t Node),
    /// An input node's question.
    Ask(&'t Node),
    /// A dynamic node's entries.
    Entries(&'t Node),
}

/// The node `frame` stands on and what it shows; `None` when the frame no longer fits
/// the tree (the configuration changed since it was stored).
pub fn view<'t>(tree: &'t MenuTree, frame: &Frame) -> Option<View<'t>> {
    let node = tree.node_at(&frame.at)?;
    if node.label != frame.label {
        return None;
    }
    match (&node.kind, frame.chosen) {
        (Kind::Branch(_), false) => Some(View::List(node)),
        (Kind::Input { .. }, false) => Some(View::Ask(node)),
        (Kind::Dynamic { .. }, false) => Some(View::Entries(node)),
        (
            Kind::Input {
                next: Next::Children(_),
                ..
            }
            | Kind::Dynamic {
                next: Next::Children(_),
                ..
            },
            true,
        ) => Some(View::List(node)),
        _ => None,
    }
}

/// Whether every frame of `stack` still fits `tree`, starting at the top.
pub fn fits(tree: &MenuTree, stack: &[Frame]) -> bool {
    stack.first().is_some_and(|f| f.at.is_empty()) && stack.iter().all(|f| view(tree, f).is_some())
}

/// Whether `frame` waits for free text.
pub fn wants_input(tree: &MenuTree, frame: &Frame) -> bool {
    matches!(view(tree, frame), Some(View::Ask(_)))
}

/// One entry of a dynamic node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The number it is chosen by.
    pub number: usize,
    /// What the list shows after the number.
    pub label: String,
    /// What is bound to the node's variable.
    pub value: String,
    /// What a typed name matches (besides the value).
    pub name: String,
}

/// A dynamic node's entries, all of them (the menu shows the first [`MAX_DYNAMIC`]).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    /// The entries carry their own numbers (templates): the noun for "没有编号为 N 的…".
    pub own_numbers: Option<&'static str>,
}

/// What the menu reads from outside the tree: live entries and permissions.
#[async_trait]
pub trait World: Sync {
    /// The entries of `source` the asker may see, given `params` (the node's params
    /// filled, over everything bound so far); `Err` says why they cannot be listed.
    async fn entries(&self, source: &str, params: &Vars) -> Result<Listing, String>;
    /// Whether the asker may run the command `word` names (a leaf they may not run is
    /// not shown; the command is still checked when it runs).
    fn may_run(&self, word: &str) -> bool;
}

/// Whether `node` shows for the asker: a command they may run, or something leading
/// to one.
pub fn shows(world: &dyn World, node: &Node) -> bool {
    match node.command() {
        Some(cmd) => world.may_run(command_word(cmd)),
        None => node.children().iter().any(|c| shows(world, c)),
    }
}

/// The children of `node` the asker sees, with their indexes in the tree, numbered by
/// position.
pub fn visible_children<'t>(world: &dyn World, node: &'t Node) -> Vec<(u16, &'t Node)> {
    node.children()
        .iter()
        .enumerate()
        .filter(|(_, c)| shows(world, c))
        .map(|(i, c)| (i as u16, c))
        .collect()
}

/// Whether a text is a menu path of digits: digits, or digits joined by `-` (`0-1-2`).
pub fn is_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a text looks like a path from the top with names or input in it
/// (`1-OA系统-0-0`, `5-1-新机,192.168.2.210`): digits first, then `-`.
pub fn is_named_path(text: &str) -> bool {
    match text.split_once('-') {
        Some((first, rest)) => {
            !first.is_empty()
                && first.len() <= 4
                && first.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty()
        }
        None => false,
    }
}

/// Reads a stored menu stack; one written by another version (or unreadable) comes
/// back empty, which [`fits`] refuses, so the user hears the menu was reset.
pub fn lenient_stack<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Frame>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Frames(Vec<Frame>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Stored>::deserialize(d)? {
        None => None,
        Some(Stored::Frames(f)) => Some(f),
        Some(Stored::Other(_)) => Some(Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_command_words() {
        assert!(is_path("0-1-2") && is_path("3") && !is_path("1-OA系统"));
        assert!(is_named_path("1-OA系统-0-0") && is_named_path("5-1-新机,192.168.2.210"));
        assert!(!is_named_path("dr-web-01") && !is_named_path("7") && !is_named_path("1-"));
        assert_eq!(command_word("扩容:{ns}/{deploy},{input}"), "扩容");
        assert_eq!(command_word("扩容：oa/web,3"), "扩容");
        assert_eq!(command_word("poweron web-01"), "poweron");
        assert_eq!(command_word(" 概况 "), "概况");
    }

    #[test]
    fn the_built_in_tree_resolves_its_frames() {
        let tree = MenuTree::builtin();
        let vm_actions = Frame {
            at: vec![1, 0, 0],
            label: "操作".into(),
            chosen: false,
            vars: [("vm".to_string(), "web-04".to_string())].into(),
        };
        assert!(matches!(view(&tree, &vm_actions), Some(View::List(_))));
        assert_eq!(place(&tree, &vm_actions), "【web-04】的操作列表");
        assert!(fits(&tree, &[Frame::root(), vm_actions.clone()]));
        let renamed = Frame {
            label: "动作".into(),
            ..vm_actions
        };
        assert!(!fits(&tree, &[Frame::root(), renamed]));
        assert!(!fits(&tree, &[]));
    }
}
