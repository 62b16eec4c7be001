//! Answering the menu: one digit or name, or a whole path (`0-1-2`, `1-OA系统-0-0`,
//! `5-1-新机,192.168.2.210`) walked segment by segment from the frame it starts at.
//! A name may contain `-` (the longest run of segments that names an entry wins); at
//! an input node the input is the rest of the path when a command follows it, else
//! one segment, or (when the rest cannot be walked after it) the longest run of
//! segments that leaves a rest the menu can walk, or the whole rest.

use super::template::fill;
use super::tree::{Kind, Next, Node};
use super::{view, visible_children, Frame, Listing, MenuTree, Vars, View, World, MAX_DYNAMIC};
use super::{After, Entry};
use std::future::Future;
use std::pin::Pin;

/// Where an answer led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walked {
    /// To a frame (the stack's top), which the reply shows.
    Show(Vec<Frame>),
    /// To a command: its text, and the stack once it ran (the list it was chosen from,
    /// or the top).
    Run { command: String, stack: Vec<Frame> },
}

/// Why an answer did not fit, at the frame where it stopped (the reply shows it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub stack: Vec<Frame>,
    pub why: String,
    /// Path segments used before the one that did not fit.
    pub consumed: usize,
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<Walked, Stuck>> + Send + 'a>>;

fn stuck(stack: Vec<Frame>, why: impl Into<String>, consumed: usize) -> Stuck {
    Stuck {
        stack,
        why: why.into(),
        consumed,
    }
}

/// Walks `segments` from the top of `stack`.
pub async fn answer(
    tree: &MenuTree,
    world: &dyn World,
    stack: Vec<Frame>,
    segments: &[&str],
) -> Result<Walked, Stuck> {
    step(tree, world, stack, segments, 0).await
}

/// Answers the input node on top of `stack` with the whole of `text` (`-` included).
pub async fn give_input(
    tree: &MenuTree,
    world: &dyn World,
    stack: Vec<Frame>,
    text: &str,
) -> Result<Walked, Stuck> {
    match stack.last().and_then(|f| view(tree, f)) {
        Some(View::Ask(node)) => bind(tree, world, stack, node, text.to_string(), &[], 0).await,
        _ => answer(tree, world, stack, &[text]).await,
    }
}

