//! What the tables of every callback endpoint repeat (`[[wecom.apps]]`, `[[wecom.bots]]`,
//! `[[wechat.mp]]`): the name in its callback URL and the Token the platform signs
//! callbacks with. Flattened into each table, so the keys stay where they are.

use crate::config_check as check;
use std::collections::HashSet;

#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Callback {
    /// Part of the callback URL (`/wecom/{name}/callback`, …).
    pub name: String,
    /// The callback Token (a secret: never printed).
    pub token: String,
}

impl Callback {
    pub fn new(name: impl Into<String>, token: impl Into<String>) -> Self {
        Callback {
            name: name.into(),
            token: token.into(),
        }
    }

    /// Checks the name: fit for a URL and unique among `names` (`noun`: app, robot,
    /// account). The error names the key through `key`.
    pub(crate) fn check_name<'a>(
        &'a self,
        key: impl Fn(&str) -> String,
        names: &mut HashSet<&'a str>,
        noun: &str,
    ) -> Result<(), (String, String)> {
        check::name(&self.name).map_err(|p| (key("name"), p))?;
        if !names.insert(self.name.as_str()) {
            return Err((
                key("name"),
                format!("duplicate {noun} name {:?}", self.name),
            ));
        }
        Ok(())
    }
}

/// Never prints the token.
impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
