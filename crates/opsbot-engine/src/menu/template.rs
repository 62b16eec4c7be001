//! `{name}` placeholders in menu texts and command templates: which variables a text
//! uses (checked against those bound above it at start) and the text with them filled.
//! Braces around anything but a variable name stay as written.

use std::collections::BTreeMap;

/// Bound variables, by name.
pub type Vars = BTreeMap<String, String>;

/// Whether `name` may name a variable: ASCII letters, digits and `_`, not starting
/// with a digit.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{name}` placeholders of `text`, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_var_name(&after[..close]) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// `text` with each placeholder replaced by its value (an unbound one stays, which
/// start-up validation rules out).
pub fn fill(text: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_var_name(&after[..close]) => {
                match vars.get(&after[..close]) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_variables_and_leaves_other_braces() {
        let vars: Vars = [("ns".to_string(), "oa".to_string())].into();
        assert_eq!(fill("扩容:{ns}/{deploy}", &vars), "扩容:oa/{deploy}");
        assert_eq!(fill("{ 不是 } {ns}", &vars), "{ 不是 } oa");
        assert_eq!(
            placeholders("扩容:{ns}/{deploy},{input}"),
            ["ns", "deploy", "input"]
        );
        assert_eq!(placeholders("项目[,分支|tag] {1x} {}"), Vec::<&str>::new());
    }
}