fn same(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The longest run of `segments` (joined by `-`) that `find` knows, with its length.
fn longest_name<T>(segments: &[&str], find: impl Fn(&str) -> Option<T>) -> Option<(T, usize)> {
    (1..=segments.len())
        .rev()
        .find_map(|n| find(&segments[..n].join("-")).map(|t| (t, n)))
}

fn number(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

fn extra(stack: Vec<Frame>, command: &str, consumed: usize) -> Stuck {
    stuck(
        stack,
        format!("路径在第 {consumed} 段已到达操作「{command}」,后面的部分多余"),
        consumed,
    )
}

/// The stack once a command of a node with `after` ran: never on an input, so the
/// next digit reads against a list the reply names.
fn placed(tree: &MenuTree, mut stack: Vec<Frame>, after: After) -> Vec<Frame> {
    match after {
        After::Top => stack.truncate(1),
        After::List => {
            while stack.len() > 1 && stack.last().is_some_and(|f| super::wants_input(tree, f)) {
                stack.pop();
            }
        }
    }
    stack
}

/// The entries of dynamic `node` under `vars`.
pub(super) async fn listing(
    world: &dyn World,
    node: &Node,
    vars: &Vars,
) -> Result<Listing, String> {
    let Kind::Dynamic { source, params, .. } = &node.kind else {
        return Ok(Listing::default());
    };
    let mut given = vars.clone();
    for (k, v) in params {
        given.insert(k.clone(), fill(v, vars));
    }
    world.entries(source, &given).await
}

fn step<'a>(
    tree: &'a MenuTree,
    world: &'a dyn World,
    stack: Vec<Frame>,
    segments: &'a [&'a str],
    consumed: usize,
) -> Step<'a> {
    Box::pin(async move {
        let Some(segment) = segments.first().copied() else {
            return Ok(Walked::Show(stack));
        };
        let Some(frame) = stack.last().cloned() else {
            return Err(stuck(stack, "菜单没有打开", consumed));
        };
        let Some(here) = view(tree, &frame) else {
            return Err(stuck(stack, "菜单配置已变更,这个位置已不存在", consumed));
        };
        match here {
            View::Ask(node) => {
                if node.command().is_some() {
                    let input = segments.join("-");
                    return bind(
                        tree,
                        world,
                        stack,
                        node,
                        input,
                        &[],
                        consumed + segments.len(),
                    )
                    .await;
                }
                // One segment; else the longest run that leaves a rest the menu can
                // walk; else the whole rest. (A fuzzy search lists something for
                // almost any text, so "walkable" alone cannot pick the split.)
                let mut best: Option<Stuck> = None;
                let mut splits = vec![1];
                splits.extend((2..segments.len()).rev());
                if segments.len() > 1 {
                    splits.push(segments.len());
                }
                for n in splits {
                    let input = segments[..n].join("-");
                    let rest = &segments[n..];
                    match bind(tree, world, stack.clone(), node, input, rest, consumed + n).await {
                        Ok(w) => return Ok(w),
                        Err(e) => {
                            if best.as_ref().is_none_or(|b| e.consumed > b.consumed) {
                                best = Some(e);
                            }
                        }
                    }
                }
                Err(best.unwrap_or_else(|| stuck(stack, "输入不能为空", consumed)))
            }
            View::List(node) => {
                let visible = visible_children(world, node);
                let ((index, child), used) = match number(segment) {
                    Some(n) => match visible.get(n) {
                        Some(c) => (*c, 1),
                        None => {
                            let why = format!(
                                "没有选项 {n},请回复 0–{}",
                                visible.len().saturating_sub(1)
                            );
                            return Err(stuck(stack, why, consumed));
                        }
                    },
                    None => match longest_name(segments, |name| {
                        visible.iter().find(|(_, c)| same(&c.label, name)).copied()
                    }) {
                        Some(found) => found,
                        None => {
                            let why = format!("请回复菜单中的数字,「{segment}」不是数字");
                            return Err(stuck(stack, why, consumed));
                        }
                    },
                };
                let mut at = frame.at.clone();
                at.push(index);
                let rest = &segments[used..];
                choose(
                    tree,
                    world,
                    stack,
                    at,
                    child,
                    frame.vars,
                    rest,
                    consumed + used,
                    false,
                )
                .await
            }
            View::Entries(node) => {
                let listing = match listing(world, node, &frame.vars).await {
                    Ok(l) => l,
                    Err(why) => return Err(stuck(stack, why, consumed)),
                };
                let (entry, used) = match pick(node, &listing, segments, &frame.vars) {
                    Ok(found) => found,
                    Err(why) => return Err(stuck(stack, why, consumed)),
                };
                let value = entry.value.clone();
                bind(
                    tree,
                    world,
                    stack,
                    node,
                    value,
                    &segments[used..],
                    consumed + used,
                )
                .await
            }
        }
    })
}

/// The entry `segments` start with: by its number among those shown, or by a name
/// (any entry: typing a name is how one narrows past the first twenty).
fn pick<'l>(
    node: &Node,
    listing: &'l Listing,
    segments: &[&str],
    vars: &Vars,
) -> Result<(&'l Entry, usize), String> {
    let shown = &listing.entries[..listing.entries.len().min(MAX_DYNAMIC)];
    let empty = match &node.kind {
        Kind::Dynamic { empty, .. } => fill(empty, vars),
        _ => String::new(),
    };
    let segment = segments.first().copied().unwrap_or_default();
    if let Some(n) = number(segment) {
        let found = match listing.own_numbers {
            Some(_) => shown.iter().find(|e| e.number == n),
            None => shown.get(n),
        };
        return match (found, listing.own_numbers) {
            (Some(e), _) => Ok((e, 1)),
            (None, _) if shown.is_empty() => Err(format!("{empty},请 返回 上一级")),
            (None, Some(noun)) => {
                let numbers: Vec<String> = shown.iter().map(|e| e.number.to_string()).collect();
                Err(format!(
                    "没有编号为 {n} 的{noun},请回复: {}",
                    numbers.join("、")
                ))
            }
            (None, None) => Err(format!("没有选项 {n},请回复 0–{}", shown.len() - 1)),
        };
    }
    longest_name(segments, |name| {
        listing
            .entries
            .iter()
            .find(|e| same(&e.name, name) || same(&e.value, name))
    })
    .ok_or_else(|| format!("没有名为「{segment}」的选项,请回复列表中的数字或名称"))
}

