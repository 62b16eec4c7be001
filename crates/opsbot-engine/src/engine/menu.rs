//! The engine's side of the configured menu: what its dynamic nodes list (the pool's
//! VMs and templates, or a subsystem's registered source) and which leaves the asker
//! may see, answering the open menu, and running the command a leaf produced through
//! the ordinary path (parse, permission, confirmation, audit).

use super::commands::names;
use super::{invalid, ok, store_down, Asker, Engine, Outcome};
use crate::command;
use crate::menu::{
    self, answer, fits, give_input, is_named_path, is_path, root_stack, wants_input, Entry, Frame,
    Listing, MenuError, Vars, Walked, World,
};
use crate::pool::PoolView;
use crate::reply::{ReplySink, Response, Status};
use crate::session::Session;
use crate::view::Lens;
use async_trait::async_trait;
use opsbot_core::chat::Requester;
use std::sync::Arc;

/// What a stack from a configuration changed since answers.
const RESET: &str = "菜单配置已更新,原来的菜单位置已不存在,已回到顶层菜单";

/// The conversation helpers everyone may use, shown to everyone in the menu.
const CONVERSATIONAL: &[&str] = &[
    names::HELP,
    names::MENU,
    names::CONFIRM,
    names::CANCEL,
    names::NEXT_PAGE,
    names::BACK,
    names::EXIT,
];

/// The menu's view of the world for one asker.
struct MenuWorld<'a, 'm> {
    engine: &'a Engine,
    asker: &'a Asker<'m>,
    pool: Arc<PoolView>,
}

impl MenuWorld<'_, '_> {
    /// The VMs (not templates) the asker sees that match `keyword`, closest first (the
    /// ranking 查 uses): an exact name is 0, never behind `dr-web-01`.
    fn vms(&self, keyword: &str) -> Listing {
        let visible = self.asker.view.vm_sight(Lens::VMS);
        let entries = self
            .pool
            .search_ranked(keyword, |v| !v.template && visible(v))
            .into_iter()
            .enumerate()
            .map(|(i, (closeness, vm))| Entry {
                number: i,
                label: format!(
                    "{}{}",
                    if closeness.is_exact() { "★ " } else { "" },
                    crate::format::vm_line(vm)
                ),
                value: vm.name.clone(),
                name: vm.name.clone(),
            })
            .collect();
        Listing {
            entries,
            own_numbers: None,
        }
    }

    /// The templates whose VM the asker may see, by their own numbers (as 克隆:编号
    /// takes them: one numbering per list).
    fn templates(&self) -> Listing {
        let visible = self.asker.view.vm_sight(Lens::VMS);
        let pool = &self.pool;
        let entries = pool
            .templates
            .iter()
            .filter(|t| pool.vm_by_id(&t.provider, &t.vm_id).is_none_or(&visible))
            .map(|t| Entry {
                number: t.number as usize,
                label: format!("{} {}", t.name, t.guest_os),
                value: t.number.to_string(),
                name: t.name.clone(),
            })
            .collect();
        Listing {
            entries,
            own_numbers: Some("模板"),
        }
    }
}

#[async_trait]
impl World for MenuWorld<'_, '_> {
    async fn entries(&self, source: &str, params: &Vars) -> Result<Listing, String> {
        match source {
            "vms" => Ok(self.vms(params.get("input").map_or("", String::as_str))),
            "templates" => Ok(self.templates()),
            _ => {
                let Some(found) = self.engine.subsystems.menu_source_named(source) else {
                    return Err(format!("菜单数据源「{source}」尚未配置"));
                };
                let requester: &dyn Requester = self.asker;
                let entries = found.entries(source, params, requester).await?;
                Ok(Listing {
                    entries: entries
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| Entry {
                            number: i,
                            name: e.label.clone(),
                            label: e.label,
                            value: e.value,
                        })
                        .collect(),
                    own_numbers: None,
                })
            }
        }
    }

    fn may_run(&self, word: &str) -> bool {
        let name = command::spec(word).map(|s| s.name).or_else(|| {
            command::subsystem_spec(self.engine.subsystems.command_sets(), word)
                .map(|(_, d)| d.name)
        });
        match name {
            Some(n) => CONVERSATIONAL.contains(&n) || self.asker.can_run(n),
            // A command no registered subsystem answers yet: as the policy names it (an
            // administrator sees it, and it says 尚未配置 when run).
            None => self.asker.can_run(word),
        }
    }
}

impl Engine {
    /// Checks that every source the menu's dynamic nodes name is answered (built in, or
    /// by a registered subsystem): call it once the subsystems are registered.
    pub fn check_menu(&self) -> Result<(), MenuError> {
        self.settings
            .menu
            .check_sources(&|s| self.subsystems.menu_source_named(s).is_some())
    }

    /// The line naming where the open menu stands, after a confirmed or cancelled leaf.
    pub(super) fn menu_note(&self, sess: &Session) -> Option<String> {
        let top = sess.menu.as_ref()?.last()?;
        let tree = &self.settings.menu;
        menu::view(tree, top)?;
        Some(menu::where_note(&menu::place(tree, top)))
    }

