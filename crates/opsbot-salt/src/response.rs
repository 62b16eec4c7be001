//! salt-api's bodies as typed results. Pure functions over text, so every shape salt-api
//! was seen to answer (and the ones it must not) is unit-tested without a master.

use crate::SaltError;
use serde_json::Value;
use std::collections::BTreeMap;

/// What one minion answered to one call.
#[derive(Debug, Clone, PartialEq)]
pub enum MinionReturn {
    /// The function's return.
    Ok(Value),
    /// The minion is listed with `false`: dead, or it did not answer within the timeout.
    NoAnswer,
}

/// `cmd.run_all`'s answer on one minion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAll {
    pub retcode: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `return` list of a 200 body; anything else is [`SaltError::Malformed`].
fn return_list(body: &str) -> Result<Vec<Value>, SaltError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| SaltError::Malformed(format!("not JSON ({e}): {}", excerpt(body))))?;
    match v {
        Value::Object(mut o) => match o.remove("return") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(SaltError::Malformed(format!(
                "no \"return\" list: {}",
                excerpt(body)
            ))),
        },
        _ => Err(SaltError::Malformed(format!(
            "not an object: {}",
            excerpt(body)
        ))),
    }
}

/// The token of a `/login` answer.
pub fn parse_login(body: &str) -> Result<String, SaltError> {
    let items = return_list(body)?;
    items
        .first()
        .and_then(|i| i.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| SaltError::Malformed(format!("login without a token: {}", excerpt(body))))
}

/// One minion's value in a `local` answer sent with `full_return: true`: `false` is a
/// minion that did not answer, `{"ret": …}` an answer. Anything else is kept as the return
/// itself (an older salt-api that ignores `full_return`).
fn minion_value(v: Value) -> MinionReturn {
    match v {
        Value::Bool(false) => MinionReturn::NoAnswer,
        Value::Object(mut o) if o.contains_key("ret") => {
            MinionReturn::Ok(o.remove("ret").unwrap_or(Value::Null))
        }
        other => MinionReturn::Ok(other),
    }
}

/// A `local` answer: `{"return":[{"<minion>": …}]}`; a target matching nothing is `[{}]`.
pub fn parse_local(body: &str) -> Result<BTreeMap<String, MinionReturn>, SaltError> {
    let items = return_list(body)?;
    let mut out = BTreeMap::new();
    match items.as_slice() {
        [] => {}
        [Value::Object(_)] => {
            if let Some(Value::Object(minions)) = items.into_iter().next() {
                for (id, v) in minions {
                    out.insert(id, minion_value(v));
                }
            }
        }
        _ => {
            return Err(SaltError::Malformed(format!(
                "local: expected one object of minions: {}",
                excerpt(body)
            )))
        }
    }
    Ok(out)
}

/// A `local_batch` answer: one `{"<minion>": …}` object per minion that answered (a dead
/// minion is left out by salt).
pub fn parse_local_batch(body: &str) -> Result<BTreeMap<String, MinionReturn>, SaltError> {
    let mut out = BTreeMap::new();
    for item in return_list(body)? {
        match item {
            Value::Object(minions) => {
                for (id, v) in minions {
                    out.insert(id, minion_value(v));
                }
            }
            other => {
                return Err(SaltError::Malformed(format!(
                    "local_batch: an item is not an object: {}",
                    excerpt(&other.to_string())
                )))
            }
        }
    }
    Ok(out)
}

/// One minion's `cmd.run_all` return, or why it is not one.
pub fn run_all_of(ret: MinionReturn) -> Result<RunAll, String> {
    let v = match ret {
        MinionReturn::NoAnswer => return Err("the minion did not answer".into()),
        MinionReturn::Ok(v) => v,
    };
    let obj = match &v {
        Value::Object(o) => o,
        Value::String(s) => return Err(format!("not a cmd.run_all result: {}", excerpt(s))),
        other => {
            return Err(format!(
                "not a cmd.run_all result: {}",
                excerpt(&other.to_string())
            ))
        }
    };
    let retcode = obj
        .get("retcode")
        .and_then(Value::as_i64)
        .and_then(|r| i32::try_from(r).ok());
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    match (retcode, text("stdout"), text("stderr")) {
        (Some(retcode), Some(stdout), Some(stderr)) => Ok(RunAll {
            retcode,
            stdout,
            stderr,
        }),
        _ => Err(format!(
            "cmd.run_all result without retcode/stdout/stderr: {}",
            excerpt(&v.to_string())
        )),
    }
}

