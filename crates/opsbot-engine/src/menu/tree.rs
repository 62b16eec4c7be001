//! The menu tree compiled from its configuration: every node's kind decided, every
//! template checked against the variables bound above it, every command name known.
//! Each node keeps its key path (`menu[0].children[2]`) for the messages of the
//! checks the engine makes later (the sources its subsystems registered).

use super::config::{After, MenuItem};
use super::template::{is_var_name, placeholders, Vars};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// Deepest nesting of `[[menu.children]]` (the top items are depth 1).
pub const MAX_DEPTH: usize = 8;
/// Most children one node may list: a phone screen, and one-or-two-digit answers.
pub const MAX_CHILDREN: usize = 50;
/// The sources the engine answers itself from the pool.
pub const BUILTIN_SOURCES: &[&str] = &["vms", "templates"];

/// The heading of the top of the menu.
pub const ROOT_TITLE: &str = "运维菜单";

/// A problem in the `[[menu]]` configuration: the key path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct MenuError {
    pub key: String,
    pub problem: String,
}

fn error<T>(key: &str, problem: impl Into<String>) -> Result<T, MenuError> {
    Err(MenuError {
        key: key.to_string(),
        problem: problem.into(),
    })
}

/// The compiled tree; its root is the top menu, whose children are the `[[menu]]`
/// items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuTree {
    pub root: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Where it is in the configuration (`menu[0].children[2]`), for messages.
    pub key: String,
    pub label: String,
    /// Heading template (default: the label).
    pub title: String,
    pub prompt: String,
    pub place: Option<String>,
    pub footer: Option<String>,
    /// Fixed variables this node sets for itself and everything below it.
    pub vars: Vars,
    pub kind: Kind,
    pub after: After,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Branch(Vec<Node>),
    /// Runs a command template.
    Leaf(String),
    /// Asks for free text, bound to `var`.
    Input {
        ask: String,
        var: String,
        next: Next,
    },
    /// Lists live entries; the chosen one's value is bound to `var`.
    Dynamic {
        source: String,
        var: String,
        params: Vars,
        empty: String,
        next: Next,
    },
}

/// What follows an input or dynamic node once its value is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Children(Vec<Node>),
    Command(String),
}

impl Node {
    /// The nodes listed under this one (a branch's, or a bound node's continuation).
    pub fn children(&self) -> &[Node] {
        match &self.kind {
            Kind::Branch(c) => c,
            Kind::Input {
                next: Next::Children(c),
                ..
            }
            | Kind::Dynamic {
                next: Next::Children(c),
                ..
            } => c,
            _ => &[],
        }
    }

    /// The command template this node runs, once bound where it binds.
    pub fn command(&self) -> Option<&str> {
        match &self.kind {
            Kind::Leaf(c)
            | Kind::Input {
                next: Next::Command(c),
                ..
            }
            | Kind::Dynamic {
                next: Next::Command(c),
                ..
            } => Some(c),
            _ => None,
        }
    }

    /// The variable an input or dynamic node binds.
    pub fn binds(&self) -> Option<&str> {
        match &self.kind {
            Kind::Input { var, .. } | Kind::Dynamic { var, .. } => Some(var),
            _ => None,
        }
    }
}

/// The command name a template starts with (`扩容` of `扩容:{ns}/{deploy},{input}`),
/// as the parser splits it: before the colon, else before the first space.
pub fn command_word(template: &str) -> &str {
    let template = template.trim();
    let end = template
        .find([':', '：'])
        .or_else(|| template.find(char::is_whitespace))
        .unwrap_or(template.len());
    template[..end].trim()
}

