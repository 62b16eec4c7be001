//! Request paths: which resource, collection or object a URL names.

use serde_json::json;

use super::resources::Kind;
use super::status::ApiError;

/// What a path names.
pub(crate) enum Target {
    Version,
    Api,
    Apis,
    Resources(&'static str),
    Collection {
        kind: Kind,
        ns: Option<String>,
    },
    Object {
        kind: Kind,
        ns: Option<String>,
        name: String,
        sub: Option<String>,
    },
}

pub(crate) fn not_found() -> ApiError {
    ApiError {
        details: Some(json!({})),
        ..ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
}

pub(crate) fn parse_path(path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest): (&'static str, &[&str]) = match segs.as_slice() {
        ["version"] => return Ok(Target::Version),
        ["api"] => return Ok(Target::Api),
        ["apis"] => return Ok(Target::Apis),
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", "apps", "v1", rest @ ..] => ("apps", rest),
        _ => return Err(not_found()),
    };
    let kind = |plural: &str| Kind::from_path(group, plural).ok_or_else(not_found);
    let target = match rest {
        [] => Target::Resources(group),
        [res] => Target::Collection {
            kind: kind(res)?,
            ns: None,
        },
        ["namespaces", ns, res] => Target::Collection {
            kind: kind(res)?,
            ns: Some(ns.to_string()),
        },
        ["namespaces", ns, res, name] => Target::Object {
            kind: kind(res)?,
            ns: Some(ns.to_string()),
            name: name.to_string(),
            sub: None,
        },
        ["namespaces", ns, res, name, sub] => Target::Object {
            kind: kind(res)?,
            ns: Some(ns.to_string()),
            name: name.to_string(),
            sub: Some(sub.to_string()),
        },
        [res, name] => Target::Object {
            kind: kind(res)?,
            ns: None,
            name: name.to_string(),
            sub: None,
        },
        _ => return Err(not_found()),
    };
    match &target {
        Target::Object { kind, ns, .. } if kind.namespaced() != ns.is_some() => Err(not_found()),
        Target::Collection { kind, ns: Some(_) } if !kind.namespaced() => Err(not_found()),
        _ => Ok(target),
    }
}