/// The readable part of an error body (salt-api's are HTML pages): tags dropped,
/// whitespace folded, cut to 200 characters.
pub fn error_text(body: &str) -> String {
    let mut text = String::with_capacity(body.len().min(512));
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    excerpt(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn excerpt(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn login_gives_the_token() {
        let body = r#"{"return":[{"token":"abc","expire":1.7e9,"start":1.6e9,"user":"ops","eauth":"file","perms":[".*"]}]}"#;
        assert_eq!(parse_login(body).unwrap(), "abc");
        assert!(matches!(
            parse_login(r#"{"return":[{}]}"#),
            Err(SaltError::Malformed(_))
        ));
        assert!(matches!(
            parse_login("<html>401</html>"),
            Err(SaltError::Malformed(_))
        ));
    }

    #[test]
    fn a_dead_minion_is_no_answer_and_full_returns_are_unwrapped() {
        let body = json!({"return":[{
            "a": {"ret": {"os": "Debian"}, "retcode": 0, "jid": "1"},
            "b": false,
            "c": {"ret": false, "retcode": 0},
            "d": "plain value",
        }]})
        .to_string();
        let got = parse_local(&body).unwrap();
        assert_eq!(got["a"], MinionReturn::Ok(json!({"os": "Debian"})));
        assert_eq!(got["b"], MinionReturn::NoAnswer);
        // A function returning false is an answer, told apart by full_return.
        assert_eq!(got["c"], MinionReturn::Ok(json!(false)));
        assert_eq!(got["d"], MinionReturn::Ok(json!("plain value")));
    }

    #[test]
    fn a_target_matching_nothing_is_empty() {
        assert!(parse_local(r#"{"return":[{}]}"#).unwrap().is_empty());
        assert!(parse_local(r#"{"return":[]}"#).unwrap().is_empty());
        assert!(parse_local_batch(r#"{"return":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            "<html><body>504 Gateway Time-out</body></html>",
            "",
            "[]",
            r#"{"return":{"a":1}}"#,
            r#"{"return":[{"a":1},{"b":2}]}"#,
            r#"{"return":["No minions matched"]}"#,
        ] {
            assert!(
                matches!(parse_local(body), Err(SaltError::Malformed(_))),
                "{body}"
            );
        }
        assert!(matches!(
            parse_local_batch(r#"{"return":["x"]}"#),
            Err(SaltError::Malformed(_))
        ));
    }

    #[test]
    fn batches_merge_one_object_per_minion() {
        let got =
            parse_local_batch(r#"{"return":[{"a":true},{"b":{"ret":1,"retcode":0}}]}"#).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["a"], MinionReturn::Ok(json!(true)));
        assert_eq!(got["b"], MinionReturn::Ok(json!(1)));
    }

    #[test]
    fn run_all_results_and_partial_ones() {
        let ok = run_all_of(MinionReturn::Ok(
            json!({"pid": 9, "retcode": 3, "stdout": "o", "stderr": "e"}),
        ));
        assert_eq!(
            ok,
            Ok(RunAll {
                retcode: 3,
                stdout: "o".into(),
                stderr: "e".into()
            })
        );
        assert!(run_all_of(MinionReturn::NoAnswer)
            .unwrap_err()
            .contains("did not answer"));
        assert!(run_all_of(MinionReturn::Ok(json!({"retcode": 0, "stdout": "x"}))).is_err());
        assert!(run_all_of(MinionReturn::Ok(json!("'cmd.run_all' is not available."))).is_err());
        assert!(run_all_of(MinionReturn::Ok(json!([1, 2]))).is_err());
    }

    #[test]
    fn html_errors_read_as_text() {
        let page = "<!DOCTYPE html><html><head><title>401 Unauthorized</title></head>\n<body><h2>401 Unauthorized</h2><p>No permission -- see authorization schemes</p></body></html>";
        assert_eq!(
            error_text(page),
            "401 Unauthorized 401 Unauthorized No permission -- see authorization schemes"
        );
        assert_eq!(error_text(&"x".repeat(500)).chars().count(), 201);
    }
}
