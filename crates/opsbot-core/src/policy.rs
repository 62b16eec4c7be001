//! The permission policy: roles grant commands on resource scopes; users and chats are
//! bound to roles. Anything not granted is denied.

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A resource scope pattern over `provider/datacenter/cluster/name` paths:
/// `*` matches one path segment, `**` any number, and a lone `*` everything.
#[derive(Debug, Clone)]
pub struct Scope {
    pattern: String,
    matcher: Option<GlobMatcher>,
}

impl Scope {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err("empty scope pattern".into());
        }
        if pattern == "*" || pattern == "**" {
            return Ok(Scope {
                pattern: pattern.to_string(),
                matcher: None,
            });
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("bad scope pattern {pattern:?}: {e}"))?;
        Ok(Scope {
            pattern: pattern.to_string(),
            matcher: Some(glob.compile_matcher()),
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            None => true,
            Some(m) => m.is_match(path),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

/// A role as configured: command names are canonical (Chinese) names, or `*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub commands: Vec<String>,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct CompiledRole {
    role: Role,
    scopes: Vec<Scope>,
}

impl CompiledRole {
    fn grants(&self, command: &str) -> bool {
        self.role.commands.iter().any(|c| c == "*" || c == command)
    }

    fn covers(&self, path: &str) -> bool {
        self.scopes.iter().any(|s| s.matches(path))
    }
}

/// Roles plus who holds them. Built from the configuration, kept in the store.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: BTreeMap<String, CompiledRole>,
    users: BTreeMap<String, Vec<String>>,
    chats: BTreeMap<String, Vec<String>>,
}

impl Policy {
    /// Builds a policy; fails on a bad scope pattern or a binding to an unknown role.
    pub fn new(
        roles: Vec<Role>,
        users: BTreeMap<String, Vec<String>>,
        chats: BTreeMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        let mut compiled = BTreeMap::new();
        for role in roles {
            let scopes = role
                .scopes
                .iter()
                .map(|s| Scope::parse(s).map_err(|e| format!("role {}: {e}", role.name)))
                .collect::<Result<Vec<_>, _>>()?;
            compiled.insert(role.name.clone(), CompiledRole { role, scopes });
        }
        for (kind, bindings) in [("user", &users), ("chat", &chats)] {
            for (id, names) in bindings {
                if let Some(missing) = names.iter().find(|n| !compiled.contains_key(*n)) {
                    return Err(format!("{kind} {id} is bound to unknown role {missing:?}"));
                }
            }
        }
        Ok(Policy {
            roles: compiled,
            users,
            chats,
        })
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values().map(|r| &r.role)
    }

    pub fn user_bindings(&self) -> &BTreeMap<String, Vec<String>> {
        &self.users
    }

    pub fn chat_bindings(&self) -> &BTreeMap<String, Vec<String>> {
        &self.chats
    }

    /// The roles a message from `user` in `chat` carries: the user's own plus the chat's.
    fn held<'a>(
        &'a self,
        user: &'a str,
        chat: Option<&'a str>,
    ) -> impl Iterator<Item = &'a CompiledRole> + 'a {
        let from_user = self.users.get(user).into_iter().flatten();
        let from_chat = chat.and_then(|c| self.chats.get(c)).into_iter().flatten();
        from_user
            .chain(from_chat)
            .filter_map(|name| self.roles.get(name))
    }

    /// May `user` (in `chat`) run `command` at all?
    pub fn can_run(&self, user: &str, chat: Option<&str>, command: &str) -> bool {
        self.held(user, chat).any(|r| r.grants(command))
    }

    /// Does `user` hold `command` on every object (a role granting it with scope `*`)?
    /// Lets callers skip per-object checks over large pools.
    pub fn allows_everywhere(&self, user: &str, chat: Option<&str>, command: &str) -> bool {
        self.held(user, chat)
            .any(|r| r.grants(command) && r.scopes.iter().any(|s| s.matcher.is_none()))
    }

    /// Does `user` (in `chat`) hold every command on every object (a role with commands
    /// `*` and scope `*`)? Only such an administrator reads other users' jobs and audit
    /// entries: a `*` role with limited scopes is not one.
    pub fn is_admin(&self, user: &str, chat: Option<&str>) -> bool {
        self.allows_everywhere(user, chat, "*")
    }

    /// The names of the roles a message from `user` in `chat` carries, sorted, once each.
    /// What a caller may see follows from these alone, so callers with the same set can
    /// share one computed answer.
    pub fn role_set(&self, user: &str, chat: Option<&str>) -> Vec<String> {
        let mut names: Vec<String> = self.held(user, chat).map(|r| r.role.name.clone()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// May `user` run `command` on the object at `path`?
    pub fn allows(&self, user: &str, chat: Option<&str>, command: &str, path: &str) -> bool {
        self.held(user, chat)
            .any(|r| r.grants(command) && r.covers(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let roles = vec![
            Role {
                name: "operator".into(),
                commands: vec!["概况".into(), "关机".into()],
                scopes: vec!["vc1/DC0/**".into()],
            },
            Role {
                name: "admin".into(),
                commands: vec!["*".into()],
                scopes: vec!["*".into()],
            },
        ];
        let users = BTreeMap::from([("zhangsan".to_string(), vec!["operator".to_string()])]);
        let chats = BTreeMap::from([("room1".to_string(), vec!["admin".to_string()])]);
        Policy::new(roles, users, chats).unwrap()
    }

    #[test]
    fn default_deny_for_unknown_user() {
        let p = policy();
        assert!(!p.can_run("lisi", None, "概况"));
    }

    #[test]
    fn scope_limits_objects() {
        let p = policy();
        assert!(p.allows("zhangsan", None, "关机", "vc1/DC0/C1/web01"));
        assert!(!p.allows("zhangsan", None, "关机", "vc1/DC1/C1/web01"));
        assert!(!p.allows("zhangsan", None, "开机", "vc1/DC0/C1/web01"));
    }

    #[test]
    fn everywhere_only_with_a_universal_scope() {
        let p = policy();
        assert!(!p.allows_everywhere("zhangsan", None, "关机"));
        assert!(p.allows_everywhere("zhangsan", Some("room1"), "关机"));
    }

    #[test]
    fn a_star_role_with_limited_scopes_is_no_administrator() {
        let roles = vec![Role {
            name: "dc0-all".into(),
            commands: vec!["*".into()],
            scopes: vec!["vc1/DC0/**".into()],
        }];
        let users = BTreeMap::from([("u".to_string(), vec!["dc0-all".to_string()])]);
        let p = Policy::new(roles, users, BTreeMap::new()).unwrap();
        assert!(p.can_run("u", None, "*"));
        assert!(!p.is_admin("u", None));
        assert!(policy().is_admin("zhangsan", Some("room1")));
        assert!(!policy().is_admin("zhangsan", None));
        assert_eq!(
            policy().role_set("zhangsan", Some("room1")),
            vec!["admin".to_string(), "operator".to_string()]
        );
    }

    #[test]
    fn chat_binding_adds_roles() {
        let p = policy();
        assert!(p.allows("zhangsan", Some("room1"), "开机", "vc1/DC1/C1/web01"));
    }

    #[test]
    fn single_star_does_not_cross_segments() {
        let s = Scope::parse("sim/DC1/*").unwrap();
        assert!(s.matches("sim/DC1/ds1"));
        assert!(!s.matches("sim/DC1/C1/vm"));
    }

    #[test]
    fn unknown_role_binding_is_an_error() {
        let users = BTreeMap::from([("u".to_string(), vec!["nope".to_string()])]);
        let err = Policy::new(vec![], users, BTreeMap::new()).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }
}