    /// Whether the open menu takes `text` (digits, a path, input, or a name from the
    /// list it shows) and its answer; `None`: `text` is an ordinary command.
    pub(super) async fn open_menu_answer(
        &self,
        asker: &Asker<'_>,
        text: &str,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
    ) -> Option<Outcome> {
        let stack = sess.menu.clone()?;
        let tree = &self.settings.menu;
        let parses = || self.parse(text).is_ok();
        if !fits(tree, &stack) {
            // A command still runs as typed; anything else hears the menu was reset.
            if parses() {
                return None;
            }
            return self.menu_answer(asker, text, sess, sink, false).await;
        }
        let top = stack.last()?;
        if wants_input(tree, top) || is_path(text) || (is_named_path(text) && !parses()) {
            return self.menu_answer(asker, text, sess, sink, false).await;
        }
        if parses() {
            return None;
        }
        // Perhaps a name from the list shown (`OA系统`); if not, the parse error says more.
        self.menu_answer(asker, text, sess, sink, true).await
    }

    /// The open menu's current frame (the top, for a stack that no longer fits).
    pub(super) async fn render_menu(&self, asker: &Asker<'_>, sess: &mut Session) -> Response {
        let pool = match self.pool.get().await {
            Ok(p) => p,
            Err(e) => return store_down(&e),
        };
        let tree = self.settings.menu.clone();
        let world = MenuWorld {
            engine: self,
            asker,
            pool,
        };
        let stack = sess.menu.get_or_insert_with(root_stack);
        let mut text = String::new();
        if !fits(&tree, stack) {
            *stack = root_stack();
            text = format!("{RESET}\n\n");
        }
        let top = stack.last().cloned().unwrap_or_else(Frame::root);
        text.push_str(&menu::render(&tree, &world, &top).await);
        ok(text)
    }

    /// Answers the open menu with digits, a name, a path, or free input. `soft`: the
    /// text is also not a command, so an answer that does not fit at its first step
    /// is not the menu's (`None`).
    pub(super) async fn menu_answer(
        &self,
        asker: &Asker<'_>,
        text: &str,
        sess: &mut Session,
        sink: &Arc<dyn ReplySink>,
        soft: bool,
    ) -> Option<Outcome> {
        let pool = match self.pool.get().await {
            Ok(p) => p,
            Err(e) => return Some(store_down(&e).into()),
        };
        let tree = self.settings.menu.clone();
        let world = MenuWorld {
            engine: self,
            asker,
            pool,
        };
        let mut stack = sess.menu.clone().unwrap_or_else(root_stack);
        if !fits(&tree, &stack) {
            sess.menu = Some(root_stack());
            let root = menu::render(&tree, &world, &Frame::root()).await;
            return Some(invalid(format!("{RESET}\n\n{root}")).into());
        }
        let top = stack.last().cloned().unwrap_or_else(Frame::root);
        let walked = if wants_input(&tree, &top) {
            give_input(&tree, &world, stack, text).await
        } else {
            if is_named_path(text) {
                // A whole path starts from the top of the tree.
                stack.truncate(1);
            }
            let segments: Vec<&str> = text.split('-').collect();
            answer(&tree, &world, stack, &segments).await
        };
        let (command, after) = match walked {
            Err(stuck) => {
                if soft && stuck.consumed == 0 {
                    return None;
                }
                let here = stuck.stack.last().cloned().unwrap_or_else(Frame::root);
                let shown = menu::render(&tree, &world, &here).await;
                sess.menu = Some(stuck.stack);
                return Some(invalid(format!("{}\n\n{shown}", stuck.why)).into());
            }
            Ok(Walked::Show(stack)) => {
                let here = stack.last().cloned().unwrap_or_else(Frame::root);
                sess.menu = Some(stack);
                return Some(ok(menu::render(&tree, &world, &here).await).into());
            }
            Ok(Walked::Run { command, stack }) => (command, stack),
        };
        let cmd = match self.parse(&command) {
            Ok(c) => c,
            Err(e) => {
                let shown = menu::render(&tree, &world, &top).await;
                return Some(invalid(format!("{e}\n\n{shown}")).into());
            }
        };
        // One rule after every leaf: the menu goes back to a place the reply names (the
        // list the command was chosen from, or the top), never stays on an input or a
        // list the next digit would act on unseen.
        let here = after.last().cloned().unwrap_or_else(Frame::root);
        sess.menu = Some(after);
        let ran = cmd.to_string();
        let mut out = self.run(asker, cmd, false, sess, sink).await;
        out.ran = Some(ran);
        // A prompt for 确认 waits for y/n first; the place is named once it ran.
        if sess.menu.is_some() && out.response.status != Status::NeedsConfirmation {
            let note = menu::where_note(&menu::place(&tree, &here));
            out.response.text.push_str(&format!("\n\n{note}"));
        }
        Some(out)
    }
}