impl MenuTree {
    /// Checks and compiles `items`; `known_command` says whether a command name (or
    /// alias) exists. An empty list is the built-in menu.
    pub fn compile(
        items: &[MenuItem],
        known_command: &dyn Fn(&str) -> bool,
    ) -> Result<MenuTree, MenuError> {
        if items.is_empty() {
            return Ok(MenuTree::builtin().as_ref().clone());
        }
        let children = compile_list(items, "menu", 1, &BTreeSet::new(), known_command)?;
        Ok(MenuTree {
            root: Node {
                key: "menu".into(),
                label: String::new(),
                title: ROOT_TITLE.into(),
                prompt: String::new(),
                place: None,
                footer: None,
                vars: Vars::new(),
                kind: Kind::Branch(children),
                after: After::List,
            },
        })
    }

    /// Today's menu (资源概况 … 发布管理), from the embedded `default.toml`.
    pub fn builtin() -> Arc<MenuTree> {
        static BUILTIN: OnceLock<Arc<MenuTree>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                #[derive(Deserialize)]
                struct File {
                    menu: Vec<MenuItem>,
                }
                let file: File = toml::from_str(include_str!("default.toml"))
                    .expect("the embedded default menu parses");
                // Its command names are checked by the binary's tests, which know the
                // subsystems' commands too.
                let tree = MenuTree::compile(&file.menu, &|_| true)
                    .expect("the embedded default menu is valid");
                Arc::new(tree)
            })
            .clone()
    }

    /// The node at `at` (child indexes from the root).
    pub fn node_at(&self, at: &[u16]) -> Option<&Node> {
        at.iter()
            .try_fold(&self.root, |node, i| node.children().get(*i as usize))
    }

    /// The sources the dynamic nodes name that the engine does not answer itself, with
    /// their key paths (`menu[0].children[1].source`).
    pub fn external_sources(&self) -> Vec<(String, String)> {
        fn walk(node: &Node, out: &mut Vec<(String, String)>) {
            if let Kind::Dynamic { source, .. } = &node.kind {
                if !BUILTIN_SOURCES.contains(&source.as_str()) {
                    out.push((format!("{}.source", node.key), source.clone()));
                }
            }
            for c in node.children() {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Checks that every source a dynamic node names is answered: built in, or by a
    /// registered source (`known`).
    pub fn check_sources(&self, known: &dyn Fn(&str) -> bool) -> Result<(), MenuError> {
        for (key, source) in self.external_sources() {
            if !known(&source) {
                return error(
                    &key,
                    format!(
                        "unknown source {source:?}: built in are {}; others come from a configured subsystem (workloads, namespaces, pods from kind = \"kubernetes\")",
                        BUILTIN_SOURCES.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }
}

fn compile_list(
    items: &[MenuItem],
    key: &str,
    depth: usize,
    bound: &BTreeSet<String>,
    known_command: &dyn Fn(&str) -> bool,
) -> Result<Vec<Node>, MenuError> {
    if items.len() > MAX_CHILDREN {
        return error(
            key,
            format!("{} entries, at most {MAX_CHILDREN}", items.len()),
        );
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| compile_item(item, &format!("{key}[{i}]"), depth, bound, known_command))
        .collect()
}

fn check_text(
    key: &str,
    field: &str,
    text: &str,
    bound: &BTreeSet<String>,
) -> Result<(), MenuError> {
    for name in placeholders(text) {
        if !bound.contains(name) {
            return error(
                &format!("{key}.{field}"),
                format!(
                    "unknown variable {{{name}}}: a template may use only the vars set and the values bound above it ({})",
                    if bound.is_empty() {
                        "none here".to_string()
                    } else {
                        bound.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            );
        }
    }
    Ok(())
}

fn check_command(
    key: &str,
    template: &str,
    bound: &BTreeSet<String>,
    known_command: &dyn Fn(&str) -> bool,
) -> Result<String, MenuError> {
    let word = command_word(template);
    if word.is_empty() {
        return error(&format!("{key}.command"), "must not be empty");
    }
    if !known_command(word) {
        return error(
            &format!("{key}.command"),
            format!("unknown command {word:?}; see `opsbot chat -c 帮助` for the names"),
        );
    }
    check_text(key, "command", template, bound)?;
    Ok(template.trim().to_string())
}

fn compile_item(
    item: &MenuItem,
    key: &str,
    depth: usize,
    above: &BTreeSet<String>,
    known_command: &dyn Fn(&str) -> bool,
) -> Result<Node, MenuError> {
    if depth > MAX_DEPTH {
        return error(key, format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let label = item.label.trim();
    if label.is_empty() {
        return error(&format!("{key}.label"), "must not be empty");
    }
    let mut bound = above.clone();
    for name in item.vars.keys() {
        if !is_var_name(name) {
            return error(
                &format!("{key}.vars.{name}"),
                "a variable name is ASCII letters, digits and _",
            );
        }
        bound.insert(name.clone());
    }
    // The node's own texts show before its value is bound.
    for (field, text) in [
        ("title", &item.title),
        ("prompt", &item.prompt),
        ("place", &item.place),
        ("footer", &item.footer),
        ("input", &item.input),
        ("empty", &item.empty),
    ] {
        if let Some(text) = text {
            check_text(key, field, text, &bound)?;
        }
    }
    let binder = match (&item.input, &item.source) {
        (Some(_), Some(_)) => return error(key, "input and source exclude each other"),
        (None, None) => false,
        _ => true,
    };
    if !binder {
        for (field, set) in [
            ("var", item.var.is_some()),
            ("params", !item.params.is_empty()),
            ("empty", item.empty.is_some()),
        ] {
            if set {
                return error(
                    &format!("{key}.{field}"),
                    "only an input node (input) or a dynamic node (source) takes it",
                );
            }
        }
    }
    if item.source.is_none() && !item.params.is_empty() {
        return error(
            &format!("{key}.params"),
            "only a dynamic node (source) takes it",
        );
    }
    let var = item.var.clone().unwrap_or_else(|| {
        if item.input.is_some() {
            "input"
        } else {
            "choice"
        }
        .into()
    });
    if !is_var_name(&var) {
        return error(
            &format!("{key}.var"),
            "a variable name is ASCII letters, digits and _",
        );
    }
    let mut then_bound = bound.clone();
    if binder {
        then_bound.insert(var.clone());
    }
    let next = match (&item.command, item.children.is_empty()) {
        (Some(_), false) => return error(key, "children and command exclude each other"),
        (None, true) => {
            return error(
                key,
                "needs children (a branch), a command (a leaf), an input or a source followed by either",
            )
        }
        (Some(cmd), true) => Next::Command(check_command(key, cmd, &then_bound, known_command)?),
        (None, false) => Next::Children(compile_list(
            &item.children,
            &format!("{key}.children"),
            depth + 1,
            &then_bound,
            known_command,
        )?),
    };
    let kind = match (&item.input, &item.source) {
        (Some(ask), None) => Kind::Input {
            ask: ask.clone(),
            var,
            next,
        },
        (None, Some(source)) => {
            let source = source.trim().to_string();
            if source.is_empty() {
                return error(&format!("{key}.source"), "must not be empty");
            }
            for (name, value) in &item.params {
                check_text(key, &format!("params.{name}"), value, &bound)?;
            }
            Kind::Dynamic {
                source,
                var,
                params: item.params.clone(),
                empty: item
                    .empty
                    .clone()
                    .unwrap_or_else(|| "没有可选的项目".into()),
                next,
            }
        }
        _ => match next {
            Next::Children(c) => Kind::Branch(c),
            Next::Command(c) => Kind::Leaf(c),
        },
    };
    Ok(Node {
        key: key.to_string(),
        label: label.to_string(),
        title: item.title.clone().unwrap_or_else(|| label.to_string()),
        prompt: item.prompt.clone().unwrap_or_default(),
        place: item.place.clone(),
        footer: item.footer.clone(),
        vars: item.vars.clone(),
        kind,
        after: item.after.unwrap_or(After::List),
    })
}