/// Binds `value` to the variable of `node` (the input or dynamic node on top of
/// `stack`) and goes on with what follows it.
fn bind<'a>(
    tree: &'a MenuTree,
    world: &'a dyn World,
    stack: Vec<Frame>,
    node: &'a Node,
    value: String,
    rest: &'a [&'a str],
    consumed: usize,
) -> Step<'a> {
    Box::pin(async move {
        let value = value.trim();
        if value.is_empty() {
            return Err(stuck(stack, "输入不能为空", consumed));
        }
        let Some(frame) = stack.last().cloned() else {
            return Err(stuck(stack, "菜单没有打开", consumed));
        };
        let (var, next) = match &node.kind {
            Kind::Input { var, next, .. } | Kind::Dynamic { var, next, .. } => (var, next),
            _ => return Err(stuck(stack, "这里不需要输入", consumed)),
        };
        let mut vars = frame.vars.clone();
        vars.insert(var.clone(), value.to_string());
        match next {
            Next::Command(template) => {
                let command = fill(template, &vars);
                if !rest.is_empty() {
                    return Err(extra(stack, &command, consumed));
                }
                Ok(Walked::Run {
                    command,
                    stack: placed(tree, stack, node.after),
                })
            }
            Next::Children(children) if children.len() == 1 => {
                // One way on: go straight there rather than list a single entry.
                let mut at = frame.at.clone();
                at.push(0);
                let from_input = matches!(node.kind, Kind::Input { .. });
                choose(
                    tree,
                    world,
                    stack,
                    at,
                    &children[0],
                    vars,
                    rest,
                    consumed,
                    from_input,
                )
                .await
            }
            Next::Children(_) => {
                let mut stack = stack;
                stack.push(Frame {
                    at: frame.at.clone(),
                    label: frame.label.clone(),
                    chosen: true,
                    vars,
                });
                step(tree, world, stack, rest, consumed).await
            }
        }
    })
}

/// Opens `child` (at `at`) with `vars` bound, or runs it when it is a leaf. A dynamic
/// node right after an input re-asks the input when it has nothing to list (no VM
/// matches what was typed).
#[allow(clippy::too_many_arguments)] // the walk's state, passed through
fn choose<'a>(
    tree: &'a MenuTree,
    world: &'a dyn World,
    mut stack: Vec<Frame>,
    at: Vec<u16>,
    child: &'a Node,
    mut vars: Vars,
    rest: &'a [&'a str],
    consumed: usize,
    from_input: bool,
) -> Step<'a> {
    Box::pin(async move {
        vars.extend(child.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Kind::Leaf(template) = &child.kind {
            let command = fill(template, &vars);
            if !rest.is_empty() {
                return Err(extra(stack, &command, consumed));
            }
            return Ok(Walked::Run {
                command,
                stack: placed(tree, stack, child.after),
            });
        }
        if let (true, Kind::Dynamic { empty, .. }) = (from_input, &child.kind) {
            match listing(world, child, &vars).await {
                Ok(l) if l.entries.is_empty() => {
                    return Err(stuck(stack, fill(empty, &vars), consumed));
                }
                Ok(_) => {}
                Err(why) => return Err(stuck(stack, why, consumed)),
            }
        }
        stack.push(Frame {
            at,
            label: child.label.clone(),
            chosen: false,
            vars,
        });
        step(tree, world, stack, rest, consumed).await
    })
}
