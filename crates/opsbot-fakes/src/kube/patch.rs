//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch applied with merge
//! patch semantics (see the gaps in the module doc), and JSON patch (RFC 6902).

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
            json_patch::merge(target, &patch);
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
