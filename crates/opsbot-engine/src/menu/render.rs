//! The text of a menu frame: its heading (【title】prompt), its numbered entries and its
//! last line, and how the reply after an action names the place the menu went back to.

use super::path::listing;
use super::template::fill;
use super::tree::{Kind, ROOT_TITLE};
use super::{view, visible_children, Frame, MenuTree, View, World};
use super::{FOOTER, INPUT_FOOTER, MAX_DYNAMIC};
use std::fmt::Write;

/// The prompt of a bound node's children, whose heading is the bound value.
const CHOSEN_PROMPT: &str = "请选择操作";

/// The heading inside 【】 and the prompt after it.
fn heading(tree: &MenuTree, frame: &Frame) -> (String, String) {
    match view(tree, frame) {
        None => (ROOT_TITLE.into(), String::new()),
        Some(View::List(node)) if frame.chosen => {
            let value = node
                .binds()
                .and_then(|v| frame.vars.get(v))
                .cloned()
                .unwrap_or_default();
            (value, CHOSEN_PROMPT.into())
        }
        Some(View::List(node) | View::Ask(node) | View::Entries(node)) => (
            fill(&node.title, &frame.vars),
            fill(&node.prompt, &frame.vars),
        ),
    }
}

/// The text `frame` shows (entries of dynamic nodes read through `world`).
pub async fn render(tree: &MenuTree, world: &dyn World, frame: &Frame) -> String {
    let (title, prompt) = heading(tree, frame);
    let mut out = format!("【{title}】{prompt}");
    let Some(here) = view(tree, frame) else {
        return out;
    };
    let footer = |default: &str| match here {
        View::List(node) | View::Ask(node) | View::Entries(node) => match &node.footer {
            Some(f) if !frame.chosen => fill(f, &frame.vars),
            _ => default.to_string(),
        },
    };
    match here {
        View::List(node) => {
            for (i, (_, child)) in visible_children(world, node).iter().enumerate() {
                let _ = write!(out, "\n{i} {}", child.label);
            }
            let _ = write!(out, "\n{}", footer(FOOTER));
        }
        View::Ask(node) => {
            if let Kind::Input { ask, .. } = &node.kind {
                out.push_str(&fill(ask, &frame.vars));
            }
            let _ = write!(out, "\n{}", footer(INPUT_FOOTER));
        }
        View::Entries(node) => {
            match listing(world, node, &frame.vars).await {
                Ok(listing) => {
                    for e in listing.entries.iter().take(MAX_DYNAMIC) {
                        let _ = write!(out, "\n{} {}", e.number, e.label);
                    }
                    if listing.entries.len() > MAX_DYNAMIC {
                        let more = listing.entries.len() - MAX_DYNAMIC;
                        // After a search, narrow it; otherwise a name picks any entry.
                        let hint = if after_input(tree, frame) {
                            "请返回并输入更精确的关键字"
                        } else {
                            "可直接回复名称选择"
                        };
                        let _ = write!(out, "\n…另有 {more} 个,{hint}");
                    }
                    if listing.entries.is_empty() {
                        if let Kind::Dynamic { empty, .. } = &node.kind {
                            let _ = write!(out, "\n({})", fill(empty, &frame.vars));
                        }
                    }
                }
                Err(why) => {
                    let _ = write!(out, "\n⚠ 无法列出: {why}");
                }
            }
            let _ = write!(out, "\n{}", footer(FOOTER));
        }
    }
    out
}

/// Whether `frame`'s node follows an input node (the VMs matching what was typed).
fn after_input(tree: &MenuTree, frame: &Frame) -> bool {
    let parent = &frame.at[..frame.at.len().saturating_sub(1)];
    !frame.at.is_empty()
        && tree
            .node_at(parent)
            .is_some_and(|n| matches!(n.kind, Kind::Input { .. }))
}

/// The place `frame` is, as the reply after an action names it (`【web-04】的操作列表`).
pub fn place(tree: &MenuTree, frame: &Frame) -> String {
    match view(tree, frame) {
        Some(View::List(node) | View::Ask(node) | View::Entries(node)) if !frame.chosen => {
            match &node.place {
                Some(p) => fill(p, &frame.vars),
                None => format!("【{}】", heading(tree, frame).0),
            }
        }
        _ => format!("【{}】", heading(tree, frame).0),
    }
}

/// The line after an action's reply: where the menu is and what a digit does now.
pub fn where_note(place: &str) -> String {
    format!("↩ 菜单已回到{place}:回复数字继续 · 返回 上一级 · 退出 结束")
}
