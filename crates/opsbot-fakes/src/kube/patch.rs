//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch with merge patch
//! semantics for lists (see the gaps in the module doc), and JSON patch (RFC 6902).

use serde_json::Value;

use super::status::ApiError;

/// Applies `body` of `content_type` to `target`.
pub(crate) fn apply(target: &mut Value, content_type: &str, body: &[u8]) -> Result<(), ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: the patch is not a JSON object",
                ));
            }
            if media == "application/merge-patch+json" {
                json_patch::merge(target, &patch);
            } else {
                strategic_merge(target, &patch);
            }
            Ok(())
        }
        "application/json-patch+json" => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(target, &patch).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Strategic merge patch without the per-field list merge keys: merge patch semantics
/// plus the directives kubectl sends (`$patch: replace|delete`, and `$setElementOrder/…`
/// and `$retainKeys`, which are dropped).
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = p.clone();
            replacement.remove("$patch");
            *target = Value::Object(replacement);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        strategic_merge(slot, v);
        if slot.is_null() {
            t.remove(k);
        }
    }
}
